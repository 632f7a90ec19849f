//! [`TcpStream`]: a connected TCP socket.

use std::future::poll_fn;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::task::{Context, Poll};

use mio::Interest;

use super::addr::{ToSocketAddrs, no_address, resolve};
use super::split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
use crate::reactor::registration::{Direction, IoSource, require_runtime};

/// What a stream registers for: reads and writes, and on Linux urgent data
/// too (`EPOLLPRI`), so that the reactor learns when a read may stop short
/// at an urgent mark (see `ScheduledIo::urgent`). Elsewhere mio has no
/// such interest, and the short-read shortcut takes its chance.
#[cfg(any(target_os = "linux", target_os = "android"))]
const STREAM_INTEREST: Interest = Interest::READABLE
    .add(Interest::WRITABLE)
    .add(Interest::PRIORITY);
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const STREAM_INTEREST: Interest = Interest::READABLE.add(Interest::WRITABLE);

/// A TCP connection, readable and writable with the `futures::io` traits.
///
/// `&TcpStream` implements `AsyncRead` and `AsyncWrite` too, so one task may
/// read while another writes; [`split`](Self::split) and
/// [`into_split`](Self::into_split) name that pattern.
///
/// Three edge cases of the I/O traits:
///
/// - **A read into an empty buffer** returns `Ok(0)` at once, data or
///   not, and takes nothing (std's `read(&mut [])` does the same; tokio's
///   waits until the socket is readable). So `Ok(0)` means end-of-file
///   only for a non-empty buffer.
/// - **`close`** (`poll_close`, on the stream and on its write halves)
///   shuts down the write direction: the FIN is queued behind the data
///   already written, and `Ok(())` says no more than that, not that the
///   peer has read anything. Where the kernel says the connection is
///   already gone (`ENOTCONN`: the peer reset it, or both sides have
///   closed), there is nothing left to shut and `close` returns
///   `Ok(())`, as tokio's `shutdown` does. That hides no reset: a reset
///   that no read or write has reported yet is still the socket's
///   pending error, and the next read or write returns it
///   (`ConnectionReset`). [`shutdown`](Self::shutdown), like std's,
///   returns the `ENOTCONN`.
/// - **Writes never raise `SIGPIPE`**, vectored ones included: a write to
///   a reset connection is an `EPIPE` or `ECONNRESET` error, even in a
///   process that has not ignored the signal (on Linux and Apple systems).
///
/// ```no_run
/// use futures::io::{AsyncReadExt, AsyncWriteExt};
/// # coop::block_on(async {
/// let mut stream = coop::net::TcpStream::connect("127.0.0.1:7000").await?;
/// stream.write_all(b"hello").await?;
/// let mut echo = [0; 5];
/// stream.read_exact(&mut echo).await?;
/// # Ok::<(), std::io::Error>(())
/// # });
/// ```
#[derive(Debug)]
pub struct TcpStream {
    io: IoSource<mio::net::TcpStream>,
}

impl_fd!(TcpStream);

impl TcpStream {
    /// Opens a connection to `addr`, trying each address it resolves to.
    /// A name (`"localhost:7000"`) is looked up on the blocking pool, not
    /// on the loop's thread ([`ToSocketAddrs`]). Polled where no coop
    /// runtime runs, it fails before any handshake starts.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last_err = None;
        for addr in resolve(&addr).await? {
            match TcpStream::connect_one(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(no_address))
    }

    async fn connect_one(addr: SocketAddr) -> io::Result<TcpStream> {
        // Where no runtime runs, the stream could not be registered: say
        // so before a handshake starts, not after (the server would see a
        // connection that closed at once).
        require_runtime()?;
        // A non-blocking connect returns at once; the handshake goes on
        // in the kernel.
        TcpStream::finish_connect(mio::net::TcpStream::connect(addr)?).await
    }

    /// Registers `stream`, whose non-blocking `connect(2)` has started,
    /// and waits for its handshake to end: the wait every connect shares
    /// (this type's, and [`TcpSocket::connect`](super::TcpSocket::connect)'s).
    /// The caller has checked [`require_runtime`] before its `connect(2)`.
    pub(crate) async fn finish_connect(stream: mio::net::TcpStream) -> io::Result<TcpStream> {
        let stream = TcpStream::from_mio(stream)?;
        // The socket becomes writable when the handshake ends,
        // successfully or not. Once it is writable, the handshake is
        // over: its error, if any, is the socket's pending error. Still
        // not connected means our optimistic initial readiness was
        // wrong; as `WouldBlock`, that clears it and stores our waker.
        poll_fn(|cx| {
            stream.io.poll_io(cx, Direction::Write, |s| {
                if let Some(e) = s.take_error()? {
                    return Err(e); // e.g. ECONNREFUSED
                }
                match s.peer_addr() {
                    Ok(_) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                    Err(e) => Err(e),
                }
            })
        })
        .await?;
        Ok(stream)
    }

    pub(crate) fn from_mio(stream: mio::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: IoSource::with_interest(stream, STREAM_INTEREST)?,
        })
    }

    /// Wraps a connected std stream (switching it to non-blocking mode).
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        TcpStream::from_mio(mio::net::TcpStream::from_std(stream))
    }

    /// Hands the connection back as a std stream, the reverse of
    /// [`from_std`](Self::from_std): the socket leaves this runtime's
    /// reactor (which keeps nothing for it), and the connection, with any
    /// data already queued, goes on as the std stream. For a blocking
    /// library, on a plain thread or the pool of
    /// [`spawn_blocking`](crate::spawn_blocking).
    ///
    /// The std stream is still in **non-blocking** mode: call
    /// `set_nonblocking(false)` before blocking I/O, or a read with no
    /// data says `WouldBlock` instead of waiting. (tokio's `into_std`
    /// says the same.)
    ///
    /// Only the whole stream has it: halves from
    /// [`into_split`](Self::into_split) are first put back together with
    /// [`reunite`](OwnedReadHalf::reunite). It works outside the
    /// runtime too, and after the runtime was dropped: it then only
    /// frees the socket's place in a reactor that no loop polls. An
    /// error (from epoll's deregistration, which does not fail for a
    /// socket it holds) closes the socket.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use futures::io::{AsyncReadExt, AsyncWriteExt};
    /// # coop::block_on(async {
    /// let listener = coop::net::TcpListener::bind("127.0.0.1:0")?;
    /// let mut client = coop::net::TcpStream::connect(listener.local_addr()?).await?;
    /// let (server, _) = listener.accept().await?;
    ///
    /// // A blocking echo of one message, on the blocking pool.
    /// let mut server = server.into_std()?;
    /// server.set_nonblocking(false)?;
    /// let echoed = coop::spawn_blocking(move || {
    ///     let mut buf = [0; 5];
    ///     server.read_exact(&mut buf)?;
    ///     server.write_all(&buf)
    /// });
    ///
    /// client.write_all(b"hello").await?;
    /// let mut buf = [0; 5];
    /// client.read_exact(&mut buf).await?;
    /// assert_eq!(&buf, b"hello");
    /// echoed.await??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        super::into_std(self.io)
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm): small writes go out
    /// at once instead of waiting to be batched.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.get_ref().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.get_ref().nodelay()
    }

    /// Shuts down the read half, the write half, or both. Shutting down the
    /// write half sends FIN: the peer reads end-of-file after the data.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// Waits until data is queued, then copies as much as fits into `buf`
    /// *without taking it*: the next read returns the same bytes. While any
    /// data is queued it returns at once, so it cannot wait for more than
    /// is there (a loop of peeks until a whole header arrives would spin;
    /// read into a buffer of your own instead). An empty `buf` returns
    /// `Ok(0)` at once, as [`read`](futures::io::AsyncReadExt::read) does.
    /// End-of-file is `Ok(0)` too.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        poll_fn(|cx| self.io.poll_io(cx, Direction::Read, |s| s.peek(buf))).await
    }

    /// Waits until the reactor says the stream is readable (data, end of
    /// file, or an error waits), and reads nothing: pair it with
    /// [`try_read`](Self::try_read). This is the reactor's half of every
    /// read, exposed (chapter 02, "Readiness by hand"). Readiness can be
    /// stale, a spurious wake or bytes another reader took first, so the
    /// `try_read` that follows may still say `WouldBlock`; that is the
    /// signal to wait again.
    ///
    /// ```no_run
    /// # coop::block_on(async {
    /// # let stream = coop::net::TcpStream::connect("127.0.0.1:7000").await?;
    /// let mut buf = [0; 4096];
    /// let n = loop {
    ///     stream.readable().await?;
    ///     match stream.try_read(&mut buf) {
    ///         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
    ///         result => break result?,
    ///     }
    /// };
    /// # Ok::<(), std::io::Error>(())
    /// # });
    /// ```
    pub async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_read_ready(cx)).await
    }

    /// The poll form of [`readable`](Self::readable).
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_ready(cx, Direction::Read)
    }

    /// Waits until the reactor says the stream is writable (room in the
    /// send buffer, or an error to report), and writes nothing: pair it
    /// with [`try_write`](Self::try_write), as
    /// [`readable`](Self::readable) pairs with `try_read`.
    pub async fn writable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_write_ready(cx)).await
    }

    /// The poll form of [`writable`](Self::writable).
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_ready(cx, Direction::Write)
    }

    /// Reads what is queued now, without waiting: `WouldBlock` if nothing
    /// is. It makes no system call while the reactor knows the stream is
    /// not readable, and a `WouldBlock` from the kernel makes the next
    /// [`readable`](Self::readable) wait for a new event. No waker is
    /// stored: call it after `readable().await`. `Ok(0)` is end of file
    /// (or an empty `buf`, which returns at once, as a read does).
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        if len == 0 {
            return Ok(0);
        }
        // The read's own shortcut: a short read forgets readiness.
        self.io
            .try_io_drain(Direction::Read, |s| (&*s).read(buf), short_of(len))
    }

    /// Writes what fits in the send buffer now, without waiting:
    /// `WouldBlock` if nothing does. The write side of
    /// [`try_read`](Self::try_read); call it after
    /// [`writable`](Self::writable)`.await`. Like every write here, it
    /// never raises `SIGPIPE`.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.io
            .try_io_drain(Direction::Write, |s| (&*s).write(buf), short_of(buf.len()))
    }

    /// Sets the IP time-to-live of the packets this stream sends.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// The IP time-to-live of the packets this stream sends.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any, clearing it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// Borrowed read and write halves, usable from two futures at once
    /// (e.g. in one `futures::join!`).
    ///
    /// With `futures::io::AsyncReadExt` in scope, `stream.split()` calls
    /// *that trait's* `split` instead, which takes the stream by value
    /// and returns halves behind a lock: method lookup tries a receiver
    /// taken by value before one taken by reference, trait or not. Name
    /// this one as `TcpStream::split(&stream)` or `(&stream).split()`.
    ///
    /// ```no_run
    /// use coop::net::{ReadHalf, TcpStream, WriteHalf};
    /// use futures::io::AsyncReadExt; // whose `split` `stream.split()` would call
    /// # coop::block_on(async {
    /// let stream = TcpStream::connect("127.0.0.1:7000").await?;
    /// let (rd, wr): (ReadHalf<'_>, WriteHalf<'_>) = TcpStream::split(&stream);
    /// let (rd, wr): (ReadHalf<'_>, WriteHalf<'_>) = (&stream).split();
    /// # Ok::<(), std::io::Error>(())
    /// # });
    /// ```
    pub fn split(&self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        (ReadHalf::new(self), WriteHalf::new(self))
    }

    /// Owned halves that can move into two different tasks. Dropping the
    /// write half shuts down the write direction.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        super::split::into_split(self)
    }

    #[inline]
    pub(crate) fn poll_read_priv(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        // A short read emptied the kernel's buffer; with edge-triggered
        // readiness, new data will bring a new event. Forgetting readiness
        // now saves the read(2) that would only say WouldBlock.
        let len = buf.len();
        // An empty buffer reads nothing and so need not wait for data:
        // `Ok(0)` at once, as std's blocking `read(&mut [])` returns. (Left
        // to the reactor, it would wait for readable whenever readiness
        // had been cleared, for ever if no data came.) One compare of the
        // length the drain test needs anyway, predicted not taken.
        if len == 0 {
            return Poll::Ready(Ok(0));
        }
        self.io
            .poll_io_drain(cx, Direction::Read, |s| (&*s).read(buf), short_of(len))
    }

    #[inline]
    pub(crate) fn poll_write_priv(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // Likewise a short write means the send buffer is full.
        self.io.poll_io_drain(
            cx,
            Direction::Write,
            |s| (&*s).write(buf),
            short_of(buf.len()),
        )
    }

    pub(crate) fn poll_write_vectored_priv(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // No shortcut here: one call takes at most `IOV_MAX` slices (the
        // first 1,024 on Linux, fewer elsewhere: see `write_vectored`), so a
        // write shorter than all the slices together need not have found
        // the send buffer full, and no writable edge would come to end
        // the wait. This keeps readiness until a write says `WouldBlock`.
        self.io
            .poll_io(cx, Direction::Write, |s| write_vectored(s, bufs))
    }

    pub(crate) fn poll_close_priv(&self) -> Poll<io::Result<()>> {
        Poll::Ready(closed(self.shutdown(Shutdown::Write)))
    }
}

/// What `close` (`poll_close`) makes of shutting down a stream's write
/// direction (a `TcpStream`'s or a `UnixStream`'s): `ENOTCONN` means the
/// socket is closed already, by a reset from the peer or after both FINs
/// (on Linux; macOS says it in more cases, see tokio#4665). Nothing is
/// left to shut, so that is `Ok` (tokio's `shutdown` says `Ok` too), and
/// a reset stays pending for the next read or write.
pub(super) fn closed(shutdown: io::Result<()>) -> io::Result<()> {
    match shutdown {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        result => result,
    }
}

/// The stream's drain test, for a read or write of `len` bytes: one that
/// moved some bytes but fewer than `len` found the kernel's buffer empty
/// (a read) or full (a write), and readiness can be forgotten
/// (`IoSource::poll_io_drain`). Zero bytes is end of file, not a drain.
/// `UnixStream`'s reads and writes use it too.
#[inline]
pub(super) fn short_of(len: usize) -> impl Fn(&usize) -> bool {
    move |&n| n > 0 && n < len
}

/// `MSG_NOSIGNAL` from `<sys/socket.h>`: one value on every Linux
/// architecture (`libc` has it once, for all of them). Written out
/// because coop has no `libc` dependency and socket2 does not export it.
#[cfg(any(target_os = "linux", target_os = "android"))]
const MSG_NOSIGNAL: std::ffi::c_int = 0x4000;

/// The most slices one `sendmsg(2)` takes on Linux (`UIO_MAXIOV`); with
/// more it fails with `EMSGSIZE`, where std's `writev` quietly passes the
/// first 1,024. We pass the first 1,024 too.
#[cfg(any(target_os = "linux", target_os = "android"))]
const IOV_MAX: usize = 1024;

/// A vectored write that never raises `SIGPIPE`, on any stream socket
/// (`UnixStream`'s vectored writes come here too).
///
/// std's `write_vectored` is `writev(2)`, which takes no flags: on a
/// connection the peer has reset it fails with `EPIPE` *and* the kernel
/// sends `SIGPIPE`, whose default action ends the process. Rust's `main`
/// ignores the signal, but a library may be hosted by a program that does
/// not. std's plain `write` passes `MSG_NOSIGNAL` for exactly this reason,
/// so vectored writes here do the same, through `sendmsg(2)` (socket2's
/// `send_vectored_with_flags`). tokio's vectored write is std's `writev`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) fn write_vectored<S>(s: &S, bufs: &[IoSlice<'_>]) -> io::Result<usize>
where
    S: std::os::fd::AsFd,
    for<'a> &'a S: Write,
{
    let bufs = &bufs[..bufs.len().min(IOV_MAX)];
    socket2::SockRef::from(s).send_vectored_with_flags(bufs, MSG_NOSIGNAL)
}

/// Elsewhere: `writev(2)`. On Apple systems mio sets `SO_NOSIGPIPE` on
/// every socket it makes, as std does on its own; other systems may
/// still raise `SIGPIPE` here.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(super) fn write_vectored<S>(s: &S, bufs: &[IoSlice<'_>]) -> io::Result<usize>
where
    S: std::os::fd::AsFd,
    for<'a> &'a S: Write,
{
    (&*s).write_vectored(bufs)
}

impl_async_io!(TcpStream, self => self.get_mut());
impl_async_io!(&TcpStream, self => **self);

//! [`UnixStream`]: a connected Unix domain stream socket.
//!
//! A Unix socket is a socket on a *path*, not an address: the server binds
//! a name in the file system (`/run/app.sock`), clients connect to that
//! name, and the bytes never leave the kernel (no IP, no ports, no
//! handshake on the wire; the file's permissions decide who may connect).
//! To the reactor it is just another file descriptor: epoll reports the
//! same readable and writable edges for it as for a TCP socket, so this
//! type is [`TcpStream`](super::TcpStream)'s code over another mio socket.
//! Every operation goes through the same `IoSource` calls (`poll_io_drain`
//! for writes, `poll_io` for reads, `poll_ready` for `readable`,
//! `try_io_drain` and `try_io` for `try_write` and `try_read`), with the
//! same optimistic first try and the same cooperative budget (and the
//! short-write shortcut, but not the short-read one: below). The reactor never asks what
//! kind of descriptor it watches.
//!
//! What differs, for a reader who knows `TcpStream`:
//!
//! - **No Nagle, no urgent data, no options to set.** Writes go into the
//!   peer's receive queue at once, so there is no `set_nodelay`; there is
//!   no `MSG_OOB` either, so the stream registers for reads and writes
//!   only (a `TcpStream` adds `PRIORITY` on Linux).
//! - **Reads take no short-read shortcut.** A read stops short, with
//!   bytes still queued, after bytes that carried descriptors
//!   (`SCM_RIGHTS`, which a plain read discards) or, under `SO_PASSCRED`,
//!   where the writer changes: a short read does not prove the queue
//!   empty, so a read keeps readiness until one says `WouldBlock`.
//!   (Writes keep the shortcut: a short write did find the send
//!   allowance used up.)
//! - **Connecting does not wait.** `connect(2)` on a Unix socket finishes
//!   in the call: the connection is queued on the listener before it
//!   returns, so [`connect`](UnixStream::connect) has no handshake to wait
//!   for. When the listener's backlog is full, the kernel answers
//!   `EAGAIN` at once, and since no event would say when room appears,
//!   `connect` returns that `WouldBlock` error, as tokio's does (std's
//!   blocking `connect` would sleep instead). The listener's backlog is
//!   the kernel's largest (`net.core.somaxconn`, 4096 on modern Linux).
//! - **`SIGPIPE` is avoided the same way.** A write to a stream whose peer
//!   has closed fails with `EPIPE` (`BrokenPipe`), and the kernel would
//!   also send `SIGPIPE`, which kills a process that does not ignore it.
//!   As for TCP, std's plain `write` on a Unix socket is already
//!   `send(..., MSG_NOSIGNAL)`, but its `write_vectored` is `writev(2)`,
//!   which takes no flags and raises the signal; so vectored writes here
//!   go through socket2's `SockRef` with `MSG_NOSIGNAL`, exactly as
//!   `TcpStream`'s do (on Linux; Apple systems have mio's `SO_NOSIGPIPE`
//!   instead).
//! - **Addresses are paths**, as `std::os::unix::net::SocketAddr`: a
//!   client's own address is usually unnamed. Linux's abstract names (a
//!   leading NUL byte, no file) are not covered here; `from_std` takes a
//!   socket connected to one.
//!
//! The peer closing shows as it does for TCP: a read returns `Ok(0)` once
//! the bytes already sent are read. One Unix difference: a peer that
//! closes with bytes it never read leaves this side `ECONNRESET`.

use std::future::poll_fn;
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::task::{Context, Poll};

use mio::Interest;

use super::split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
use super::tcp_stream::{closed, short_of};
use crate::reactor::registration::{Direction, IoSource, require_runtime};

/// A Unix domain stream, readable and writable with the `futures::io`
/// traits. `&UnixStream` implements them too, so one task may read while
/// another writes.
///
/// The I/O traits behave as [`TcpStream`](super::TcpStream)'s: a read into
/// an empty buffer returns `Ok(0)` at once; `close` shuts down the write
/// direction (the peer reads end of file after the data) and treats
/// `ENOTCONN` as done; writes never raise `SIGPIPE` (Linux).
///
/// ```no_run
/// use futures::io::{AsyncReadExt, AsyncWriteExt};
/// # coop::block_on(async {
/// let mut stream = coop::net::UnixStream::connect("/tmp/echo.sock").await?;
/// stream.write_all(b"hello").await?;
/// let mut echo = [0; 5];
/// stream.read_exact(&mut echo).await?;
/// # Ok::<(), std::io::Error>(())
/// # });
/// ```
#[derive(Debug)]
pub struct UnixStream {
    io: IoSource<mio::net::UnixStream>,
}

impl_fd!(UnixStream);

impl UnixStream {
    /// Connects to the socket bound at `path`. There is no handshake to
    /// wait for: the connection is made (queued on the listener) when
    /// `connect(2)` returns. A missing path is `NotFound`, a path with no
    /// listener behind it `ConnectionRefused`, a full backlog
    /// `WouldBlock` (see the module docs). Polled where no coop runtime
    /// runs, it fails before connecting, so the server sees nothing.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        require_runtime()?;
        UnixStream::from_mio(mio::net::UnixStream::connect(path)?)
    }

    /// A pair of streams connected to each other (`socketpair(2)`), with
    /// no path at all: for talking between two tasks, or to a child
    /// process that inherits one end.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        require_runtime()?;
        let (a, b) = mio::net::UnixStream::pair()?;
        Ok((UnixStream::from_mio(a)?, UnixStream::from_mio(b)?))
    }

    pub(crate) fn from_mio(stream: mio::net::UnixStream) -> io::Result<UnixStream> {
        // Reads and writes; no `PRIORITY`, as Unix sockets have no urgent
        // data (module docs).
        Ok(UnixStream {
            io: IoSource::with_interest(stream, Interest::READABLE | Interest::WRITABLE)?,
        })
    }

    /// Wraps a connected std stream (switching it to non-blocking mode).
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        UnixStream::from_mio(mio::net::UnixStream::from_std(stream))
    }

    /// Hands the stream back as a std stream, the reverse of
    /// [`from_std`](Self::from_std). Still non-blocking: call
    /// `set_nonblocking(false)` before blocking I/O. The rest is as
    /// [`TcpStream::into_std`](super::TcpStream::into_std) says.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        super::into_std(self.io)
    }

    /// This end's address: usually unnamed for a client and for either
    /// end of a [`pair`](Self::pair).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The other end's address: the listener's path for a client.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any, clearing it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// Shuts down the read half, the write half, or both. After the write
    /// half, the peer reads end of file once it has read the data.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// Waits until the reactor says the stream is readable (data, end of
    /// file, or an error waits), and reads nothing: pair it with
    /// [`try_read`](Self::try_read), as with
    /// [`TcpStream::readable`](super::TcpStream::readable). A `WouldBlock`
    /// from `try_read` afterwards means the readiness was stale: wait again.
    pub async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_read_ready(cx)).await
    }

    /// The poll form of [`readable`](Self::readable).
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_ready(cx, Direction::Read)
    }

    /// Waits until the reactor says the stream is writable, and writes
    /// nothing: pair it with [`try_write`](Self::try_write).
    pub async fn writable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_write_ready(cx)).await
    }

    /// The poll form of [`writable`](Self::writable).
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_ready(cx, Direction::Write)
    }

    /// Reads what is queued now, without waiting: `WouldBlock` if nothing
    /// is (with no system call while the reactor knows the stream is not
    /// readable). Stores no waker: call it after `readable().await`.
    /// `Ok(0)` is end of file, or an empty `buf`.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        if len == 0 {
            return Ok(0);
        }
        // No short-read shortcut: see `poll_read_priv`.
        self.io.try_io(Direction::Read, |s| (&*s).read(buf))
    }

    /// Writes what fits in the socket's buffer now, without waiting:
    /// `WouldBlock` if nothing does. Call it after
    /// `writable().await`. Never raises `SIGPIPE` (Linux).
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.io
            .try_io_drain(Direction::Write, |s| send(s, buf), short_of(buf.len()))
    }

    /// Borrowed read and write halves, usable from two futures at once,
    /// as [`TcpStream::split`](super::TcpStream::split)'s (the same types,
    /// with `UnixStream` for their stream parameter).
    ///
    /// With `futures::io::AsyncReadExt` in scope, `stream.split()` calls
    /// that trait's `split` instead (it takes the stream by value): name
    /// this one as `UnixStream::split(&stream)` or `(&stream).split()`.
    ///
    /// ```no_run
    /// use coop::net::{ReadHalf, UnixStream, WriteHalf};
    /// # coop::block_on(async {
    /// let (a, _b) = UnixStream::pair()?;
    /// let (rd, wr): (ReadHalf<'_, UnixStream>, WriteHalf<'_, UnixStream>) =
    ///     UnixStream::split(&a);
    /// # Ok::<(), std::io::Error>(())
    /// # });
    /// ```
    pub fn split(&self) -> (ReadHalf<'_, UnixStream>, WriteHalf<'_, UnixStream>) {
        (ReadHalf::new(self), WriteHalf::new(self))
    }

    /// Owned halves that can move into two different tasks. Dropping the
    /// write half shuts down the write direction (the peer reads end of
    /// file); [`OwnedReadHalf::reunite`] puts them back together.
    pub fn into_split(self) -> (OwnedReadHalf<UnixStream>, OwnedWriteHalf<UnixStream>) {
        super::split::into_split(self)
    }

    fn poll_read_priv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        // An empty buffer reads nothing, so it need not wait for data.
        let len = buf.len();
        if len == 0 {
            return Poll::Ready(Ok(0));
        }
        // No short-read shortcut (TCP's forgets readiness after a short
        // read): on a Unix stream a read also stops short, with bytes
        // still queued behind, at bytes that carried descriptors
        // (`SCM_RIGHTS`) or, with `SO_PASSCRED` set, where the writer
        // changes; the kernel never joins those. The bytes behind are
        // queued already, so no edge would come to end a wait. Readiness
        // stays until a read says `WouldBlock` (chapter 02, "Not only TCP").
        self.io.poll_io(cx, Direction::Read, |s| (&*s).read(buf))
    }

    fn poll_write_priv(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        // A short write found the socket's send allowance used up; an
        // `EPOLLOUT` edge comes when the peer reads.
        self.io
            .poll_io_drain(cx, Direction::Write, |s| send(s, buf), short_of(buf.len()))
    }

    fn poll_write_vectored_priv(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // No shortcut, as for TCP: a call takes at most `IOV_MAX` slices,
        // so a short vectored write need not mean a full buffer.
        self.io.poll_io(cx, Direction::Write, |s| {
            super::tcp_stream::write_vectored(s, bufs)
        })
    }

    fn poll_close_priv(&self) -> Poll<io::Result<()>> {
        Poll::Ready(closed(self.shutdown(Shutdown::Write)))
    }
}

/// A write that never raises `SIGPIPE`: std's (through mio's), which on
/// Linux is `send(2)` with `MSG_NOSIGNAL` for a Unix socket as for TCP.
fn send(s: &mio::net::UnixStream, buf: &[u8]) -> io::Result<usize> {
    (&*s).write(buf)
}

impl_async_io!(UnixStream, self => self.get_mut());
impl_async_io!(&UnixStream, self => **self);

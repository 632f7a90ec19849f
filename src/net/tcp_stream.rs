//! [`TcpStream`]: a connected TCP socket.

use std::future::poll_fn;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};
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
        // A non-blocking connect returns at once; the socket becomes
        // writable when the handshake ends, successfully or not.
        let stream = TcpStream::from_mio(mio::net::TcpStream::connect(addr)?)?;
        // Once it is writable, the handshake is over: its error, if any,
        // is the socket's pending error. Still not connected means our
        // optimistic initial readiness was wrong; as `WouldBlock`, that
        // clears it and stores our waker.
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

    /// Borrowed read and write halves, usable from two futures at once
    /// (e.g. in one `futures::join!`).
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
        self.io.poll_io_drain(
            cx,
            Direction::Read,
            |s| (&*s).read(buf),
            |&n| n > 0 && n < len,
        )
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
            |&n| n > 0 && n < buf.len(),
        )
    }

    pub(crate) fn poll_write_vectored_priv(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // No shortcut here: `writev(2)` takes at most `IOV_MAX` slices
        // (std passes the first 1,024 on Linux, fewer elsewhere), so a
        // write shorter than all the slices together need not have found
        // the send buffer full, and no writable edge would come to end
        // the wait. This keeps readiness until a write says `WouldBlock`.
        self.io
            .poll_io(cx, Direction::Write, |s| (&*s).write_vectored(bufs))
    }

    pub(crate) fn poll_close_priv(&self) -> Poll<io::Result<()>> {
        match self.shutdown(Shutdown::Write) {
            // Already closed by the peer: nothing left to shut.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Poll::Ready(Ok(())),
            result => Poll::Ready(result),
        }
    }
}

/// Implements `AsyncRead` + `AsyncWrite` for a type that derefs to a
/// `TcpStream` through `$get`.
macro_rules! impl_async_io {
    ($ty:ty, $self:ident => $get:expr) => {
        impl AsyncRead for $ty {
            fn poll_read(
                $self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                $get.poll_read_priv(cx, buf)
            }
        }

        impl AsyncWrite for $ty {
            fn poll_write(
                $self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                $get.poll_write_priv(cx, buf)
            }

            fn poll_write_vectored(
                $self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                $get.poll_write_vectored_priv(cx, bufs)
            }

            fn poll_flush($self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                // Writes go straight to the kernel; there is no buffer here.
                Poll::Ready(Ok(()))
            }

            fn poll_close($self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                $get.poll_close_priv()
            }
        }
    };
}

impl_async_io!(TcpStream, self => self.get_mut());
impl_async_io!(&TcpStream, self => **self);

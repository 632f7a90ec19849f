//! Read and write halves of a [`TcpStream`].
//!
//! A TCP connection is two independent byte streams. The reactor keeps
//! the tasks waiting to read a socket apart from those waiting to write it,
//! and wakes each only for its own direction, so one task can wait to read
//! while another waits to write. These halves only make that explicit.
//!
//! The owned halves share the stream through an `Rc` (one thread, so no
//! `Arc`), and [`OwnedReadHalf::reunite`] gives it back once both halves
//! are in hand again.

use std::fmt;
use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};

use super::TcpStream;

/// The reading half of a borrowed stream, from [`TcpStream::split`].
#[derive(Debug)]
pub struct ReadHalf<'a>(&'a TcpStream);

/// The writing half of a borrowed stream, from [`TcpStream::split`].
#[derive(Debug)]
pub struct WriteHalf<'a>(&'a TcpStream);

impl<'a> ReadHalf<'a> {
    pub(crate) fn new(stream: &'a TcpStream) -> Self {
        ReadHalf(stream)
    }
}

impl<'a> WriteHalf<'a> {
    pub(crate) fn new(stream: &'a TcpStream) -> Self {
        WriteHalf(stream)
    }
}

/// The reading half of a stream, from [`TcpStream::into_split`]; may move
/// into its own task.
#[derive(Debug)]
pub struct OwnedReadHalf(Rc<TcpStream>);

/// The writing half of a stream, from [`TcpStream::into_split`]. Dropping it
/// shuts down the write direction, so the peer sees end-of-file (unless it
/// is being [reunited](OwnedWriteHalf::reunite) with its read half).
#[derive(Debug)]
pub struct OwnedWriteHalf {
    stream: Rc<TcpStream>,
    /// Cleared only by `reunite`, whose stream lives on whole: the drop
    /// that ends this half must not shut its writing down then.
    shutdown_on_drop: bool,
}

pub(crate) fn into_split(stream: TcpStream) -> (OwnedReadHalf, OwnedWriteHalf) {
    let stream = Rc::new(stream);
    let write = OwnedWriteHalf {
        stream: stream.clone(),
        shutdown_on_drop: true,
    };
    (OwnedReadHalf(stream), write)
}

/// The two halves given to `reunite` came from different streams. Both are
/// handed back, unharmed.
#[derive(Debug)]
pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

impl fmt::Display for ReuniteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves that are not from the same stream")
    }
}

impl std::error::Error for ReuniteError {}

impl OwnedReadHalf {
    /// Puts the stream back together from this half and the `write` half
    /// that [`TcpStream::into_split`] made with it. The stream is left as
    /// the halves left it: reuniting does not shut anything down, but a
    /// write half that was closed stays closed. Halves of two different
    /// streams are an error that hands both back.
    pub fn reunite(self, mut write: OwnedWriteHalf) -> Result<TcpStream, ReuniteError> {
        if !Rc::ptr_eq(&self.0, &write.stream) {
            return Err(ReuniteError(self, write));
        }
        let OwnedReadHalf(stream) = self;
        write.shutdown_on_drop = false;
        drop(write);
        // The halves held the only two references (they lend the stream
        // out by `&` alone), and the write half's is gone.
        Ok(Rc::into_inner(stream).expect("the halves hold the stream's only references"))
    }
}

impl OwnedWriteHalf {
    /// [`OwnedReadHalf::reunite`] the other way round.
    pub fn reunite(self, read: OwnedReadHalf) -> Result<TcpStream, ReuniteError> {
        read.reunite(self)
    }
}

impl AsRef<TcpStream> for OwnedReadHalf {
    /// The stream both halves share (for addresses and options).
    fn as_ref(&self) -> &TcpStream {
        &self.0
    }
}

impl AsRef<TcpStream> for OwnedWriteHalf {
    /// The stream both halves share (for addresses and options).
    fn as_ref(&self) -> &TcpStream {
        &self.stream
    }
}

impl AsRef<TcpStream> for ReadHalf<'_> {
    /// The stream both halves borrow (for addresses, options, and
    /// [`readable`](TcpStream::readable) with
    /// [`try_read`](TcpStream::try_read)).
    fn as_ref(&self) -> &TcpStream {
        self.0
    }
}

impl AsRef<TcpStream> for WriteHalf<'_> {
    /// The stream both halves borrow (for addresses, options, and
    /// [`writable`](TcpStream::writable) with
    /// [`try_write`](TcpStream::try_write)).
    fn as_ref(&self) -> &TcpStream {
        self.0
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            // The socket may already be gone on the peer's side; that's fine.
            let _ = self.stream.shutdown(Shutdown::Write);
        }
    }
}

/// The halves' I/O is the stream's, reached through field `$stream`.
macro_rules! impl_read {
    ($ty:ty, $stream:tt) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                self.$stream.poll_read_priv(cx, buf)
            }
        }
    };
}

macro_rules! impl_write {
    ($ty:ty, $stream:tt) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.$stream.poll_write_priv(cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                self.$stream.poll_write_vectored_priv(cx, bufs)
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.$stream.poll_close_priv()
            }
        }
    };
}

impl_read!(ReadHalf<'_>, 0);
impl_read!(OwnedReadHalf, 0);
impl_write!(WriteHalf<'_>, 0);
impl_write!(OwnedWriteHalf, stream);

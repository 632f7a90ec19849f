//! Read and write halves of a [`TcpStream`].
//!
//! A TCP connection is two independent byte streams. The reactor keeps
//! the tasks waiting to read a socket apart from those waiting to write it,
//! and wakes each only for its own direction, so one task can wait to read
//! while another waits to write. These halves only make that explicit.

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
/// shuts down the write direction, so the peer sees end-of-file.
#[derive(Debug)]
pub struct OwnedWriteHalf(Rc<TcpStream>);

pub(crate) fn into_split(stream: TcpStream) -> (OwnedReadHalf, OwnedWriteHalf) {
    let stream = Rc::new(stream);
    (OwnedReadHalf(stream.clone()), OwnedWriteHalf(stream))
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
        &self.0
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        // The socket may already be gone on the peer's side; that's fine.
        let _ = self.0.shutdown(Shutdown::Write);
    }
}

macro_rules! impl_read {
    ($ty:ty) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                self.0.poll_read_priv(cx, buf)
            }
        }
    };
}

macro_rules! impl_write {
    ($ty:ty) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.0.poll_write_priv(cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                self.0.poll_write_vectored_priv(cx, bufs)
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.0.poll_close_priv()
            }
        }
    };
}

impl_read!(ReadHalf<'_>);
impl_read!(OwnedReadHalf);
impl_write!(WriteHalf<'_>);
impl_write!(OwnedWriteHalf);

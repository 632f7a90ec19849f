//! Read and write halves of a stream: a [`TcpStream`] or a
//! [`UnixStream`](super::UnixStream).
//!
//! A stream is two independent byte streams. The reactor keeps the tasks
//! waiting to read a socket apart from those waiting to write it, and
//! wakes each only for its own direction, so one task can wait to read
//! while another waits to write. These halves only make that explicit.
//!
//! The owned halves share the stream through an `Rc` (one thread, so no
//! `Arc`), and [`OwnedReadHalf::reunite`] gives it back once both halves
//! are in hand again.
//!
//! One set of halves serves both stream types: each half is generic over
//! its stream `S`, which defaults to `TcpStream`, so `OwnedReadHalf` alone
//! still names a TCP half and `OwnedReadHalf<UnixStream>` a Unix one. What
//! a half needs from its stream is the small sealed trait [`SplitStream`]: the
//! reads and writes of `&S`'s `futures::io` impls, and a shutdown of the
//! write direction for the owned write half's drop. Only coop's two
//! streams implement it.

use std::fmt;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};

use super::TcpStream;
use sealed::SplitStream;

mod sealed {
    use std::net::Shutdown;

    use futures::io::{AsyncRead, AsyncWrite};

    /// A stream that can be split: [`TcpStream`](super::TcpStream) or
    /// [`UnixStream`](crate::net::UnixStream). Public in a private module,
    /// so it may bound the public halves, but no one outside coop can
    /// name it, let alone implement it: the halves' code may rely on it
    /// meaning one of those two.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be split into coop's read and write halves",
        note = "split halves exist for `coop::net::TcpStream` and `coop::net::UnixStream`"
    )]
    pub trait SplitStream: std::fmt::Debug {
        /// `self` as `&S`, whose `futures::io` impls the halves' reads and
        /// writes forward to (`&TcpStream` and `&UnixStream` read and
        /// write, so two halves share one stream by `&`).
        fn io(&self) -> impl AsyncRead + AsyncWrite + Unpin + '_;

        /// Shuts down the write direction: an owned write half's drop.
        fn shutdown(&self, how: Shutdown) -> std::io::Result<()>;
    }

    impl SplitStream for super::TcpStream {
        fn io(&self) -> impl AsyncRead + AsyncWrite + Unpin + '_ {
            self
        }

        fn shutdown(&self, how: Shutdown) -> std::io::Result<()> {
            super::TcpStream::shutdown(self, how)
        }
    }

    impl SplitStream for crate::net::UnixStream {
        fn io(&self) -> impl AsyncRead + AsyncWrite + Unpin + '_ {
            self
        }

        fn shutdown(&self, how: Shutdown) -> std::io::Result<()> {
            crate::net::UnixStream::shutdown(self, how)
        }
    }
}

/// The reading half of a borrowed stream, from [`TcpStream::split`] or
/// [`UnixStream::split`](super::UnixStream::split).
///
/// `S` is the stream: `TcpStream` (the default) or `UnixStream`, the only
/// two types the sealed bound `SplitStream` admits.
#[derive(Debug)]
pub struct ReadHalf<'a, S: SplitStream = TcpStream>(&'a S);

/// The writing half of a borrowed stream, from [`TcpStream::split`] or
/// [`UnixStream::split`](super::UnixStream::split).
///
/// `S` is the stream: `TcpStream` (the default) or `UnixStream`, the only
/// two types the sealed bound `SplitStream` admits.
#[derive(Debug)]
pub struct WriteHalf<'a, S: SplitStream = TcpStream>(&'a S);

impl<'a, S: SplitStream> ReadHalf<'a, S> {
    pub(crate) fn new(stream: &'a S) -> Self {
        ReadHalf(stream)
    }
}

impl<'a, S: SplitStream> WriteHalf<'a, S> {
    pub(crate) fn new(stream: &'a S) -> Self {
        WriteHalf(stream)
    }
}

/// The reading half of a stream, from [`TcpStream::into_split`] or
/// [`UnixStream::into_split`](super::UnixStream::into_split); may move
/// into its own task.
///
/// `S` is the stream: `TcpStream` (the default) or `UnixStream`, the only
/// two types the sealed bound `SplitStream` admits.
#[derive(Debug)]
pub struct OwnedReadHalf<S: SplitStream = TcpStream>(Rc<S>);

/// The writing half of a stream, from [`TcpStream::into_split`] or
/// [`UnixStream::into_split`](super::UnixStream::into_split). Dropping it
/// shuts down the write direction, so the peer sees end-of-file (unless it
/// is being [reunited](OwnedWriteHalf::reunite) with its read half).
///
/// `S` is the stream: `TcpStream` (the default) or `UnixStream`, the only
/// two types the sealed bound `SplitStream` admits.
#[derive(Debug)]
pub struct OwnedWriteHalf<S: SplitStream = TcpStream> {
    stream: Rc<S>,
    /// Cleared only by `reunite`, whose stream lives on whole: the drop
    /// that ends this half must not shut its writing down then.
    shutdown_on_drop: bool,
}

pub(crate) fn into_split<S: SplitStream>(stream: S) -> (OwnedReadHalf<S>, OwnedWriteHalf<S>) {
    let stream = Rc::new(stream);
    let write = OwnedWriteHalf {
        stream: stream.clone(),
        shutdown_on_drop: true,
    };
    (OwnedReadHalf(stream), write)
}

/// The two halves given to `reunite` came from different streams. Both are
/// handed back, unharmed.
///
/// `S` is the stream: `TcpStream` (the default) or `UnixStream`, the only
/// two types the sealed bound `SplitStream` admits.
#[derive(Debug)]
pub struct ReuniteError<S: SplitStream = TcpStream>(pub OwnedReadHalf<S>, pub OwnedWriteHalf<S>);

impl<S: SplitStream> fmt::Display for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves that are not from the same stream")
    }
}

impl<S: SplitStream> std::error::Error for ReuniteError<S> {}

impl<S: SplitStream> OwnedReadHalf<S> {
    /// Puts the stream back together from this half and the `write` half
    /// that `into_split` made with it. The stream is left as the halves
    /// left it: reuniting does not shut anything down, but a write half
    /// that was closed stays closed. Halves of two different streams are
    /// an error that hands both back.
    pub fn reunite(self, mut write: OwnedWriteHalf<S>) -> Result<S, ReuniteError<S>> {
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

impl<S: SplitStream> OwnedWriteHalf<S> {
    /// [`OwnedReadHalf::reunite`] the other way round.
    pub fn reunite(self, read: OwnedReadHalf<S>) -> Result<S, ReuniteError<S>> {
        read.reunite(self)
    }
}

impl<S: SplitStream> AsRef<S> for OwnedReadHalf<S> {
    /// The stream both halves share (for addresses and options).
    fn as_ref(&self) -> &S {
        &self.0
    }
}

impl<S: SplitStream> AsRef<S> for OwnedWriteHalf<S> {
    /// The stream both halves share (for addresses and options).
    fn as_ref(&self) -> &S {
        &self.stream
    }
}

impl<S: SplitStream> AsRef<S> for ReadHalf<'_, S> {
    /// The stream both halves borrow (for addresses, options, and
    /// `readable` with `try_read`).
    fn as_ref(&self) -> &S {
        self.0
    }
}

impl<S: SplitStream> AsRef<S> for WriteHalf<'_, S> {
    /// The stream both halves borrow (for addresses, options, and
    /// `writable` with `try_write`).
    fn as_ref(&self) -> &S {
        self.0
    }
}

impl<S: SplitStream> Drop for OwnedWriteHalf<S> {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            // The socket may already be gone on the peer's side; that's fine.
            let _ = self.stream.shutdown(std::net::Shutdown::Write);
        }
    }
}

/// The halves' I/O is the stream's, reached through field `$stream`.
macro_rules! impl_read {
    ($ty:ty, $stream:tt) => {
        impl<S: SplitStream> AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.$stream.io()).poll_read(cx, buf)
            }
        }
    };
}

macro_rules! impl_write {
    ($ty:ty, $stream:tt) => {
        impl<S: SplitStream> AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.$stream.io()).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.$stream.io()).poll_write_vectored(cx, bufs)
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Pin::new(&mut self.$stream.io()).poll_flush(cx)
            }

            fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Pin::new(&mut self.$stream.io()).poll_close(cx)
            }
        }
    };
}

impl_read!(ReadHalf<'_, S>, 0);
impl_read!(OwnedReadHalf<S>, 0);
impl_write!(WriteHalf<'_, S>, 0);
impl_write!(OwnedWriteHalf<S>, stream);

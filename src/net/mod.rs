//! Async sockets: TCP, UDP and Unix domain streams and datagrams on the
//! reactor.
//!
//! Each type wraps a non-blocking mio socket in an
//! `IoSource` (see [`crate::reactor`]) and turns every `WouldBlock` into
//! "store my waker and return `Pending`". [`TcpStream`] and [`UnixStream`]
//! implement `futures::io::AsyncRead` and `AsyncWrite`, so the
//! `futures::io` helpers (`read_exact`, `write_all`, `copy`, `BufReader`,
//! ...) work on them, and both split into the same read and write halves
//! ([`ReadHalf`], [`OwnedReadHalf`], ..., generic over the stream, TCP by
//! default).
//!
//! Each type also holds the two halves of that pattern apart, for code
//! that wants them apart: `readable` / `writable` wait for the reactor's
//! "ready" and do no I/O, and `try_read`, `try_write`, `try_recv_from` and
//! the like try the operation without waiting (with no system call at all
//! while the reactor knows the socket is not ready) and store no waker
//! (`docs/02-reactor.md`, "Readiness by hand").
//!
//! The `async` calls that take an address ([`TcpStream::connect`],
//! [`UdpSocket::connect`], [`UdpSocket::send_to`]) take [`ToSocketAddrs`]:
//! a name is looked up on the blocking pool, never on the loop's thread.
//!
//! Every socket lends its file descriptor (`AsFd`, `AsRawFd`): the door
//! to the options coop does not wrap. `socket2::SockRef::from(&stream)`
//! sets keep-alive, buffer sizes or linger on the very socket the reactor
//! watches, without taking it away from the reactor.
//!
//! `into_std` is the reverse of `from_std`: it takes a socket out of its
//! reactor and hands it back as the std socket (still non-blocking), for
//! blocking code on another thread or on the blocking pool.
//!
//! [`TcpSocket`] is the step before a `TcpListener` or a `TcpStream`: a
//! socket that takes options (`SO_REUSEPORT`, buffer sizes, ...), the
//! backlog, or a source address before it listens or connects.
//!
//! [`UnixListener`] and [`UnixStream`] are the same pattern on a socket
//! bound to a *path* instead of an address: same readiness, same reactor,
//! same `IoSource` calls, which never ask what kind of descriptor they
//! watch. What differs (no Nagle, no urgent data, a `connect` with no
//! handshake to wait for, a socket file that stays on disk after the
//! listener is dropped) is in their module docs and in chapter 02, "Not
//! only TCP: Unix sockets". [`UnixDatagram`] is [`UdpSocket`] on a path
//! in the same way.
//!
//! Creating a socket needs a running runtime (the socket registers with its
//! reactor); outside one, the constructors return an `io::Error` saying so.
//! (A `TcpSocket` registers nothing until `listen` or `connect`, and only
//! they need the runtime.)
//! Every error is an `std::io::Error` (the OS's own, or coop's when a socket
//! is used outside its runtime), never a panic.

/// Lends the socket's file descriptor: `AsFd` (a borrow that cannot
/// outlive the socket) and `AsRawFd` (the number, for older APIs). The
/// socket stays registered with the reactor, so whatever is done through
/// the descriptor must leave it non-blocking; and it is for options: a
/// `UdpSocket` connected through it would keep filtering by the peer coop
/// remembers from its own `connect` (chapter 02). Expanded in each
/// socket's module, where its `io` field is visible.
macro_rules! impl_fd {
    ($socket:ty) => {
        impl std::os::fd::AsFd for $socket {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.io.get_ref().as_fd()
            }
        }

        impl std::os::fd::AsRawFd for $socket {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.io.get_ref().as_raw_fd()
            }
        }
    };
}

/// Implements `AsyncRead` + `AsyncWrite` for a type that reaches a
/// stream (`TcpStream`, `UnixStream`) through `$get`: the stream itself
/// and a shared reference to it. The stream has the `poll_*_priv`
/// methods the traits forward to.
macro_rules! impl_async_io {
    ($ty:ty, $self:ident => $get:expr) => {
        impl futures::io::AsyncRead for $ty {
            fn poll_read(
                $self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $get.poll_read_priv(cx, buf)
            }
        }

        impl futures::io::AsyncWrite for $ty {
            fn poll_write(
                $self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $get.poll_write_priv(cx, buf)
            }

            fn poll_write_vectored(
                $self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $get.poll_write_vectored_priv(cx, bufs)
            }

            fn poll_flush(
                $self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                // Writes go straight to the kernel; there is no buffer here.
                std::task::Poll::Ready(Ok(()))
            }

            fn poll_close(
                $self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                $get.poll_close_priv()
            }
        }
    };
}

mod addr;
mod split;
mod tcp_listener;
mod tcp_socket;
mod tcp_stream;
mod udp;
mod unix_datagram;
mod unix_listener;
mod unix_stream;

pub use addr::ToSocketAddrs;
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};
pub use tcp_listener::TcpListener;
pub use tcp_socket::TcpSocket;
pub use tcp_stream::TcpStream;
pub use udp::UdpSocket;
pub use unix_datagram::UnixDatagram;
pub use unix_listener::UnixListener;
pub use unix_stream::UnixStream;

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use crate::reactor::registration::IoSource;

/// Every socket's `into_std`: deregisters `io` from its reactor (its slot
/// freed, `IoSource::into_inner`) and turns the mio socket into the std
/// one through the descriptor it owns (mio's `From<socket> for OwnedFd`,
/// std's `From<OwnedFd> for socket`: no `unsafe`, and the same descriptor,
/// still non-blocking).
fn into_std<S, T>(io: IoSource<S>) -> io::Result<T>
where
    S: mio::event::Source + Into<OwnedFd>,
    T: From<OwnedFd>,
{
    Ok(T::from(io.into_inner()?.into()))
}

/// Tries `f` on each address `addr` resolves to, returning the first
/// success or the last error (as `std::net` does). `addr` is `std`'s
/// `ToSocketAddrs`, which looks names up in place: for the calls that are
/// not `async`, and for addresses [`addr::resolve`] has already found.
pub(crate) fn each_addr<T>(
    addr: impl std::net::ToSocketAddrs,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last_err = None;
    for addr in addr.to_socket_addrs()? {
        match f(addr) {
            Ok(value) => return Ok(value),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(addr::no_address))
}

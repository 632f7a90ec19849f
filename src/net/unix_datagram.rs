//! [`UnixDatagram`]: datagrams on a path.
//!
//! A Unix datagram socket is [`UdpSocket`](super::UdpSocket) with a path
//! for an address: each `send` is one message, delivered whole or not at
//! all, in order, and never leaving the kernel (so, unlike UDP, never
//! lost on the way). The code is `UdpSocket`'s over another mio socket:
//! the same `IoSource` calls (`poll_io` for every send and receive,
//! `poll_ready` behind `readable` / `writable`, `try_io` behind the
//! `try_` calls), the same API, and the same `recv` that skips strays
//! after `connect`.
//!
//! What differs, for a reader who knows `UdpSocket`:
//!
//! - **Addresses are paths**, as `std::os::unix::net::SocketAddr`, and
//!   take no look-up: [`connect`](UnixDatagram::connect) is a plain call,
//!   as tokio's is, and [`send_to`](UnixDatagram::send_to) waits only for
//!   room. A socket made by [`unbound`](UnixDatagram::unbound) or
//!   [`pair`](UnixDatagram::pair) has no name, so nobody can answer its
//!   `send_to`: bind a path to be replied to, or use a pair.
//! - **A full receiver makes the sender wait**, where UDP would drop the
//!   datagram: a send is `WouldBlock` while the receiver's queue is full
//!   (`net.unix.max_dgram_qlen` datagrams, 10 by default; for the two
//!   ends of a pair, the sender's own send buffer instead, which Linux
//!   calls writable again once the receiver has read most of it), and
//!   `send` waits for room. A sender connected to the receiver is woken
//!   when room appears. A `send_to` from a socket not connected to it
//!   gets a writable edge after every failed try instead (the kernel
//!   frees the datagram it could not queue, and that wakes its sender),
//!   so it tries again on each turn of the loop: it does not hang, and
//!   other tasks run, but it spins the loop until the receiver reads.
//!   That is the kernel's doing, not the reactor's. A sender that may
//!   outrun its receiver should `connect` and `send`.
//! - **The socket file stays on disk** after the socket is dropped, as for
//!   [`UnixListener`](super::UnixListener): remove it yourself.
//!   [`bind`](UnixDatagram::bind) asks for a runtime before `bind(2)`, so
//!   a failed `bind` outside one leaves no file.
//! - No broadcast, multicast, TTL or peek: Unix sockets have none of
//!   those options (peek is left out to keep the type small).

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::task::{Context, Poll};

use super::udp::recv_skipping_strays;
use crate::reactor::registration::{Direction, IoSource, require_runtime};

/// A Unix domain datagram socket. Every operation takes `&self`, so one
/// socket can be shared (e.g. through an `Rc`) by a receiving task and a
/// sending task.
///
/// ```no_run
/// # coop::block_on(async {
/// let _ = std::fs::remove_file("/tmp/client.sock"); // a stale file of an earlier run
/// let socket = coop::net::UnixDatagram::bind("/tmp/client.sock")?;
/// socket.send_to(b"ping", "/tmp/server.sock").await?;
/// let mut buf = [0; 1500];
/// let (n, from) = socket.recv_from(&mut buf).await?;
/// # Ok::<(), std::io::Error>(())
/// # });
/// ```
#[derive(Debug)]
pub struct UnixDatagram {
    io: IoSource<mio::net::UnixDatagram>,
    /// The connected peer as the kernel records it (`peer_addr`), or
    /// `None` before [`connect`](Self::connect): whom [`recv`](Self::recv)
    /// takes datagrams from, as `UdpSocket`'s `peer`. Read again from the
    /// kernel when a datagram from someone else arrives (`takes_from`):
    /// Linux drops the connection by itself when the peer has closed. A
    /// `RefCell`, as a Unix address is not `Copy`; it is borrowed only
    /// inside this type's own calls, which run no user code meanwhile.
    peer: RefCell<Option<SocketAddr>>,
}

impl_fd!(UnixDatagram);

impl UnixDatagram {
    /// Creates the socket file at `path` and binds the socket to it. A
    /// path that exists is `AddrInUse`; a missing directory `NotFound`.
    /// Where no coop runtime runs, it fails before creating the file. (An
    /// empty path creates no file: Linux then gives the socket a name of
    /// its own choosing in the abstract namespace, "autobind".)
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        // As `UnixListener::bind`: registration failing after `bind(2)`
        // would leave the file behind.
        require_runtime()?;
        UnixDatagram::from_mio(mio::net::UnixDatagram::bind(path)?)
    }

    /// A socket bound to no path: it can send (and `connect`), but nobody
    /// can send to it.
    pub fn unbound() -> io::Result<UnixDatagram> {
        require_runtime()?;
        UnixDatagram::from_mio(mio::net::UnixDatagram::unbound()?)
    }

    /// A pair of sockets connected to each other (`socketpair(2)`), with
    /// no path: each one's `send` reaches the other's `recv`.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        require_runtime()?;
        let (a, b) = mio::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_mio(a)?, UnixDatagram::from_mio(b)?))
    }

    /// Wraps a socket made elsewhere (switching it to non-blocking mode).
    pub fn from_std(socket: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        socket.set_nonblocking(true)?;
        UnixDatagram::from_mio(mio::net::UnixDatagram::from_std(socket))
    }

    /// Hands the socket back as a std socket, the reverse of
    /// [`from_std`](Self::from_std); queued datagrams stay queued. Still
    /// non-blocking: call `set_nonblocking(false)` before a blocking
    /// receive. As for [`UdpSocket::into_std`](super::UdpSocket::into_std),
    /// a stray queued before `connect` is std's `recv` to return. The
    /// rest is as [`TcpStream::into_std`](super::TcpStream::into_std)
    /// says.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixDatagram> {
        super::into_std(self.io)
    }

    fn from_mio(socket: mio::net::UnixDatagram) -> io::Result<UnixDatagram> {
        let peer = socket.peer_addr().ok(); // a pair, or connected already
        Ok(UnixDatagram {
            io: IoSource::new(socket)?,
            peer: RefCell::new(peer),
        })
    }

    /// Sets the default peer to the socket bound at `path`:
    /// [`send`](Self::send) goes there and [`recv`](Self::recv) only
    /// accepts datagrams from there (the kernel refuses the others from
    /// now on; one queued before this call is skipped by `recv`). If the
    /// peer closes, the next send to it is `ConnectionRefused` and leaves
    /// this socket unconnected, as in the kernel: `recv` then takes
    /// datagrams from anyone again, as `peer_addr` says `NotConnected`. Not
    /// `async`, unlike `UdpSocket::connect`: a path needs no look-up, and
    /// the call finishes at once. A missing path is `NotFound`, a path
    /// with no socket behind it `ConnectionRefused`.
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let connected = self.io.get_ref().connect(path);
        // As `UdpSocket::connect`: whatever happened, the peer is now the
        // one the kernel says (the old one if the path would not do).
        *self.peer.borrow_mut() = self.io.get_ref().peer_addr().ok();
        connected
    }

    /// Sends one datagram to the socket bound at `target`; returns the
    /// bytes sent. Waits while the receiver's queue is full (module docs:
    /// prefer `connect` and [`send`](Self::send) if that may happen).
    pub async fn send_to(&self, buf: &[u8], target: impl AsRef<Path>) -> io::Result<usize> {
        poll_fn(|cx| self.poll_send_to(cx, buf, target.as_ref())).await
    }

    /// The poll form of [`send_to`](Self::send_to).
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: impl AsRef<Path>,
    ) -> Poll<io::Result<usize>> {
        let target = target.as_ref();
        self.io
            .poll_io(cx, Direction::Write, |s| s.send_to(buf, target))
    }

    /// Receives one datagram; returns its length and sender (unnamed if
    /// the sender bound no path). A datagram longer than `buf` is
    /// truncated, and an empty `buf` takes one and discards it, as for
    /// [`UdpSocket::recv_from`](super::UdpSocket::recv_from).
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        poll_fn(|cx| self.poll_recv_from(cx, buf)).await
    }

    /// The poll form of [`recv_from`](Self::recv_from).
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        self.io.poll_io(cx, Direction::Read, |s| s.recv_from(buf))
    }

    /// Sends one datagram to the connected peer (`NotConnected` before
    /// [`connect`](Self::connect), unless one end of a
    /// [`pair`](Self::pair)).
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.io.poll_io(cx, Direction::Write, |s| s.send(buf))).await
    }

    /// Receives one datagram from the connected peer, skipping any other
    /// sender's datagram queued before `connect`, exactly as
    /// [`UdpSocket::recv`](super::UdpSocket::recv) does and for the same
    /// reason (Linux keeps such a stray queued, and `recv(2)` would return
    /// it). Before any `connect` it takes every datagram.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_recv(cx, buf)).await
    }

    /// The poll form of [`recv`](Self::recv).
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.io
            .poll_io(cx, Direction::Read, |s| self.recv_from_peer(s, buf))
    }

    /// One `recv`: the shared loop, with a Unix address compare.
    fn recv_from_peer(&self, s: &mio::net::UnixDatagram, buf: &mut [u8]) -> io::Result<usize> {
        recv_skipping_strays(buf, |buf| s.recv_from(buf), |from| self.takes_from(s, from))
    }

    /// Whether `recv` takes a datagram from `from`: there is no peer, or
    /// `from` is it. Unlike a UDP socket, a Unix one can lose its peer
    /// without a `connect`: Linux disconnects it when a send finds the
    /// peer closed (that send is `ConnectionRefused`), and from then on
    /// queues datagrams from anyone. So a datagram from elsewhere is
    /// discarded only if the kernel still names the peer we hold; one
    /// `getpeername(2)` per such datagram, which only strays (rare) and
    /// the first datagram after a disconnect pay.
    fn takes_from(&self, s: &mio::net::UnixDatagram, from: &SocketAddr) -> bool {
        if (self.peer.borrow().as_ref()).is_none_or(|peer| same_addr(from, peer)) {
            return true;
        }
        let peer = s.peer_addr().ok();
        let accept = peer.as_ref().is_none_or(|peer| same_addr(from, peer));
        *self.peer.borrow_mut() = peer;
        accept
    }

    /// Waits until the reactor says a datagram may be waiting, and takes
    /// none: pair it with [`try_recv_from`](Self::try_recv_from) or
    /// [`try_recv`](Self::try_recv), which say `WouldBlock` if the wake
    /// was stale.
    pub async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_recv_ready(cx)).await
    }

    /// The poll form of [`readable`](Self::readable).
    pub fn poll_recv_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_ready(cx, Direction::Read)
    }

    /// Waits until the reactor says the socket can send, and sends
    /// nothing: pair it with [`try_send_to`](Self::try_send_to) or
    /// [`try_send`](Self::try_send).
    pub async fn writable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_send_ready(cx)).await
    }

    /// The poll form of [`writable`](Self::writable).
    pub fn poll_send_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_ready(cx, Direction::Write)
    }

    /// Takes one queued datagram without waiting (`WouldBlock` if none
    /// is). No waker is stored.
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.try_io(Direction::Read, |s| s.recv_from(buf))
    }

    /// Takes one queued datagram from the connected peer without waiting,
    /// skipping strays as [`recv`](Self::recv) does; `WouldBlock` if none
    /// is left.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .try_io(Direction::Read, |s| self.recv_from_peer(s, buf))
    }

    /// Sends one datagram to `target` without waiting (`WouldBlock` if
    /// the receiver's queue or the send buffer is full).
    pub fn try_send_to(&self, buf: &[u8], target: impl AsRef<Path>) -> io::Result<usize> {
        let target = target.as_ref();
        self.io.try_io(Direction::Write, |s| s.send_to(buf, target))
    }

    /// Sends one datagram to the connected peer without waiting.
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.try_io(Direction::Write, |s| s.send(buf))
    }

    /// The local address: the bound path, or unnamed.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The connected peer's address (`NotConnected` before `connect`;
    /// unnamed for the other end of a [`pair`](Self::pair)).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any, clearing it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// Shuts down receiving, sending, or both. On Linux a send after
    /// `Shutdown::Write` fails with `BrokenPipe`, and so does a peer's
    /// send to this socket after `Shutdown::Read`. (A receive after
    /// `Shutdown::Read` is not end of file, as on a stream: datagrams have
    /// none. It takes what is queued and then waits.)
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }
}

/// Whether two Unix addresses name the same socket: std's `SocketAddr`
/// has no `==`. Both unnamed counts as the same: only the other end of a
/// `pair` has an unnamed peer, and nobody else can reach that socket.
fn same_addr(a: &SocketAddr, b: &SocketAddr) -> bool {
    // A Linux abstract name (`autobind`, or one bound through `from_std`)
    // is neither a path nor unnamed: compare it too.
    #[cfg(target_os = "linux")]
    {
        use std::os::linux::net::SocketAddrExt;
        if a.as_abstract_name() != b.as_abstract_name() {
            return false;
        }
    }
    a.as_pathname() == b.as_pathname() && a.is_unnamed() == b.is_unnamed()
}

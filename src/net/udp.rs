//! [`UdpSocket`]: datagrams.

use std::cell::Cell;
use std::future::poll_fn;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::task::{Context, Poll};

use super::addr::{ToSocketAddrs, no_address, resolve};
use super::each_addr;
use crate::reactor::registration::{Direction, IoSource};

/// A UDP socket. Every operation takes `&self`, so one socket can be shared
/// (e.g. through an `Rc`) by a receiving task and a sending task.
///
/// ```no_run
/// # coop::block_on(async {
/// let socket = coop::net::UdpSocket::bind("127.0.0.1:0")?;
/// socket.send_to(b"ping", "127.0.0.1:9000").await?;
/// let mut buf = [0; 1500];
/// let (n, from) = socket.recv_from(&mut buf).await?;
/// # Ok::<(), std::io::Error>(())
/// # });
/// ```
#[derive(Debug)]
pub struct UdpSocket {
    io: IoSource<mio::net::UdpSocket>,
    /// The connected peer as the kernel records it (`peer_addr`), or
    /// `None` before [`connect`](Self::connect): whom [`recv`](Self::recv)
    /// takes datagrams from. Kept here so that a receive costs no extra
    /// system call.
    peer: Cell<Option<SocketAddr>>,
}

impl_fd!(UdpSocket);

impl UdpSocket {
    /// Binds a socket to `addr` (port 0 picks a free port). A name is
    /// looked up in place, on the calling thread, by `std`'s blocking
    /// lookup: see [`TcpListener::bind`](super::TcpListener::bind) for what
    /// that costs a loop and how to avoid it.
    pub fn bind(addr: impl std::net::ToSocketAddrs) -> io::Result<UdpSocket> {
        let socket = each_addr(addr, std::net::UdpSocket::bind)?;
        UdpSocket::from_std(socket)
    }

    /// Wraps a socket made elsewhere (switching it to non-blocking mode).
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        let peer = socket.peer_addr().ok(); // a socket connected already
        Ok(UdpSocket {
            io: IoSource::new(mio::net::UdpSocket::from_std(socket))?,
            peer: Cell::new(peer),
        })
    }

    /// Hands the socket back as a std socket, the reverse of
    /// [`from_std`](Self::from_std): it leaves the reactor, and datagrams
    /// already queued stay there, for the new owner. Still non-blocking:
    /// call `set_nonblocking(false)` before a blocking receive. A
    /// connected socket stays connected; but a stray datagram queued
    /// before the `connect`, which [`recv`](Self::recv) would skip, is
    /// std's `recv` to return. The rest is as
    /// [`TcpStream::into_std`](super::TcpStream::into_std) says.
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        super::into_std(self.io)
    }

    /// Sends one datagram to `target` (the first address it resolves to;
    /// a name is looked up on the blocking pool, see
    /// [`coop::net::ToSocketAddrs`](super::ToSocketAddrs));
    /// returns the bytes sent.
    pub async fn send_to(&self, buf: &[u8], target: impl ToSocketAddrs) -> io::Result<usize> {
        let target = *resolve(&target).await?.first().ok_or_else(no_address)?;
        poll_fn(|cx| self.poll_send_to(cx, buf, target)).await
    }

    /// The poll form of [`send_to`](Self::send_to).
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        self.io
            .poll_io(cx, Direction::Write, |s| s.send_to(buf, target))
    }

    /// Receives one datagram; returns its length and sender. A datagram
    /// longer than `buf` is truncated (the rest is discarded, as in the OS).
    ///
    /// So an empty `buf` is no peek: like std's, the call waits for a
    /// datagram, takes it, discards its bytes, and returns 0 and the
    /// sender. (A TCP read into an empty buffer is different: a stream
    /// has no message to consume, and it returns `Ok(0)` at once.)
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

    /// Waits for a datagram, like [`recv_from`](Self::recv_from), but leaves
    /// it queued: the next receive takes the same one. `buf` gets as much
    /// as fits. It shows whatever is first in the queue, whoever sent it,
    /// even on a connected socket (where [`recv`](Self::recv) would skip a
    /// stray queued before `connect`).
    pub async fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        poll_fn(|cx| self.io.poll_io(cx, Direction::Read, |s| s.peek_from(buf))).await
    }

    /// Sets the default peer: [`send`](Self::send) goes there and
    /// [`recv`](Self::recv) only accepts datagrams from there (even one
    /// queued before this call, which the kernel would hand over). Async for
    /// symmetry with `TcpStream::connect`; for UDP it completes as soon
    /// as `addr` is resolved (a name on the blocking pool).
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let addrs = resolve(&addr).await?;
        let connected = each_addr(&addrs[..], |addr| self.io.get_ref().connect(addr));
        // Whatever happened, the peer is now the one the kernel says: the
        // address it filters by (`0.0.0.0` becomes `127.0.0.1`, an IPv4
        // address on an IPv6 socket becomes `::ffff:...`), or still the
        // old one if no address would do.
        self.peer.set(self.io.get_ref().peer_addr().ok());
        connected
    }

    /// Sends one datagram to the connected peer.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.io.poll_io(cx, Direction::Write, |s| s.send(buf))).await
    }

    /// Receives one datagram from the connected peer (truncated to `buf`,
    /// as in [`recv_from`](Self::recv_from); an empty `buf` takes and
    /// discards one).
    ///
    /// The kernel drops datagrams from anyone else only from `connect` on:
    /// one that was already in the receive queue keeps its place, and
    /// `recv(2)` would return it as if the peer had sent it. So this reads
    /// with `recvfrom(2)` and discards, in the same poll, every datagram
    /// whose sender is not the peer. Those are at most what the queue held
    /// at `connect` (nothing from elsewhere is queued since), so the loop
    /// is bounded. Before any `connect` it takes every datagram, as
    /// `recv(2)` does.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_recv(cx, buf)).await
    }

    /// The poll form of [`recv`](Self::recv).
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.io
            .poll_io(cx, Direction::Read, |s| self.recv_from_peer(s, buf))
    }

    /// One `recv`: `recvfrom(2)` until a datagram from the peer (or, not
    /// connected, from anyone) comes, discarding strays; `WouldBlock`
    /// when the queue runs dry.
    fn recv_from_peer(&self, s: &mio::net::UdpSocket, buf: &mut [u8]) -> io::Result<usize> {
        recv_skipping_strays(
            buf,
            |buf| s.recv_from(buf),
            |from| {
                // Address and port, as the kernel's filter compares them; not
                // a whole `SocketAddrV6`, whose flow label and scope id the two
                // calls need not report alike.
                self.peer
                    .get()
                    .is_none_or(|peer| (from.ip(), from.port()) == (peer.ip(), peer.port()))
            },
        )
    }

    /// Waits until the reactor says a datagram may be waiting, and takes
    /// none: pair it with [`try_recv_from`](Self::try_recv_from) or
    /// [`try_recv`](Self::try_recv), which say `WouldBlock` if the wake
    /// was stale (see [`TcpStream::readable`](super::TcpStream::readable)).
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
    /// is): [`recv_from`](Self::recv_from)'s operation, after
    /// [`readable`](Self::readable)`.await`. No waker is stored.
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.try_io(Direction::Read, |s| s.recv_from(buf))
    }

    /// Takes one queued datagram from the connected peer without waiting,
    /// discarding strays as [`recv`](Self::recv) does; `WouldBlock` if
    /// none is left.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .try_io(Direction::Read, |s| self.recv_from_peer(s, buf))
    }

    /// Sends one datagram to `target` without waiting (`WouldBlock` if
    /// the send buffer is full). Takes a resolved address: a name look-up
    /// would have to wait.
    pub fn try_send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        self.io.try_io(Direction::Write, |s| s.send_to(buf, target))
    }

    /// Sends one datagram to the connected peer without waiting.
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.try_io(Direction::Write, |s| s.send(buf))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The connected peer's address (`NotConnected` before `connect`).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Sets `SO_BROADCAST`: whether this socket may send to a broadcast
    /// address.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_broadcast(on)
    }

    /// Whether `SO_BROADCAST` is set.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.io.get_ref().broadcast()
    }

    /// Sets the IP time-to-live of the datagrams this socket sends.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// The IP time-to-live of the datagrams this socket sends.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }

    /// Joins the IPv4 multicast group `group` on the interface with
    /// address `interface` (`0.0.0.0`: the system picks one).
    pub fn join_multicast_v4(&self, group: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.io.get_ref().join_multicast_v4(&group, &interface)
    }

    /// Leaves a group joined with
    /// [`join_multicast_v4`](Self::join_multicast_v4).
    pub fn leave_multicast_v4(&self, group: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.io.get_ref().leave_multicast_v4(&group, &interface)
    }

    /// Joins the IPv6 multicast group `group` on interface number
    /// `interface` (0: the system picks one).
    pub fn join_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.io.get_ref().join_multicast_v6(group, interface)
    }

    /// Leaves a group joined with
    /// [`join_multicast_v6`](Self::join_multicast_v6).
    pub fn leave_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.io.get_ref().leave_multicast_v6(group, interface)
    }

    /// Sets whether this socket's IPv4 multicast datagrams loop back to
    /// the sending host (on by default).
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_multicast_loop_v4(on)
    }

    /// Whether IPv4 multicast datagrams loop back to this host.
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.io.get_ref().multicast_loop_v4()
    }

    /// Sets the time-to-live of this socket's IPv4 multicast datagrams (1
    /// by default: the local network only).
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_multicast_ttl_v4(ttl)
    }

    /// The time-to-live of this socket's IPv4 multicast datagrams.
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.io.get_ref().multicast_ttl_v4()
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any, clearing it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }
}

/// The loop behind a connected datagram socket's `recv` (a `UdpSocket`'s
/// or a `UnixDatagram`'s): `recv_from` until a datagram `from_peer`
/// accepts, discarding the others (strays queued before `connect`, see
/// [`UdpSocket::recv`]). `WouldBlock` when the queue runs dry ends it.
/// The sockets differ only in their address type and how to compare it.
pub(super) fn recv_skipping_strays<A>(
    buf: &mut [u8],
    mut recv_from: impl FnMut(&mut [u8]) -> io::Result<(usize, A)>,
    from_peer: impl Fn(&A) -> bool,
) -> io::Result<usize> {
    loop {
        let (n, from) = recv_from(buf)?; // WouldBlock ends the loop
        if from_peer(&from) {
            return Ok(n);
        }
    }
}

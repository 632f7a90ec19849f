//! [`TcpSocket`]: a TCP socket set up before it connects or listens.
//!
//! A TCP socket lives in steps, and some options count only in one of them:
//!
//! ```text
//!  socket(2) ──► setsockopt(2)… ──► bind(2) ──┬─► listen(2)  ──► TcpListener
//!  new_v4/v6     set_reuseaddr      bind      │   listen(backlog)
//!                set_reuseport                │
//!                set_*_buffer_size            └─► connect(2) ──► TcpStream
//!                set_nodelay, …                   connect(addr).await
//! ```
//!
//! [`TcpListener::bind`] and [`TcpStream::connect`] run all the steps in
//! one call, with coop's choices. A server or client that needs other
//! choices has to make them *between* `socket(2)` and `bind(2)`,
//! `listen(2)` or `connect(2)`, because that is when the kernel reads them:
//!
//! - **`SO_REUSEADDR`** lets `bind` take a port that connections of an
//!   earlier run still hold in `TIME_WAIT`; **`SO_REUSEPORT`** lets
//!   several listeners bind the same port, and the kernel spreads new
//!   connections among them. Both are asked when a socket binds, so each
//!   socket needs them before its own `bind`.
//! - **The backlog**, how many finished handshakes wait for `accept`, is an
//!   argument of `listen(2)` itself.
//! - **`bind` before `connect`** picks the client's source address or port,
//!   which `connect` alone picks for you.
//! - **Buffer sizes** must be set "prior to the listen(2) or connect(2)
//!   calls in order to have it take effect" (tcp(7)): the window scale is
//!   agreed in the handshake, from the receive buffer's size then.
//!
//! A `TcpSocket` is that gap made into a value: a socket2 `Socket` that
//! only takes options and an address. The reactor has no part in it yet:
//! the socket is not registered, and nothing on it waits. [`listen`]
//! and [`connect`] consume it and hand it to the reactor, through the same
//! code as [`TcpListener::from_std`] and `TcpStream::connect`'s wait for
//! its handshake, so what comes out is an ordinary `TcpListener` or
//! `TcpStream` (chapter 02, "Configure, then listen or connect").
//!
//! The API is tokio's `TcpSocket`, without `FromRawFd` (it needs
//! `unsafe`) and the rarer options (`set_tos`, `bind_device`): those are
//! one `socket2::SockRef::from(&socket)` away, as on every coop socket.
//!
//! [`listen`]: TcpSocket::listen
//! [`connect`]: TcpSocket::connect

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::{TcpListener, TcpStream};
use crate::reactor::registration::require_runtime;

/// A TCP socket that has not connected or listened yet: set its options,
/// perhaps [`bind`](Self::bind) it, then turn it into a
/// [`TcpListener`] with [`listen`](Self::listen) or into a [`TcpStream`]
/// with [`connect`](Self::connect).
///
/// A server whose port several processes share:
///
/// ```no_run
/// # coop::block_on(async {
/// let socket = coop::net::TcpSocket::new_v4()?;
/// socket.set_reuseaddr(true)?;
/// socket.set_reuseport(true)?;
/// socket.bind("127.0.0.1:7000".parse().unwrap())?;
/// let listener = socket.listen(1024)?;
/// let (stream, peer) = listener.accept().await?;
/// # Ok::<(), std::io::Error>(())
/// # });
/// ```
///
/// A client with a larger receive window and no Nagle delay, from its
/// first byte:
///
/// ```no_run
/// # coop::block_on(async {
/// let socket = coop::net::TcpSocket::new_v4()?;
/// socket.set_recv_buffer_size(1 << 20)?;
/// socket.set_nodelay(true)?;
/// let stream = socket.connect("127.0.0.1:7000".parse().unwrap()).await?;
/// # Ok::<(), std::io::Error>(())
/// # });
/// ```
///
/// Making one needs no runtime (nothing registers yet); `listen` and
/// `connect` do, and outside one they return coop's error, as
/// [`TcpListener::bind`] and [`TcpStream::connect`] do.
#[derive(Debug)]
pub struct TcpSocket {
    /// The socket, not registered with any reactor. From `new_v4` or
    /// `new_v6` it is as `socket(2)` made it: close-on-exec, and in
    /// blocking mode, which costs nothing here (options and `bind` return
    /// at once). `listen` and `connect` switch it to non-blocking mode as
    /// they hand it to the reactor.
    inner: Socket,
}

/// `EINPROGRESS` from `<errno.h>`: what `connect(2)` on a non-blocking
/// socket says when the handshake has started and goes on without us.
/// Written out because coop has no `libc` dependency, and std's
/// `ErrorKind::InProgress` is unstable. The number differs between
/// systems, and on Linux between architectures.
#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    any(target_arch = "mips", target_arch = "mips64")
))]
const EINPROGRESS: i32 = 150;
#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    not(any(target_arch = "mips", target_arch = "mips64", target_arch = "sparc64"))
))]
const EINPROGRESS: i32 = 115;
/// Apple's and the BSDs' value, and Linux's on SPARC. (Other systems'
/// differ again: check this before porting.)
#[cfg(any(
    not(any(target_os = "linux", target_os = "android")),
    target_arch = "sparc64"
))]
const EINPROGRESS: i32 = 36;

impl TcpSocket {
    /// Creates an IPv4 TCP socket: `socket(AF_INET, SOCK_STREAM)`.
    pub fn new_v4() -> io::Result<TcpSocket> {
        TcpSocket::new(Domain::IPV4)
    }

    /// Creates an IPv6 TCP socket: `socket(AF_INET6, SOCK_STREAM)`.
    pub fn new_v6() -> io::Result<TcpSocket> {
        TcpSocket::new(Domain::IPV6)
    }

    /// Creates a socket of `addr`'s family (IPv4 or IPv6).
    pub(crate) fn for_addr(addr: SocketAddr) -> io::Result<TcpSocket> {
        TcpSocket::new(Domain::for_address(addr))
    }

    fn new(domain: Domain) -> io::Result<TcpSocket> {
        let inner = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
        Ok(TcpSocket { inner })
    }

    /// Takes over a TCP socket made elsewhere, connected or not (std has
    /// no unconnected `TcpStream` of its own, but socket2 converts one
    /// into it). Its options and binding stay as they are.
    pub fn from_std_stream(std_stream: std::net::TcpStream) -> TcpSocket {
        TcpSocket {
            inner: Socket::from(std_stream),
        }
    }

    /// Sets `SO_REUSEADDR`: [`bind`](Self::bind) may take an address
    /// that connections of an earlier socket still hold (in `TIME_WAIT`),
    /// so a restarted server gets its port back at once. Set it before
    /// `bind`. [`TcpListener::bind`] sets it; a `TcpSocket` starts without
    /// it, as tokio's does.
    pub fn set_reuseaddr(&self, reuseaddr: bool) -> io::Result<()> {
        self.inner.set_reuse_address(reuseaddr)
    }

    /// Whether `SO_REUSEADDR` is set.
    pub fn reuseaddr(&self) -> io::Result<bool> {
        self.inner.reuse_address()
    }

    /// Sets `SO_REUSEPORT`: several sockets, each with the option set
    /// before its [`bind`](Self::bind), may bind the same address and
    /// port. For listeners, the kernel spreads new connections among
    /// them (on Linux, by a hash of the connection's addresses), so
    /// several processes or loops can serve one port.
    #[cfg(all(
        unix,
        not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
    ))]
    pub fn set_reuseport(&self, reuseport: bool) -> io::Result<()> {
        self.inner.set_reuse_port(reuseport)
    }

    /// Whether `SO_REUSEPORT` is set.
    #[cfg(all(
        unix,
        not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
    ))]
    pub fn reuseport(&self) -> io::Result<bool> {
        self.inner.reuse_port()
    }

    /// Sets the size of the kernel's send buffer (`SO_SNDBUF`), in bytes.
    /// Linux doubles the value (the extra half is its bookkeeping) and
    /// caps it at `net.core.wmem_max`, so
    /// [`send_buffer_size`](Self::send_buffer_size) reads back more, or
    /// less, than was set.
    pub fn set_send_buffer_size(&self, size: u32) -> io::Result<()> {
        self.inner.set_send_buffer_size(size as usize)
    }

    /// The size of the kernel's send buffer (`SO_SNDBUF`), in bytes.
    pub fn send_buffer_size(&self) -> io::Result<u32> {
        self.inner.send_buffer_size().map(saturate)
    }

    /// Sets the size of the kernel's receive buffer (`SO_RCVBUF`), in
    /// bytes: it bounds the window TCP offers the peer. Set it before
    /// `connect` or `listen`, because the window scale is agreed in the
    /// handshake. Linux doubles the value and caps it at
    /// `net.core.rmem_max`, as for
    /// [`set_send_buffer_size`](Self::set_send_buffer_size).
    pub fn set_recv_buffer_size(&self, size: u32) -> io::Result<()> {
        self.inner.set_recv_buffer_size(size as usize)
    }

    /// The size of the kernel's receive buffer (`SO_RCVBUF`), in bytes.
    pub fn recv_buffer_size(&self) -> io::Result<u32> {
        self.inner.recv_buffer_size().map(saturate)
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm): small writes go
    /// out at once instead of waiting to be batched. The stream that
    /// [`connect`](Self::connect) makes keeps the setting.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.set_tcp_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.tcp_nodelay()
    }

    /// Sets `SO_LINGER`. `None` (the default): closing the socket returns
    /// at once and the kernel sends what is left in the background.
    /// `Some(Duration::ZERO)`: a close discards unsent data and resets the
    /// connection (an RST, no FIN, no `TIME_WAIT`), also when a `connect`
    /// is dropped before its handshake ends. `Some(time)` with `time` > 0:
    /// a close waits up to `time` (whole seconds) for the data to be sent,
    /// and on Linux it waits *even on a non-blocking socket*: dropping the
    /// stream would stall the whole loop. Avoid it in coop (tokio
    /// deprecated its `set_linger` for this reason: tokio#7751).
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.inner.set_linger(linger)
    }

    /// The `SO_LINGER` setting, in whole seconds.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        self.inner.linger()
    }

    /// Sets `SO_KEEPALIVE`: on a connection idle for long (two hours by
    /// default on Linux), the kernel sends probes, and a peer that no
    /// longer answers makes the next read fail instead of wait for ever.
    /// The probes' timing is `socket2`'s `TcpKeepalive`, through a
    /// `SockRef`.
    pub fn set_keepalive(&self, keepalive: bool) -> io::Result<()> {
        self.inner.set_keepalive(keepalive)
    }

    /// Whether `SO_KEEPALIVE` is set.
    pub fn keepalive(&self) -> io::Result<bool> {
        self.inner.keepalive()
    }

    /// The address the socket is bound to: the unspecified address and port
    /// 0 before [`bind`](Self::bind), and after binding to port 0 the port
    /// the kernel chose.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("coop: a TCP socket's address is not IP"))
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any, clearing it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// Binds the socket to `addr`. Port 0 lets the kernel choose a free
    /// port, which [`local_addr`](Self::local_addr) then reads. Before a
    /// [`connect`](Self::connect), this picks the connection's source
    /// address and port. Set `SO_REUSEADDR` and `SO_REUSEPORT` first: they
    /// count here.
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        self.inner.bind(&addr.into())
    }

    /// Starts listening, and registers the listener with the current
    /// runtime (through [`TcpListener::from_std`]). `backlog` is how many
    /// finished handshakes the kernel queues for `accept` (it caps the
    /// value at `net.core.somaxconn`; a value above `i32::MAX` asks for
    /// that cap). When the queue is full, the kernel drops new handshakes'
    /// first packets, and those clients try again a second later.
    ///
    /// [`TcpListener::bind`] is this socket with
    /// [`set_reuseaddr(true)`](Self::set_reuseaddr) and a backlog of 1024.
    /// An unbound socket listens on a port the kernel chooses.
    ///
    /// ```
    /// use futures::io::{AsyncReadExt, AsyncWriteExt};
    /// # coop::block_on(async {
    /// let socket = coop::net::TcpSocket::new_v4()?;
    /// socket.set_reuseaddr(true)?;
    /// socket.bind("127.0.0.1:0".parse().unwrap())?;
    /// let listener = socket.listen(64)?;
    ///
    /// let addr = listener.local_addr()?;
    /// let mut client = coop::net::TcpStream::connect(addr).await?;
    /// let (mut served, _) = listener.accept().await?;
    /// client.write_all(b"hi").await?;
    /// let mut buf = [0; 2];
    /// served.read_exact(&mut buf).await?;
    /// assert_eq!(&buf, b"hi");
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn listen(self, backlog: u32) -> io::Result<TcpListener> {
        self.inner
            .listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
        TcpListener::from_std(self.inner.into())
    }

    /// Connects to `addr`, waiting for the handshake to end, and returns
    /// the stream, registered with the current runtime. The options set
    /// before stay set. Polled where no coop runtime runs, it fails before
    /// any handshake starts, with the same error as
    /// [`TcpStream::connect`]. A refused connection is
    /// `ErrorKind::ConnectionRefused`; dropped before it ends, the
    /// connect closes the socket (and so abandons the handshake).
    ///
    /// ```
    /// use futures::io::{AsyncReadExt, AsyncWriteExt};
    /// # coop::block_on(async {
    /// let listener = coop::net::TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    ///
    /// let socket = coop::net::TcpSocket::new_v4()?;
    /// socket.set_nodelay(true)?;
    /// let mut stream = socket.connect(addr).await?;
    /// assert!(stream.nodelay()?);
    /// let (mut served, _) = listener.accept().await?;
    /// served.write_all(b"hello").await?;
    /// let mut buf = [0; 5];
    /// stream.read_exact(&mut buf).await?;
    /// assert_eq!(&buf, b"hello");
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn connect(self, addr: SocketAddr) -> io::Result<TcpStream> {
        // As in `TcpStream::connect`: with no runtime to register the
        // stream with, fail before the SYN goes out, not after.
        require_runtime()?;
        self.inner.set_nonblocking(true)?;
        match self.inner.connect(&addr.into()) {
            Ok(()) => {}
            // The usual answer: the handshake has started.
            Err(e) if e.raw_os_error() == Some(EINPROGRESS) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        let stream = std::net::TcpStream::from(self.inner);
        TcpStream::finish_connect(mio::net::TcpStream::from_std(stream)).await
    }
}

/// A buffer size as tokio's API gives it. The kernel keeps it in a C
/// `int`, so it always fits.
fn saturate(size: usize) -> u32 {
    u32::try_from(size).unwrap_or(u32::MAX)
}

// Not `impl_fd!`: that lends a registered `io` field, and this socket has
// none yet. Options set through the descriptor count as if set here.
impl AsFd for TcpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsRawFd for TcpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

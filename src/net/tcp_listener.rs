//! [`TcpListener`]: accepting connections.

use std::future::poll_fn;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::task::{Context, Poll};

use mio::Interest;

use super::{TcpSocket, TcpStream, each_addr};
use crate::reactor::registration::{Direction, IoSource, require_runtime};

/// How many finished handshakes the kernel queues for `accept` (the kernel
/// caps it at `net.core.somaxconn`). std, mio 1.x and tokio's `bind` use
/// 128, which drops connections when a thousand clients connect at once.
const BACKLOG: u32 = 1024;

/// A TCP socket server, listening for connections.
///
/// ```no_run
/// # coop::block_on(async {
/// let listener = coop::net::TcpListener::bind("127.0.0.1:7000")?;
/// loop {
///     let (stream, peer) = listener.accept().await?;
///     coop::spawn(async move { /* serve `stream` */ drop((stream, peer)); });
/// }
/// # #[allow(unreachable_code)] Ok::<(), std::io::Error>(())
/// # });
/// ```
#[derive(Debug)]
pub struct TcpListener {
    io: IoSource<mio::net::TcpListener>,
}

impl_fd!(TcpListener);

impl TcpListener {
    /// Binds to `addr` (with `SO_REUSEADDR`) and starts listening with a
    /// backlog of 1024. Port 0 picks a free port: see
    /// [`local_addr`](Self::local_addr). Other choices (`SO_REUSEPORT`,
    /// another backlog, buffer sizes) take a [`TcpSocket`].
    ///
    /// `bind` is not `async`, so it takes `std`'s `ToSocketAddrs`, and a
    /// *name* (`"localhost:7000"`) is looked up right here by `std`'s
    /// blocking `getaddrinfo`, on the calling thread: from a task, that
    /// stops the whole loop for as long as the lookup takes (tokio's
    /// `bind`, being `async`, looks names up on its blocking pool). A
    /// numeric address needs no lookup. To bind to a name without the
    /// stall, look it up first on the pool and bind to what it finds:
    ///
    /// ```no_run
    /// # coop::block_on(async {
    /// use std::net::{SocketAddr, ToSocketAddrs};
    /// let addrs: Vec<SocketAddr> =
    ///     coop::spawn_blocking(|| "localhost:7000".to_socket_addrs().map(Iterator::collect))
    ///         .await??;
    /// let listener = coop::net::TcpListener::bind(&addrs[..])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # });
    /// ```
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        // Asked first, not left to each address's registration: outside a
        // runtime every address fails there, after binding and listening
        // for nothing, and `each_addr` returns the *last* error, which an
        // address that could not bind (in use) would make the wrong one.
        require_runtime()?;
        // The steps of a `TcpSocket`, with coop's choices: so a listener
        // made by hand with the same choices is this one.
        each_addr(addr, |addr| {
            let socket = TcpSocket::for_addr(addr)?;
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            socket.listen(BACKLOG)
        })
    }

    /// Wraps a listener made elsewhere (switching it to non-blocking mode).
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        let io = IoSource::with_interest(
            mio::net::TcpListener::from_std(listener),
            Interest::READABLE,
        )?;
        Ok(TcpListener { io })
    }

    /// Hands the listener back as a std listener, the reverse of
    /// [`from_std`](Self::from_std): it leaves the reactor, and
    /// connections queued in its backlog stay there, for the new owner
    /// to accept. Still non-blocking: call `set_nonblocking(false)` before
    /// a blocking `accept`. The rest is as
    /// [`TcpStream::into_std`](super::TcpStream::into_std) says.
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        super::into_std(self.io)
    }

    /// Waits for the next connection and returns it with the peer's address.
    ///
    /// Errors are the OS's: for example `EMFILE` ("Too many open files")
    /// when the process is out of file descriptors. The listener stays
    /// usable after an error. Polled where no coop runtime runs, it is
    /// coop's error, and the connection stays queued for a later accept.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// The poll form of [`accept`](Self::accept), for hand-written futures.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        // The accepted stream registers with the current runtime. Where
        // none runs, that fails, and by then accept(2) has taken the
        // connection off the queue, to be closed unseen: refuse first.
        require_runtime()?;
        // accept(2) until WouldBlock: readiness stays set while connections
        // remain queued, so the next call accepts without waiting.
        let (stream, peer) =
            std::task::ready!(self.io.poll_io(cx, Direction::Read, |l| l.accept()))?;
        Poll::Ready(TcpStream::from_mio(stream).map(|s| (s, peer)))
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Sets the IP time-to-live of the connections whose handshake ends
    /// from now on. Each inherits the listener's value when the kernel
    /// makes it, at the end of its handshake, not at `accept`: a
    /// connection already waiting in the backlog keeps the old value,
    /// even if accepted after this call.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// The IP time-to-live the listener gives its new connections.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any, clearing it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }
}

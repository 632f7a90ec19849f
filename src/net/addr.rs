//! [`ToSocketAddrs`]: addresses for the async socket calls, and name
//! lookups off the loop's thread.
//!
//! `std::net::ToSocketAddrs` turns `"example.com:80"` into addresses by
//! calling the C library's `getaddrinfo`, which **blocks**: it reads
//! `/etc/hosts`, may ask a DNS server and wait for the answer, for
//! milliseconds or, with a server that does not answer, for seconds. Called
//! from a task, that wait would hold the whole loop: no other task runs, no
//! socket is served (chapter 06). So the socket calls that are `async`
//! ([`TcpStream::connect`](super::TcpStream::connect),
//! [`UdpSocket::connect`](super::UdpSocket::connect) and
//! [`send_to`](super::UdpSocket::send_to)) take this crate's
//! `ToSocketAddrs` instead, as tokio's do:
//!
//! - an address that is already numeric (`SocketAddr`, `(IpAddr, u16)`, or a
//!   string such as `"127.0.0.1:7000"` or `"[::1]:7000"`, which parses
//!   without a lookup) is used at once, with no thread involved;
//! - a name (`"localhost:7000"`, `("example.com", 80)`) is looked up by
//!   `std`'s blocking call on the blocking pool ([`crate::spawn_blocking`]),
//!   and the task waits for the answer as it would for a socket.
//!
//! The constructors that are not `async` (`TcpListener::bind`,
//! `UdpSocket::bind`) keep `std::net::ToSocketAddrs`: they have no task to
//! suspend, and binding to a name rather than to an address is rare. A
//! name given to them *is* looked up on the calling thread, and from a task
//! that blocks the loop; their docs show how to look it up on the pool
//! first.
//!
//! The trait is *sealed*: implemented here for the address types `std`
//! knows, and nowhere else, so its one method stays an implementation
//! detail.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::reactor::registration::require_runtime;

/// Something that names one or more socket addresses: an address, an IP
/// and a port, or a string `"host:port"` (with `host` a name or an IP).
/// A numeric address (`SocketAddr`, `(IpAddr, u16)`, `"127.0.0.1:7000"`)
/// is used at once; a name (`"localhost:7000"`, `("example.com", 80)`) is
/// looked up by `std`'s blocking call on the blocking pool, never on the
/// loop's thread. Sealed: implemented for these types (and references to
/// them) only.
pub trait ToSocketAddrs: sealed::Resolve {}

mod sealed {
    use std::io;
    use std::net::SocketAddr;

    /// The sealed half of [`ToSocketAddrs`](super::ToSocketAddrs).
    pub trait Resolve {
        /// The addresses, if they are known without a lookup; else the
        /// lookup to run on the blocking pool.
        fn resolve(&self) -> Resolution;
    }

    /// What [`Resolve::resolve`] found.
    pub enum Resolution {
        /// Numeric: no lookup needed.
        Ready(io::Result<Vec<SocketAddr>>),
        /// A name to look up: `"host:port"`.
        Lookup(String),
        /// A name to look up: host and port apart.
        LookupHost(String, u16),
    }
}

use sealed::{Resolution, Resolve};

/// The addresses `addr` names, looking names up on the blocking pool.
pub(crate) async fn resolve(addr: &(impl ToSocketAddrs + ?Sized)) -> io::Result<Vec<SocketAddr>> {
    let lookup = match addr.resolve() {
        Resolution::Ready(addrs) => return addrs,
        // The pool is the current runtime's. Where none runs (a future
        // polled by another executor) there is no pool to ask, and
        // `spawn_blocking` would panic: say what a socket made there says.
        _ if let Err(e) = require_runtime() => return Err(e),
        Resolution::Lookup(text) => {
            on_the_pool(move || std::net::ToSocketAddrs::to_socket_addrs(&text))
        }
        Resolution::LookupHost(host, port) => {
            on_the_pool(move || std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port)))
        }
    };
    match lookup.await {
        Ok(addrs) => addrs,
        Err(e) => Err(io::Error::other(format!("address lookup failed: {e}"))),
    }
}

/// Runs a blocking lookup on the blocking pool, named so in traces.
fn on_the_pool<I: Iterator<Item = SocketAddr>>(
    lookup: impl FnOnce() -> io::Result<I> + Send + 'static,
) -> crate::task::JoinHandle<io::Result<Vec<SocketAddr>>> {
    crate::blocking::spawn_blocking_named(
        move || lookup().map(Iterator::collect),
        Some("address lookup".into()),
        std::panic::Location::caller(),
    )
}

/// The error for a name that resolved to no address at all.
pub(crate) fn no_address() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "could not resolve to any address",
    )
}

/// Numeric addresses, ready at once.
macro_rules! ready {
    ($($ty:ty),*) => {$(
        impl ToSocketAddrs for $ty {}
        impl Resolve for $ty {
            fn resolve(&self) -> Resolution {
                Resolution::Ready(std::net::ToSocketAddrs::to_socket_addrs(self).map(Iterator::collect))
            }
        }
    )*};
}

ready!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl ToSocketAddrs for [SocketAddr] {}
impl Resolve for [SocketAddr] {
    fn resolve(&self) -> Resolution {
        Resolution::Ready(Ok(self.to_vec()))
    }
}

impl ToSocketAddrs for str {}
impl Resolve for str {
    fn resolve(&self) -> Resolution {
        match self.parse::<SocketAddr>() {
            Ok(addr) => Resolution::Ready(Ok(vec![addr])),
            Err(_) => Resolution::Lookup(self.to_owned()),
        }
    }
}

impl ToSocketAddrs for String {}
impl Resolve for String {
    fn resolve(&self) -> Resolution {
        self.as_str().resolve()
    }
}

impl ToSocketAddrs for (&str, u16) {}
impl Resolve for (&str, u16) {
    fn resolve(&self) -> Resolution {
        let (host, port) = *self;
        match host.parse::<IpAddr>() {
            Ok(ip) => Resolution::Ready(Ok(vec![SocketAddr::new(ip, port)])),
            Err(_) => Resolution::LookupHost(host.to_owned(), port),
        }
    }
}

impl ToSocketAddrs for (String, u16) {}
impl Resolve for (String, u16) {
    fn resolve(&self) -> Resolution {
        (self.0.as_str(), self.1).resolve()
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}
impl<T: Resolve + ?Sized> Resolve for &T {
    fn resolve(&self) -> Resolution {
        (**self).resolve()
    }
}

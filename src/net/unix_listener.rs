//! [`UnixListener`]: accepting connections on a path.
//!
//! `bind` creates a socket file at the path, and clients connect by
//! naming it (see [`UnixStream`]'s module docs for what a Unix socket is,
//! and what differs from TCP). The listener is [`TcpListener`]'s code over
//! another mio socket: registered `READABLE` only, `accept(2)` through
//! `IoSource::poll_io`, a runtime required before the system call.
//!
//! **The path stays on disk after the listener is dropped**, as with std's
//! and tokio's `UnixListener`: closing the socket does not unlink its file,
//! and a second `bind` to the same path fails with `AddrInUse` until
//! someone removes it. Remove it yourself (`std::fs::remove_file`) when the
//! server ends, or before binding if a stale file from an earlier run may
//! be there. coop does neither for you: it cannot know whether the file is
//! stale or another server's, live.
//!
//! [`TcpListener`]: super::TcpListener

use std::future::poll_fn;
use std::io;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::task::{Context, Poll};

use mio::Interest;

use super::UnixStream;
use crate::reactor::registration::{Direction, IoSource, require_runtime};

/// A Unix domain socket server, listening for connections on a path.
///
/// ```no_run
/// # coop::block_on(async {
/// let _ = std::fs::remove_file("/tmp/echo.sock"); // a stale file of an earlier run
/// let listener = coop::net::UnixListener::bind("/tmp/echo.sock")?;
/// loop {
///     let (stream, _peer) = listener.accept().await?;
///     coop::spawn(async move { /* serve `stream` */ drop(stream); });
/// }
/// # #[allow(unreachable_code)] Ok::<(), std::io::Error>(())
/// # });
/// ```
#[derive(Debug)]
pub struct UnixListener {
    io: IoSource<mio::net::UnixListener>,
}

impl_fd!(UnixListener);

impl UnixListener {
    /// Creates the socket file at `path` and starts listening, with the
    /// kernel's largest backlog (`listen(fd, -1)` on Linux, as std and mio
    /// do: `net.core.somaxconn`). A path that exists, socket or not, is
    /// `AddrInUse`; a missing directory is `NotFound`. Where no coop
    /// runtime runs, it fails before creating the file.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        // Registration would fail after `bind(2)` had made the file, and
        // the file would outlive the error: ask first.
        require_runtime()?;
        UnixListener::from_mio(mio::net::UnixListener::bind(path)?)
    }

    /// Wraps a listener made elsewhere (switching it to non-blocking mode).
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        UnixListener::from_mio(mio::net::UnixListener::from_std(listener))
    }

    /// Hands the listener back as a std listener, the reverse of
    /// [`from_std`](Self::from_std); queued connections stay queued.
    /// Still non-blocking: call `set_nonblocking(false)` before a
    /// blocking `accept`. The socket file stays where it is, as it does
    /// when the listener is dropped. The rest is as
    /// [`TcpStream::into_std`](super::TcpStream::into_std) says.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixListener> {
        super::into_std(self.io)
    }

    fn from_mio(listener: mio::net::UnixListener) -> io::Result<UnixListener> {
        Ok(UnixListener {
            io: IoSource::with_interest(listener, Interest::READABLE)?,
        })
    }

    /// Waits for the next connection and returns it with the peer's
    /// address (usually unnamed: a client rarely binds a path). Errors are
    /// the OS's (`EMFILE` when out of file descriptors); the listener
    /// stays usable after one. Polled where no coop runtime runs, it is
    /// coop's error, and the connection stays queued.
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// The poll form of [`accept`](Self::accept), for hand-written futures.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(UnixStream, SocketAddr)>> {
        // As `TcpListener::poll_accept`: the accepted stream registers with
        // the current runtime, so refuse before accept(2) takes it.
        require_runtime()?;
        let (stream, peer) =
            std::task::ready!(self.io.poll_io(cx, Direction::Read, |l| l.accept()))?;
        Poll::Ready(UnixStream::from_mio(stream).map(|s| (s, peer)))
    }

    /// The address this listener is bound to: its path.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any, clearing it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }
}

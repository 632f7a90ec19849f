//! What every echo server shares, so the shootout is fair by construction.
//!
//! Each `echo_*` example declares `mod common;` and takes from here:
//!
//! 1. the flags ([`ServerArgs`]: `--addr`, default `127.0.0.1:7000`, and `--buf`,
//!    default 4096 bytes of buffer per connection),
//! 2. the logger ([`init_logging`]: `info` unless `RUST_LOG` says otherwise),
//! 3. the listening socket ([`bind_listener`]: `SO_REUSEADDR`, backlog [`BACKLOG`]),
//! 4. the startup line ([`announce`]: `listening on <addr>` on stdout),
//! 5. what to do when `accept` fails ([`accept_error_needs_pause`]),
//! 6. the descriptor limit ([`raise_fd_limit`]: the soft limit raised to the
//!    hard one, as coop's `echo_server` raises its own).
//!
//! The servers differ only in how they wait for sockets, which is the point of the
//! comparison. All of them also set `TCP_NODELAY` on accepted connections, so that
//! no server's echo is held back by Nagle's algorithm.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// Listen backlog: how many connections the kernel queues before `accept`.
///
/// `std::net::TcpListener::bind`, `mio::net::TcpListener::bind` (mio 1.x) and
/// `tokio::net::TcpListener::bind` all pass 128, which overflows when a load
/// generator opens thousands of connections at once; the overflowing clients then
/// wait a full SYN retransmission (1 s, then 3 s, ...). Linux caps the value at
/// `net.core.somaxconn` (4096 by default since kernel 5.4).
pub const BACKLOG: u32 = 1024;

/// The flags every echo server accepts. Examples embed it with `#[command(flatten)]`.
#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Address to listen on; use port 0 to let the OS choose (the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:7000")]
    pub addr: SocketAddr,

    /// Bytes of buffer per connection: the most one read can take in.
    #[arg(long, default_value_t = 4096,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub buf: usize,
}

/// Starts `env_logger` at level `info`, or at whatever `RUST_LOG` asks for.
///
/// Connects and disconnects are logged at `debug` (`RUST_LOG=debug` to see them),
/// so a load test with 10,000 connections does not drown in log lines. Logs go to
/// stderr; stdout carries only the startup line.
pub fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
}

/// Raises this process's soft limit on open files to its hard limit, and
/// warns if it cannot.
///
/// Every connection is a descriptor, and shells usually start programs
/// with a soft limit of 1,024, far below the hard one: a server that left
/// it there would stop accepting (`EMFILE`) near 1,000 connections, while
/// coop's `echo_server`, which raises its own, served 10,000. The shootout
/// raises its limit for the servers it starts; this makes a server started
/// by hand, or by `scripts/ab.py`, as able.
pub fn raise_fd_limit() {
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        log::warn!("cannot raise the file-descriptor limit: {e}");
    }
}

/// Binds a TCP listener with `SO_REUSEADDR` and a backlog of [`BACKLOG`].
///
/// The returned listener is in **non-blocking** mode; a blocking server calls
/// `set_nonblocking(false)` on it, and a mio server wraps it with
/// `mio::net::TcpListener::from_std`.
///
/// Neither std nor mio lets us choose the backlog (both use 128, which resets
/// connections when a thousand clients connect at once), so we build the
/// socket with `socket2`, as `coop::net::TcpListener::bind` does.
pub fn bind_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG as i32)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Logs `listening on <addr>` and prints the same line to stdout, flushed.
///
/// A parent process that started the server with `--addr 127.0.0.1:0` reads this
/// line to learn the port. Call it once, after binding and before serving.
pub fn announce(addr: SocketAddr) -> io::Result<()> {
    log::info!("listening on {addr}");
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on {addr}")?;
    stdout.flush()
}

/// How long a server stops accepting after [`accept_error_needs_pause`] says so.
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Logs a failed `accept` (any error but `WouldBlock`) and says whether to pause.
///
/// Returns `true` when the server should stop accepting for [`ACCEPT_PAUSE`]: the
/// process is out of file descriptors (`EMFILE`), the system is (`ENFILE`), or
/// kernel memory is short (`ENOBUFS`, `ENOMEM`). Retrying at once would spin on
/// the same error; the waiting connection stays in the backlog until a descriptor
/// is free. Returns `false` when only the connection being accepted is affected
/// (the client gave up before we took it) or the call was interrupted: accept the
/// next connection at once. Either way the server keeps running.
pub fn accept_error_needs_pause(error: &io::Error) -> bool {
    match error.kind() {
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::Interrupted => {
            log::debug!("accept: {error}");
            false
        }
        _ => {
            log::warn!("accept failed: {error}; pausing accepts for {ACCEPT_PAUSE:?}");
            true
        }
    }
}

//! The async echo server: one `coop` task per connection, on one thread.
//!
//! Run it:
//!
//! ```text
//! cargo run --release --example echo_server -- --addr 127.0.0.1:7000 --buf 4096
//! ```
//!
//! and talk to it from a second terminal: `nc 127.0.0.1 7000` (type a line,
//! get it back). Every connection is a task that reads into its own
//! `--buf`-byte buffer and writes back what it read; while one connection
//! waits for data, the loop serves the others. It serves 10,000 concurrent
//! connections on one thread (`examples/loadgen.rs --conns 10000`).
//!
//! Connects and disconnects are logged at `info`; set `RUST_LOG=warn` to
//! silence them under load.
//!
//! # When things go wrong
//!
//! Each fault below stays with the connection it happened to; the others
//! keep being served. `docs/07-failure-behaviour.md` has the details and the
//! tests that check each one (`tests/reliability.rs`).
//!
//! - **Out of file descriptors** (`EMFILE`/`ENFILE` from `accept`): logs
//!   `accept failed: ...; retrying in ...`, stops accepting for a pause that
//!   doubles from 10 ms up to 500 ms (sleeping, not spinning), and resumes
//!   when a retry succeeds. Waiting clients stay in the kernel's backlog.
//! - **A client resets its connection**: that connection logs
//!   `PEER: connection error: Connection reset by peer` and ends.
//! - **A client that never reads** its echoes: our write waits for the
//!   socket's send buffer, so we stop reading from it too. TCP's flow
//!   control pushes back on the client; we buffer at most `--buf` bytes.
//! - **Ten thousand mostly idle clients** (`--lend-buffer`): every
//!   connection waits in `readable()` with no buffer, and borrows the one
//!   `--buf`-byte buffer they share only to read and write back (0.7 KiB
//!   per connection at 10,000 instead of 4.6; docs/02-reactor.md,
//!   "Readiness by hand").
//! - **Idle clients** (`--idle-timeout SECS`, off by default): a connection
//!   that makes no progress (no byte read, or no write completed) for that
//!   long is closed, logging `PEER: idle for SECS s; closing`.
//! - **It cannot start** (the address is in use, a signal handler or the
//!   runtime cannot be set up): prints what failed, such as
//!   `echo_server: cannot bind 127.0.0.1:7000: Address already in use (os
//!   error 98)`, and exits with status 1.
//! - **Ctrl-C or SIGTERM**: the listener closes at once (new connects are
//!   refused), open connections get `--shutdown-grace SECS` (default 5) to
//!   finish, then the process exits with status 0. A second signal skips
//!   the rest of the grace period.
//!
//! `--max-fds N` lowers this process's own descriptor limit to `N`: a
//! testing and demonstration aid, to reach `EMFILE` with a few dozen
//! clients (`--max-fds 32`, then connect 40 `nc`s).

use std::cell::{Cell, RefCell};
use std::convert::Infallible;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::process::ExitCode;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use clap::Parser;
use futures::future::{Either, select};
use futures::io::{AsyncReadExt, AsyncWriteExt};

use coop::net::{TcpListener, TcpStream};
use coop::signal::{Signal, SignalKind, signal};
use coop::time::{sleep, timeout};

/// An echo server on the coop runtime.
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7000")]
    addr: String,
    /// Bytes of buffer per connection (at least 1: a read into an empty
    /// buffer returns 0, which would look like the client's end of file).
    #[arg(long, default_value_t = 4096,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    buf: usize,
    /// One `--buf`-byte read buffer for every connection, lent to a
    /// connection only from its `readable()` to its write (readiness by
    /// hand, docs/02-reactor.md): an idle connection holds no buffer. Not
    /// with `--idle-timeout`.
    #[arg(long, conflicts_with = "idle_timeout")]
    lend_buffer: bool,
    /// Close a connection that makes no progress for this many seconds
    /// (fractions allowed). Off by default.
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    idle_timeout: Option<Duration>,
    /// After Ctrl-C or SIGTERM, how many seconds open connections get to
    /// finish before the server exits anyway.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = seconds)]
    shutdown_grace: Duration,
    /// Testing/demo aid: lower this process's file-descriptor limit to N,
    /// to see how the server behaves when `accept` runs out.
    #[arg(long, value_name = "N")]
    max_fds: Option<u64>,
    /// How many ready events one wait on the OS may return (the runtime's
    /// `event_capacity`; see `coop::runtime::EVENT_CAPACITY` for why the
    /// default is small).
    #[arg(long, value_name = "N", default_value_t = coop::runtime::EVENT_CAPACITY)]
    events: usize,
}

/// Parses a time option: seconds, fractions allowed. Checked here, so that
/// a value no `Duration` can hold (negative, NaN, infinite) is a usage
/// error at start, not a panic where it is used: for `--shutdown-grace`,
/// that was at the SIGTERM, which then ended the server with status 101
/// instead of a graceful shutdown.
fn seconds(arg: &str) -> Result<Duration, String> {
    arg.parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| "expected a number of seconds, 0 or more (fractions allowed)".to_string())
}

/// The first pause after an `accept` error that is not about one connection.
const BACKOFF_MIN: Duration = Duration::from_millis(10);
/// The longest pause: how long a freed descriptor may wait to be used.
const BACKOFF_MAX: Duration = Duration::from_millis(500);

/// Runs the server; a start-up error is printed with what failed (see
/// [`failed`]) and ends the process with status 1.
fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match start(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn start(args: Args) -> io::Result<()> {
    match args.max_fds {
        Some(n) => {
            let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)
                .map_err(failed("cannot read the descriptor limit"))?;
            rlimit::setrlimit(rlimit::Resource::NOFILE, n.min(hard), hard)
                .map_err(failed(format!("cannot set the descriptor limit to {n}")))?;
        }
        // 10,000 connections need 10,000 descriptors: raise the soft limit.
        None => drop(rlimit::increase_nofile_limit(u64::MAX)),
    }
    let runtime = coop::Runtime::builder()
        .event_capacity(args.events)
        .build()
        .map_err(failed("cannot create the runtime"))?;
    runtime.block_on(run(args))
}

/// Prefixes an error with what failed, keeping its kind. A `main` that
/// returned the bare error printed only its `Debug` form (`Error: Os {
/// code: 98, kind: AddrInUse, .. }`), with no word of which address, or
/// what was being done.
fn failed(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

async fn run(args: Args) -> io::Result<()> {
    // Listen for the shutdown signals *before* announcing the port: a
    // signal sent right after the announcement must reach our handler,
    // not the default action (which would kill the process at once).
    let mut interrupt = signal(SignalKind::interrupt()).map_err(failed("cannot handle SIGINT"))?;
    let mut terminate = signal(SignalKind::terminate()).map_err(failed("cannot handle SIGTERM"))?;

    let listener =
        TcpListener::bind(&args.addr).map_err(failed(format!("cannot bind {}", args.addr)))?;
    let local = listener
        .local_addr()
        .map_err(failed("cannot read the listening address"))?;
    log::info!("listening on {local}");
    // A parent process (the shootout, the tests) reads this line for the port.
    println!("listening on {local}");

    let config = Config {
        buf: args.buf,
        idle: args.idle_timeout,
        lent: args
            .lend_buffer
            .then(|| Rc::new(RefCell::new(vec![0u8; args.buf]))),
    };
    let live = Connections::new();

    // Serve until the first signal. The accept loop never ends by itself.
    {
        let accepting = pin!(accept_loop(&listener, live.clone(), config));
        let stop = pin!(either_signal(&mut interrupt, &mut terminate));
        // `accepting` returns `Infallible`, so only the signal can win.
        let Either::Right((name, _)) = select(accepting, stop).await;
        log::info!("{name}: closing the listener; finishing open connections");
    }
    // New connects are refused from here on.
    drop(listener);

    // Wait for the open connections, for at most the grace period. Each
    // connection task holds a clone of `live`; when the last one is dropped,
    // `all_closed` ends.
    let open = live.count();
    let all_closed = live.all_closed();
    if open > 0 {
        log::info!(
            "waiting up to {} s for {open} open connection(s)",
            args.shutdown_grace.as_secs_f64()
        );
    }
    let drained = pin!(timeout(args.shutdown_grace, all_closed));
    let again = pin!(either_signal(&mut interrupt, &mut terminate));
    match select(drained, again).await {
        Either::Left((Ok(_), _)) => log::info!("all connections closed; exiting"),
        Either::Left((Err(_), _)) => {
            log::warn!("grace period over; closing the remaining connections")
        }
        Either::Right((name, _)) => log::warn!("second {name}: exiting now"),
    }
    // Returning drops the runtime, and with it every remaining connection.
    Ok(())
}

/// Per-connection settings.
#[derive(Clone, Debug)]
struct Config {
    /// Bytes of buffer per connection (of the one lent buffer, with
    /// `lent`).
    buf: usize,
    /// Close a connection after this long without progress.
    idle: Option<Duration>,
    /// The one buffer every connection borrows (`--lend-buffer`), instead
    /// of a buffer each.
    lent: Option<Rc<RefCell<Vec<u8>>>>,
}

/// Waits for SIGINT or SIGTERM and says which.
async fn either_signal(interrupt: &mut Signal, terminate: &mut Signal) -> &'static str {
    let int = pin!(interrupt.recv());
    let term = pin!(terminate.recv());
    match select(int, term).await {
        Either::Left(_) => "SIGINT",
        Either::Right(_) => "SIGTERM",
    }
}

/// Accepts connections forever, one task each.
async fn accept_loop(listener: &TcpListener, live: Connections, config: Config) -> Infallible {
    let mut backoff = BACKOFF_MIN;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                backoff = BACKOFF_MIN;
                log::info!("{peer}: connected");
                coop::spawn(serve(stream, peer, config.clone(), live.clone()));
            }
            // That one connection died in the backlog: nothing to wait for.
            Err(e) if is_connection_error(&e) => log::info!("accept: {e}; carrying on"),
            // EMFILE, ENFILE, ENOBUFS, ENOMEM: retrying at once would fail
            // again and spin the CPU. The loop keeps serving open connections
            // while we sleep; when one closes, a descriptor frees up.
            Err(e) => {
                log::warn!("accept failed: {e}; retrying in {backoff:?}");
                sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Errors that concern one connection (it was reset or aborted before we
/// accepted it), not the listener or the process.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// Echoes everything `peer` sends until it closes its side, then logs how
/// the connection ended.
async fn serve(stream: TcpStream, peer: SocketAddr, config: Config, _live: Connections) {
    // Echoes are small and each waits for the previous: send them at once
    // rather than let Nagle's algorithm hold them for an ACK (every server
    // in the shootout does the same).
    if let Err(e) = stream.set_nodelay(true) {
        log::warn!("{peer}: cannot set TCP_NODELAY: {e}");
    }
    // The echo loop owns the stream and its buffer (as the tokio example's
    // does), so the state an echo touches sits together in the loop's own
    // future rather than split between it and this one. When session 13
    // measured both ways, callgrind's cache simulation counted 5.0 L1 data
    // read misses per echo at 1,000 connections this way, 6.4 with the
    // stream and buffer lent from here (docs/micro-benchmarks.md, "Where
    // the echo's state sits"; figures of that build, not re-measured since).
    //
    // Three loops: the plain one, one with the idle limit, and one with a
    // lent buffer. A future is as large as the largest state it can be in,
    // so the other two are boxed: the plain one then does not carry their
    // space in every connection.
    let ended = match (config.idle, config.lent) {
        (None, None) => echo(stream, config.buf).await,
        (Some(limit), _) => Box::pin(echo_or_idle(stream, config.buf, limit)).await,
        (None, Some(lent)) => Box::pin(echo_lent(stream, lent)).await,
    };
    match ended {
        Ok(End::Closed) => log::info!("{peer}: disconnected"),
        Ok(End::Idle) => log::info!(
            "{peer}: idle for {} s; closing",
            config.idle.unwrap_or_default().as_secs_f64()
        ),
        Err(e) => log::warn!("{peer}: connection error: {e}"),
    }
}

/// How a connection ended, short of an error.
enum End {
    /// The client shut down its write side, and got every byte back.
    Closed,
    /// No progress for the idle timeout.
    Idle,
}

/// Reads what the client sends and writes it back, until end of file;
/// returning drops the stream, which closes the connection.
async fn echo(mut stream: TcpStream, buf_len: usize) -> io::Result<End> {
    let mut buf = vec![0u8; buf_len];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            // End of file after the last byte: everything read has already
            // been written back, so closing now loses nothing.
            return Ok(End::Closed);
        }
        // While this write waits (a client that does not read), we do not
        // read either: the client's own sends then block. That is the
        // backpressure that keeps this connection's memory at `buf` bytes.
        stream.write_all(&buf[..n]).await?;
    }
}

/// [`echo`] with a buffer lent, not owned (`--lend-buffer`): readiness by
/// hand. The task waits in `readable()` holding no buffer; once woken it
/// borrows the one buffer all connections share, reads, writes back, and
/// returns it, with no `.await` in between. No other task can run in that
/// stretch (this is one thread, and tasks give way only at an `.await`),
/// so one buffer serves ten thousand connections. The borrow must end
/// before the next `.await`: held across one, the next task to borrow
/// would panic.
///
/// Only a client that is slow to read costs memory: what its send buffer
/// did not take is copied into a buffer of the connection's own, and
/// nothing more is read from it until that is written (the same
/// backpressure as [`echo`]).
async fn echo_lent(stream: TcpStream, lent: Rc<RefCell<Vec<u8>>>) -> io::Result<End> {
    loop {
        stream.readable().await?;
        let rest = {
            let mut buf = lent.borrow_mut();
            let n = match stream.try_read(&mut buf) {
                // The wake was stale (see `readable`): wait for a new one.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                read => read?,
            };
            if n == 0 {
                return Ok(End::Closed);
            }
            let written = match stream.try_write(&buf[..n]) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                write => write?,
            };
            if written == n {
                continue;
            }
            buf[written..n].to_vec()
        }; // the borrow ends here, before the wait below
        (&stream).write_all(&rest).await?;
    }
}

/// [`echo`], giving up when a read or a write makes no progress for `limit`.
async fn echo_or_idle(mut stream: TcpStream, buf_len: usize, limit: Duration) -> io::Result<End> {
    let mut buf = vec![0u8; buf_len];
    loop {
        let n = match timeout(limit, stream.read(&mut buf)).await {
            Ok(n) => n?,
            Err(_) => return Ok(End::Idle),
        };
        if n == 0 {
            return Ok(End::Closed);
        }
        match timeout(limit, stream.write_all(&buf[..n])).await {
            Ok(written) => written?,
            Err(_) => return Ok(End::Idle),
        }
    }
}

/// Counts open connections, and tells the shutdown when there are none
/// (a wait group).
///
/// Each clone is one connection; the original is held by `run` until
/// shutdown, when [`all_closed`](Self::all_closed) trades it for a future
/// that ends once every clone has been dropped. A count and one waker are
/// all it takes, with no allocation per connection.
struct Connections {
    shared: Rc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// How many `Connections` values exist.
    count: Cell<usize>,
    /// The shutdown, waiting for `count` to reach zero.
    waiting: Cell<Option<Waker>>,
}

impl Connections {
    fn new() -> Connections {
        let shared = Rc::new(Shared::default());
        shared.count.set(1);
        Connections { shared }
    }

    /// Open connections (not counting the original).
    fn count(&self) -> usize {
        self.shared.count.get() - 1
    }

    /// Gives up the original and waits until no connection is left.
    async fn all_closed(self) {
        let shared = self.shared.clone();
        drop(self);
        poll_fn(|cx| {
            if shared.count.get() == 0 {
                return Poll::Ready(());
            }
            shared.waiting.set(Some(cx.waker().clone()));
            Poll::Pending
        })
        .await
    }
}

impl Clone for Connections {
    fn clone(&self) -> Self {
        self.shared.count.set(self.shared.count.get() + 1);
        Connections {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Connections {
    fn drop(&mut self) {
        let left = self.shared.count.get() - 1;
        self.shared.count.set(left);
        if left == 0
            && let Some(waker) = self.shared.waiting.take()
        {
            waker.wake();
        }
    }
}

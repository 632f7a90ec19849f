//! Reliability under faults: what the echo server and the runtime do when
//! descriptors run out, clients misbehave, signals arrive, and runtimes are
//! dropped mid-flight. `docs/07-failure-behaviour.md` describes each
//! behaviour and names the test that checks it.
//!
//! Most tests here run `examples/echo_server` as a child process (built on
//! first use), so they check the example a reader runs, including its
//! logs, its exit status, and its CPU, memory and descriptors (from
//! `/proc/PID`). The rest run the runtime in this process.
//!
//! The tests take turns (see [`serial`]): several measure CPU time,
//! resident memory, descriptor counts or throughput, which tests running
//! beside them would disturb. Everything is over 127.0.0.1.

mod util;

use std::cell::Cell;
use std::future::poll_fn;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream as StdStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use futures::io::{AsyncReadExt, AsyncWriteExt};

use coop::signal::{SignalKind, signal};
use util::{
    PanicOnDrop, Rng, listener, process_cpu_ticks, process_fds, process_rss_kib, serve_echo,
    with_deadline,
};

// ───────────────────────────── set-up ─────────────────────────────

/// One test at a time (see the module docs). A failed test poisons the
/// lock; the next one takes it anyway.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts `examples/echo_server` with `args` and `RUST_LOG=rust_log`, its
/// output piped (a panic's backtrace left out), and tracks the child so
/// that a test that runs out of time kills it.
fn spawn_echo_server<'a>(args: impl IntoIterator<Item = &'a &'a str>, rust_log: &str) -> Child {
    let child = Command::new(example("echo_server"))
        .args(args)
        .env("RUST_LOG", rust_log)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start examples/echo_server");
    util::track_child(child.id());
    child
}

/// The path of example `name`, built once per test run with the same
/// profile as this test. (`cargo test` builds the examples, but
/// `cargo test --test reliability` does not; `cargo build` is a no-op when
/// they are fresh.)
fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    // This test runs from target/<profile>/deps/reliability-<hash>.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    BUILT.get_or_init(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--example", "echo_server", "--example", "soak"])
            .args(["--example", "loadgen"])
            // The shootout's other servers, for the test that checks what
            // they all share (`every_shootout_server_raises_…`).
            .args(["--example", "echo_tokio", "--example", "echo_mio_raw"])
            .args(["--example", "echo_threads", "--example", "echo_pool"])
            .arg("--target-dir")
            .arg(profile_dir.parent().unwrap())
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        match profile_dir.file_name().and_then(|p| p.to_str()) {
            Some("debug") => {}
            Some("release") => drop(cargo.arg("--release")),
            Some(other) => drop(cargo.args(["--profile", other])),
            None => {}
        }
        let status = cargo.status().expect("run cargo build");
        assert!(status.success(), "cargo build --example failed");
    });
    profile_dir.join("examples").join(name)
}

/// `examples/echo_server`, running as a child process on a free port.
/// Killed (by its PID) when dropped, if it has not exited.
struct Server {
    child: Child,
    addr: SocketAddr,
    /// Its stderr (the log) so far, collected by a thread.
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server with `args`, logging at `info`.
    fn start(args: &[&str]) -> Server {
        Server::start_logging(args, "info")
    }

    /// Starts the server with `args` and `RUST_LOG=rust_log`, and waits for
    /// its "listening on ADDR" line.
    fn start_logging(args: &[&str], rust_log: &str) -> Server {
        let mut child = spawn_echo_server(["--addr", "127.0.0.1:0"].iter().chain(args), rust_log);
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in stderr.lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        let _ = stdout.read_line(&mut first);
        let Some(addr) = first
            .trim()
            .strip_prefix("listening on ")
            .and_then(|addr| addr.parse().ok())
        else {
            // No `Server` yet to do it on drop: stop the child here.
            let _ = child.kill();
            let _ = child.wait();
            util::untrack_child(child.id());
            panic!(
                "unexpected first line {first:?}; log: {}",
                log.lock().unwrap()
            )
        };
        // Drain the rest so the server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Server { child, addr, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log so far.
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`; false if `within` passes.
    /// Check the log through this, not `log()`, after the server did
    /// something: the log comes through a pipe that a thread of this
    /// process reads, and may lag behind what the test saw.
    fn wait_for_log(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while !self.log().contains(needle) {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Sends signal `name` ("TERM", "INT") to the server.
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the server to exit; `None` if it is still running after
    /// `within`.
    fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// A new blocking client with a 5 s read timeout.
    fn connect(&self) -> StdStream {
        let stream = StdStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        util::untrack_child(self.child.id());
    }
}

/// Sends `msg` and checks that exactly it comes back.
fn round_trip(stream: &mut StdStream, msg: &[u8]) -> std::io::Result<()> {
    stream.write_all(msg)?;
    let mut back = vec![0; msg.len()];
    stream.read_exact(&mut back)?;
    assert_eq!(back, msg, "the echo differs from what was sent");
    Ok(())
}

/// A client on its own thread doing round trips of 64-byte messages until
/// stopped, timing each: a connection that should be unaffected by
/// whatever the test does to the others.
struct Bystander {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<Vec<Duration>, String>>,
}

impl Bystander {
    fn start(addr: SocketAddr, seed: u64) -> Bystander {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut stream = StdStream::connect(addr).map_err(|e| e.to_string())?;
            stream.set_nodelay(true).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut rng = Rng(seed);
            let mut times = Vec::new();
            while !flag.load(SeqCst) {
                let mut msg = [0u8; 64];
                rng.fill(&mut msg);
                let start = Instant::now();
                round_trip(&mut stream, &msg).map_err(|e| format!("round trip failed: {e}"))?;
                times.push(start.elapsed());
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(times)
        });
        Bystander { stop, thread }
    }

    /// Stops the client; returns its round-trip times, or why it failed.
    fn finish(self) -> Vec<Duration> {
        self.stop.store(true, SeqCst);
        match self.thread.join().unwrap() {
            Ok(times) => times,
            Err(e) => panic!("a bystander connection was disturbed: {e}"),
        }
    }
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

// ──────────────────────── 1. out of descriptors ────────────────────────

#[test]
fn out_of_descriptors_on_accept_the_server_backs_off_without_spinning_and_recovers() {
    let _serial = serial();
    let mut server = Server::start_logging(&["--max-fds", "48"], "warn");
    with_deadline(40, move || {
        // Descriptors the server holds before any client: stdio, epoll,
        // eventfd, listener, signal pipes.
        let base = process_fds(server.pid());
        let room = 48 - base;
        // 12 more clients than the server can hold: those wait in the
        // listener's backlog while accept fails with EMFILE.
        let mut clients: Vec<StdStream> = (0..room + 12).map(|_| server.connect()).collect();
        assert!(
            server.wait_for_log("Too many open files", Duration::from_secs(5)),
            "no EMFILE in the log: {}",
            server.log()
        );

        // At the limit: the server sleeps between retries. A server that
        // retried accept at once would burn a whole core (100 ticks/s).
        let before = process_cpu_ticks(server.pid());
        std::thread::sleep(Duration::from_secs(1));
        let ticks = process_cpu_ticks(server.pid()) - before;
        assert!(
            ticks <= 10,
            "the server used {ticks} ticks of CPU in 1 s at its limit"
        );
        assert!(server.is_running());
        // The connections it did accept are still served.
        round_trip(&mut clients[0], b"still here").unwrap();

        // Free 25 descriptors: the waiting clients and a new one get served.
        clients.drain(..25);
        let start = Instant::now();
        clients.push(server.connect());
        for (i, client) in clients.iter_mut().enumerate() {
            round_trip(client, format!("client {i}").as_bytes()).unwrap();
        }
        // One backoff (at most 500 ms) plus slack.
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "recovery took {:?}",
            start.elapsed()
        );
        assert!(server.is_running());
    });
}

/// Every server of the shootout raises its own soft limit on descriptors
/// to the hard one, as coop's `echo_server` and `loadgen` do: one started
/// by hand (or by `scripts/ab.py`) under a shell's usual soft limit of
/// 1,024 must not fail at 10,000 connections where coop serves them all.
/// Each starts here under a soft limit of 64 (the hard one left as it is)
/// and must serve 100 connections at once. Before the fix the baselines
/// stopped at about 60, the rest left in the backlog with `EMFILE`.
#[test]
fn every_shootout_server_raises_its_soft_descriptor_limit_to_the_hard_one() {
    const CONNS: usize = 100;
    let _serial = serial();
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    if hard < 2 * CONNS as u64 {
        eprintln!("a hard limit of {hard} descriptors is too low for this test");
        return;
    }
    let servers = [
        ("echo_server", &[][..]),
        ("echo_tokio", &[]),
        ("echo_mio_raw", &[]),
        ("echo_threads", &[]),
        ("echo_pool", &["--workers", "100"]),
    ];
    let paths: Vec<(PathBuf, &[&str])> = servers
        .iter()
        .map(|&(name, extra)| (example(name), extra))
        .collect();
    with_deadline(60, move || {
        for (path, extra) in paths {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            // `sh` lowers the soft limit and execs the server in its place.
            let mut child = Command::new("sh")
                .args(["-c", r#"ulimit -Sn 64 && exec "$0" "$@""#])
                .arg(&path)
                .args(["--addr", "127.0.0.1:0"])
                .args(extra)
                .env("RUST_LOG", "error")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            util::track_child(child.id());
            let mut first = String::new();
            let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut first);
            let addr: SocketAddr = first
                .trim()
                .strip_prefix("listening on ")
                .and_then(|addr| addr.parse().ok())
                .unwrap_or_else(|| panic!("{name}: unexpected first line {first:?}"));
            let mut clients: Vec<StdStream> = (0..CONNS)
                .map(|_| StdStream::connect(addr).unwrap())
                .collect();
            // Stops at the first connection with no echo within 3 s.
            let mut served = 0;
            for client in &mut clients {
                client
                    .set_read_timeout(Some(Duration::from_secs(3)))
                    .unwrap();
                if round_trip(client, format!("client {served}").as_bytes()).is_err() {
                    break;
                }
                served += 1;
            }
            let _ = child.kill();
            let _ = child.wait();
            util::untrack_child(child.id());
            assert_eq!(
                served, CONNS,
                "{name} under a soft limit of 64 descriptors served {served} of {CONNS}"
            );
        }
    });
}

// ──────────────────────── 2. a client resets ────────────────────────

#[test]
fn a_reset_connection_ends_with_a_logged_error_and_the_others_are_untouched() {
    let _serial = serial();
    let server = Server::start(&[]);
    with_deadline(30, move || {
        let bystanders: Vec<_> = (0..4)
            .map(|i| Bystander::start(server.addr, i + 1))
            .collect();

        // Mid-write: the client sends without reading, through a 16 KiB
        // receive window, so the server is blocked writing the echo back
        // when the reset arrives.
        let writer = connect_with_small_rcvbuf(server.addr);
        let writer_addr = writer.local_addr().unwrap();
        {
            let mut w = writer.try_clone().unwrap();
            w.set_write_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            // Times out once the server stops reading: it is then stuck
            // writing to us. (Not `write_all`, which retries a write cut
            // short by a signal with a fresh timeout, so that a process
            // stopped and continued often enough never stops writing.)
            let chunk = vec![7u8; 64 << 10];
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(3) {
                match w.write(&chunk) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break, // timed out (or the server is gone)
                }
            }
        }
        reset(writer);

        // Mid-read: the server is waiting for the next request.
        let mut reader = server.connect();
        let reader_addr = reader.local_addr().unwrap();
        round_trip(&mut reader, b"one request").unwrap();
        reset(reader);

        // Mid-request: sent, then reset before the echo is read.
        let mut sender = server.connect();
        let sender_addr = sender.local_addr().unwrap();
        sender.write_all(&[1u8; 64 << 10]).unwrap();
        reset(sender);

        for peer in [writer_addr, reader_addr] {
            let line = format!("{peer}: connection error");
            assert!(
                server.wait_for_log(&line, Duration::from_secs(5)),
                "no {line:?} in the log: {}",
                server.log()
            );
        }
        // The third may end either way (the server may have read
        // everything and be waiting again, or be mid-write): it must end.
        let ended = format!("{sender_addr}: ");
        assert!(
            server.wait_for_log(&format!("{ended}connection error"), Duration::from_secs(5))
                || server.log().contains(&format!("{ended}disconnected"))
        );

        // The bystanders kept echoing throughout, byte for byte.
        std::thread::sleep(Duration::from_millis(200));
        for b in bystanders {
            assert!(b.finish().len() > 10);
        }
        round_trip(&mut server.connect(), b"after the resets").unwrap();
    });
}

/// A client whose receive buffer is 16 KiB (set before connecting, so TCP
/// advertises a small window): a server writing to it soon blocks.
fn connect_with_small_rcvbuf(addr: SocketAddr) -> StdStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(16 << 10).unwrap();
    socket.connect(&addr.into()).unwrap();
    StdStream::from(socket)
}

/// Closes `stream` with SO_LINGER 0: the kernel sends RST, not FIN.
fn reset(stream: StdStream) {
    let socket = socket2::Socket::from(stream);
    socket.set_linger(Some(Duration::ZERO)).unwrap();
    drop(socket);
}

// ──────────────────────── 3. half-close ────────────────────────

#[test]
fn half_close_every_byte_comes_back_before_the_server_closes() {
    let _serial = serial();
    let server = Server::start_logging(&[], "warn");
    with_deadline(30, move || {
        // Small enough to sit in the socket buffers: write all of it, shut
        // down the write side, and only then read.
        let mut payload = vec![0u8; 64 << 10];
        Rng(3).fill(&mut payload);
        let mut stream = server.connect();
        stream.write_all(&payload).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        stream.read_to_end(&mut back).unwrap();
        assert!(back == payload, "64 KiB: got {} bytes back", back.len());

        // 4 MiB: more than the buffers hold, so a writer thread sends it
        // all and shuts down while this thread reads to end-of-file.
        let mut payload = vec![0u8; 4 << 20];
        Rng(4).fill(&mut payload);
        let payload = Arc::new(payload);
        let stream = server.connect();
        let mut w = stream.try_clone().unwrap();
        let sent = payload.clone();
        let writer = std::thread::spawn(move || {
            w.write_all(&sent).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut back = Vec::with_capacity(payload.len());
        (&stream).read_to_end(&mut back).unwrap();
        writer.join().unwrap();
        assert_eq!(back.len(), payload.len());
        assert!(back == *payload, "4 MiB: the echo differs");
    });
}

// ──────────────────────── 4. a client that never reads ────────────────────────

#[test]
fn a_client_that_never_reads_is_held_back_by_tcp_not_by_server_memory() {
    let _serial = serial();
    let server = Server::start_logging(&[], "warn");
    with_deadline(40, move || {
        // Warm up, then take the baseline.
        let mut warm = server.connect();
        for _ in 0..100 {
            round_trip(&mut warm, &[5u8; 4096]).unwrap();
        }
        let rss_before = process_rss_kib(server.pid());
        let bystander = Bystander::start(server.addr, 42);

        // Push up to 64 MiB that we never read back. Once the socket
        // buffers fill, the server's write blocks, it stops reading, and our
        // writes stop too: stop when no byte has moved for 500 ms.
        const BUDGET: usize = 64 << 20;
        let hog = connect_with_small_rcvbuf(server.addr);
        hog.set_nonblocking(true).unwrap();
        let chunk = vec![9u8; 64 << 10];
        let mut pushed = 0;
        let mut last_progress = Instant::now();
        while pushed < BUDGET && last_progress.elapsed() < Duration::from_millis(500) {
            match (&hog).write(&chunk) {
                Ok(n) => {
                    pushed += n;
                    last_progress = Instant::now();
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Err(e) => panic!("write: {e}"),
            }
        }
        let rss_stalled = process_rss_kib(server.pid());
        let mut times = bystander.finish();

        assert!(
            pushed < BUDGET,
            "all 64 MiB went in: the server must be buffering what it cannot write"
        );
        let grown = rss_stalled.saturating_sub(rss_before);
        assert!(
            grown < 4 << 10,
            "server RSS grew by {grown} KiB while a client pushed {} MiB it never read",
            pushed >> 20
        );
        // The other connection kept its latency while the hog was stuck.
        let slowest = *times.iter().max().unwrap();
        let typical = median(&mut times);
        // Generous bounds for a shared machine; a server stuck on the hog
        // would fail the bystander's 5 s read timeout outright.
        assert!(
            typical < Duration::from_millis(20),
            "median round trip {typical:?}"
        );
        assert!(
            slowest < Duration::from_secs(1),
            "slowest round trip {slowest:?}"
        );
        round_trip(&mut warm, b"still fine").unwrap();
        eprintln!(
            "pushed {} MiB before the stall; server RSS {rss_before} -> {rss_stalled} KiB; \
             bystander median {typical:?}, max {slowest:?}",
            pushed >> 20
        );
    });
}

// ──────────────────────── 5. idle connections ────────────────────────

#[test]
fn idle_connections_are_closed_after_the_idle_timeout_and_active_ones_are_not() {
    let _serial = serial();
    let server = Server::start(&["--idle-timeout", "0.5"]);
    with_deadline(30, move || {
        let active = {
            let mut stream = server.connect();
            std::thread::spawn(move || {
                // A message every 100 ms for 1.5 s: never idle for 0.5 s.
                for i in 0..15u32 {
                    round_trip(&mut stream, &i.to_le_bytes()).unwrap();
                    std::thread::sleep(Duration::from_millis(100));
                }
                round_trip(&mut stream, b"still open").unwrap();
            })
        };
        // The clock starts before the connection: the server's idle
        // timer starts at its accept, which cannot come earlier.
        let start = Instant::now();
        let mut idle = server.connect();
        let mut buf = [0u8; 16];
        // A read with a timeout is not restarted after a signal (a stop
        // and continue of this process is one): read again then.
        let n = loop {
            match idle.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other.expect("EOF, not an error or a read timeout"),
            }
        };
        let waited = start.elapsed();
        assert_eq!(n, 0, "the idle client gets end-of-file");
        assert!(
            waited >= Duration::from_millis(450) && waited < Duration::from_secs(2),
            "closed after {waited:?}, not ~0.5 s"
        );
        active.join().unwrap();
        assert!(
            server.wait_for_log("idle for 0.5 s; closing", Duration::from_secs(5)),
            "{}",
            server.log()
        );
    });
}

// ──────────────────────── 6. many idle connections ────────────────────────

#[test]
fn ten_thousand_idle_connections_do_not_slow_the_busy_ones() {
    let _serial = serial();
    // This process holds 10,000 client sockets, the server 10,000 more.
    rlimit::increase_nofile_limit(20_000).unwrap();
    let server = Server::start_logging(&[], "warn");
    with_deadline(40, move || {
        const IDLE: usize = 10_000;
        const BUSY: usize = 100;
        // Each side is the best of a few short windows: the most round
        // trips, and the least server CPU time per round trip.
        let window = Duration::from_millis(500);
        let base = process_fds(server.pid());
        let mut without = Busy::NONE;
        for _ in 0..2 {
            without = without.best(Busy::measure(&server, BUSY, window));
        }
        wait_for_fds(&server, |n| n == base, "the busy connections did not close");

        // Connect in batches so the listen backlog never overflows (an
        // overflowing SYN is retried only after a second).
        let mut idle = Vec::with_capacity(IDLE);
        while idle.len() < IDLE {
            for _ in 0..500 {
                idle.push(StdStream::connect(server.addr).unwrap());
            }
            let want = base + idle.len() - 100;
            wait_for_fds(&server, |n| n >= want, "the server stopped accepting");
        }
        wait_for_fds(
            &server,
            |n| n >= base + IDLE,
            "the server stopped accepting",
        );

        // Slowed, if the busy throughput fell below half, *and* the
        // server spent over twice the CPU time on each round trip. On a
        // quiet machine the two go together (the server is busy all the
        // time; an idle connection that cost work in every turn would
        // show in both). On a loaded one, other processes take the CPU
        // from the clients and the server: with two CPU hogs running,
        // throughput alone halved in 6 runs of 11, while the CPU time per
        // round trip, which they cannot touch, stayed within 1.35 times.
        // (A loop that scanned every source for each event: 17 times.)
        let slowed = |b: &Busy| {
            b.round_trips * 2 < without.round_trips && b.cpu_per_trip > without.cpu_per_trip * 2.0
        };
        let mut with = Busy::NONE;
        for _ in 0..3 {
            with = with.best(Busy::measure(&server, BUSY, window));
            if !slowed(&with) {
                break;
            }
        }
        eprintln!(
            "{BUSY} busy connections: alone {without:?}, beside {IDLE} idle {with:?}, \
             per {window:?}"
        );
        assert!(
            !slowed(&with),
            "busy throughput fell from {} to {} round trips per {window:?} beside {IDLE} \
             idle connections, and the server's CPU time per round trip grew from {:.0} to \
             {:.0} ns",
            without.round_trips,
            with.round_trips,
            without.cpu_per_trip,
            with.cpu_per_trip
        );
        drop(idle);
    });
}

/// Waits up to 10 s until the server's descriptor count passes `ok`.
fn wait_for_fds(server: &Server, ok: impl Fn(usize) -> bool, failure: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let fds = process_fds(server.pid());
        if ok(fds) {
            return;
        }
        assert!(Instant::now() < deadline, "{failure} ({fds} descriptors)");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What busy connections got from the server in a window.
#[derive(Debug, Clone, Copy)]
struct Busy {
    /// Round trips done.
    round_trips: u64,
    /// The server's CPU time per round trip, in ns (`f64::MAX` for none).
    cpu_per_trip: f64,
}

impl Busy {
    /// Nothing yet: no round trip, and no CPU time per one (`f64::MAX`,
    /// which any measured window beats).
    const NONE: Busy = Busy {
        round_trips: 0,
        cpu_per_trip: f64::MAX,
    };

    /// One window of [`busy_round_trips`] against `server`.
    fn measure(server: &Server, conns: usize, window: Duration) -> Busy {
        let cpu_before = cpu_ns(server.pid());
        let round_trips = busy_round_trips(server.addr, conns, window);
        let cpu = cpu_ns(server.pid()) - cpu_before;
        let cpu_per_trip = match round_trips {
            0 => f64::MAX,
            n => cpu as f64 / n as f64,
        };
        Busy {
            round_trips,
            cpu_per_trip,
        }
    }

    /// The better of the two on each count: noise on a shared machine
    /// makes both worse more often than better.
    fn best(self, other: Busy) -> Busy {
        Busy {
            round_trips: self.round_trips.max(other.round_trips),
            cpu_per_trip: self.cpu_per_trip.min(other.cpu_per_trip),
        }
    }
}

/// Round trips `conns` connections complete in `window`, each doing
/// 64-byte ping-pongs as fast as it can (a closed loop), on a coop runtime.
/// (It used to scale the count up by the time a stall meter said this
/// process had been stalled, as if the server had not been: on a loaded
/// machine it is, and the scaled count came out twice what either side
/// could do.)
fn busy_round_trips(addr: SocketAddr, conns: usize, window: Duration) -> u64 {
    coop::block_on(async move {
        let done = Rc::new(Cell::new(0u64));
        let mut streams = Vec::new();
        for _ in 0..conns {
            let stream = coop::net::TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            streams.push(stream);
        }
        let end = Instant::now() + window;
        let tasks: Vec<_> = streams
            .into_iter()
            .map(|mut stream| {
                let done = done.clone();
                coop::spawn(async move {
                    let msg = [1u8; 64];
                    let mut back = [0u8; 64];
                    while Instant::now() < end {
                        stream.write_all(&msg).await.unwrap();
                        stream.read_exact(&mut back).await.unwrap();
                        done.set(done.get() + 1);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        done.get()
    })
}

// ──────────────────── 6b. one buffer lent to every connection ────────────────────

/// `--lend-buffer` (readiness by hand, docs/02-reactor.md): every byte
/// comes back, through the path that copies what a slow reader's socket
/// did not take and through the usual one, for eight clients at once. The
/// slow reader reads nothing for 300 ms while it sends 16 MiB through a
/// 16 KiB buffer: more than the server's send buffer takes (4 MiB at most
/// on Linux, `tcp_wmem`), so the server's writes fall short. (A test that
/// dropped the copied rest passed with 2 MiB, and fails with 16.)
#[test]
fn a_lent_buffer_echoes_every_byte_to_fast_and_slow_readers() {
    let _serial = serial();
    let server = Server::start_logging(&["--buf", "16384", "--lend-buffer"], "warn");
    let addr = server.addr;
    with_deadline(60, move || {
        let clients: Vec<_> = (0..9u64)
            .map(|i| {
                std::thread::spawn(move || {
                    let stream = if i == 0 {
                        connect_with_small_rcvbuf(addr)
                    } else {
                        StdStream::connect(addr).unwrap()
                    };
                    let mut payload = vec![0u8; if i == 0 { 16 << 20 } else { 300_000 }];
                    Rng(i + 7).fill(&mut payload);
                    let mut writer = stream.try_clone().unwrap();
                    let sent = payload.clone();
                    let write = std::thread::spawn(move || {
                        writer.write_all(&sent).unwrap();
                        writer.shutdown(Shutdown::Write).unwrap();
                    });
                    if i == 0 {
                        std::thread::sleep(Duration::from_millis(300)); // a slow reader
                    }
                    let mut back = Vec::new();
                    (&stream).read_to_end(&mut back).unwrap();
                    write.join().unwrap();
                    assert!(back == payload, "client {i}: the echo differs");
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
    });
    assert!(server.log().is_empty(), "warnings: {}", server.log());
}

/// What lending buys: a connection that has echoed a 64 KiB message and
/// gone idle holds a 64 KiB buffer in the usual server, and none with
/// `--lend-buffer`. Measured as the server's RSS growth over 200 such
/// connections; the usual server's growth shows the measurement sees
/// buffers at all.
#[test]
fn with_a_lent_buffer_an_idle_connection_holds_no_buffer() {
    let _serial = serial();
    with_deadline(60, || {
        const CONNS: u64 = 200;
        let mut per_conn = Vec::new();
        for flags in [
            &["--buf", "65536"][..],
            &["--buf", "65536", "--lend-buffer"],
        ] {
            let server = Server::start_logging(flags, "warn");
            let mut warm = server.connect();
            round_trip(&mut warm, &[1u8; 65536]).unwrap(); // the lent buffer, touched
            let before = process_rss_kib(server.pid());
            let clients: Vec<_> = (0..CONNS)
                .map(|i| {
                    let mut client = server.connect();
                    round_trip(&mut client, &[i as u8; 65536]).unwrap();
                    client
                })
                .collect();
            let grown = process_rss_kib(server.pid()).saturating_sub(before);
            per_conn.push(grown as f64 / CONNS as f64);
            drop(clients);
        }
        let (own, lent) = (per_conn[0], per_conn[1]);
        assert!(own > 16.0, "own buffers: {own:.1} KiB per connection");
        assert!(lent < 4.0, "lent buffer: {lent:.1} KiB per idle connection");
        eprintln!("KiB per idle connection: own 64 KiB buffer {own:.1}, lent {lent:.1}");
    });
}

// ──────────────────────── 7. graceful shutdown ────────────────────────

#[test]
fn sigterm_refuses_new_connections_at_once_and_lets_open_ones_finish() {
    let _serial = serial();
    let mut server = Server::start(&["--shutdown-grace", "5"]);
    let addr = server.addr;
    let (status, took) = with_deadline(30, move || {
        let mut open = server.connect();
        round_trip(&mut open, b"before").unwrap();

        server.signal("TERM");
        let signalled = Instant::now();
        // New connects are refused within moments.
        loop {
            match StdStream::connect(addr) {
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => break,
                // The listener closed during this handshake (seen once on
                // a loaded machine): the next try says which.
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
                Err(e) => panic!("connect: {e}"),
                Ok(early) => drop(early), // before the listener closed: fine
            }
            assert!(
                signalled.elapsed() < Duration::from_secs(1),
                "still accepting connections 1 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // (The listener is closed: the log line only has to come through
        // the pipe, which on a loaded machine may take a while.)
        assert!(server.wait_for_log("SIGTERM: closing the listener", Duration::from_secs(5)));

        // The open connection is still served, in full: 1 MiB both ways.
        let mut payload = vec![0u8; 1 << 20];
        Rng(7).fill(&mut payload);
        let mut w = open.try_clone().unwrap();
        let sent = payload.clone();
        let writer = std::thread::spawn(move || {
            w.write_all(&sent).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut back = Vec::new();
        open.read_to_end(&mut back).unwrap();
        writer.join().unwrap();
        assert!(back == payload, "the in-flight echo was cut short");

        // Its last connection closed: the server exits at once, not after
        // the whole grace period.
        let closed = Instant::now();
        let status = server
            .wait_exit(Duration::from_secs(4))
            .expect("server did not exit");
        (status, closed.elapsed())
    });
    assert!(status.success(), "exit status {status}");
    assert!(
        took < Duration::from_secs(2),
        "exit took {took:?} after the last close"
    );
}

#[test]
fn ctrl_c_with_a_connection_that_never_finishes_exits_after_the_grace_period() {
    let _serial = serial();
    let mut server = Server::start(&["--shutdown-grace", "0.5"]);
    with_deadline(30, move || {
        let mut lingering = server.connect();
        round_trip(&mut lingering, b"hi").unwrap();
        // The clock starts before the signal: the grace period cannot.
        let start = Instant::now();
        server.signal("INT");
        // The lingering connection is held open for the grace period, then
        // closed: a read waits for its end-of-file (or reset). (This used
        // to read only after the server had exited, when the kernel has
        // closed every socket of the process whatever the server did.)
        let mut buf = [0u8; 8];
        let read = loop {
            match lingering.read(&mut buf) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let closed = start.elapsed();
        assert!(
            matches!(&read, Ok(0))
                || matches!(&read, Err(e) if e.kind() == ErrorKind::ConnectionReset),
            "the lingering connection was not closed: {read:?}"
        );
        assert!(
            closed >= Duration::from_millis(450),
            "the lingering connection was closed {closed:?} after the signal, within the grace period"
        );
        let status = server
            .wait_exit(Duration::from_secs(3))
            .expect("server did not exit");
        let took = start.elapsed();
        assert!(status.success(), "exit status {status}");
        assert!(
            took >= Duration::from_millis(450),
            "exited after {took:?}, before the grace period"
        );
        assert!(
            server.wait_for_log("grace period over", Duration::from_secs(5)),
            "{}",
            server.log()
        );
    });
}

/// A time option that is not a number of seconds (negative, NaN, infinite)
/// stops the server before it listens, with a usage error naming the
/// option. Until session 31 such values were taken as any `f64` and made
/// into a `Duration` only where used: `--idle-timeout=-1` panicked right
/// after the port was announced, and `--shutdown-grace=-1` (or `NaN`,
/// `inf`) at the SIGTERM, exiting 101 instead of shutting down gracefully.
#[test]
fn a_time_option_that_is_not_seconds_is_refused_at_start_not_a_panic_later() {
    let _serial = serial();
    for (arg, option) in [
        ("--shutdown-grace=-1", "--shutdown-grace"),
        ("--shutdown-grace=NaN", "--shutdown-grace"),
        ("--shutdown-grace=inf", "--shutdown-grace"),
        ("--idle-timeout=-0.5", "--idle-timeout"),
    ] {
        let mut child = spawn_echo_server(&["--addr", "127.0.0.1:0", arg], "info");
        let pid = child.id();
        let (first, status, log) = with_deadline(20, move || {
            let mut first = String::new();
            let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut first);
            if first.starts_with("listening on") {
                // It started: see what the signal does to it.
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
            }
            let mut log = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut log);
            (first, child.wait().unwrap(), log)
        });
        util::untrack_child(pid);
        assert!(
            !first.starts_with("listening on"),
            "{arg}: the server started, then ended with {status}: {log}"
        );
        assert_eq!(status.code(), Some(2), "{arg}: {status}: {log}");
        assert!(
            log.contains(option) && log.contains("seconds"),
            "{arg}: the error does not name the option and what it wants: {log}"
        );
    }
}

/// `echo_tokio --events 0` is a usage error (status 2), not a panic
/// (101): tokio's `max_io_events_per_tick` asserts a capacity above 0,
/// where coop's runtime and the raw mio server take 0 as 1.
#[test]
fn echo_tokio_refuses_an_event_capacity_of_zero_at_the_command_line() {
    let _serial = serial();
    let child = Command::new(example("echo_tokio"))
        .args(["--addr", "127.0.0.1:0", "--events", "0"])
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Tracked: one that started serving is killed when the deadline passes.
    util::track_child(pid);
    let output = with_deadline(20, move || child.wait_with_output().unwrap());
    util::untrack_child(pid);
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{}: {log}", output.status);
    assert!(
        log.contains("--events"),
        "the error does not name the flag: {log}"
    );
}

/// A start-up failure says what failed: an address already in use names
/// the address and the bind, and the server exits with status 1 (not a
/// panic's 101). Until session 32 `main` returned the bare `io::Error`,
/// printed as `Error: Os { code: 98, kind: AddrInUse, message: "Address
/// already in use" }`: no word of which address, or what was being done.
#[test]
fn a_port_in_use_is_reported_with_its_address_and_a_failure_status() {
    let _serial = serial();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut child = spawn_echo_server(&["--addr", &addr], "info");
    let pid = child.id();
    let (out, status, log) = with_deadline(20, move || {
        let mut out = String::new();
        let _ = child.stdout.take().unwrap().read_to_string(&mut out);
        let mut log = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut log);
        (out, child.wait().unwrap(), log)
    });
    util::untrack_child(pid);
    drop(taken);
    assert!(!out.contains("listening on"), "it started: {out}");
    assert_eq!(status.code(), Some(1), "{status}: {log}");
    assert!(
        log.contains(&format!("echo_server: cannot bind {addr}: ")),
        "the error does not say what failed: {log}"
    );
}

#[test]
fn ctrl_c_is_a_future_that_completes_on_sigint() {
    let _serial = serial();
    with_deadline(20, || {
        coop::block_on(async {
            let got = coop::spawn(coop::signal::ctrl_c());
            // Two turns: the task's first poll installs the handler.
            coop::yield_now().await;
            coop::yield_now().await;
            std::thread::spawn(|| signal_hook::low_level::raise(SignalKind::interrupt().as_raw()))
                .join()
                .unwrap()
                .unwrap();
            coop::time::timeout(Duration::from_secs(5), got)
                .await
                .expect("ctrl_c() did not complete")
                .unwrap()
                .unwrap();
        });
    });
}

/// A `Signal` is a `futures` stream: each item is one `recv`, and
/// `next()` takes part in `select!` without `.fuse()` (a `FusedStream`).
#[test]
fn a_signal_is_a_stream_of_deliveries() {
    use futures::stream::{FusedStream, StreamExt};
    let _serial = serial();
    with_deadline(20, || {
        coop::block_on(async {
            let kind = SignalKind::user_defined2();
            let mut deliveries = signal(kind).unwrap();
            assert!(!deliveries.is_terminated());
            for _ in 0..2 {
                signal_hook::low_level::raise(kind.as_raw()).unwrap();
                let item = coop::time::timeout(Duration::from_secs(5), deliveries.next())
                    .await
                    .expect("the delivery is an item");
                assert!(matches!(item, Some(Ok(()))), "{item:?}");
            }
            // Nothing is pending now: the timer wins.
            let mut quiet = std::pin::pin!(coop::time::sleep(Duration::from_millis(50)));
            futures::select! {
                item = deliveries.next() => panic!("no signal was sent, got {item:?}"),
                () = quiet => {}
            }
        });
    });
}

#[test]
fn signals_coalesce_and_every_listener_is_woken() {
    let _serial = serial();
    with_deadline(20, || {
        coop::block_on(async {
            let kind = SignalKind::user_defined1();
            let mut first = signal(kind).unwrap();
            let mut second = signal(kind).unwrap();
            // Three deliveries before anyone reads...
            std::thread::spawn(move || {
                for _ in 0..3 {
                    signal_hook::low_level::raise(kind.as_raw()).unwrap();
                }
            })
            .join()
            .unwrap();
            // ...wake each listener once.
            let limit = Duration::from_secs(5);
            coop::time::timeout(limit, first.recv())
                .await
                .unwrap()
                .unwrap();
            coop::time::timeout(limit, second.recv())
                .await
                .unwrap()
                .unwrap();
            let again = coop::time::timeout(Duration::from_millis(100), first.recv()).await;
            assert!(
                again.is_err(),
                "the three deliveries woke recv more than once"
            );
            // A fourth delivery wakes it again.
            signal_hook::low_level::raise(kind.as_raw()).unwrap();
            coop::time::timeout(limit, first.recv())
                .await
                .unwrap()
                .unwrap();
        });
    });
}

/// Dropping a `Signal` removes its handler and closes the write end of
/// its pipe (its `Drop`), which the handler owns: a handler left behind
/// would keep one descriptor per `Signal` ever made, e.g. per pass of a
/// loop that calls `ctrl_c()` afresh. Counted in `/proc/self/fd` over 100
/// signals made and dropped (the bound leaves room for descriptors that
/// tests running alongside open meanwhile).
#[test]
fn a_dropped_signal_leaves_no_descriptor_behind() {
    let _serial = serial();
    let open_fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    with_deadline(20, move || {
        coop::block_on(async move {
            let kind = SignalKind::user_defined2();
            drop(signal(kind).unwrap()); // signal-hook's first-use set-up
            let before = open_fds();
            for _ in 0..100 {
                drop(signal(kind).unwrap());
            }
            let after = open_fds();
            assert!(
                after < before + 50,
                "{} descriptors more after 100 signals made and dropped",
                after.saturating_sub(before)
            );
        });
    });
}

#[test]
fn signal_is_an_error_outside_a_runtime_or_for_an_unhandleable_signal() {
    with_deadline(10, || {
        let _serial = serial();
        let err = signal(SignalKind::hangup()).unwrap_err();
        // The message names signals, not only sockets (session 29).
        assert!(
            err.to_string()
                .contains("sockets and signals must be created inside a coop runtime"),
            "{err}"
        );
        let mut hangup = coop::block_on(async {
            const SIGKILL: i32 = 9;
            assert!(signal(SignalKind::from_raw(SIGKILL)).is_err());
            // A number that is no signal: the error says which number (it
            // was a bare "Invalid argument (os error 22)" until session 31).
            let err = signal(SignalKind::from_raw(0)).unwrap_err();
            assert!(err.to_string().contains("signal 0"), "{err}");
            signal(SignalKind::hangup()).unwrap()
        });
        // Awaited in another runtime, whose loop would never see it: an
        // error at once, not a hang.
        let err = coop::block_on(hangup.recv()).unwrap_err();
        assert!(err.to_string().contains("socket (or signal)"), "{err}");
    });
}

// ──────────────────────── 8. the runtime itself ────────────────────────

/// Counts values made and dropped; [`Tracked`] is one such value.
#[derive(Default)]
struct Census {
    made: AtomicUsize,
    dropped: AtomicUsize,
}

impl Census {
    fn track(self: &Arc<Self>) -> Tracked {
        self.made.fetch_add(1, SeqCst);
        Tracked(self.clone())
    }

    fn alive(&self) -> usize {
        self.made.load(SeqCst) - self.dropped.load(SeqCst)
    }
}

struct Tracked(Arc<Census>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, SeqCst);
    }
}

fn own_fds() -> usize {
    process_fds(std::process::id())
}

#[test]
fn dropping_the_runtime_frees_its_tasks_timers_sockets_and_queued_blocking_jobs() {
    let _serial = serial();
    with_deadline(30, || {
        let census = Arc::new(Census::default());
        let fds_before = own_fds();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let rt = coop::Runtime::builder()
            .blocking_threads(1)
            .build()
            .unwrap();
        let addr = rt.block_on(async {
            // Timers: ten tasks asleep for an hour.
            for _ in 0..10 {
                let t = census.track();
                coop::spawn(async move {
                    let _t = t;
                    coop::time::sleep(Duration::from_secs(3600)).await;
                });
            }
            // Sockets: a listener, and five connections whose both ends
            // wait to read.
            let listener = listener();
            let addr = listener.local_addr().unwrap();
            let t = census.track();
            coop::spawn(async move {
                let _t = t;
                serve_echo(listener).await
            });
            for _ in 0..5 {
                let t = census.track();
                let mut stream = coop::net::TcpStream::connect(addr).await.unwrap();
                coop::spawn(async move {
                    let _t = t;
                    let mut buf = [0u8; 1];
                    let _ = stream.read(&mut buf).await;
                });
            }
            // Blocking jobs: one running (it waits for `release`), five
            // queued behind it on the single pool thread.
            let t = census.track();
            let (started_tx, started) = std::sync::mpsc::channel::<()>();
            coop::spawn_blocking(move || {
                let _t = t;
                started_tx.send(()).unwrap();
                let _ = wait.recv();
            });
            for _ in 0..5 {
                let t = census.track();
                coop::spawn_blocking(move || drop(t));
            }
            // All started: the job runs, and the five connections are
            // accepted, with their echo tasks. Waited for, not slept on:
            // a fixed 50 ms, on a loaded machine, could end before the
            // pool's thread took the job (then dropped unrun with the
            // others) or before the accept loop's turn.
            started
                .recv_timeout(Duration::from_secs(10))
                .expect("the first blocking job started");
            let deadline = Instant::now() + Duration::from_secs(10);
            while rt.metrics().io_sources < 1 + 5 + 5 {
                assert!(
                    Instant::now() < deadline,
                    "the connections were not accepted"
                );
                coop::time::sleep(Duration::from_millis(1)).await;
            }
            addr
        });
        let m = rt.metrics();
        assert_eq!(m.timers_pending, 10);
        assert_eq!(m.io_sources, 1 + 5 + 5);
        assert_eq!(
            m.tasks_alive,
            10 + 1 + 5 + 5 + 6,
            "sleepers, accept loop, readers, echo tasks, blocking-job waiters"
        );
        assert!(own_fds() > fds_before + 10);
        assert_eq!(census.alive(), 10 + 1 + 5 + 6);

        drop(rt);
        // Everything but the running job is gone at once.
        assert_eq!(census.alive(), 1, "only the running blocking job is left");
        // The listener closed (with its task, just counted gone). A test
        // running beside this one that starts a process holds a copy of
        // every descriptor of ours until the child's exec closes them, so
        // the socket may listen a moment longer (a connection once
        // succeeded here, 1 run in 12 under load): wait for the refusal.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match StdStream::connect(addr) {
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => break,
                other => assert!(
                    Instant::now() < deadline,
                    "the listener is still open: {other:?}"
                ),
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // The running job finishes on its thread; its closure is dropped.
        release.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        // (Descriptors may only go *below* the count from before: a
        // previous test's threads may still be closing their pipes.)
        while census.alive() > 0 || own_fds() > fds_before {
            assert!(
                Instant::now() < deadline,
                "{} values and {} descriptors left behind",
                census.alive(),
                own_fds() - fds_before
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    });
}

#[test]
fn a_waker_used_by_another_thread_while_and_after_the_runtime_drops_is_a_no_op() {
    let _serial = serial();
    with_deadline(30, || {
        for _ in 0..20 {
            let rt = coop::Runtime::new().unwrap();
            let waker = rt.block_on(async {
                let (tx, rx) = futures::channel::oneshot::channel::<Waker>();
                let mut tx = Some(tx);
                coop::spawn(poll_fn(move |cx| {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(cx.waker().clone());
                    }
                    Poll::<()>::Pending
                }));
                rx.await.unwrap()
            });
            // Wake from another thread before, during and after the drop.
            let stop = Arc::new(AtomicBool::new(false));
            let wakes = Arc::new(AtomicU64::new(0));
            let (flag, count) = (stop.clone(), wakes.clone());
            let waking = std::thread::spawn(move || {
                while !flag.load(SeqCst) {
                    waker.wake_by_ref();
                    count.fetch_add(1, SeqCst);
                }
                waker.wake();
            });
            let wait_for = |n: u64| {
                while wakes.load(SeqCst) < n {
                    std::thread::yield_now();
                }
            };
            wait_for(1000);
            drop(rt);
            wait_for(wakes.load(SeqCst) + 1000);
            stop.store(true, SeqCst);
            waking.join().unwrap();
        }
    });
}

/// What one task of the wake storm and the threads waking it share.
#[derive(Default)]
struct Probe {
    /// Wakes sent: each waking thread adds 1 *before* it calls `wake`.
    sent: AtomicU64,
    /// `sent` as the task read it in its latest poll.
    seen: AtomicU64,
    /// The task's polls.
    polls: AtomicU64,
    /// The task's waker, published at its first poll.
    waker: OnceLock<Waker>,
}

#[test]
fn a_storm_of_wakes_from_four_threads_loses_none_and_queues_no_task_twice() {
    let _serial = serial();
    const TASKS: usize = 100;
    const THREADS: u64 = 4;
    const WAKES: u64 = 10_000;
    with_deadline(60, || {
        let probes: Arc<Vec<Probe>> = Arc::new((0..TASKS).map(|_| Probe::default()).collect());
        let rt = coop::Runtime::new().unwrap();
        rt.block_on(async {
            for i in 0..TASKS {
                let probes = probes.clone();
                coop::spawn(poll_fn(move |cx| {
                    let probe = &probes[i];
                    // The executor cleared this task's "scheduled" flag just
                    // before this poll, and the loop clears a waker's
                    // "remote_queued" flag (with a swap) before it queues
                    // the task. So any wake sent after this read leads to
                    // another poll: if this read misses a wake, that wake's
                    // poll is still to come.
                    probe.seen.store(probe.sent.load(SeqCst), SeqCst);
                    probe.polls.fetch_add(1, SeqCst);
                    probe.waker.get_or_init(|| cx.waker().clone());
                    Poll::<()>::Pending
                }));
            }
            coop::yield_now().await; // every task has been polled once
            let threads: Vec<_> = (0..THREADS)
                .map(|t| {
                    let probes = probes.clone();
                    std::thread::spawn(move || {
                        let mut rng = Rng(t + 1);
                        for _ in 0..WAKES {
                            let probe = &probes[rng.below(TASKS as u64) as usize];
                            probe.sent.fetch_add(1, SeqCst);
                            probe.waker.get().unwrap().wake_by_ref();
                            // Short pauses now and then let the loop poll
                            // while the storm goes on, instead of after it.
                            if rng.below(8) == 0 {
                                std::thread::sleep(Duration::from_micros(rng.below(50)));
                            }
                        }
                    })
                })
                .collect();
            coop::spawn_blocking(move || threads.into_iter().for_each(|t| t.join().unwrap()))
                .await
                .unwrap();
            // No wake lost: every task is polled after its last wake.
            let deadline = Instant::now() + Duration::from_secs(5);
            while let Some(i) =
                (0..TASKS).find(|&i| probes[i].seen.load(SeqCst) != probes[i].sent.load(SeqCst))
            {
                assert!(
                    Instant::now() < deadline,
                    "task {i}: its last poll saw {} of {} wakes and no poll followed",
                    probes[i].seen.load(SeqCst),
                    probes[i].sent.load(SeqCst)
                );
                coop::time::sleep(Duration::from_millis(1)).await;
            }
        });
        // None duplicated: a task is queued only by a wake that finds it
        // idle, so it is polled at most once per wake, plus its first poll.
        // (Exact counts would be wrong: wakes that arrive while a task is
        // queued, or while its waker waits in the remote queue, merge into
        // one poll, and a wake whose work a poll already read, drained only
        // after that poll, costs one extra poll.)
        let mut polls = 0;
        for (i, probe) in probes.iter().enumerate() {
            let (p, s) = (probe.polls.load(SeqCst), probe.sent.load(SeqCst));
            assert!(p <= s + 1, "task {i} was polled {p} times for {s} wakes");
            assert!(p >= 2, "task {i} was never polled after a wake");
            polls += p;
        }
        assert_eq!(
            probes.iter().map(|p| p.sent.load(SeqCst)).sum::<u64>(),
            THREADS * WAKES
        );
        eprintln!("{} wakes, {polls} polls", THREADS * WAKES);
        assert_eq!(rt.metrics().tasks_alive, TASKS);
    });
}

/// A focused version of the storm above, aimed at one race: a wake from
/// another thread that lands while the loop is *starting* a poll of the
/// same task.
///
/// When this test was written, the executor cleared the task's
/// `scheduled` flag (then an `AtomicBool` in the waker) with a plain
/// `Release` store (`TaskWaker::clear_scheduled`), then polled. A waker on
/// another thread adds to `sent`, then `swap`s the flag to true and queues
/// the task only if it was false. Nothing orders the loop's store before
/// the poll's read of `sent`: the memory model (and x86's store buffer)
/// allow the poll to read `sent` *before* the cleared flag is visible,
/// while the waker's swap still sees `true` and skips the queue. That wake
/// is lost: the task sleeps with unread work. The fix was to clear with an
/// RMW, `scheduled.swap(false, AcqRel)`, which synchronizes with the
/// waker's swap (tokio's `transition_to_running` is a `compare_exchange`
/// for the same reason).
///
/// The `scheduled` flag now lives in the executor's slab slot, a plain
/// `Cell` that only the loop touches. A wake from another thread sets the
/// waker's `remote_queued` flag instead, with the same `swap`, and pushes
/// the waker only if it was false; the loop clears it when it drains the
/// remote queue, just before it queues the task for its poll. The race
/// moved there, and so did the fix: `Remote::drain_into` clears
/// `remote_queued` with `swap(false, AcqRel)`, not a store (its doc comment
/// has the argument). This test still aims at that moment: the first wake
/// of each pair makes the loop drain and poll, the second lands at a
/// random point while it does.
///
/// The window is short, so on x86 this 2-second stress would catch a
/// regression only rarely; it stays as a smoke test, and is stronger on
/// weaker hardware. tests/remote_wake_model.rs is a loom model of the
/// protocol as it is now. A loom model of the original protocol (the two flag
/// operations and the counter) found the lost wake at once with the
/// `Release` store, and none with the `swap`.
#[test]
fn a_wake_that_races_the_start_of_a_poll_is_never_lost() {
    let _serial = serial();
    with_deadline(120, || {
        let probe = Arc::new(Probe::default());
        let rt = coop::Runtime::new().unwrap();
        let lost = rt.block_on(async {
            let p = probe.clone();
            coop::spawn(poll_fn(move |cx| {
                // Read `sent` first, with nothing that fences before it.
                p.seen.store(p.sent.load(SeqCst), SeqCst);
                p.waker.get_or_init(|| cx.waker().clone());
                Poll::<()>::Pending
            }));
            coop::yield_now().await;
            let p = probe.clone();
            let waker = std::thread::spawn(move || {
                let wake = || {
                    p.sent.fetch_add(1, SeqCst);
                    p.waker.get().unwrap().wake_by_ref();
                };
                let mut rng = Rng(99);
                let end = Instant::now() + Duration::from_secs(2);
                while Instant::now() < end {
                    // The first wake starts a poll; the second lands at a
                    // random moment during it.
                    wake();
                    for _ in 0..rng.below(3000) {
                        std::hint::spin_loop();
                    }
                    wake();
                    // A slow loop (a busy machine) catches up within
                    // seconds; a lost wake never does.
                    let waited = Instant::now();
                    while p.seen.load(SeqCst) != p.sent.load(SeqCst) {
                        if waited.elapsed() > Duration::from_secs(5) {
                            return Some(p.sent.load(SeqCst));
                        }
                        std::hint::spin_loop();
                    }
                }
                None
            });
            coop::spawn_blocking(move || waker.join().unwrap())
                .await
                .unwrap()
        });
        if let Some(sent) = lost {
            panic!(
                "wake number {sent} was lost: the task's last poll saw {} and no poll followed",
                probe.seen.load(SeqCst)
            );
        }
    });
}

#[test]
fn a_task_whose_destructor_panics_does_not_take_the_loop_down() {
    let _serial = serial();
    with_deadline(20, || {
        let rt = coop::Runtime::new().unwrap();
        rt.block_on(async {
            // Finishes: its future is dropped after it returns.
            let finished = coop::spawn(async {
                let _bomb = PanicOnDrop("a destructor that panics");
                coop::yield_now().await;
                7
            });
            // Aborted while pending.
            let aborted = coop::spawn(async {
                let _bomb = PanicOnDrop("a destructor that panics");
                std::future::pending::<()>().await;
            });
            coop::yield_now().await;
            aborted.abort();
            let err = finished.await.unwrap_err();
            assert!(err.is_panic(), "the handle reports the destructor's panic");
            // A cancellation's destructor panic is logged, not handed over
            // (src/runtime/executor.rs, ground rule 5).
            let err = aborted.await.unwrap_err();
            assert!(err.is_cancelled(), "the aborted task's handle says {err}");
            // The loop is fine: it still runs tasks and serves sockets.
            let listener = listener();
            let addr = listener.local_addr().unwrap();
            coop::spawn(serve_echo(listener));
            let mut stream = coop::net::TcpStream::connect(addr).await.unwrap();
            stream.write_all(b"alive").await.unwrap();
            let mut back = [0u8; 5];
            stream.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"alive");
            // Still pending when the runtime is dropped.
            coop::spawn(async {
                let _bomb = PanicOnDrop("a destructor that panics");
                std::future::pending::<()>().await;
            });
            coop::yield_now().await;
        });
        assert_eq!(
            rt.block_on(async { coop::spawn(async { 1 }).await.unwrap() }),
            1
        );
        drop(rt); // runs the third destructor: must not unwind out of drop
    });
}

/// Panics when woken: a waker whose owner has a bug.
struct PanicsWhenWoken;

impl std::task::Wake for PanicsWhenWoken {
    fn wake(self: Arc<Self>) {
        panic!("a waker that panics when woken");
    }
}

/// The loop calls some wakers itself, outside any task's poll: a due
/// timer's, and a socket's waker that is not its task's own. Such a waker
/// runs its owner's code, and a panic there must neither unwind out of
/// `block_on` nor leave the wakers after it in the same batch unwoken.
/// Here a timer with a panicking waker falls due in the same tick as six
/// tasks' sleeps, three filed before it and three after (whatever order
/// the wheel wakes a slot in, some come after the panic), and a socket is
/// read once under a panicking waker before its own task waits on it.
#[test]
fn a_waker_that_panics_when_the_loop_wakes_it_does_not_take_the_loop_down() {
    let _serial = serial();
    with_deadline(20, || {
        coop::block_on(async {
            let bad = Waker::from(Arc::new(PanicsWhenWoken));
            let mut bad_cx = std::task::Context::from_waker(&bad);

            // A test stalled past the deadline before the panicking
            // waker's sleep is filed proves nothing (the sleep is ready at
            // once), and goes again with a new deadline.
            for attempt in 1.. {
                let deadline = Instant::now() + Duration::from_millis(20);
                let spawn_three = || -> Vec<_> {
                    (0..3)
                        .map(|_| coop::spawn(coop::time::sleep_until(deadline)))
                        .collect()
                };
                let mut sleepers = spawn_three();
                coop::yield_now().await; // they file their timers
                let mut sleep = Box::pin(coop::time::sleep_until(deadline));
                let filed = sleep.as_mut().poll(&mut bad_cx).is_pending();
                sleepers.extend(spawn_three());
                for sleeper in sleepers {
                    sleeper.await.unwrap(); // woken, though one waker panicked
                }
                drop(sleep);
                if filed {
                    break;
                }
                assert!(
                    attempt < 10,
                    "every time, the deadline passed before the sleep was filed"
                );
            }

            let listener = listener();
            let mut peer = StdStream::connect(listener.local_addr().unwrap()).unwrap();
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 8];
            let mut read = stream.read(&mut buf);
            assert!(std::pin::Pin::new(&mut read).poll(&mut bad_cx).is_pending());
            drop(read); // its waker stays in the socket's slot until an event
            peer.write_all(b"x").unwrap();
            let n = coop::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
            assert_eq!(n.expect("the read was never woken").unwrap(), 1);
        });
    });
}

// ──────────────────────── loadgen taking turns ────────────────────────

/// CPU time of a single-threaded process so far, in ns (`/proc/PID/schedstat`).
fn cpu_ns(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).expect("schedstat");
    text.split_whitespace().next().unwrap().parse().unwrap()
}

/// `word=value`'s value in a loadgen line.
fn word<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// Adds to `during[target]` the CPU time each server used since `last`, for
/// the slice line `line` of server `target`, and checks the slice echoed.
fn charge(
    during: &mut [[u64; 2]; 2],
    last: &mut [u64; 2],
    pids: [u32; 2],
    target: usize,
    line: &str,
) {
    let now = pids.map(cpu_ns);
    let msgs: u64 = word(line, "msgs").expect("msgs=").parse().unwrap();
    assert!(msgs > 0, "{line}");
    for k in 0..2 {
        during[target][k] += now[k] - last[k];
    }
    *last = now;
}

/// While one server had its slices, the other was idle: the echoes in
/// flight were all back before the next server's slice began.
fn assert_one_busy_at_a_time(during: [[u64; 2]; 2]) {
    for (busy, idle) in [(0, 1), (1, 0)] {
        assert!(
            during[busy][idle] * 20 < during[busy][busy],
            "during server {busy}'s slices: {} ns for it, {} ns for the other",
            during[busy][busy],
            during[busy][idle]
        );
    }
}

/// Starts loadgen on `addr` (one server, or several separated by commas)
/// in the turn-taking mode both turns tests use: 4 connections per server,
/// 100 ms slices, marking each and waiting for a line on stdin
/// (`--handshake`). `extra` adds flags (`--slices`).
fn loadgen_in_turns(addr: &str, secs: &str, extra: &[&str]) -> std::process::Child {
    Command::new(example("loadgen"))
        .args(["--addr", addr])
        .args(extra)
        .args(["--conns", "4", "--secs", secs, "--slice-ms", "100"])
        .args(["--mark-window", "--handshake"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .inspect(|child| util::track_child(child.id()))
        .expect("start examples/loadgen")
}

/// Waits for a child that [`loadgen_in_turns`] (or a test) tracked, forgets
/// it, and checks that it exited 0.
fn assert_exits_ok(child: &mut std::process::Child) {
    let status = child.wait().unwrap();
    util::untrack_child(child.id());
    assert!(status.success(), "exit status {status}");
}

#[test]
fn loadgen_taking_turns_loads_one_server_at_a_time() {
    let _serial = serial();
    with_deadline(30, move || {
        let (a, b) = (Server::start(&[]), Server::start(&[]));
        let pids = [a.pid(), b.pid()];
        let mut loadgen = loadgen_in_turns(&format!("{},{}", a.addr, b.addr), "0.6", &[]);
        let mut answer = loadgen.stdin.take().unwrap();
        let lines = BufReader::new(loadgen.stdout.take().unwrap()).lines();
        // CPU time each server used during each server's slices.
        let mut during = [[0u64; 2]; 2];
        let mut last = pids.map(cpu_ns);
        let (mut order, mut result) = (Vec::new(), None);
        for line in lines {
            let line = line.unwrap();
            if line.starts_with("slice") {
                match word(&line, "target") {
                    Some(target) => {
                        let target: usize = target.parse().unwrap();
                        order.push(target);
                        charge(&mut during, &mut last, pids, target, &line);
                    }
                    None => last = pids.map(cpu_ns),
                }
                answer.write_all(b"go\n").unwrap();
            } else if line.starts_with("conns=") {
                result = Some(line);
            }
        }
        assert_exits_ok(&mut loadgen);
        let result = result.expect("a result line");
        assert!(
            result.contains(" errors=0 ") && result.contains("connected=8"),
            "{result}"
        );
        // Six slices of 100 ms each, in turns.
        assert_eq!(order, [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
        assert_one_busy_at_a_time(during);
        // The summary's rate is its in-slice echoes over the slices' time: 12
        // slices of 100 ms, without the drains after them (which its echoes
        // leave out).
        let secs: f64 = word(&result, "secs").unwrap().parse().unwrap();
        assert!((secs - 1.2).abs() < 1e-6, "{result}");
    });
}

/// Times that a `Duration` cannot hold are bad arguments (exit code 2),
/// not a panic (101) in the middle of a run.
#[test]
fn loadgen_refuses_times_too_long_to_hold() {
    with_deadline(30, move || {
        for args in [
            ["--secs", "1e20"],
            ["--connect-timeout", "1e20"],
            ["--connect-rate", "1e-300"],
        ] {
            let out = Command::new(example("loadgen"))
                .args(["--addr", "127.0.0.1:9", "--conns", "1"])
                .args(args)
                .output()
                .expect("run examples/loadgen");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains(args[0]), "{args:?}: {stderr}");
        }
    });
}

/// The shootout's way at 10,000 connections: one loadgen per server, each in
/// slices (`--slices`), and the parent answering them in turn.
#[test]
fn loadgens_in_slices_take_turns_when_the_parent_answers() {
    let _serial = serial();
    with_deadline(30, move || {
        let (a, b) = (Server::start(&[]), Server::start(&[]));
        let pids = [a.pid(), b.pid()];
        let mut loadgens: Vec<_> = [&a, &b]
            .iter()
            .map(|server| {
                let mut child = loadgen_in_turns(&server.addr.to_string(), "0.3", &["--slices"]);
                let stdin = child.stdin.take().unwrap();
                let lines = BufReader::new(child.stdout.take().unwrap()).lines();
                (child, stdin, lines)
            })
            .collect();
        for (_, _, lines) in &mut loadgens {
            assert_eq!(lines.next().expect("a line").unwrap(), "slice start");
        }
        let mut during = [[0u64; 2]; 2];
        let mut last = pids.map(cpu_ns);
        for _round in 0..3 {
            for (k, (_, stdin, lines)) in loadgens.iter_mut().enumerate() {
                stdin.write_all(b"go\n").unwrap();
                let line = lines.next().expect("a slice line").unwrap();
                assert_eq!(word(&line, "target"), Some("0"), "{line}");
                charge(&mut during, &mut last, pids, k, &line);
            }
        }
        // After its last slice each one waits once more, then reports.
        for (child, stdin, lines) in &mut loadgens {
            stdin.write_all(b"go\n").unwrap();
            let result = lines
                .map(Result::unwrap)
                .find(|l| l.starts_with("conns="))
                .expect("a result line");
            assert!(
                result.contains(" errors=0 ") && result.contains("connected=4"),
                "{result}"
            );
            assert_exits_ok(child);
        }
        assert_one_busy_at_a_time(during);
    });
}

/// The shootout's matrix reads a server's CPU time at loadgen's two window
/// marks, and may be late to do so (at 10,000 connections the
/// thread-per-connection server has thousands of threads ready on its CPU).
/// With `--handshake` loadgen waits at each mark, with no echo in flight:
/// the server is idle, and between the marks it did the work of exactly
/// the `served` echoes. A slow thread-per-connection echo server here (each
/// echo leaves 30 ms after its message came) counts the bytes it echoes; a
/// late reader (a sleep) must see the same count as a prompt one, and the
/// count between the marks must be `served` messages.
#[test]
fn loadgen_waits_at_its_window_marks_with_nothing_in_flight() {
    let _serial = serial();
    with_deadline(30, move || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let echoed = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&echoed);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n @ 1..) = stream.read(&mut buf) {
                        std::thread::sleep(Duration::from_millis(30));
                        // Counted before the echo leaves, so loadgen cannot
                        // have it back before it is counted.
                        counter.fetch_add(n as u64, SeqCst);
                        if stream.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let mut loadgen = Command::new(example("loadgen"))
            .args(["--addr", &addr.to_string(), "--conns", "4", "--size", "64"])
            .args(["--secs", "0.3", "--mark-window", "--handshake"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .inspect(|child| util::track_child(child.id()))
            .expect("start examples/loadgen");
        let mut answer = loadgen.stdin.take().unwrap();
        let mut marks = Vec::new();
        let mut result = None;
        for line in BufReader::new(loadgen.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            if line.starts_with("window") {
                let prompt = echoed.load(SeqCst);
                std::thread::sleep(Duration::from_millis(150));
                let late = echoed.load(SeqCst);
                assert_eq!(
                    late, prompt,
                    "the server worked while loadgen waited at {line:?}"
                );
                marks.push((line, late));
                answer.write_all(b"go\n").unwrap();
            } else if line.starts_with("conns=") {
                result = Some(line);
            }
        }
        assert_exits_ok(&mut loadgen);
        let result = result.expect("a result line");
        assert!(result.contains(" errors=0 "), "{result}");
        let [(start, at_start), (end, at_end)] = <[_; 2]>::try_from(marks).expect("two marks");
        assert_eq!(
            (start.as_str(), end.as_str()),
            ("window start", "window end")
        );
        assert_eq!(
            at_start,
            4 * 64,
            "only the warm-up echoes before the window"
        );
        let number = |key| -> u64 { word(&result, key).expect(key).parse().unwrap() };
        let (msgs, served) = (number("msgs"), number("served"));
        assert!(msgs > 0 && served >= msgs, "{result}");
        assert_eq!(at_end - at_start, served * 64, "{result}");
    });
}

// ──────────────────────── soak ────────────────────────

#[test]
fn a_short_soak_has_no_errors_and_leaks_neither_memory_nor_descriptors() {
    let _serial = serial();
    // Slow-poll warnings are allowed here: on a loaded CI machine the
    // server's loop thread waits for a CPU, and the runtime, which times
    // polls by the wall clock, logs that as a slow poll (seen in session
    // 28 with two CPU hogs: one warning failed the soak). A real stall
    // still fails it through the 5 s step timeout, and every other
    // warning still counts as an error.
    let output = run_soak(
        &["--secs", "3", "--conns", "200", "--max-slow-polls", "1000"],
        40,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "soak failed: {stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("soak "))
        .unwrap_or_else(|| panic!("no result line in: {stdout}"));
    let field = |key: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {key} in {line}"))
            .parse()
            .unwrap()
    };
    eprintln!("{line}");
    assert_eq!(field("errors"), 0, "{stdout}\n{stderr}");
    assert!(field("msgs") > 1000, "{line}");
    assert_eq!(
        field("fds_end"),
        field("fds_start"),
        "descriptors leaked: {line}"
    );
    // The server worked, and the soak could tell: tens of thousands of
    // echoes cost far more than one 10 ms clock tick.
    assert!(field("server_cpu_ms") > 0, "{line}");
    // The soak fails by itself on either leak (its exit status, above);
    // these say which.
    assert_eq!(field("leaks"), 0, "{stdout}\n{stderr}");
    // Three seconds give nine samples, enough to judge the CPU trend.
    assert!(
        line.split_whitespace().any(|kv| kv
            .strip_prefix("cpu_growth=")
            .is_some_and(|g| g.parse::<f64>().is_ok())),
        "no cpu_growth judged in {line}"
    );
    let grown = field("rss_end_kib").saturating_sub(field("rss_start_kib"));
    assert!(
        grown <= 2 << 10,
        "server RSS grew by {grown} KiB during the soak: {line}"
    );
}

/// Starts the soak with `args`, its output piped, tracked for
/// [`with_deadline`] (untrack it once it is waited for).
fn spawn_soak(args: &[&str]) -> std::process::Child {
    let soak = Command::new(example("soak"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start examples/soak");
    util::track_child(soak.id());
    soak
}

/// Reads the soak's output up to the line that says the load is on, and
/// returns it with the server's PID that line names (`server pid=N`).
fn read_until_load(stdout: &mut impl BufRead) -> (String, String) {
    let mut printed = String::new();
    loop {
        let start = printed.len();
        assert!(
            stdout.read_line(&mut printed).unwrap() > 0,
            "no load: {printed}"
        );
        let line = &printed[start..];
        if line.contains("connections open") {
            let pid = word(line, "pid").expect("the soak names its server");
            let pid = pid.to_owned();
            return (printed, pid);
        }
    }
}

/// Runs the soak with `args` under a deadline of `secs`.
fn run_soak(args: &[&str], secs: u64) -> std::process::Output {
    let soak = spawn_soak(args);
    let pid = soak.id();
    let output = with_deadline(secs, move || {
        soak.wait_with_output().expect("run examples/soak")
    });
    util::untrack_child(pid);
    output
}

/// A Python asyncio echo server for the soak's `--server`: it prints
/// `listening on ADDR`, echoes until the peer closes, and exits 0 on
/// SIGTERM. `setup` runs first (module level), `before_echo` before each
/// echo, `after_listen` once it listens (each indented to fit: 12 spaces
/// for `before_echo`'s later lines, 4 for `after_listen`'s).
fn python_echo_server(setup: &str, before_echo: &str, after_listen: &str) -> String {
    format!(
        r#"#!/usr/bin/env python3
import asyncio, signal, sys, time
{setup}
async def echo(reader, writer):
    try:
        while data := await reader.read(65536):
            {before_echo}
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
async def main():
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    print("listening on %s:%d" % server.sockets[0].getsockname()[:2], flush=True)
    {after_listen}
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()
asyncio.run(main())
"#
    )
}

/// A script the soak runs as its `--server`, in a folder of its own that
/// is removed when this is dropped (also when the test fails).
struct ServerScript {
    dir: std::path::PathBuf,
    path: std::path::PathBuf,
}

impl ServerScript {
    /// Writes `text` as the executable `name`, in a fresh folder
    /// `coop-soak-NAME-PID` under the temporary directory.
    fn new(name: &str, text: &str) -> ServerScript {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("coop-soak-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        ServerScript { dir, path }
    }

    /// The script's path, as a `--server` argument.
    fn arg(&self) -> &str {
        self.path.to_str().expect("a UTF-8 temporary path")
    }

    /// Runs the soak against this script with `flags` (words split on
    /// spaces) under a deadline of `secs`.
    fn soak(&self, flags: &str, secs: u64) -> std::process::Output {
        let mut args: Vec<&str> = flags.split_whitespace().collect();
        args.extend(["--server", self.arg()]);
        run_soak(&args, secs)
    }
}

impl Drop for ServerScript {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A server that stalls fails the soak, even if it recovers: every client
/// step has a bound (`--step-timeout`). Without one, a stuck server hung
/// the soak, and a stall that ended went unreported (errors=0).
#[test]
fn a_server_that_stalls_fails_the_soak() {
    let _serial = serial();
    let args = "--secs 2 --conns 10 --churn 0 --max-msg 64 --step-timeout 1";
    let mut soak = spawn_soak(&args.split(' ').collect::<Vec<_>>());
    let soak_pid = soak.id();
    let output = with_deadline(30, move || {
        // Stop the soak's server for 2.5 s once the load is on (the soak
        // names it then), then let it go on. Not the soak's first child:
        // that can be a short-lived other, the `setpriv --pdeathsig KILL
        // true` the soak runs first to learn whether `setpriv` works, or a
        // `getconf`, which until its exec is a fork of the soak. Stopping
        // one of those failed quietly, the server never stalled, and the
        // soak passed: the "early end" seen in sessions 28 and 31, on a
        // loaded machine, where such a child lives long enough to be seen.
        let mut stdout = BufReader::new(soak.stdout.take().unwrap());
        let (mut printed, server) = read_until_load(&mut stdout);
        let signal = |name: &str| {
            Command::new("kill")
                .args([name, &server])
                .status()
                .expect("run kill")
        };
        assert!(signal("-STOP").success(), "the server is gone");
        std::thread::sleep(Duration::from_millis(2_500));
        assert!(signal("-CONT").success());
        stdout.read_to_string(&mut printed).unwrap();
        (printed, soak.wait_with_output().expect("run examples/soak"))
    });
    util::untrack_child(soak_pid);
    let (stdout, output) = output;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("no answer within 1s"), "{stderr}");
    assert!(!stdout.contains(" errors=0 "), "{stdout}");
}

/// A server whose every echo costs more the longer it has run fails the
/// soak, though it leaks neither memory nor descriptors and answers every
/// message: here a Python asyncio echo server that, before each echo, adds
/// up a range as long as its uptime (50,000 numbers a second), as a loop
/// that re-scans everything it has ever seen would. Until session 26 the
/// soak printed `cpu_us/msg` and judged nothing by it.
#[test]
fn a_server_whose_work_grows_with_time_fails_the_soak() {
    let _serial = serial();
    let script = ServerScript::new(
        "slower-server.py",
        &python_echo_server(
            "start = time.monotonic()",
            "sum(range(int((time.monotonic() - start) * 50_000)))",
            "",
        ),
    );
    let output = script.soak("--secs 4 --conns 10 --churn 0 --max-msg 64", 40);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    // Only the CPU check failed: the server answered every message,
    // stopped cleanly, and kept its memory and descriptors.
    assert!(stdout.contains(" errors=0 leaks=1 "), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("CPU time per message grew"),
        "{stdout}\n{stderr}"
    );
}

/// Slow-poll warnings in the server's log count as errors only past
/// `--max-slow-polls`; any other warning always does. (The CI soak above
/// allows slow polls, which a loaded machine causes on its own.) The
/// server here is a plain Python echo server that logs two slow polls and
/// one other warning, in the runtime's words.
#[test]
fn slow_polls_fail_the_soak_only_past_their_allowance() {
    let _serial = serial();
    let script = ServerScript::new(
        "warning-server.py",
        &python_echo_server(
            "",
            "",
            r#"for what in ["slow poll: task 1 held the loop for 120.0 ms in one poll",
                 "slow poll: task 2 held the loop for 130.0 ms in one poll",
                 "accept failed: Too many open files"]:
        print("[WARN  coop] " + what, file=sys.stderr, flush=True)"#,
        ),
    );
    let soak = |allowed: &str| {
        let output = script.soak(
            &format!(
                "--secs 1 --conns 5 --churn 0 --max-msg 64 --max-cpu-growth 1000 \
                 --max-slow-polls {allowed}"
            ),
            30,
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    // Within the allowance: the two slow polls are reported, not errors;
    // the other warning is one.
    let within = soak("2");
    assert!(within.contains(" errors=1 "), "{within}");
    assert!(within.contains(" slow_polls=2"), "{within}");
    // Past it: all three count.
    let past = soak("1");
    assert!(past.contains(" errors=3 "), "{past}");
    assert!(past.contains(" slow_polls=2"), "{past}");
}

/// A soak that ends early with an error (here, a "server" whose first line
/// is not an address) stops its server first: dropping a `Child` alone left
/// the process running, an orphan of init.
#[test]
fn a_soak_that_fails_early_leaves_no_server_behind() {
    // The script writes its PID to a file of the test's own.
    let pid_file =
        std::env::temp_dir().join(format!("coop-soak-bad-server-{}.pid", std::process::id()));
    let script = ServerScript::new(
        "bad-server.sh",
        &format!(
            "#!/bin/sh\necho $$ > '{}'\necho 'not an address'\nexec sleep 30\n",
            pid_file.display()
        ),
    );
    let output = script.soak("--secs 1", 20);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unexpected server output"), "{stderr}");
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_owned();
    let alive = || std::path::Path::new(&format!("/proc/{pid}")).exists();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let leaked = alive();
    if leaked {
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
    }
    let _ = std::fs::remove_file(&pid_file);
    assert!(!leaked, "the soak's server (PID {pid}) outlived it");
}

/// A soak stopped by SIGTERM or SIGINT (`kill PID`, or `kill -INT PID`:
/// Ctrl-C in a terminal reaches the server as well, the soak alone does
/// not) stops its server too. It used to die at once by the signal and
/// leave the server running, adopted by init, with nobody to stop it.
/// SIGKILL cannot be caught: there the kernel kills the server, which the
/// soak starts behind `setpriv --pdeathsig KILL` (where `setpriv` runs).
#[test]
fn a_soak_stopped_by_a_signal_leaves_no_server_behind() {
    let _serial = serial();
    let pdeathsig = Command::new("setpriv")
        .args(["--pdeathsig", "KILL", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    let kill = pdeathsig.then_some(("-KILL", 9));
    if kill.is_none() {
        eprintln!("setpriv --pdeathsig is not available here: SIGKILL not tried");
    }
    for (signal, number) in [("-TERM", 15), ("-INT", 2)].into_iter().chain(kill) {
        let args = "--secs 30 --conns 10 --churn 0 --max-msg 64";
        let mut soak = spawn_soak(&args.split(' ').collect::<Vec<_>>());
        let soak_pid = soak.id();
        let (status, server) = with_deadline(30, move || {
            // Signal the soak once the load is on; it names its server then.
            let mut stdout = BufReader::new(soak.stdout.take().unwrap());
            let (_, server) = read_until_load(&mut stdout);
            util::track_child(server.parse().unwrap());
            let sent = Command::new("kill")
                .args([signal, &soak_pid.to_string()])
                .status()
                .expect("run kill");
            assert!(sent.success());
            (soak.wait_with_output().expect("wait for the soak"), server)
        });
        util::untrack_child(soak_pid);
        // Gone, or dead and not yet reaped by whoever adopted it.
        let running = || {
            std::fs::read_to_string(format!("/proc/{server}/stat"))
                .is_ok_and(|stat| !stat.rsplit(')').next().unwrap_or("").starts_with(" Z"))
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let leaked = running();
        if leaked {
            let _ = Command::new("kill").args(["-KILL", &server]).status();
        }
        util::untrack_child(server.parse().unwrap());
        let stderr = String::from_utf8_lossy(&status.stderr);
        assert!(
            !leaked,
            "{signal}: the soak's server (PID {server}) outlived it: {stderr}"
        );
        if number == 9 {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.status.signal(), Some(9), "{stderr}");
            continue;
        }
        // The soak says why it stopped, and exits as a shell reports a
        // process ended by that signal.
        assert_eq!(status.status.code(), Some(128 + number), "{stderr}");
        assert!(stderr.contains("stopped the server"), "{stderr}");
    }
}

/// A "server" that never prints its address fails the soak within
/// `--step-timeout`: the first line used to be read without a bound, and
/// the soak hung for as long as the server lived.
#[test]
fn a_server_that_never_says_where_it_listens_fails_the_soak() {
    let script = ServerScript::new("silent-server.sh", "#!/bin/sh\nexec sleep 30\n");
    let started = std::time::Instant::now();
    let output = script.soak("--secs 1 --step-timeout 1", 20);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("printed no address"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// When a deadline runs out, the hung closure still owns the processes it
/// started, and would never drop them: `with_deadline` kills the tracked
/// ones, so that none outlives the test run.
#[test]
fn a_deadline_that_runs_out_kills_the_children_it_strands() {
    let (tx, rx) = std::sync::mpsc::channel();
    let timed_out = std::panic::catch_unwind(|| {
        // 2 s: time for a loaded machine to start the child and track
        // it before the deadline; a hang of 10 s outlasts the deadline
        // however late it is noticed.
        with_deadline(2, move || {
            let child = Command::new("sleep").arg("30").spawn().expect("run sleep");
            util::track_child(child.id());
            tx.send(child.id()).unwrap();
            // Hang, holding the child (and then let this thread go).
            std::thread::sleep(Duration::from_secs(10));
            drop(child);
        })
    });
    assert!(timed_out.is_err(), "the deadline should have run out");
    let pid = rx.recv().unwrap();
    // Killed; the stranded `Child` was never waited for, so the process
    // may linger as a zombie until this one exits. Either is dead.
    let state = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("State:"))
                    .map(str::to_owned)
            })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let last = loop {
        let now = state();
        if now.as_deref().is_none_or(|s| s.contains('Z')) || std::time::Instant::now() > deadline {
            break now;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let dead = last.as_deref().is_none_or(|s| s.contains('Z'));
    if !dead {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    assert!(dead, "sleep {pid} still running: {last:?}");
}

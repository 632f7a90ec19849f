//! One cell of the matrix: one server, one connection count, one message size.
//!
//! 1. Start the server on `127.0.0.1:0` (pinned with `taskset` if asked) and
//!    read its `listening on <addr>` line. Note its idle RSS and threads, and
//!    the machine's `KernelStack`.
//! 2. Start a [`Sampler`] on the server, then `loadgen --mark-window
//!    --handshake` (pinned to the other CPU). When loadgen prints `window start`
//!    and `window end`, read the server's CPU time, then answer: loadgen waits
//!    at each mark with no echo in flight, so the difference is what the
//!    echoes loadgen calls `served` cost the server, however late we read.
//! 3. Parse loadgen's `conns=...` line, stop the sampler, see whether the server
//!    is still alive, and kill it.
//!
//! Every child sits in a [`Reaper`], which kills it by PID when dropped: at the
//! end of the cell, on an early return, and on a panic.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::child::command;
use crate::loadgen::{self, CpuClock, Load, Window};
use crate::procfs::{self, Sampler};
use crate::servers::Server;

/// How every cell is run.
pub struct Settings {
    /// Runs of each cell; the report keeps their medians.
    pub reps: usize,
    /// Where the release binaries are.
    pub bin_dir: PathBuf,
    /// Where server logs go, one file per cell.
    pub log_dir: PathBuf,
    pub secs: f64,
    pub connect_rate: f64,
    pub connect_timeout: f64,
    /// `Some((server_cpu, loadgen_cpu))` to pin with `taskset`.
    pub pin: Option<(usize, usize)>,
    /// `getconf CLK_TCK`.
    pub ticks_per_sec: u64,
}

/// Everything measured in one cell.
#[derive(Clone, Debug, Default)]
pub struct Measurement {
    pub load: Load,
    /// Server CPU time (user + system) between loadgen's marks, per echo it
    /// served in that time (loadgen's `served`), µs.
    pub cpu_us_per_echo: Option<f64>,
    /// Server CPU time inside the window over the window's length, percent
    /// (100 = one core busy all the time).
    pub server_cpu_pct: Option<f64>,
    /// The same for loadgen: near 100, loadgen is what limits req/s.
    pub loadgen_cpu_pct: Option<f64>,
    /// The same for every other process on the machine together: the noise.
    pub other_cpu_pct: Option<f64>,
    /// Where the server's CPU time was read: per-thread `schedstat` in
    /// nanoseconds, or clock ticks (1/100 s) when that was not possible.
    pub cpu_clock: CpuClock,
    /// `VmRSS` after startup, before any connection, KiB.
    pub idle_rss_kib: u64,
    /// `Threads:` after startup.
    pub idle_threads: u64,
    /// Peak `VmHWM`, KiB.
    pub peak_rss_kib: u64,
    /// Peak `Threads:`.
    pub peak_threads: u64,
    /// Rise of the machine's `KernelStack` from before the server started to
    /// its peak, KiB (system-wide, so other processes add noise).
    pub kernel_stack_rise_kib: i64,
    /// `Some(how)` if the server process died before we killed it.
    pub crashed: Option<String>,
    /// Lines the server wrote to its log (stderr, at `RUST_LOG=warn`).
    pub log_lines: usize,
    /// The server's first log line, if any.
    pub first_log_line: Option<String>,
    /// How many runs of the cell these numbers sum up (see `median.rs`).
    pub runs: usize,
    /// `cpu_us_per_echo` of every run, in the order the runs took turns
    /// (`None` for a run that failed), so that two servers can be compared
    /// run by run (see `report::targets`).
    pub cpu_runs: Vec<Option<f64>>,
    /// Echoes per second of every run, in the same order.
    pub rps_runs: Vec<Option<f64>>,
    /// Echoes back inside the window of every run, in the same order
    /// (`None` for a run that failed). A run that served none has no CPU
    /// per echo and no rate, like a failed run, but says something about
    /// the server: the report counts it against coop instead of leaving
    /// it out of the ratios (see [`Measurement::idle_runs`]).
    pub msgs_runs: Vec<Option<u64>>,
    /// Why each run of the cell that produced no numbers failed (the
    /// server did not start, loadgen was killed): the numbers above are
    /// the other runs'.
    pub failed_runs: Vec<String>,
}

impl Measurement {
    /// Lowest and highest `cpu_us_per_echo` over the runs that measured it.
    pub fn cpu_range(&self) -> Option<(f64, f64)> {
        self.cpu_runs.iter().flatten().fold(None, |range, &c| {
            Some(range.map_or((c, c), |(lo, hi): (f64, f64)| (lo.min(c), hi.max(c))))
        })
    }

    /// Runs in which the server stayed up and served no echo in the window.
    pub fn idle_runs(&self) -> usize {
        self.msgs_runs.iter().filter(|&&m| m == Some(0)).count()
    }

    /// Kernel stacks of the server's threads at peak: threads × 16 KiB.
    pub fn kernel_stack_kib(&self) -> u64 {
        self.peak_threads * procfs::KERNEL_STACK_KIB
    }

    /// What one connection costs, KiB: the RSS the connections added, plus the
    /// kernel stacks of the threads they added, divided by the connections.
    pub fn mem_per_conn_kib(&self, conns: usize) -> f64 {
        let rss = self.peak_rss_kib.saturating_sub(self.idle_rss_kib);
        let stacks = self.peak_threads.saturating_sub(self.idle_threads) * procfs::KERNEL_STACK_KIB;
        (rss + stacks) as f64 / conns as f64
    }
}

/// How a cell ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    Measured(Box<Measurement>),
    /// The cell produced no numbers (the server did not start, loadgen failed).
    Failed(String),
}

/// Kills a child by PID when dropped, then reaps it: at the end of a cell,
/// on an early return, on a panic. A shootout ended by a signal drops
/// nothing; for that, every child is started by [`command`], which has the
/// kernel kill it when the shootout's main thread ends (a `kill PID` of the
/// shootout alone used to leave its servers listening for ever; found in
/// review, session 25).
pub struct Reaper(pub Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Runs one cell. Never panics on a misbehaving server: that is a result.
pub fn run(server: &Server, conns: usize, size: usize, settings: &Settings) -> Outcome {
    match run_cell(server, conns, size, settings) {
        Ok(outcome) => outcome,
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// A server that has started and said where it listens.
pub struct Started {
    /// Kills it when dropped.
    pub child: Reaper,
    pub pid: u32,
    pub addr: SocketAddr,
}

/// Starts `server` on a free loopback port (pinned to the server CPU if
/// asked), its stderr going to `log_path`, and reads its address. The inner
/// `Err` says why it did not start, as a cell's result.
pub fn start_server(
    server: &Server,
    log_path: &Path,
    s: &Settings,
) -> io::Result<Result<Started, String>> {
    let mut child = command(&s.bin_dir.join(server.example), s.pin.map(|p| p.0))
        .args(["--addr", "127.0.0.1:0", "--buf", "4096"])
        .args(server.extra)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(log_path)?)
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let pid = child.id();
    let mut child = Reaper(child);
    match read_announcement(stdout, Duration::from_secs(10)) {
        Ok(addr) => Ok(Ok(Started { child, pid, addr })),
        Err(e) => {
            // Closing stdout and exiting are not one step: give it a moment.
            thread::sleep(Duration::from_millis(200));
            let died = child.0.try_wait().ok().flatten();
            Ok(Err(died.map_or(e.to_string(), |status| {
                format!("crashed at startup ({status})")
            })))
        }
    }
}

fn run_cell(server: &Server, conns: usize, size: usize, s: &Settings) -> io::Result<Outcome> {
    let stack_before = procfs::kernel_stack_kib().unwrap_or(0);
    let log_path = s
        .log_dir
        .join(format!("{}-{conns}x{size}.log", server.name));
    let Started {
        child: mut server_child,
        pid,
        addr,
    } = match start_server(server, &log_path, s)? {
        Ok(started) => started,
        Err(why) => return Ok(Outcome::Failed(why)),
    };
    // Let the runtime finish setting up before calling it idle.
    thread::sleep(Duration::from_millis(50));
    let idle = procfs::status(pid).unwrap_or_default();

    let sampler = Sampler::start(pid);
    let load = loadgen::run(addr, conns, size, pid, s);
    let peak = sampler.finish();

    let crashed = match server_child.0.try_wait() {
        Ok(Some(status)) => Some(format!("crashed ({status})")),
        _ => None,
    };
    drop(server_child); // kill it now, before the next cell
    let (load, window) = match load {
        Ok(pair) => pair,
        Err(e) if crashed.is_some() => {
            log::debug!("{}: loadgen: {e}", server.name);
            (Load::default(), Window::default())
        }
        Err(e) => return Ok(Outcome::Failed(format!("loadgen: {e}"))),
    };
    let cpu_secs = |ns: u64| ns as f64 / 1e9;
    // Between the marks the server did the work of `served` echoes and no
    // other (loadgen waits for the last ones before its end mark).
    let cpu_us_per_echo = window
        .server_ns
        .filter(|_| load.served > 0)
        .map(|ns| cpu_secs(ns) * 1e6 / load.served as f64);
    let percent = |ns: Option<u64>| {
        ns.zip(window.secs)
            .map(|(t, secs)| 100.0 * cpu_secs(t) / secs)
    };
    let tick_ns = 1_000_000_000 / s.ticks_per_sec.max(1);
    let others = window.machine_ticks.map(|all| {
        let ours = window.server_ns.unwrap_or(0) + window.loadgen_ns.unwrap_or(0);
        (all * tick_ns).saturating_sub(ours)
    });
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let rps = Some(load.rps).filter(|_| load.msgs > 0);
    let msgs = load.msgs;
    Ok(Outcome::Measured(Box::new(Measurement {
        load,
        cpu_us_per_echo,
        server_cpu_pct: percent(window.server_ns),
        loadgen_cpu_pct: percent(window.loadgen_ns),
        other_cpu_pct: percent(others),
        cpu_clock: window.server_clock,
        idle_rss_kib: idle.rss_kib,
        idle_threads: idle.threads,
        peak_rss_kib: peak.hwm_kib,
        peak_threads: peak.threads,
        kernel_stack_rise_kib: peak.kernel_stack_kib as i64 - stack_before as i64,
        crashed,
        log_lines: log.lines().count(),
        first_log_line: log.lines().next().map(str::to_string),
        runs: 1,
        cpu_runs: vec![cpu_us_per_echo],
        rps_runs: vec![rps],
        msgs_runs: vec![Some(msgs)],
        failed_runs: Vec::new(),
    })))
}

/// Reads the server's `listening on <addr>` line, waiting at most `limit`.
fn read_announcement(stdout: ChildStdout, limit: Duration) -> io::Result<SocketAddr> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let read = reader.read_line(&mut line).map(|_| line);
        let _ = tx.send(read);
        // Keep the pipe open (and drained) until the server exits.
        let _ = io::copy(&mut reader, &mut io::sink());
    });
    let line = rx
        .recv_timeout(limit)
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no `listening on` line"))??;
    line.trim()
        .strip_prefix("listening on ")
        .and_then(|addr| addr.parse().ok())
        .ok_or_else(|| io::Error::other(format!("unexpected first line {:?}", line.trim())))
}

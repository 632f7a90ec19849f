//! Shared set-up for the integration tests.
#![allow(dead_code)] // each test file uses a different subset

#[path = "../../examples/common/procfs.rs"]
mod procfs;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use futures::io::{AsyncReadExt, AsyncWriteExt};

use coop::net::TcpListener;

/// Child processes the tests have running: the test that started each (its
/// thread's name, which the test harness sets to the test's), and its PID.
static CHILDREN: Mutex<Vec<(Option<String>, u32)>> = Mutex::new(Vec::new());

fn children() -> std::sync::MutexGuard<'static, Vec<(Option<String>, u32)>> {
    CHILDREN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Notes a child process of the calling test, to be killed if its
/// [`with_deadline`] runs out: the hung closure still owns the child then,
/// and would never drop it, so it would outlive the test run.
pub fn track_child(pid: u32) {
    let test = std::thread::current().name().map(str::to_owned);
    children().push((test, pid));
}

/// The child is gone (waited for): forget it, before its PID can be reused.
pub fn untrack_child(pid: u32) {
    children().retain(|&(_, p)| p != pid);
}

/// Runs `f` on its own thread and fails the test if it takes longer than
/// `secs`: a hang becomes a failure instead of a stalled CI. On a timeout it
/// first kills the children this test tracked ([`track_child`]), before the
/// closure's thread or after, and leaves other tests' alone.
pub fn with_deadline<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    // The closure's thread takes the test's name, so that the children it
    // tracks are this test's.
    let test = std::thread::current().name().map(str::to_owned);
    let mut worker = std::thread::Builder::new();
    if let Some(name) = &test {
        worker = worker.name(name.clone());
    }
    let worker = worker
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("start the test's thread");
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(value) => {
            worker.join().unwrap();
            value
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The closure panicked: re-raise its panic here.
            match worker.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => unreachable!("sender dropped without sending"),
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let mut all = children();
            let stranded = all.iter().filter(|(owner, _)| *owner == test);
            for (_, pid) in stranded {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            all.retain(|(owner, _)| *owner != test);
            drop(all);
            panic!("test did not finish within {secs} s")
        }
    }
}

/// Binds a listener on a free loopback port.
pub fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0")
}

/// The echo protocol every test server speaks: copy bytes back until EOF
/// (over TCP, or any other stream: a `UnixStream`).
pub async fn echo<S>(mut stream: S) -> std::io::Result<u64>
where
    S: futures::io::AsyncRead + futures::io::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 4096];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(total);
        }
        stream.write_all(&buf[..n]).await?;
        total += n as u64;
    }
}

/// Accepts forever, serving each connection with [`echo`] in its own task.
pub async fn serve_echo(listener: TcpListener) {
    loop {
        let (stream, _) = listener.accept().await.expect("accept");
        coop::spawn(echo(stream));
    }
}

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// CPU time (user + system) this thread has used, in clock ticks (1/100 s
/// on Linux), read from /proc.
pub fn thread_cpu_ticks() -> u64 {
    let stat =
        std::fs::read_to_string("/proc/thread-self/stat").expect("read /proc/thread-self/stat");
    stat_cpu_ticks(&stat)
}

/// Fields 14 and 15 (utime, stime) of a `/proc/.../stat` line, summed.
fn stat_cpu_ticks(stat: &str) -> u64 {
    let field = |n| procfs::stat_field(stat, n).expect("utime and stime in a /proc stat line");
    field(14) + field(15)
}

/// CPU time (user + system) process `pid` has used, in clock ticks (1/100 s
/// on Linux).
pub fn process_cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    stat_cpu_ticks(&stat)
}

/// Resident memory of process `pid` (`VmRSS` in `/proc/PID/status`), in KiB.
pub fn process_rss_kib(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    procfs::status_field(&status, "VmRSS:").expect("VmRSS in /proc/PID/status")
}

/// Open file descriptors of process `pid` (entries of `/proc/PID/fd`).
pub fn process_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/PID/fd")
        .count()
}

/// Measures how long the test was kept from running while a timing test
/// ran, two ways, and adds them up:
///
/// - the whole process stopped or starved (SIGSTOP, a VM paused by its
///   host): a thread that sleeps 1 ms at a time and adds up every wake
///   that came more than 5 ms late;
/// - the thread that started the meter (the loop's) kept waiting for a
///   CPU that busy neighbours hold: its [`run_delay`]. The meter's thread,
///   which only sleeps, is let in first and misses most of this; with it
///   alone, a lateness test failed 3 runs in 45 on a loaded machine, and
///   a slow-poll test 1 in 150 (session 28).
///
/// Either shows up in the test's own timings, so a test can allow for it:
/// `bound + meter.stalled()` keeps the bound tight on a quiet machine
/// without failing on a busy one. A bug of hundreds of milliseconds on a
/// quiet machine still fails: a late timer or a slow poll is time the
/// loop thread *ran* or slept, which neither counts. Call
/// [`stalled`](Self::stalled) on the thread that called `start`.
pub struct StallMeter {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Duration>>,
    /// The starting thread's `run_delay` at the start.
    run_delay: Duration,
}

impl StallMeter {
    /// Starts measuring.
    pub fn start() -> StallMeter {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let tick = Duration::from_millis(1);
            let late = Duration::from_millis(5);
            let mut stalled = Duration::ZERO;
            let mut last = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                let now = Instant::now();
                let gap = now - last;
                if gap > tick + late {
                    stalled += gap - tick;
                }
                last = now;
            }
            stalled
        });
        StallMeter {
            stop,
            thread: Some(thread),
            run_delay: run_delay(),
        }
    }

    /// Stops measuring; returns the time the meter's thread was kept from
    /// running (the sum of its wakes' lateness, counting only those over
    /// 5 ms) plus the time the calling thread waited for a CPU since
    /// `start`.
    pub fn stalled(mut self) -> Duration {
        self.stop.store(true, Ordering::Relaxed);
        let waited = run_delay().saturating_sub(self.run_delay);
        let thread = self.thread.take().expect("measured once");
        thread.join().expect("the stall meter's thread") + waited
    }
}

impl Drop for StallMeter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Panics with its message when dropped: a destructor with a bug. (Not
/// while the thread is already panicking, which would abort the process.)
pub struct PanicOnDrop(pub &'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("{}", self.0);
        }
    }
}

/// Time the calling thread has spent ready to run but waiting for a CPU,
/// so far: `run_delay`, the second field of `/proc/thread-self/schedstat`;
/// zero where the kernel does not keep it (the tests that allow for it
/// are then only stricter). A loop thread preempted on a loaded machine
/// looks like a slow poll or a late timer; [`StallMeter`] counts it.
fn run_delay() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// Counts polls and drops of a future that is never ready on its own:
/// a test sees whether an abort dropped a task's future, and that no
/// poll came after.
pub struct Probe {
    polls: std::rc::Rc<std::cell::Cell<u32>>,
    drops: std::rc::Rc<std::cell::Cell<u32>>,
}

impl std::future::Future for Probe {
    type Output = ();
    fn poll(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        self.polls.set(self.polls.get() + 1);
        std::task::Poll::Pending
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

/// A [`Probe`], with its poll and drop counters.
pub fn probe() -> (
    Probe,
    std::rc::Rc<std::cell::Cell<u32>>,
    std::rc::Rc<std::cell::Cell<u32>>,
) {
    let polls = std::rc::Rc::new(std::cell::Cell::new(0));
    let drops = std::rc::Rc::new(std::cell::Cell::new(0));
    let p = Probe {
        polls: polls.clone(),
        drops: drops.clone(),
    };
    (p, polls, drops)
}

/// Lets the loop run a few turns.
pub async fn turns(n: usize) {
    for _ in 0..n {
        coop::yield_now().await;
    }
}

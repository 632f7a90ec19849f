//! Measuring a run: wall time, CPU time, peak thread count, peak memory.
//!
//! Linux reports threads and memory in `/proc/self/status` (`Threads:` and
//! `VmRSS:`), but only as they are *now*. `VmHWM` is a peak, but a peak
//! over the whole process life, so after the first run it says nothing
//! about the next. So a small thread samples the file every millisecond
//! during a run and keeps the highest values:
//!
//! - **threads** = the most threads alive at once that were *not* there
//!   before the run (the main thread, the delay server's thread, the
//!   sampler itself, and any thread still on its way out), plus one for the
//!   main thread, which every model uses. The sampler lists the thread IDs
//!   in `/proc/self/task` rather than subtracting two `Threads:` counts: a
//!   thread of before that ends during the run would cancel one of the
//!   run's own in the difference. (A test harness's previous test thread,
//!   which reports its result before it has quite exited, did exactly that
//!   about once in 100 runs; session 28.)
//! - **peak memory** = peak `VmRSS:` minus `VmRSS:` at the start of the run:
//!   what the run *added*. Memory the allocator kept from an earlier run
//!   and reuses does not show up again, so read it as "about how much".
//!
//! CPU time comes from the process's CPU-time clock
//! (`clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`, through `rustix`): user +
//! system time of all the process's threads, those that have ended too
//! (minus the sampler's), in nanoseconds. That includes the delay server's
//! thread, whose share is not the model's work (in the io rows, half or
//! more of it): the caller asks the server for its own thread's CPU time
//! before and after the run and subtracts it. The worker processes read
//! their own clock and print it. `/proc/self/stat`
//! has the same sums, but in ticks of 10 ms, which would round an I/O run's
//! few milliseconds of CPU to 0 or 10. CPU time ÷ wall time is how many
//! cores were busy on average, a number that other programs on a shared
//! machine disturb far less than wall time.

#[path = "../common/procfs.rs"]
pub mod procfs;

use std::collections::HashSet;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rustix::time::{ClockId, clock_gettime};

/// What one run cost, beyond its wall time.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Wall time of the run.
    pub secs: f64,
    /// CPU time of the run, on all threads (and worker processes, added by
    /// the caller).
    pub cpu_secs: f64,
    /// Threads the run used (peak), counting the main thread.
    pub threads: usize,
    /// Peak resident memory above the start of the run, in KiB.
    pub peak_rss_kib: u64,
}

/// `Threads:` and `VmRSS:` (KiB) of this process, now.
pub fn status_now() -> (usize, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    (
        procfs::status_field(&status, "Threads:").unwrap_or(1) as usize,
        procfs::status_field(&status, "VmRSS:").unwrap_or(0),
    )
}

/// The IDs of this process's threads alive now (the entries of
/// `/proc/self/task`); empty if the directory cannot be read.
pub fn thread_ids_now() -> HashSet<u32> {
    std::fs::read_dir("/proc/self/task")
        .map(|dir| {
            dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// CPU time used so far by all of this process's threads, ended ones
/// included, in seconds.
pub fn cpu_secs_now() -> f64 {
    clock_secs(ClockId::ProcessCPUTime)
}

/// CPU time used so far by the calling thread alone, in seconds.
pub fn thread_cpu_secs_now() -> f64 {
    clock_secs(ClockId::ThreadCPUTime)
}

/// A reading of `clock`, in seconds.
fn clock_secs(clock: ClockId) -> f64 {
    let t = clock_gettime(clock);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// The number in `key=<number>` among the words of `line`.
pub fn field_kv(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))?
        .parse()
        .ok()
}

/// Waits (up to two seconds) until the process is back to `idle` threads,
/// so that the blocking pool of the previous run, which exits in the
/// background, is not counted in the next one.
pub fn settle(idle: usize) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while status_now().0 > idle && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(2));
    }
}

/// Runs `f` while sampling the process, and returns its result with the
/// usage.
pub fn measure<T>(f: impl FnOnce() -> io::Result<T>) -> io::Result<(T, Usage)> {
    // The CPU window opens before the sampler exists, so that all of the
    // sampler's CPU time falls inside it and is taken out exactly: a
    // thread's clock starts at zero. (Opened after the sampler's first
    // reading of /proc, the window left out CPU time that was taken out
    // anyway, and a run could come out below its own work; found in
    // review, session 27, by the test below failing about once in 100.)
    let cpu_start = cpu_secs_now();
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let sampler = {
        let stop = stop.clone();
        thread::Builder::new()
            .name("sampler".into())
            .spawn(move || {
                let before = thread_ids_now(); // includes this thread
                let base_rss = status_now().1;
                let _ = ready_tx.send(());
                let (mut new_threads, mut rss) = (0, base_rss);
                loop {
                    let done = stop.load(Ordering::Relaxed);
                    let alive = thread_ids_now();
                    new_threads = new_threads.max(alive.difference(&before).count());
                    rss = rss.max(status_now().1);
                    if done {
                        break;
                    }
                    thread::sleep(Duration::from_millis(1));
                }
                let own_cpu = thread_cpu_secs_now(); // all of it, from zero
                (new_threads + 1, rss.saturating_sub(base_rss), own_cpu)
            })?
    };
    let _ = ready_rx.recv();
    let start = Instant::now();
    let result = f();
    let secs = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (threads, peak_rss_kib, sampler_cpu) = sampler.join().expect("the sampler panicked");
    // Not counted: the sampler's own reading of /proc (a few % of a core).
    // Counted: starting it (tens of µs on this thread), so the error, if
    // any, is a little too much, never less than the run's own work.
    let cpu_secs = (cpu_secs_now() - cpu_start - sampler_cpu).max(0.0);
    Ok((
        result?,
        Usage {
            secs,
            cpu_secs,
            threads,
            peak_rss_kib,
        },
    ))
}

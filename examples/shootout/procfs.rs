//! What the shootout reads from `/proc`: a server's CPU time, memory and
//! threads, the kernel's stack total, and a description of the machine.
//!
//! Every number is parsed by hand from the text files Linux documents in
//! `proc(5)`, with the helpers of `common/procfs.rs`; a file that cannot
//! be read gives `None`, never a panic (a server that has died has no
//! `/proc/PID` left to read).

#[path = "../common/procfs.rs"]
mod common;

use std::collections::HashMap;
use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Size of one thread's kernel stack on x86_64 and arm64 (`THREAD_SIZE`, 16 KiB
/// with 4 KiB pages since Linux 3.15; KASAN builds double it). Every thread,
/// sleeping or not, holds one. It is not part of RSS, so the memory columns add
/// it separately. `/proc/meminfo`'s `KernelStack` is the system-wide sum, which
/// the shootout also reads, as a check on this constant.
pub const KERNEL_STACK_KIB: u64 = 16;

/// CPU time the process has used so far, user plus system, in clock ticks:
/// fields 14 (`utime`) and 15 (`stime`) of `/proc/PID/stat`. They include the
/// threads that have already exited.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    common::cpu_ticks(&stat, 2)
}

/// CPU time each thread of process `pid` has run so far, in nanoseconds,
/// keyed by thread id: the first field of `/proc/PID/task/TID/schedstat`
/// (the scheduler's own count of time on a CPU). Ten million times finer
/// than [`cpu_ticks`] (a nanosecond against a tick of 10 ms), but it
/// forgets a thread once it exits, so the caller must check that every
/// thread of the first reading is still there at the second. (A thread
/// that both starts and exits between two readings is in neither; the
/// servers start their threads before the window opens, and
/// `loadgen::CpuReading::used` compares the sum with [`cpu_ticks`], which
/// keeps exited threads' time.) A thread that exits between the listing of `task/` and
/// the reading of its file is left out, as if it had exited just before:
/// its time is lost either way, and [`cpu_ns_between`] notices when it was
/// in the first reading. `None` if the files are missing, or if the kernel
/// keeps no scheduler statistics (every file then reads `0 0 0`).
pub fn cpu_ns_by_thread(pid: u32) -> Option<HashMap<u32, u64>> {
    // At 10,000 threads this reads 10,000 files, some 50 ms: harmless, as
    // loadgen waits at each mark with the server idle.
    let tasks: Vec<_> = fs::read_dir(format!("/proc/{pid}/task")).ok()?.collect();
    let mut by_thread = HashMap::with_capacity(tasks.len());
    for task in tasks {
        let task = task.ok()?;
        let tid = task.file_name().to_str()?.parse().ok()?;
        match fs::read_to_string(task.path().join("schedstat")) {
            Ok(text) => {
                by_thread.insert(tid, text.split_whitespace().next()?.parse().ok()?);
            }
            // The thread exited after the listing: its directory is gone.
            Err(_) if !task.path().exists() => continue,
            Err(_) => return None,
        }
    }
    // A process that exists has run; all zeros means no statistics
    // (`CONFIG_SCHED_INFO` off, or `sched_info_on()` false).
    by_thread.values().any(|&ns| ns > 0).then_some(by_thread)
}

/// CPU nanoseconds used between two [`cpu_ns_by_thread`] readings, or `None`
/// if a thread of the first is missing from the second (it exited, and its
/// time with it).
pub fn cpu_ns_between(start: &HashMap<u32, u64>, end: &HashMap<u32, u64>) -> Option<u64> {
    let mut used = 0;
    for (tid, &ns) in end {
        used += ns.saturating_sub(start.get(tid).copied().unwrap_or(0));
    }
    start
        .keys()
        .all(|tid| end.contains_key(tid))
        .then_some(used)
}

/// Clock ticks per second (`USER_HZ`), the unit of [`cpu_ticks`].
pub use common::ticks_per_sec;

/// A process's memory and threads at one moment, from `/proc/PID/status`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Status {
    /// `Threads:`: how many threads the process has now.
    pub threads: u64,
    /// `VmRSS:`: resident memory now, KiB.
    pub rss_kib: u64,
    /// `VmHWM:`: the most resident memory since the process started, KiB.
    pub hwm_kib: u64,
}

/// Reads [`Status`] of process `pid`.
pub fn status(pid: u32) -> Option<Status> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(Status {
        threads: common::status_field(&text, "Threads:")?,
        rss_kib: common::status_field(&text, "VmRSS:")?,
        hwm_kib: common::status_field(&text, "VmHWM:")?,
    })
}

/// `KernelStack:` from `/proc/meminfo`: the kernel stacks of every thread on the
/// machine, KiB.
pub fn kernel_stack_kib() -> Option<u64> {
    common::status_field(&fs::read_to_string("/proc/meminfo").ok()?, "KernelStack:")
}

/// The highest values seen while a [`Sampler`] ran.
#[derive(Clone, Copy, Debug, Default)]
pub struct Peak {
    /// Most threads the server had at once.
    pub threads: u64,
    /// Highest `VmHWM` read (the last read is the highest: it only grows).
    pub hwm_kib: u64,
    /// Highest system-wide `KernelStack` read.
    pub kernel_stack_kib: u64,
}

/// A thread that reads a server's `/proc/PID/status` and `/proc/meminfo` every
/// [`Sampler::EVERY`] and keeps the peaks.
///
/// `VmHWM` is a peak by itself, but `Threads:` and `KernelStack` are only "now",
/// so they must be sampled. The threads of a server are all there once the
/// warm-up is done and stay until the load generator closes its connections,
/// so a sample every 20 ms during the run cannot miss the peak.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Peak>,
}

impl Sampler {
    /// How often the sampler reads.
    pub const EVERY: Duration = Duration::from_millis(20);

    /// Starts sampling process `pid`.
    pub fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = thread::spawn(move || {
            let mut peak = Peak::default();
            loop {
                // Read once more after `stop`, so the final VmHWM is in.
                let last = flag.load(Ordering::Relaxed);
                if let Some(now) = status(pid) {
                    peak.threads = peak.threads.max(now.threads);
                    peak.hwm_kib = peak.hwm_kib.max(now.hwm_kib);
                }
                if let Some(kib) = kernel_stack_kib() {
                    peak.kernel_stack_kib = peak.kernel_stack_kib.max(kib);
                }
                if last {
                    return peak;
                }
                thread::sleep(Self::EVERY);
            }
        });
        Sampler { stop, handle }
    }

    /// Takes a last sample and returns the peaks.
    pub fn finish(self) -> Peak {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

/// CPU time the whole machine has spent busy, all CPUs together, in clock
/// ticks: the first line of `/proc/stat` less its `idle` and `iowait` columns.
/// Less what the server and loadgen used, this is what other processes took
/// while we measured.
pub fn machine_busy_ticks() -> Option<u64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is in user).
    let busy = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| ticks.get(i))
        .sum();
    Some(busy)
}

/// What the report says about the machine.
#[derive(Clone, Debug)]
pub struct Machine {
    /// CPUs this process may run on (`nproc`).
    pub nproc: usize,
    /// `model name` from `/proc/cpuinfo`.
    pub cpu: String,
    /// `/proc/version`, the kernel's own description.
    pub kernel: String,
}

impl Machine {
    pub fn read() -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|line| line.starts_with("model name"))
            .and_then(|line| line.split_once(':'))
            .map_or("unknown".to_string(), |(_, model)| model.trim().to_string());
        let kernel = fs::read_to_string("/proc/version")
            .map_or("unknown".to_string(), |text| text.trim().to_string());
        Machine {
            nproc: allowed_cpus().len().max(1),
            cpu,
            kernel,
        }
    }
}

/// The CPUs this process may run on, from `Cpus_allowed_list:` in
/// `/proc/self/status` (such as `0-3,8`), in order; what `nproc` counts.
pub fn allowed_cpus() -> Vec<usize> {
    let text = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("Cpus_allowed_list:")) else {
        return Vec::new();
    };
    let mut cpus = Vec::new();
    for range in line["Cpus_allowed_list:".len()..].trim().split(',') {
        let (low, high) = range.split_once('-').unwrap_or((range, range));
        if let (Ok(low), Ok(high)) = (low.parse::<usize>(), high.parse::<usize>()) {
            cpus.extend(low..=high);
        }
    }
    cpus
}

#[cfg(test)]
mod tests {
    use super::common::{cpu_secs, cpu_ticks, stat_field, status_field, ticks_per_sec};

    #[test]
    fn stat_fields_count_from_the_last_parenthesis() {
        // A command name with a space and a `)` in it, as a program may
        // choose; fields 14 and 15 (utime, stime) are 11 and 22.
        let stat = "42 (my )prog x) S 1 42 42 0 -1 4194304 100 0 0 0 11 22 0 0 20 0 1";
        assert_eq!(stat_field(stat, 3), None, "the state is not a number");
        assert_eq!(stat_field(stat, 4), Some(1));
        assert_eq!(stat_field(stat, 14), Some(11));
        assert_eq!(stat_field(stat, 15), Some(22));
        assert_eq!(stat_field(stat, 2), None, "the name is not a field to read");
        assert_eq!(stat_field(stat, 99), None);
        // utime + stime, then with the children's (both 0 here).
        assert_eq!(cpu_ticks(stat, 2), Some(33));
        assert_eq!(cpu_ticks(stat, 4), Some(33));
        assert_eq!(cpu_ticks("42 (cut) S 1 42", 2), None, "a short line");
        // The same in seconds, at this machine's USER_HZ.
        assert_eq!(cpu_secs(stat, 2), Some(33.0 / ticks_per_sec() as f64));
        assert_eq!(cpu_secs("42 (cut) S 1 42", 2), None);
    }

    #[test]
    fn status_fields_match_the_whole_key() {
        let status = "Name:\techo\nVmRSSx:\t1 kB\nVmRSS:\t  5120 kB\nThreads:\t3\n";
        assert_eq!(status_field(status, "VmRSS:"), Some(5120));
        assert_eq!(status_field(status, "Threads:"), Some(3));
        assert_eq!(status_field(status, "VmHWM:"), None);
    }

    #[test]
    fn schedstat_windows_count_new_threads_and_refuse_lost_ones() {
        use std::collections::HashMap;
        let start = HashMap::from([(1, 1_000), (2, 5_000)]);
        // Thread 3 started in the window: all its time counts.
        let end = HashMap::from([(1, 1_500), (2, 5_000), (3, 700)]);
        assert_eq!(super::cpu_ns_between(&start, &end), Some(1_200));
        // Thread 2 exited, taking its time with it: no answer, so the
        // caller falls back on /proc/PID/stat.
        let end = HashMap::from([(1, 1_500)]);
        assert_eq!(super::cpu_ns_between(&start, &end), None);
    }

    #[test]
    fn threads_that_exit_while_schedstat_is_read_are_left_out() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        // One thread starts and ends short-lived threads without pause,
        // as thread-per-connection's server does when loadgen hangs up,
        // while this one reads: no reading may give up.
        let stop = Arc::new(AtomicBool::new(false));
        let churn = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::spawn(|| ()).join().unwrap();
                }
            })
        };
        let gave_up = (0..2_000)
            .filter(|_| super::cpu_ns_by_thread(std::process::id()).is_none())
            .count();
        stop.store(true, Ordering::Relaxed);
        churn.join().unwrap();
        assert_eq!(gave_up, 0, "readings that gave up, of 2,000");
    }

    #[test]
    fn this_process_has_a_schedstat_per_thread() {
        // Other tests run on threads of this process and exit while it
        // reads: each reading must still give an answer (CI failed here
        // once, when a thread exited between the listing and its file).
        let before = super::cpu_ns_by_thread(std::process::id()).expect("schedstat");
        // Spin until the readings count 10 ms of CPU time. A wall-clock
        // spin of fixed length is not enough on a busy machine, where this
        // thread may wait for a CPU; a reading that never grows fails.
        let start = std::time::Instant::now();
        loop {
            let spin = std::time::Instant::now();
            while spin.elapsed() < std::time::Duration::from_millis(5) {
                std::hint::black_box(0);
            }
            let after = super::cpu_ns_by_thread(std::process::id()).expect("schedstat");
            // Other test threads may come and go meanwhile: count the
            // threads present at both readings, this one among them.
            let used: u64 = before
                .iter()
                .filter_map(|(tid, ns)| Some(after.get(tid)? - ns))
                .sum();
            if used >= 10_000_000 {
                break;
            }
            let waited = start.elapsed();
            assert!(
                waited < std::time::Duration::from_secs(10),
                "{waited:?} of spinning counted as {used} ns"
            );
        }
    }
}

//! CPU-bound work: `jobs` sums of squares, no waiting at all.
//!
//! Job `x` computes Σ i² for i < 5,000,000 + x, [`PASSES`] times over. The
//! only question here is how many *cores* compute at once. How many tasks
//! or threads *wait* at once does not matter, because nothing waits:
//!
//! | model        | where the jobs run                          | cores used |
//! |--------------|---------------------------------------------|------------|
//! | `sequential` | the main thread                             | 1          |
//! | `coop`       | coop tasks on the one loop thread           | 1          |
//! | `blocking`   | `coop::spawn_blocking`: a pool of N threads | N          |
//! | `processes`  | N copies of this program (`--worker`)       | N          |

use std::hint::black_box;
use std::io;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::Report;
use crate::measure::{self, Usage};
use crate::timeline::{Picture, Timeline};

/// The range of job `x` is `0..BASE + x`.
pub const BASE: u64 = 5_000_000;

/// Passes over the range per job. One pass takes 1.4 to 3 ms in a
/// release build on the machine of chapter 06 (its speed varies), so a job
/// takes 140 to 300 ms (139 to 297 ms in the chapter's diagrams): more
/// than the 100 ms slow-poll threshold, so that a job run as a coop task
/// trips the warning.
pub const PASSES: u64 = 100;

/// Job `x`: the wrapping sum of i² for i < BASE + x, PASSES times over.
///
/// Without `black_box`, LLVM replaces the loop with the closed form
/// n(n-1)(2n-1)/6 and the job takes nanoseconds. `black_box` on the running
/// sum makes it do every addition.
#[inline(never)] // the same machine code in every model
pub fn job(x: u64) -> u64 {
    let n = BASE + x;
    let mut total = 0u64;
    for _ in 0..PASSES {
        let mut sum = 0u64;
        for i in 0..n {
            sum = black_box(sum.wrapping_add(i.wrapping_mul(i)));
        }
        total = total.wrapping_add(sum);
    }
    total
}

/// The jobs one after another on the main thread.
pub fn sequential(jobs: u64) -> io::Result<Report> {
    let mut timeline = Timeline::new();
    let mut answer = 0u64;
    for x in 0..jobs {
        let start = Instant::now();
        answer = answer.wrapping_add(job(x));
        timeline.busy(format!("job {x} · main"), start, Instant::now());
    }
    Ok(Report {
        answer: Some(answer),
        ..Report::picture(Picture::Lanes(timeline))
    })
}

/// One coop task per job, on the loop. Each task computes its job in a
/// single poll (there is no `.await` inside), so the loop runs them one at
/// a time, and every poll trips the slow-poll warning.
pub fn coop(jobs: u64, trace: bool) -> io::Result<Report> {
    let rt = coop::Runtime::builder()
        .trace(trace)
        .slow_poll_warnings(true) // 100 ms, as asyncio's debug mode
        .build()?;
    let answer = rt.block_on(async {
        let tasks: Vec<_> = (0..jobs)
            .map(|x| {
                coop::task::Builder::new()
                    .name(format!("job {x}"))
                    .spawn(async move { job(x) })
            })
            .collect();
        sum(tasks).await
    })?;
    Ok(Report {
        answer: Some(answer),
        ..Report::coop(&rt)
    })
}

/// Awaits every job's handle and adds up the answers.
async fn sum(tasks: Vec<coop::JoinHandle<u64>>) -> io::Result<u64> {
    let mut answer = 0u64;
    for task in tasks {
        answer = answer.wrapping_add(task.await.map_err(io::Error::other)?);
    }
    Ok(answer)
}

/// The same tasks, but each hands its job to `coop::spawn_blocking`: the
/// loop only waits for the results; a pool of `cores` threads computes.
pub fn blocking(jobs: u64, cores: usize, trace: bool) -> io::Result<Report> {
    let rt = coop::Runtime::builder()
        .trace(trace)
        .slow_poll_warnings(true)
        // More threads than cores would not compute any faster.
        .blocking_threads(cores)
        .build()?;
    let answer = rt.block_on(async {
        let tasks: Vec<_> = (0..jobs)
            .map(|x| {
                coop::task::Builder::new()
                    .name(format!("job {x}"))
                    .spawn_blocking(move || job(x))
            })
            .collect();
        sum(tasks).await
    })?;
    Ok(Report {
        answer: Some(answer),
        ..Report::coop(&rt)
    })
}

/// `cores` copies of this program, each started with `--worker N`; worker
/// N computes the jobs x with x % cores == N and prints one line per job.
/// Nothing is shared: the results come back as text on stdout.
pub fn processes(jobs: u64, cores: usize) -> io::Result<Report> {
    let mut timeline = Timeline::new();
    let wall_origin = SystemTime::now();
    let exe = std::env::current_exe()?;
    let children = (0..cores)
        .map(|n| {
            Command::new(&exe)
                .args(["--worker", &n.to_string()])
                .args(["--workers", &cores.to_string()])
                .args(["--jobs", &jobs.to_string()])
                .stdout(Stdio::piped())
                .spawn()
        })
        .collect::<io::Result<Vec<_>>>()?;
    let (mut answer, mut lanes) = (0u64, Vec::new());
    let mut used = Usage {
        secs: 0.0, // unused: the parent times the run
        cpu_secs: 0.0,
        threads: cores, // each worker is a process of one thread
        peak_rss_kib: 0,
    };
    for (n, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output()?;
        if !output.status.success() {
            return Err(io::Error::other(format!("worker {n}: {}", output.status)));
        }
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let value = |key: &str| measure::field_kv(line, key);
            if let (Some(x), Some(sum), Some(a), Some(b)) = (
                value("job"),
                value("sum"),
                value("start_us"),
                value("end_us"),
            ) {
                answer = answer.wrapping_add(sum);
                let us = |unix_us: u64| {
                    let at = UNIX_EPOCH + Duration::from_micros(unix_us);
                    at.duration_since(wall_origin)
                        .unwrap_or_default()
                        .as_micros() as u64
                };
                // Wall-clock times (the only clock two processes share):
                // if it stepped back during a job, draw the job as empty
                // rather than end before it began.
                lanes.push((x, n, us(a), us(b).max(us(a))));
            } else if let (Some(kib), Some(cpu_ns)) = (value("peak_rss_kib"), value("cpu_ns")) {
                used.peak_rss_kib += kib;
                used.cpu_secs += cpu_ns as f64 / 1e9;
            }
        }
    }
    lanes.sort();
    for (x, n, a, b) in lanes {
        timeline
            .lanes
            .push(Timeline::busy_lane(format!("job {x} · process {n}"), a, b));
    }
    Ok(Report {
        answer: Some(answer),
        children: Some(used),
        ..Report::picture(Picture::Lanes(timeline))
    })
}

/// The `--worker N` entry point: compute this worker's share, print it.
pub fn worker(n: usize, workers: usize, jobs: u64) -> io::Result<()> {
    let unix_us = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros()
    };
    for x in (0..jobs).filter(|x| x % workers as u64 == n as u64) {
        let start = unix_us();
        let sum = job(x);
        println!("job={x} sum={sum} start_us={start} end_us={}", unix_us());
    }
    // A process's own peak is its VmHWM ("high water mark"), and its CPU
    // time is its CPU-time clock, read last.
    let status = std::fs::read_to_string("/proc/self/status")?;
    let peak = measure::procfs::status_field(&status, "VmHWM:").unwrap_or(0);
    let cpu_ns = (measure::cpu_secs_now() * 1e9) as u64;
    println!("peak_rss_kib={peak} cpu_ns={cpu_ns}");
    Ok(())
}

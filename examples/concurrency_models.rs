//! Concurrency models, side by side: the same work done sequentially, by
//! OS threads, by coop tasks on one loop, on coop's blocking pool, and by
//! separate processes. Chapter `docs/06-concurrency-models.md` reads its
//! results.
//!
//! Run it (about 20 seconds; `--quick` takes a few seconds):
//!
//! ```text
//! cargo run --release --example concurrency_models -- --trace-dir docs/img/concurrency
//! ```
//!
//! The chapter's table adds `--runs 5` (about 90 seconds): every model runs
//! five times, in turns (each round starting each workload one model
//! later), and each row is the model's run with the median
//! wall time, drawn as its diagram, beside the range of all five.
//!
//! It runs three experiments against a local delay server (127.0.0.1, a
//! random port) that answers each request after a delay:
//!
//! - **io**: fetch 100 pages, 50 ms each: `sequential`, `threads` (one per
//!   page), `pool` (8 threads), `coop` (one task per page). Waiting
//!   overlaps in all but the first.
//! - **cpu**: 20 sums of squares: `sequential`, `coop` (tasks on the one
//!   loop: no faster, and each poll trips the 100 ms slow-poll warning),
//!   `blocking` (`coop::spawn_blocking`, one pool thread per core),
//!   `processes` (this program re-run with `--worker N`).
//! - **mixed**: CPU chunks beside 20 latency-sensitive pings, computed
//!   inline on the loop (`coop`) or with `spawn_blocking` (`blocking`).
//!
//! For each run it prints one line for scripts, such as
//! `workload=cpu model=blocking secs=1.56 speedup=1.81 threads=3 peak_rss_kib=0 cpu_secs=2.915 slow_polls=0 run=5`,
//! and at the end a table. With `--trace-dir DIR` it also writes
//! `DIR/<workload>-<model>.svg` (a timing diagram) and `.json` (Chrome
//! trace-event format: open it in <https://ui.perfetto.dev>).
//!
//! `threads` is the peak thread count during the run (processes: threads
//! of all processes); `peak_rss_kib` is the peak resident memory the run
//! added (processes: plus each worker's whole peak). See `measure.rs`.

#[path = "concurrency_models/cpu_bound.rs"]
mod cpu_bound;
#[path = "concurrency_models/io_bound.rs"]
mod io_bound;
#[path = "concurrency_models/measure.rs"]
mod measure;
#[path = "concurrency_models/mixed.rs"]
mod mixed;
#[path = "concurrency_models/server.rs"]
mod server;
#[path = "concurrency_models/timeline.rs"]
mod timeline;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use measure::Usage;
use timeline::Picture;

/// Sequential code, threads, coop tasks, a blocking pool and processes on
/// I/O-bound, CPU-bound and mixed work.
#[derive(Parser, Debug)]
struct Args {
    /// Write each run's timing diagram (SVG) and Chrome trace (JSON) here.
    #[arg(long, value_name = "DIR")]
    trace_dir: Option<PathBuf>,
    /// A smaller version of every experiment, done in a few seconds.
    #[arg(long)]
    quick: bool,
    /// Run every model this many times, in turns, and show each one's run
    /// with the median wall time.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Run only this experiment.
    #[arg(long, value_enum)]
    workload: Option<Workload>,
    /// Internal: run as CPU worker process N (of --workers).
    #[arg(long, hide = true)]
    worker: Option<usize>,
    /// Internal: how many worker processes share the jobs.
    #[arg(long, hide = true, default_value_t = 1)]
    workers: usize,
    /// Internal: how many CPU jobs there are in all.
    #[arg(long, hide = true, default_value_t = 20)]
    jobs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// Fetch pages from the delay server.
    Io,
    /// Sum squares.
    Cpu,
    /// Sum squares while pinging the delay server.
    Mixed,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Io => "io",
            Workload::Cpu => "cpu",
            Workload::Mixed => "mixed",
        }
    }
}

/// The sizes of the experiments.
struct Sizes {
    pages: usize,
    page_delay: Duration,
    pool: usize,
    jobs: u64,
    mix: mixed::Mix,
}

const FULL: Sizes = Sizes {
    pages: 100,
    page_delay: Duration::from_millis(50),
    pool: 8,
    jobs: 20,
    mix: mixed::Mix {
        chunks: 8,
        pings: 20,
        every: Duration::from_millis(40),
        delay: Duration::from_millis(5),
    },
};

const QUICK: Sizes = Sizes {
    pages: 40,
    page_delay: Duration::from_millis(20),
    pool: 8,
    jobs: 2,
    mix: mixed::Mix {
        chunks: 2,
        pings: 10,
        every: Duration::from_millis(40),
        delay: Duration::from_millis(5),
    },
};

/// What every model may need.
struct Setup {
    /// The delay server.
    addr: SocketAddr,
    sizes: Sizes,
    /// CPU cores: the blocking pool's threads and the worker processes.
    cores: usize,
    /// Record coop's timeline (with `--trace-dir`).
    trace: bool,
}

/// A model's run.
type Run = fn(&Setup) -> io::Result<Report>;

/// Every run, in order: (workload, model, what it does, run). The first
/// row of each workload is the baseline of its speedups.
#[rustfmt::skip]
const MODELS: &[(&str, &str, &str, Run)] = &[
    ("io", "sequential", "one page after another",
        |s| io_bound::sequential(s.addr, s.sizes.pages, s.sizes.page_delay)),
    ("io", "threads", "an OS thread per page",
        |s| io_bound::threads(s.addr, s.sizes.pages, s.sizes.page_delay)),
    ("io", "pool", "8 threads take turns",
        |s| io_bound::pool(s.addr, s.sizes.pages, s.sizes.page_delay, s.sizes.pool)),
    ("io", "coop", "a task per page, one thread",
        |s| io_bound::coop(s.addr, s.sizes.pages, s.sizes.page_delay, s.trace)),
    ("cpu", "sequential", "one job after another",
        |s| cpu_bound::sequential(s.sizes.jobs)),
    ("cpu", "coop", "a task per job, on the loop",
        |s| cpu_bound::coop(s.sizes.jobs, s.trace)),
    ("cpu", "blocking", "spawn_blocking, a thread per core",
        |s| cpu_bound::blocking(s.sizes.jobs, s.cores, s.trace)),
    ("cpu", "processes", "a worker process per core",
        |s| cpu_bound::processes(s.sizes.jobs, s.cores)),
    ("mixed", "coop", "CPU chunks inline on the loop",
        |s| mixed::run(s.addr, s.sizes.mix, false, s.trace)),
    ("mixed", "blocking", "CPU chunks on spawn_blocking",
        |s| mixed::run(s.addr, s.sizes.mix, true, s.trace)),
];

/// What a model hands back besides its time and usage.
pub struct Report {
    /// The run's timing diagram.
    pub picture: Picture,
    /// Polls over the 100 ms threshold (coop runs only).
    pub slow_polls: Option<u64>,
    /// p50 and max latency of the pings, in ms (mixed only).
    pub latency_ms: Option<(f64, f64)>,
    /// What the worker processes used (processes only).
    pub children: Option<Usage>,
    /// The CPU jobs' combined result, checked equal across models.
    pub answer: Option<u64>,
}

impl Report {
    fn picture(picture: Picture) -> Report {
        Report {
            picture,
            slow_polls: None,
            latency_ms: None,
            children: None,
            answer: None,
        }
    }

    /// The slow-poll count and trace of a coop runtime.
    fn coop(rt: &coop::Runtime) -> Report {
        Report {
            slow_polls: Some(rt.metrics().slow_polls),
            ..Report::picture(rt.trace().map_or(Picture::None, Picture::Coop))
        }
    }
}

/// One finished run: a row of the table.
struct Row {
    workload: &'static str,
    model: &'static str,
    /// What the model does, for the diagram's title.
    what: &'static str,
    usage: Usage,
    speedup: f64,
    report: Report,
    /// The shortest and longest wall time of this model's runs, in seconds.
    range: (f64, f64),
}

impl Row {
    /// The run with the median wall time of `runs` (the lower of the two
    /// middle ones for an even count), with the range of all of them.
    fn median(mut runs: Vec<Row>) -> Row {
        runs.sort_by(|a, b| a.usage.secs.total_cmp(&b.usage.secs));
        let range = (runs[0].usage.secs, runs[runs.len() - 1].usage.secs);
        let median = runs.swap_remove((runs.len() - 1) / 2);
        Row { range, ..median }
    }

    /// The title of its timing diagram.
    fn title(&self) -> String {
        let (workload, model, what) = (self.workload, self.model, self.what);
        let ms = self.usage.secs * 1000.0;
        let mut title = format!("{workload} / {model} ({what}): {ms:.0} ms");
        if let Some(n) = self.report.slow_polls.filter(|&n| n > 0) {
            title += &format!(", {n} slow polls");
        }
        if let Some((p50, max)) = self.report.latency_ms {
            title += &format!(", ping p50 {p50:.0} ms, max {max:.0} ms");
        }
        title
    }

    /// The `key=value` line for scripts.
    fn line(&self) -> String {
        let u = &self.usage;
        let mut line = format!(
            "workload={} model={} secs={:.2} speedup={:.2} threads={} peak_rss_kib={} cpu_secs={:.3}",
            self.workload, self.model, u.secs, self.speedup, u.threads, u.peak_rss_kib, u.cpu_secs
        );
        if let Some(n) = self.report.slow_polls {
            line += &format!(" slow_polls={n}");
        }
        if let Some((p50, max)) = self.report.latency_ms {
            line += &format!(" ping_p50_ms={p50:.1} ping_max_ms={max:.1}");
        }
        line
    }
}

fn main() -> io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    if let Some(n) = args.worker {
        return cpu_bound::worker(n, args.workers, args.jobs);
    }
    let setup = Setup {
        addr: server::start()?,
        sizes: if args.quick { QUICK } else { FULL },
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        trace: args.trace_dir.is_some(),
    };
    let idle_threads = measure::status_now().0; // main + delay server
    let models: Vec<_> = MODELS
        .iter()
        .filter(|m| args.workload.is_none_or(|only| only.name() == m.0))
        .collect();

    // Every model once per round, so that a slow spell of the machine
    // falls on all of them alike; each workload's models in turns that
    // start one model later every round (`round_order`).
    let mut runs: Vec<Vec<Row>> = models.iter().map(|_| Vec::new()).collect();
    let mut answers = HashMap::new();
    let workloads: Vec<&str> = models.iter().map(|m| m.0).collect();
    for round in 1..=args.runs {
        let mut this_round: Vec<Option<Row>> = models.iter().map(|_| None).collect();
        for i in round_order(&workloads, round) {
            let (workload, model, what, run) = *models[i];
            measure::settle(idle_threads);
            let server_before = server::cpu_secs(setup.addr)?;
            let (report, mut usage) = measure::measure(|| run(&setup))?;
            // The process's clock counts the delay server's thread too: its
            // accepts, reads, timers and replies are not the model's work.
            let server_cpu = server::cpu_secs(setup.addr)? - server_before;
            usage.cpu_secs = (usage.cpu_secs - server_cpu).max(0.0);
            if let Some(children) = report.children {
                usage.threads += children.threads;
                usage.peak_rss_kib += children.peak_rss_kib;
                usage.cpu_secs += children.cpu_secs;
            }
            // Every CPU model must compute the same sum, in every round.
            if report.answer != *answers.entry(workload).or_insert(report.answer) {
                return Err(io::Error::other(format!("{workload}/{model}: wrong sum")));
            }
            this_round[i] = Some(Row {
                workload,
                model,
                what,
                usage,
                speedup: 1.0, // set below, once the round has its baselines
                report,
                range: (usage.secs, usage.secs),
            });
        }
        let mut this_round: Vec<Row> = this_round.into_iter().flatten().collect();
        set_speedups(&mut this_round);
        for (row, model_runs) in this_round.into_iter().zip(&mut runs) {
            println!("{} run={round}", row.line());
            model_runs.push(row);
        }
    }

    // A model's row is its run with the median wall time: one real run,
    // whose numbers and diagram belong together.
    let mut rows: Vec<Row> = runs.into_iter().map(Row::median).collect();
    set_speedups(&mut rows);
    if let Some(dir) = &args.trace_dir {
        for row in &rows {
            let stem = format!("{}-{}", row.workload, row.model);
            row.report.picture.write(dir, &stem, &row.title())?;
        }
    }
    print_table(&rows, setup.cores, args.quick, args.runs);
    Ok(())
}

/// The order in which round `round` (counted from 1) runs the models,
/// as indices into `workloads` (each model's workload, in the table's
/// order): workload after workload, and within each, its models in turns
/// that start one model later every round, so that no model always runs
/// first, right after the previous workload's last. (With `--runs 5` and
/// four models, the first takes that seat twice.)
///
/// In a fixed order that seat looked slow: `sequential` ran first and
/// took longer than the same CPU jobs as coop tasks in each of five
/// rounds (by 2% to 45%), and with `coop` moved first, `coop` was the
/// slower. Turning the order did not close the gap, though: `coop` was
/// still the faster in four rounds of five. Chapter 06 reports it as
/// found.
fn round_order(workloads: &[&str], round: u32) -> Vec<usize> {
    let mut order = Vec::with_capacity(workloads.len());
    let mut start = 0;
    while start < workloads.len() {
        let len = workloads[start..]
            .iter()
            .take_while(|&&w| w == workloads[start])
            .count();
        let shift = (round as usize).saturating_sub(1) % len;
        order.extend((0..len).map(|i| start + (i + shift) % len));
        start += len;
    }
    order
}

/// Sets each row's speedup: the wall time of its workload's first row (the
/// baseline) over its own.
fn set_speedups(rows: &mut [Row]) {
    let mut baseline = 0.0;
    for i in 0..rows.len() {
        if i == 0 || rows[i - 1].workload != rows[i].workload {
            baseline = rows[i].usage.secs;
        }
        rows[i].speedup = baseline / rows[i].usage.secs;
    }
}

fn print_table(rows: &[Row], cores: usize, quick: bool, runs: u32) {
    let size = if quick { "--quick sizes" } else { "full sizes" };
    let of = match runs {
        1 => "one run".to_string(),
        n => format!("each row the median of {n} runs by wall time"),
    };
    println!("\n{cores} cores, {size}, {of}; speedup is over the first row of each workload");
    println!(
        "{:<8} {:<10} {:>8} {:>11} {:>7} {:>7} {:>5} {:>7} {:>9} {:>5} {:>15}",
        "workload",
        "model",
        "wall",
        "wall range",
        "speedup",
        "CPU",
        "cores",
        "threads",
        "peak mem",
        "slow",
        "ping p50 / max"
    );
    for row in rows {
        let u = &row.usage;
        let slow = row.report.slow_polls.map_or("-".into(), |n| n.to_string());
        let latency = row.report.latency_ms;
        let latency = latency.map_or("-".into(), |(p50, max)| format!("{p50:.0} / {max:.0} ms"));
        let (fastest, slowest) = row.range;
        let range = match runs {
            1 => "-".to_string(),
            _ => format!("{:.0}–{:.0}", fastest * 1000.0, slowest * 1000.0),
        };
        println!(
            "{:<8} {:<10} {:>6.0}ms {:>11} {:>6.2}x {:>5.0}ms {:>5.2} {:>7} {:>5} KiB {:>5} {:>15}",
            row.workload,
            row.model,
            u.secs * 1000.0,
            range,
            row.speedup,
            u.cpu_secs * 1000.0,
            u.cpu_secs / u.secs,
            u.threads,
            u.peak_rss_kib,
            slow,
            latency
        );
    }
    println!("(wall range: the fastest and slowest run, ms; CPU: CPU time of all threads");
    println!(" but the delay server's, and of worker processes; cores: CPU ÷ wall;");
    println!(" peak mem: resident memory added by the run; slow: polls over 100 ms)");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_round_starts_each_workload_one_model_later() {
        let workloads = ["io", "io", "io", "cpu", "cpu", "mixed"];
        assert_eq!(round_order(&workloads, 1), [0, 1, 2, 3, 4, 5]);
        assert_eq!(round_order(&workloads, 2), [1, 2, 0, 4, 3, 5]);
        assert_eq!(round_order(&workloads, 3), [2, 0, 1, 3, 4, 5]);
        assert_eq!(round_order(&workloads, 4), [0, 1, 2, 4, 3, 5]);
        // Over as many rounds as a workload has models, each takes its
        // first seat once.
        let firsts: Vec<usize> = (1..=3).map(|r| round_order(&workloads, r)[0]).collect();
        assert_eq!(firsts, [0, 1, 2]);
    }

    /// A row whose run took `secs` of wall time, named by `tag` (in its
    /// thread count) so that the test can tell which run was picked.
    fn run(secs: f64, tag: usize) -> Row {
        Row {
            workload: "cpu",
            model: "coop",
            what: "a test",
            usage: Usage {
                secs,
                cpu_secs: secs,
                threads: tag,
                peak_rss_kib: 0,
            },
            speedup: 1.0,
            report: Report::picture(Picture::None),
            range: (secs, secs),
        }
    }

    #[test]
    fn a_row_is_the_run_with_the_median_wall_time_and_the_range_of_all() {
        let row = Row::median(vec![
            run(3.0, 0),
            run(1.0, 1),
            run(9.0, 2),
            run(2.0, 3),
            run(4.0, 4),
        ]);
        assert_eq!(row.usage.threads, 0, "the 3.0 s run, the middle of five");
        assert_eq!(row.range, (1.0, 9.0));
        // Of an even count, the lower middle one: a real run, not a mean.
        let row = Row::median(vec![run(4.0, 0), run(1.0, 1), run(2.0, 2), run(3.0, 3)]);
        assert_eq!(row.usage.threads, 2);
        assert_eq!(row.range, (1.0, 4.0));
        let row = Row::median(vec![run(5.0, 7)]);
        assert_eq!((row.usage.threads, row.range), (7, (5.0, 5.0)));
    }

    /// `measure` reads the whole process (its threads, its CPU clock), so
    /// the tests that call it take turns: each would count the other's
    /// threads and work as its own.
    static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn measuring() -> std::sync::MutexGuard<'static, ()> {
        MEASURING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Voluntary context switches of the thread named `sampler` (each of
    /// its sleeps between samples is one), or `None` if there is none.
    fn sampler_sleeps() -> Option<u64> {
        let tasks = std::fs::read_dir("/proc/self/task").ok()?;
        tasks.filter_map(Result::ok).find_map(|task| {
            let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
            if comm != "sampler\n" {
                return None;
            }
            let status = std::fs::read_to_string(task.path().join("status")).ok()?;
            measure::procfs::status_field(&status, "voluntary_ctxt_switches:")
        })
    }

    /// Keeps the calling thread alive (at no CPU cost to speak of) for at
    /// least 50 ms, and until `measure`'s sampler has surely listed it:
    /// until the sampler has gone to sleep three more times, so that one
    /// whole sample lies between two of those sleeps. A pause of fixed
    /// length alone was missed on a busy machine (3 ms about once in 100
    /// runs, session 27), where the sampler waits for a CPU.
    fn stay_until_sampled() {
        let first = sampler_sleeps().expect("a sampler thread runs");
        std::thread::sleep(std::time::Duration::from_millis(50));
        let start = std::time::Instant::now();
        while sampler_sleeps().expect("the sampler still runs") < first + 3 {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "the sampler did not sample for 10 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn a_thread_of_before_that_ends_during_the_run_hides_none_of_the_runs() {
        let _turn = measuring();
        // A thread that exists when the run starts and ends inside it (a
        // test harness's previous test thread on its way out, a blocking
        // pool's idle worker), then a thread of the run's own. Counting by
        // `Threads:` would see the same total throughout and say 1.
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let old = std::thread::spawn(move || {
            let _ = wait.recv();
        });
        let ((), usage) = measure::measure(|| {
            drop(release);
            old.join().expect("the old thread panicked");
            std::thread::spawn(stay_until_sampled)
                .join()
                .expect("the run's thread panicked");
            Ok(())
        })
        .expect("measure failed");
        // At least: the test harness may start the next test's thread
        // during the run, which is new too.
        assert!(
            usage.threads >= 2,
            "the main thread and the run's: {usage:?}"
        );
    }

    #[test]
    fn the_cpu_column_counts_an_ended_thread_finer_than_a_clock_tick() {
        let _turn = measuring();
        // A thread that computes until it has used 3 ms of CPU, then ends.
        // The run's CPU must not come out below that: the sampler's own
        // CPU time is taken out exactly (see `measure`).
        // The process's clock must count those 3 ms after the thread is
        // gone; ticks of 10 ms would say 0 or 10.
        let ((), usage) = measure::measure(|| {
            std::thread::spawn(|| {
                let start = measure::thread_cpu_secs_now();
                while measure::thread_cpu_secs_now() - start < 0.003 {
                    std::hint::black_box(0u64);
                }
                // Then stay alive until the sampler has seen the thread.
                stay_until_sampled();
            })
            .join()
            .expect("the busy thread panicked");
            Ok(())
        })
        .expect("measure failed");
        assert!(
            (0.003..0.008).contains(&usage.cpu_secs),
            "CPU {:.4} s: the busy thread's 3 ms, and little else",
            usage.cpu_secs
        );
        assert!(
            usage.threads >= 2,
            "the main thread and the busy one: {usage:?}"
        );
    }
}

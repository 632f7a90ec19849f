//! The shootout: the same echo service built five ways, measured side by side.
//!
//! ```text
//! cargo run --release --example shootout            # about 4 minutes: writes docs/benchmarks.md
//! cargo run --release --example shootout -- --quick # under a minute: writes target/shootout/
//! ```
//!
//! It builds the servers and `loadgen` in release mode, then for every cell
//! of a matrix (1, 10, 100, 1,000 and 10,000 connections echoing 64-byte
//! messages, and 100 connections echoing 4 KiB) starts a fresh server on a free
//! loopback port and runs `loadgen` against it. The servers, in table order:
//!
//! | name | example | design |
//! |---|---|---|
//! | `coop` | `echo_server` | one `coop` task per connection, one thread |
//! | `tokio` | `echo_tokio` | tokio's current-thread runtime, one task per connection |
//! | `mio_raw` | `echo_mio_raw` | a hand-written mio state machine: the ceiling |
//! | `threads` | `echo_threads` | one OS thread per connection: the baseline |
//! | `pool` | `echo_pool` | 8 threads, one connection each until it closes |
//!
//! Per cell it reports echoes per second, round-trip p50 / p99 / p99.9, the
//! server's CPU time per echo, its peak RSS, its threads and their kernel
//! stacks, memory per connection, and errors (see `docs/benchmarks.md`,
//! "Method", for how each is measured). It prints a markdown table and the
//! targets from the issue with PASS or MISS, and writes `docs/benchmarks.md`
//! with SVG charts in `docs/img/shootout/`.
//!
//! Each cell runs three times (`--reps`), the servers taking turns, and the
//! report keeps the median of each number: one run can settle into a faster
//! or slower rhythm than the next (see `shootout/median.rs`).
//!
//! Then, for the targets that are ratios of CPU time or throughput, every
//! cell is measured once more with `coop`, `tokio` and `mio_raw` running at
//! once and loaded in alternation, a quarter of a second each (`--turn-secs` each in all; see `shootout/turns.rs`).
//!
//! Flags: `--quick`, `--secs S` per run, `--reps N`, `--turn-secs S`,
//! `--no-turns`, `--servers coop,tokio,...`,
//! `--conns 1,100,...` (the 64-byte series), `--out PATH`, `--no-write`,
//! `--pin` / `--no-pin` (server on one CPU, loadgen on another, with `taskset`;
//! on by default when that is possible), `--connect-rate`, `--connect-timeout`.
//!
//! A server that falls over is a result, not a failure of the shootout: the
//! pool serves only 8 connections at once, so the others time out after
//! `--connect-timeout` and are counted as errors; a server that dies is
//! reported as crashed. Every child is killed by PID at the end of its cell.

#[path = "shootout/cell.rs"]
mod cell;
#[path = "shootout/charts.rs"]
mod charts;
#[path = "common/child.rs"]
mod child;
#[path = "shootout/doc.rs"]
mod doc;
#[path = "shootout/loadgen.rs"]
mod loadgen;
#[path = "shootout/median.rs"]
mod median;
#[path = "shootout/procfs.rs"]
mod procfs;
#[path = "shootout/report.rs"]
mod report;
#[path = "shootout/servers.rs"]
mod servers;
#[path = "shootout/svg.rs"]
mod svg;
#[path = "shootout/turns.rs"]
mod turns;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use clap::Parser;

use cell::{Outcome, Settings};
use report::Row;
use servers::Server;

/// Size of the messages in the connection-count series.
const SMALL: usize = 64;
/// The large-message cell: this many connections, this many bytes.
const BIG: (usize, usize) = (100, 4096);

/// The same echo service built five ways, measured side by side.
#[derive(Parser, Debug)]
struct Args {
    /// Under a minute: 1, 100 and 1,000 connections, 1 s windows, no 4 KiB
    /// cell; writes under target/shootout/ unless --out says otherwise.
    #[arg(long)]
    quick: bool,
    /// Seconds measured per run of a cell [default: 1.5; with --quick: 1].
    #[arg(long)]
    secs: Option<f64>,
    /// Runs of each cell; the report keeps the median of each number
    /// [default: 3; with --quick: 1].
    #[arg(long)]
    reps: Option<usize>,
    /// Seconds each server is loaded in the turns stage, in slices of 250 ms
    /// [default: 2; with --quick: 0.75].
    #[arg(long)]
    turn_secs: Option<f64>,
    /// Skip the turns stage: judge the ratio targets on the matrix's runs.
    #[arg(long)]
    no_turns: bool,
    /// Servers to run, comma-separated [default: coop,tokio,mio_raw,threads,pool].
    #[arg(long, value_delimiter = ',')]
    servers: Vec<String>,
    /// Connection counts of the 64-byte series [default: 1,10,100,1000,10000;
    /// with --quick: 1,100,1000].
    #[arg(long, value_delimiter = ',')]
    conns: Vec<usize>,
    /// Where to write the report; charts go to img/shootout/ beside it
    /// [default: docs/benchmarks.md; with --quick: target/shootout/benchmarks.md].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print only; write no files.
    #[arg(long)]
    no_write: bool,
    /// Pin the server to the first CPU and loadgen to the second, with taskset
    /// [default when taskset works and there are 2 CPUs or more].
    #[arg(long, conflicts_with = "no_pin")]
    pin: bool,
    /// Do not pin.
    #[arg(long)]
    no_pin: bool,
    /// New connections per second while a cell connects.
    #[arg(long, default_value_t = 5000.0)]
    connect_rate: f64,
    /// Seconds a connection may take to connect and get its warm-up echo
    /// [default: 3; with --quick: 2]. Bounds the cells where the pool serves
    /// only 8 connections.
    #[arg(long)]
    connect_timeout: Option<f64>,
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("shootout: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), String> {
    if cfg!(debug_assertions) {
        return Err("run me in release mode: cargo run --release --example shootout".into());
    }
    let positive = |value: Option<f64>| value.is_none_or(|v| v.is_finite() && v > 0.0);
    if !positive(args.secs)
        || !positive(args.turn_secs)
        || !positive(args.connect_timeout)
        || !positive(Some(args.connect_rate))
    {
        return Err(
            "--secs, --turn-secs, --connect-timeout and --connect-rate must be positive".into(),
        );
    }
    if args.conns.contains(&0) || args.reps == Some(0) {
        return Err("--conns and --reps must be at least 1".into());
    }
    let started = Instant::now();
    let servers = servers::pick(&args.servers)?;
    let mut conns = args.conns.clone();
    if conns.is_empty() {
        conns = if args.quick {
            vec![1, 100, 1000]
        } else {
            vec![1, 10, 100, 1000, 10_000]
        };
    }
    let mut cells: Vec<(usize, usize)> = conns.iter().map(|&c| (c, SMALL)).collect();
    if !args.quick {
        cells.push(BIG);
    }

    // Children inherit our file-descriptor limit: 10,000 connections need more
    // than the usual 1,024.
    let most = cells.iter().map(|c| c.0).max().unwrap_or(1) as u64;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < most + 64 => {
            log::warn!("only {limit} file descriptors per process: the largest cells will fail")
        }
        Ok(_) => {}
        Err(e) => log::warn!("cannot raise the file-descriptor limit: {e}"),
    }

    let bin_dir = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .parent()
        .ok_or("no directory for this executable")?
        .to_path_buf();
    // target/release/examples -> target
    let target_dir = bin_dir
        .parent()
        .and_then(Path::parent)
        .ok_or("this executable is not in a cargo target directory")?
        .to_path_buf();
    let mut examples: Vec<&str> = servers.iter().map(|s| s.example).collect();
    examples.push("loadgen");
    let unbuilt = servers::build(&examples, &bin_dir)?;
    let (pin, pin_note) = choose_pinning(&args);
    eprintln!("{pin_note}");

    let settings = Settings {
        log_dir: target_dir.join("shootout/logs"),
        bin_dir,
        secs: args.secs.unwrap_or(if args.quick { 1.0 } else { 1.5 }),
        reps: args.reps.unwrap_or(if args.quick { 1 } else { 3 }),
        connect_rate: args.connect_rate,
        connect_timeout: args
            .connect_timeout
            .unwrap_or(if args.quick { 2.0 } else { 3.0 }),
        pin,
        ticks_per_sec: procfs::ticks_per_sec(),
    };
    std::fs::create_dir_all(&settings.log_dir).map_err(|e| e.to_string())?;

    let rows = run_matrix(&cells, &servers, &unbuilt, &settings);
    let turn_secs = args
        .turn_secs
        .unwrap_or(if args.quick { 0.75 } else { 2.0 });
    let turns = match args.no_turns {
        true => Vec::new(),
        false => run_turns(&cells, &servers, &unbuilt, turn_secs, &settings),
    };
    let others = doc::Others::of(&rows);
    if others.busy() {
        log::warn!("{}", others.describe());
    }

    let table = report::table(&rows);
    let verdicts = report::targets(&rows, &turns, SMALL);
    let notes = doc::notes(&rows, &settings);
    println!("\n{table}");
    println!("Targets:\n\n{}", report::targets_table(&verdicts));
    for note in &notes {
        println!("- {note}");
    }

    let elapsed = started.elapsed().as_secs_f64();
    if !args.no_write {
        let out = args.out.clone().unwrap_or_else(|| match args.quick {
            true => target_dir.join("shootout/benchmarks.md"),
            false => Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/benchmarks.md"),
        });
        let context = doc::Context {
            command: command_line(),
            machine: procfs::Machine::read(),
            pin_note,
            settings: &settings,
            turns: &turns,
            turn_secs,
            elapsed_secs: elapsed,
            others,
            quick: args.quick,
        };
        let written = doc::write(&out, &context, &rows, &table, &verdicts, &notes, SMALL)
            .map_err(|e| format!("writing {}: {e}", out.display()))?;
        eprintln!("wrote {}", written.join(", "));
    }
    eprintln!("shootout done in {elapsed:.0} s");
    Ok(())
}

/// Pinning: `Some((server_cpu, loadgen_cpu))`, and a sentence for the report.
fn choose_pinning(args: &Args) -> (Option<(usize, usize)>, String) {
    if args.no_pin {
        return (None, "not pinned (--no-pin)".into());
    }
    let cpus = procfs::allowed_cpus();
    let taskset = cpus.first().is_some_and(|cpu| {
        Command::new("taskset")
            .args(["-c", &cpu.to_string(), "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let why_not = if cpus.len() < 2 {
        format!("only {} CPU available", cpus.len())
    } else if !taskset {
        "taskset (util-linux) is missing or failed".into()
    } else {
        let how = if args.pin {
            "--pin"
        } else {
            "the default with taskset and 2+ CPUs"
        };
        let note = format!(
            "pinned with taskset ({how}): server on CPU {}, loadgen on CPU {}",
            cpus[0], cpus[1]
        );
        return (Some((cpus[0], cpus[1])), note);
    };
    if args.pin {
        log::warn!("cannot pin: {why_not}; running unpinned");
    }
    (None, format!("not pinned: {why_not}"))
}

/// Runs every cell `--reps` times, one line of progress per server and cell
/// on stderr. The runs of a cell take turns (coop, tokio, ..., coop, tokio,
/// ...), so that a slow minute on the machine hits every server alike.
fn run_matrix(
    cells: &[(usize, usize)],
    servers: &[&'static Server],
    unbuilt: &[String],
    settings: &Settings,
) -> Vec<Row> {
    // A rough guess of each run's length, corrected by how long runs really take.
    let guess = |server: &Server, conns: usize| {
        let queue = if server.name == "pool" && conns > 8 {
            settings.connect_timeout
        } else {
            0.0
        };
        settings.secs + conns as f64 / settings.connect_rate + queue + 0.3
    };
    let total_guess: f64 = cells
        .iter()
        .flat_map(|&(conns, _)| servers.iter().map(move |s| guess(s, conns)))
        .sum::<f64>()
        * settings.reps as f64;
    let start = Instant::now();
    let mut guessed_so_far = 0.0;
    let mut rows = Vec::new();
    for &(conns, size) in cells {
        let mut runs: Vec<Vec<Outcome>> = servers.iter().map(|_| Vec::new()).collect();
        for _ in 0..settings.reps {
            for (k, &server) in servers.iter().enumerate() {
                runs[k].push(if unbuilt.iter().any(|e| e == server.example) {
                    Outcome::Failed("did not build".into())
                } else {
                    cell::run(server, conns, size, settings)
                });
                guessed_so_far += guess(server, conns);
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        let eta = ((total_guess - guessed_so_far) * (elapsed / guessed_so_far).max(0.5)).max(0.0);
        for (k, &server) in servers.iter().enumerate() {
            let row = Row {
                server,
                conns,
                size,
                outcome: median::combine(std::mem::take(&mut runs[k])),
            };
            eprintln!(
                "[{:>2}/{}] {:<8} {:>6} conns x {:<6} {}  (ETA {:.0} s)",
                rows.len() + 1,
                cells.len() * servers.len(),
                server.name,
                conns,
                report::size_label(size),
                summary(&row),
                eta
            );
            rows.push(row);
        }
    }
    rows
}

/// The turns stage: every cell once more, with the event-loop servers
/// (`coop`, `tokio`, `mio_raw`, those of them that were asked for and
/// built) loaded in alternation. Needs `coop`
/// and one other; a cell that fails is reported on stderr and left out, and
/// its targets are judged on the matrix.
fn run_turns(
    cells: &[(usize, usize)],
    servers: &[&'static Server],
    unbuilt: &[String],
    secs: f64,
    settings: &Settings,
) -> Vec<turns::Turns> {
    let chosen: Vec<&'static Server> = servers
        .iter()
        .copied()
        .filter(|s| ["coop", "tokio", "mio_raw"].contains(&s.name))
        .filter(|s| !unbuilt.iter().any(|e| e == s.example))
        .collect();
    if chosen.len() < 2 || chosen[0].name != "coop" {
        return Vec::new();
    }
    let names: Vec<&str> = chosen.iter().map(|s| s.name).collect();
    let mut measured = Vec::new();
    for &(conns, size) in cells {
        let start = Instant::now();
        match turns::run(&chosen, conns, size, secs, settings) {
            Ok(t) => {
                let others: Vec<String> = names[1..].iter().map(|n| cpu_ratio(&t, n)).collect();
                eprintln!(
                    "[turns] {} {:>6} conns x {:<6} {} rounds; CPU per echo {}  ({:.0} s)",
                    names.join("/"),
                    conns,
                    report::size_label(size),
                    t.rounds.len(),
                    others.join(", "),
                    start.elapsed().as_secs_f64()
                );
                measured.push(t);
            }
            Err(e) => eprintln!("[turns] {conns} conns x {size} B: {e}; judged on the matrix"),
        }
    }
    measured
}

/// `coop/tokio 0.986`: the median of the rounds' CPU ratios, for the progress
/// line; `–` where no round gave one (the median of none reads 0).
fn cpu_ratio(t: &turns::Turns, other: &str) -> String {
    let ratios = t.ratios("coop", other, true);
    match ratios.is_empty() {
        true => format!("coop/{other} –"),
        false => format!("coop/{other} {:.3}", median::median(ratios)),
    }
}

/// One cell in a few words, for the progress line.
fn summary(row: &Row) -> String {
    match &row.outcome {
        Outcome::Measured(m) if m.crashed.is_none() => format!(
            "{:>9} req/s  p99 {:>9} µs  cpu {:>5} µs/echo ({}%, loadgen {}%, others {}%)  rss {:>10}  threads {:>5}  errors {}",
            svg::group_thousands(m.load.rps),
            svg::group_thousands(m.load.p99_us as f64),
            m.cpu_us_per_echo.map_or("–".into(), |c| format!("{c:.2}")),
            report::percent(m.server_cpu_pct),
            report::percent(m.loadgen_cpu_pct),
            report::percent(m.other_cpu_pct),
            report::kib(m.peak_rss_kib),
            m.peak_threads,
            row.errors_cell()
        ),
        _ => row.errors_cell(),
    }
}

/// How we were run, as a command to copy.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut line = "cargo run --release --example shootout".to_string();
    if !args.is_empty() {
        line.push_str(" -- ");
        line.push_str(&args.join(" "));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use cell::Measurement;
    use loadgen::CpuClock;

    /// Review (session 37): the progress lines wrote numbers that were
    /// not measured: `NaN%` for a CPU share that could not be read, and a
    /// CPU ratio of `0.000` (the median of no ratios) for a cell in turns
    /// where coop served nothing in any round.
    #[test]
    fn progress_lines_show_no_number_for_what_was_not_measured() {
        let mut m = Measurement::default();
        m.load.msgs = 1000;
        let row = Row {
            server: &servers::SERVERS[0],
            conns: 100,
            size: 64,
            outcome: Outcome::Measured(Box::new(m)),
        };
        let line = summary(&row);
        assert!(line.contains("(–%, loadgen –%, others –%)"), "{line}");
        let idle = turns::Slice {
            cpu_ns: Some(1_000),
            msgs: 0,
            secs: 0.25,
        };
        let busy = turns::Slice { msgs: 10, ..idle };
        let t = turns::Turns {
            conns: 100,
            size: 64,
            names: vec!["coop", "tokio"],
            rounds: vec![vec![idle, busy]; 3],
            clock: CpuClock::Schedstat,
            errors: vec![0, 0],
            crashed: Vec::new(),
        };
        assert_eq!(cpu_ratio(&t, "tokio"), "coop/tokio –");
    }
}

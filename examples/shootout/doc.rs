//! Writing `docs/benchmarks.md` and its charts.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cell::{Outcome, Settings};
use crate::loadgen::CpuClock;
use crate::procfs::{KERNEL_STACK_KIB, Machine};
use crate::report::{self, Row, Verdict, size_label};
use crate::svg::group_thousands;

/// Where and how the run happened.
pub struct Context<'a> {
    pub command: String,
    pub machine: Machine,
    pub pin_note: String,
    pub settings: &'a Settings,
    /// The turns stage's cells (empty with `--no-turns`).
    pub turns: &'a [crate::turns::Turns],
    /// Seconds each server was loaded per cell in that stage.
    pub turn_secs: f64,
    pub elapsed_secs: f64,
    pub quick: bool,
    /// What other processes took while we measured.
    pub others: Others,
}

/// CPU time that other processes used during the measured windows, in
/// percent of one CPU (100 = a whole core taken from us).
#[derive(Clone, Copy, Debug)]
pub struct Others {
    /// Mean over the cells.
    pub mean: f64,
    /// The worst cell.
    pub most: f64,
}

impl Others {
    pub fn of(rows: &[Row]) -> Others {
        let all: Vec<f64> = rows
            .iter()
            .filter_map(|r| r.measured()?.other_cpu_pct)
            .collect();
        Others {
            mean: all.iter().sum::<f64>() / all.len().max(1) as f64,
            most: all.iter().copied().fold(0.0, f64::max),
        }
    }

    /// More than a twentieth of a core, on average, went to other processes.
    pub fn busy(&self) -> bool {
        self.mean > 5.0
    }

    pub fn describe(&self) -> String {
        format!(
            "while the shootout measured, other processes used {:.0}% of a CPU on \
             average ({:.0}% in the worst cell){}",
            self.mean,
            self.most,
            if self.busy() {
                ": the machine was busy, so expect noise, above all in req/s and latency"
            } else {
                ""
            }
        )
    }
}

/// What a reader should know about this run's odd cells, one sentence each.
pub fn notes(rows: &[Row], settings: &Settings) -> Vec<String> {
    let mut notes = Vec::new();
    for row in rows {
        let who = format!(
            "`{}` at {} × {}",
            row.server.name,
            group_thousands(row.conns as f64),
            size_label(row.size)
        );
        let m = match &row.outcome {
            Outcome::Failed(why) => {
                notes.push(format!("{who}: no numbers: {why}."));
                continue;
            }
            Outcome::Measured(m) => m,
        };
        if let Some(how) = &m.crashed {
            notes.push(format!("{who}: the server {how} during the cell."));
        } else if !row.all_served() && row.server.name == "pool" {
            notes.push(format!(
                "{who}: served {} of {} connections; the others waited in the pool's queue \
                 until loadgen gave up on them after {} s. Its req/s and latencies are those \
                 of the served connections.",
                group_thousands(m.load.connected as f64),
                group_thousands(row.conns as f64),
                settings.connect_timeout
            ));
        } else if !row.all_served() {
            let mut note = format!(
                "{who}: {} errors {}; {} of {} connections passed the warm-up.",
                group_thousands(m.load.errors as f64),
                m.load.error_kinds,
                group_thousands(m.load.connected as f64),
                group_thousands(row.conns as f64)
            );
            if m.idle_runs() > 0 {
                let _ = write!(
                    note,
                    " In {} of {} runs it served no echo at all.",
                    m.idle_runs(),
                    m.msgs_runs.len()
                );
            }
            notes.push(note);
        }
        if let Some(first) = &m.first_log_line {
            let first: String = first.chars().take(160).collect();
            notes.push(format!(
                "{who}: the server logged {} lines at `RUST_LOG=warn`; the first: `{first}`.",
                m.log_lines
            ));
        }
    }
    // Check the 16 KiB per thread against the machine's own count, where
    // threads are many enough to stand out from other processes.
    let most = rows
        .iter()
        .filter_map(|r| Some((r, r.measured()?)))
        .max_by_key(|(_, m)| m.peak_threads);
    if let Some((row, m)) = most.filter(|(_, m)| m.peak_threads >= 500) {
        notes.push(format!(
            "Kernel stacks: while `{}` ran {} threads ({} connections), `KernelStack` in \
             /proc/meminfo rose by {} KiB: {:.1} KiB per thread; the table counts {} KiB. \
             The rise is machine-wide, so other processes add noise.",
            row.server.name,
            group_thousands(m.peak_threads as f64),
            group_thousands(row.conns as f64),
            group_thousands(m.kernel_stack_rise_kib as f64),
            m.kernel_stack_rise_kib as f64 / m.peak_threads as f64,
            KERNEL_STACK_KIB
        ));
    }
    notes
}

/// Writes the report to `out` and the charts to `img/shootout/` beside it;
/// returns the paths written.
pub fn write(
    out: &Path,
    ctx: &Context,
    rows: &[Row],
    table: &str,
    verdicts: &[Verdict],
    notes: &[String],
    size: usize,
) -> io::Result<Vec<String>> {
    let dir = out.parent().unwrap_or(Path::new("."));
    let img = dir.join("img/shootout");
    fs::create_dir_all(&img)?;
    let mut written = Vec::new();
    let mut links = String::new();
    for (file, alt, chart) in crate::charts::all(rows, size) {
        let path = img.join(file);
        fs::write(&path, chart.render())?;
        written.push(path.display().to_string());
        let _ = writeln!(links, "![{alt}](img/shootout/{file})\n");
    }
    let mut text = document(ctx, rows, table, verdicts, notes, &links);
    // The criterion micro benchmarks are measured by `cargo bench`, not by
    // this program; their write-up lives in micro-benchmarks.md beside the
    // report and is carried into it, so one page holds every figure.
    if let Ok(micro) = fs::read_to_string(dir.join("micro-benchmarks.md")) {
        text.push('\n');
        text.push_str(&micro);
    }
    fs::write(out, text)?;
    written.insert(0, out.display().to_string());
    Ok(written)
}

fn document(
    ctx: &Context,
    rows: &[Row],
    table: &str,
    verdicts: &[Verdict],
    notes: &[String],
    charts: &str,
) -> String {
    let s = ctx.settings;
    let mut servers = String::new();
    for server in crate::servers::SERVERS.iter() {
        if rows.iter().any(|r| r.server.name == server.name) {
            let _ = writeln!(
                servers,
                "| `{}` | `examples/{}.rs` | {} |",
                server.name, server.example, server.design
            );
        }
    }
    let notes = if notes.is_empty() {
        "Nothing odd: every server served every connection in every cell.\n".to_string()
    } else {
        notes.iter().map(|n| format!("- {n}\n")).collect()
    };
    let in_ticks: Vec<String> = rows
        .iter()
        .filter(|r| r.measured().is_some_and(|m| m.cpu_clock == CpuClock::Ticks))
        .map(|r| {
            format!(
                "`{}` at {} × {} B",
                r.server.name,
                group_thousands(r.conns as f64),
                r.size
            )
        })
        .collect();
    let clock = if in_ticks.is_empty() {
        " In this run every cell was read from `schedstat`.".to_string()
    } else {
        format!(
            " In this run these cells fell back on ticks: {}.",
            in_ticks.join(", ")
        )
    };
    let load = ctx
        .others
        .describe()
        .replace("while the shootout measured, o", "O");
    let load = match ctx.others.busy() {
        true => format!("**{load}**"),
        false => load,
    };
    let turns = match ctx.turns.is_empty() {
        true => "The turns stage did not run (`--no-turns`, or fewer than two of \
                 `coop`, `tokio`, `mio_raw`): every ratio target is judged on the \
                 matrix's runs.\n"
            .to_string(),
        false => format!(
            "Every cell once more: `coop`, `tokio` and `mio_raw` started together, \
             pinned to the same CPU, each with its own `loadgen` holding as many \
             connections as the cell names, loaded in turns, {slice} ms at a time, \
             until each had {secs} s (Method, item 12). A \
             *round* is one slice of each. CPU per echo and req/s here are over \
             all of a server's slices; the ratios are the median of the rounds' \
             ratios, with their range. The CPU and throughput targets of these cells \
             are judged on this table.\n\n{table}",
            slice = crate::turns::SLICE_MS,
            secs = ctx.turn_secs,
            table = crate::turns::table(ctx.turns),
        ),
    };
    let in_ticks_turns = ctx.turns.iter().any(|t| t.clock == CpuClock::Ticks);
    let turns = match in_ticks_turns {
        true => format!("{turns}\nSome slices' CPU time had to be read in clock ticks.\n"),
        false => turns,
    };
    let quick = if ctx.quick {
        "\n**This is a `--quick` run**: fewer cells and short windows, for a smoke test.\n"
    } else {
        ""
    };
    format!(
        r#"# Benchmarks: the echo shootout

*Written by `examples/shootout.rs`; do not edit by hand. Re-run the command
below to replace this file and the charts in `img/shootout/`.*
{quick}
The same echo service, built five ways (same protocol, same flags, 4 KiB of
buffer per connection: see `examples/README.md`), each measured by the same
closed-loop load generator, `examples/loadgen.rs`, over loopback:

| server | example | design |
|---|---|---|
{servers}
## This run

- **Command:** `{command}`
- **Date:** {date}
- **Machine:** {nproc} CPUs available (`nproc`), {cpu}
- **Kernel:** `{kernel}`
- **Pinning:** {pin}
- **Other load:** {load}
- **Per cell:** {reps} run(s), the servers taking turns; each run starts a
  fresh server and measures {secs} s; connections are opened at {rate} per
  second; a connection that has not connected and echoed its warm-up message
  within {timeout} s counts as an error
- **Whole run:** {elapsed:.0} s

One run of the shootout: compare servers within this table (the servers of a cell
ran within a minute of each other), not with numbers from another machine or
another day.

## Results

{table}
`req/s` counts verified echoes per second; `p50` / `p99` / `p99.9` are round
trips seen by the client; `CPU µs/echo` is the server's own CPU time per
echo; `CPU %` is the CPU time the server, loadgen and all other processes
used in the window over its length (100 = one core busy throughout: when
loadgen is near 100, it is loadgen, not the server, that sets req/s; when
others is above a few percent, the cell was disturbed); `peak RSS` is the server's
resident memory at peak; `kernel stacks` its threads × 16 KiB; `mem/conn`
what one connection adds (below); `threads` the server's peak.

## Taking turns

{turns}
## Targets

The goals for `coop`, each checked as a ratio of two numbers from this run:
CPU time per echo no more than tokio's at every connection count, and within
5% of raw mio's at 100 and 1,000 connections; throughput at least 0.95 × raw
mio's in every cell; all of 10,000 connections served without an error;
memory per connection (kernel stacks included) no more than tokio's and at
most 1/5 of thread-per-connection's, checked at 1,000 and 10,000 connections,
where what a connection costs outweighs what a process costs.

CPU and throughput ratios are taken **in turns** where the turns stage
measured the cell (every cell, unless `--no-turns` or it failed there): the
median of its round-by-round ratios. Elsewhere they are taken **run by run**: coop's
run *i* of a cell against the other server's run *i*, which ran just before
or after it, and the check judges the median of those ratios (memory ratios
are of medians). The machine drifts between a faster and a slower state that
lasts for seconds and moves every server alike (back-to-back runs at 100
connections have put all three single-threaded servers at about 5.3 µs per
echo in one round and about 7.0 µs in the next): two runs side by side are
more comparable than two medians taken minutes apart, and two slices a
quarter of a second apart more comparable still. Where both ends of the loop are
busy (roughly 10 to 1,000 connections at 64 B) any server that keeps up
spends about the same CPU per echo, and a ratio within a percent or two of
1.0 is a tie that noise decides; see also "Other load" above.

Next to each median stands an interval that holds the true median ratio
with at least 95% confidence, taken from the ratios' order statistics alone
(the rounds' ratios have long tails, so nothing is assumed of their shape:
the count of ratios below the true median is Binomial(*n*, ½)). With the
default 8 rounds that interval is the whole range of the rounds (99.2%);
more rounds (`--turn-secs`) narrow it. A check whose interval reaches both
sides of its bound is marked *within noise*: its verdict is the median's,
but this run cannot tell which side coop is truly on. So is a CPU or
throughput check judged on fewer than 6 ratios, which have no such
interval (one run per cell, as with `--quick`, gives one). A check in a
cell where coop crashed, served no echo in a run or a slice without
crashing, or had a run end with no numbers at all (it did not start,
loadgen gave up on it), is a miss, whatever the other numbers, and is not
marked *within noise*; so is a memory check in a cell where coop did not
serve every connection (its memory is divided by the connections asked
for). A run or slice in which another server served nothing, or failed,
gives no ratio; the check says how many it left out.

{targets}
## Charts

A hollow marker is a cell where not every connection was served (the pool
beyond 8 connections): its numbers are those of the served connections. The
memory chart leaves those cells out.

{charts}
## Notes on this run

{notes}
## Method

1. **Fresh server per run.** The shootout builds every example in release
   mode, starts the server with `--addr 127.0.0.1:0 --buf 4096` and
   `RUST_LOG=warn` (so logging costs nothing), reads its `listening on <addr>`
   line, waits 50 ms and notes its idle `VmRSS` and `Threads` from
   `/proc/PID/status`. The server is killed by PID at the end of the run.
   Each server runs with its own defaults: coop and raw mio take at most
   128 ready events per `epoll_wait`, tokio 1,024 (its default; 128 made
   no difference to it, while it saved coop and raw mio about 4% of CPU per
   echo at 10,000 connections: chapter 02, "How many events per wait").
   Each cell is run `--reps` times (3 by default), round-robin over the
   servers, and the table shows the median of each number, with the range
   of CPU per echo (req/s and round trips over the runs that served
   echoes); errors are those of the worst run. One run is not
   enough: the same server in the same cell can measure 20% apart in CPU
   per echo from one minute to the next. The ratio targets therefore
   compare servers in turns (item 12; see "Targets").
2. **Warm-up before the clock.** `loadgen` opens the connections, and each
   sends one message and checks its echo before the clock starts. A server
   that has not accepted everyone yet is not flattered: those connections
   are counted in the numbers or as errors.
3. **Closed loop.** For the window, every connection keeps one message in
   flight; each echo is checked byte for byte and its round trip recorded
   in an HDR histogram, also for a message sent in the window whose echo
   comes back after it (a stall at the window's end shows). With `c` connections the mean round trip is
   `c / rps` (Little's law), so at 10,000 connections latencies in the tens
   of milliseconds mean the server is busy, not slow to wake.
4. **CPU time per echo.** `loadgen --mark-window --handshake` prints
   `window start` just before its clock starts; at its clock's end it stops
   sending, waits for the echoes still in flight, and prints `window end`.
   At each line the shootout reads how long each of the server's threads
   has run, in nanoseconds (the first field of
   `/proc/PID/task/TID/schedstat`), then answers, and only then does
   loadgen go on. So the server is idle at both readings, however late the
   shootout gets to run (at 10,000 connections `threads` has thousands of
   threads ready on its CPU), and between them it did the work of exactly
   the echoes loadgen reports as `served`: those measured and those that
   were in flight at the window's end. The difference, divided by
   `served`, is the server's CPU time per echo. If a thread exits between
   the readings, its time is gone from schedstat, so the shootout uses
   `utime + stime` (fields 14 and 15) of `/proc/PID/stat` instead, which
   counts exited threads too but in clock ticks of 1/{hz} s (at least
   {tick_pct:.1}% of a run's CPU time); so it does when those ticks run
   more than two ticks ahead of schedstat's sum, the mark of a thread that
   started and exited between the readings.{clock} CPU time is the steadiest
   number on a busy machine: req/s and latency also depend on when the
   scheduler runs the two processes. The CPU % columns divide each
   process's CPU time by the time between the two readings.
5. **Peak RSS** is `VmHWM` of `/proc/PID/status`. **Threads** is the peak of
   `Threads:`, sampled every 20 ms during the cell.
6. **Kernel stacks.** Every thread has a kernel stack that RSS does not count:
   `THREAD_SIZE`, 16 KiB on x86_64 and arm64 (4 KiB pages, no KASAN). The
   table counts threads × 16 KiB. As a check, the shootout reads
   `KernelStack` from `/proc/meminfo` before the server starts and at its
   peak: the rise divided by the server's threads should be about 16 KiB
   (see the notes; it is machine-wide, so other processes add noise).
7. **Memory per connection** = (peak RSS − idle RSS + (peak threads − idle
   threads) × 16 KiB) / connections. It leaves out the kernel's socket
   buffers, which every design pays alike. At 1 connection it is mostly
   allocator noise; read it at 1,000 and 10,000.
8. **Errors** are connections that failed: refused, reset, closed by the
   server, a wrong byte, no
   warm-up echo within the connect timeout, or echoes missing 2 s after the
   window. `crashed` means the server process died during its cell.
9. **Pinning.** On a machine with 2 or more CPUs and `taskset` (util-linux),
   the server runs on one CPU and `loadgen` on another, so they do not take
   turns on one core and CPU time is the server's alone. `--no-pin` turns it
   off; with 1 CPU or no `taskset` the shootout warns and runs unpinned.
10. **Noise.** At the same two moments the shootout also reads the
   machine's busy time from `/proc/stat` (all CPUs, less `idle` and
   `iowait`); less the server's and loadgen's, it is what other processes
   took during the window: the `others` in `CPU %`, and "Other load" above.
11. **What CPU per echo can resolve.** CPU time per echo measures a server
   only while the server has time to spare. When the server and `loadgen`
   are both at 95% or more of their CPUs (`saturated` in "Targets"), neither
   waits for the other: `epoll_wait` always finds events, so a server that
   spends less per echo calls it more often, on smaller batches, and most
   of what it saved goes there. Its CPU per echo then follows `loadgen`'s
   rate (which depends in turn on how the server batches its answers) more
   than its own work, so ratios within a few percent of 1 are ties,
   whichever server is leaner; the instruction counts of
   `docs/benchmarks.md`'s callgrind section are the noise-free view of the
   same difference. The 1-connection and 4 KiB cells leave the server idle
   part of the time, and there CPU per echo does follow what the server
   does.
12. **Turns.** For the turns stage the shootout starts `coop`, `tokio` and
   `mio_raw` together (all on the server CPU when pinned) and, for each,
   `loadgen --slices --slice-ms {slice} --mark-window --handshake` (on the
   loadgen CPU), one after the other: each connects and warms up its
   connections, prints `slice start`, and waits for a line on stdin. The
   shootout then answers one loadgen at a time. That loadgen loads its
   server's connections for a slice, stops sending, waits until every echo in
   flight is back, prints `slice target=0 msgs=N secs=S`, and waits again.
   Meanwhile every server is idle, and the shootout reads each one's CPU
   time (as in item 4), charges the difference since the last reading to
   that loadgen's server, and answers the next loadgen. One loadgen per
   server keeps each process within the limit on open files at 10,000
   connections (30,000 in one would not be). Echoes that finish while a
   loadgen waits for the last ones count in N, and that wait in S (about
   1 ms at 100 connections, about a round trip at 10,000). A slice starts
   with the server's caches cold from the others' slices, the same for all
   three. The order changes from round to round, so that no server always
   goes first or always follows the same other: round 2i starts at server
   i (counting round the list) and round 2i + 1 goes through the same order
   backwards.
"#,
        command = ctx.command,
        date = utc_now(),
        nproc = ctx.machine.nproc,
        cpu = ctx.machine.cpu,
        kernel = ctx.machine.kernel,
        pin = ctx.pin_note,
        secs = s.secs,
        reps = s.reps,
        rate = group_thousands(s.connect_rate),
        timeout = s.connect_timeout,
        elapsed = ctx.elapsed_secs,
        targets = report::targets_table(verdicts),
        hz = s.ticks_per_sec,
        // A run's CPU time is at most a whole core for the window.
        tick_pct = 100.0 / (s.ticks_per_sec as f64 * s.secs),
        slice = crate::turns::SLICE_MS,
    )
}

/// Now, as `2025-01-31 14:05 UTC`, from the system clock.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

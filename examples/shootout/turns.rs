//! Taking turns: the ratio targets measured with the servers loaded in
//! alternation, a quarter of a second each, instead of in runs seconds apart.
//!
//! The matrix runs one server at a time for 1.5 s. On a shared machine the
//! same server in the same cell can measure 20% apart from one run to the
//! next, because the machine itself slows down and speeds up over seconds;
//! a 5% target then passes or fails with the run it happens to meet. Here
//! all the servers being compared (`coop`, `tokio`, `mio_raw`) run at once,
//! pinned to the same CPU, and are loaded in turns ("Taking turns" in
//! loadgen's docs): A for a slice, then B, then C, then the next round, in
//! an order that changes from round to round ([`order`]). A slow second
//! now falls on a slice or two of every server alike.
//!
//! Between two slices every server is idle (loadgen has waited for the
//! echoes in flight), and loadgen waits (`--handshake`) while the shootout
//! reads each server's CPU time, so a slice's CPU time is exactly what its
//! server spent on that slice's echoes. A round is one slice of each
//! server; a ratio is taken round by round, and the targets judge the
//! median of those ratios.
//!
//! Each server has its own loadgen (`loadgen --slices`), so no process holds
//! more connections than the cell names: at 10,000 connections three
//! servers' 30,000 would be beyond a usual limit of open files. The loadgens
//! connect one after the other, and the shootout itself takes the turns: it
//! answers one loadgen's mark, that loadgen runs one slice and marks again,
//! and only then is the next one answered. The loadgens not in their turn
//! wait on stdin, and their connections sit idle.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{ChildStdin, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::cell::{Reaper, Settings, Started, start_server};
use crate::child::command;
use crate::loadgen::{CpuClock, CpuReading, field};
use crate::servers::Server;
use crate::svg::group_thousands;

/// Milliseconds of one slice. Long enough for thousands of echoes at 1,000
/// connections (a round trip there is about 10 ms), short enough for several
/// rounds in a few seconds. At 10,000 connections a round trip takes about
/// 100 ms, and the wait for the last echoes adds about that much to the
/// slice; the server is busy throughout (it has a backlog of 10,000
/// messages until the very end), so the slice still measures a server at
/// full load.
pub const SLICE_MS: u64 = 250;

/// What one server did in one slice.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Slice {
    /// Its CPU time in the slice, in nanoseconds (`None`: not readable).
    pub cpu_ns: Option<u64>,
    /// Echoes finished in the slice.
    pub msgs: u64,
    /// The slice's length, from its start to its last echo, in seconds.
    pub secs: f64,
}

impl Slice {
    /// CPU time per echo, in µs.
    pub fn cpu_us_per_echo(&self) -> Option<f64> {
        let ns = self.cpu_ns?;
        (self.msgs > 0).then(|| ns as f64 / 1e3 / self.msgs as f64)
    }

    /// Echoes per second.
    pub fn rps(&self) -> Option<f64> {
        (self.msgs > 0 && self.secs > 0.0).then(|| self.msgs as f64 / self.secs)
    }
}

/// One cell measured in turns.
#[derive(Clone, Debug)]
pub struct Turns {
    pub conns: usize,
    pub size: usize,
    /// The servers, in the order they take turns.
    pub names: Vec<&'static str>,
    /// `rounds[r][k]`: server `k`'s slice in round `r`.
    pub rounds: Vec<Vec<Slice>>,
    /// Whether some CPU time had to be read in clock ticks (see
    /// [`CpuClock`]); the single-threaded servers compared here never
    /// should.
    pub clock: CpuClock,
    /// Failed connections of each server's loadgen, in the order of
    /// `names`: a comparison of two servers is told of theirs, not of a
    /// third's.
    pub errors: Vec<u64>,
    /// The servers that died during the stage, with how.
    pub crashed: Vec<(&'static str, String)>,
}

impl Turns {
    fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| *n == name)
    }

    /// What went wrong in the stage for a comparison of `a` with `b`, as
    /// `"; in turns: coop crashed (…), tokio served nothing in 2 of 8
    /// slices, tokio 100 failed connections"`, or `""`. A round where either
    /// served nothing has no ratio ([`Turns::ratios`] leaves it out), so
    /// it is said here.
    pub fn trouble(&self, a: &str, b: &str) -> String {
        let mut trouble: Vec<String> = self
            .crashed
            .iter()
            .filter(|(name, _)| *name == a || *name == b)
            .map(|(name, how)| format!("{name} {how}"))
            .collect();
        for name in [a, b] {
            let idle = self.idle_slices(name);
            if idle > 0 {
                let of = self.rounds.len();
                trouble.push(format!("{name} served nothing in {idle} of {of} slices"));
            }
        }
        for name in [a, b] {
            let errors = self.index(name).map_or(0, |k| self.errors[k]);
            if errors > 0 {
                let errors = group_thousands(errors as f64);
                trouble.push(format!("{name} {errors} failed connections"));
            }
        }
        match trouble.is_empty() {
            true => String::new(),
            false => format!("; in turns: {}", trouble.join(", ")),
        }
    }

    /// The slices in which server `name` served no echo.
    pub fn idle_slices(&self, name: &str) -> usize {
        let Some(k) = self.index(name) else { return 0 };
        self.rounds
            .iter()
            .filter(|round| round[k].msgs == 0)
            .count()
    }

    /// Whether server `name` died during the stage.
    pub fn crashed_server(&self, name: &str) -> bool {
        self.crashed.iter().any(|(who, _)| *who == name)
    }

    /// `name`'s number over all its slices: CPU µs per echo (`cpu`) or
    /// echoes per second (`!cpu`), as the total over the total.
    pub fn overall(&self, name: &str, cpu: bool) -> Option<f64> {
        let k = self.index(name)?;
        let slices = self.rounds.iter().map(|round| round[k]);
        let msgs = slices.clone().map(|s| s.msgs).sum::<u64>() as f64;
        let value = match cpu {
            true => slices.map(|s| s.cpu_ns).sum::<Option<u64>>()? as f64 / 1e3 / msgs,
            false => msgs / slices.map(|s| s.secs).sum::<f64>(),
        };
        (msgs > 0.0).then_some(value)
    }

    /// `a`'s number over `b`'s, round by round: CPU per echo (`cpu`) or
    /// echoes per second. Rounds where either has no number are left out.
    pub fn ratios(&self, a: &str, b: &str, cpu: bool) -> Vec<f64> {
        let (Some(a), Some(b)) = (self.index(a), self.index(b)) else {
            return Vec::new();
        };
        let value = |s: &Slice| match cpu {
            true => s.cpu_us_per_echo(),
            false => s.rps(),
        };
        self.rounds
            .iter()
            .filter_map(|round| Some(value(&round[a])? / value(&round[b]).filter(|&v| v > 0.0)?))
            .collect()
    }
}

/// The order in which `n` servers take their slices in round `round`.
///
/// Not the same order every round: a server that always went first, or
/// always came right after a given other, would carry whatever that place
/// costs (a drift of the machine over the half second a round takes, the
/// caches its predecessor left) into every one of its ratios. Round `2i`
/// starts at server `i % n` and goes round the list; round `2i + 1` is the
/// same order backwards. Over every `2n` rounds each server goes first
/// twice, and each pair of servers is met in each order `n` times.
pub fn order(round: usize, n: usize) -> Vec<usize> {
    let start = (round / 2) % n.max(1);
    let mut order: Vec<usize> = (0..n).map(|j| (start + j) % n).collect();
    if round % 2 == 1 {
        order.reverse();
    }
    order
}

/// Starts `servers` together and measures them in turns for `secs` each.
pub fn run(
    servers: &[&'static Server],
    conns: usize,
    size: usize,
    secs: f64,
    s: &Settings,
) -> Result<Turns, String> {
    let mut started: Vec<Started> = Vec::new();
    for server in servers {
        let log = s
            .log_dir
            .join(format!("{}-{conns}x{size}-turns.log", server.name));
        match start_server(server, &log, s) {
            Ok(Ok(one)) => started.push(one),
            Ok(Err(why)) => return Err(format!("{}: {why}", server.name)),
            Err(e) => return Err(format!("{}: {e}", server.name)),
        }
    }
    let pids: Vec<u32> = started.iter().map(|x| x.pid).collect();
    let sample = || -> Vec<CpuReading> { pids.iter().map(|&pid| CpuReading::take(pid)).collect() };
    let tick_ns = 1_000_000_000 / s.ticks_per_sec.max(1);
    let rounds = (secs * 1000.0 / SLICE_MS as f64).round().max(1.0) as usize;
    let slice_wait = Duration::from_millis(SLICE_MS) + Duration::from_secs(5);

    // One loadgen per server, started one after the other: each connects,
    // warms up, says `slice start` and waits.
    let (sender, lines) = mpsc::channel();
    let mut loads: Vec<Loadgen> = Vec::new();
    let mut lines = Lines::new(lines, servers.len());
    for (k, one) in started.iter().enumerate() {
        loads.push(Loadgen::spawn(
            k,
            one,
            conns,
            size,
            secs,
            s,
            sender.clone(),
        )?);
        let connecting = conns as f64 / s.connect_rate + s.connect_timeout + 10.0;
        let wait = Duration::from_secs_f64(connecting);
        lines
            .expect(k, "slice start", wait)
            .map_err(|why| loads[k].failed(why))?;
    }

    // The parent takes the turns: it lets one loadgen run one slice, waits
    // for its `slice` line (its echoes in flight are all back by then),
    // reads every server's CPU time, and charges the difference since the
    // last reading to that loadgen's server.
    let mut measured: Vec<Vec<Slice>> = Vec::new();
    let mut clock = CpuClock::Schedstat;
    let mut last = sample();
    for r in 0..rounds {
        let mut round = vec![Slice::default(); loads.len()];
        for k in order(r, loads.len()) {
            let load = &mut loads[k];
            load.go()?;
            let line = lines
                .expect(k, "slice target=", slice_wait)
                .map_err(|why| load.failed(why))?;
            let now = sample();
            let (_, msgs, secs) =
                parse_slice(&line).ok_or_else(|| format!("loadgen: bad line {line:?}"))?;
            let (cpu_ns, how) = CpuReading::used(&last[k], &now[k], tick_ns);
            if how == CpuClock::Ticks {
                clock = CpuClock::Ticks;
            }
            round[k] = Slice { cpu_ns, msgs, secs };
            last = now;
        }
        measured.push(round);
    }

    // Every slice is done: let them all close their connections and report.
    let mut errors = Vec::new();
    for load in &mut loads {
        load.go()?;
    }
    for (k, load) in loads.iter_mut().enumerate() {
        let line = lines
            .expect(k, "conns=", Duration::from_secs(15))
            .map_err(|why| load.failed(why))?;
        errors.push(field(&line, "errors").ok_or("loadgen: no errors= in its result")? as u64);
    }
    drop(loads); // reaps the loadgens
    let mut crashed = Vec::new();
    for (server, one) in servers.iter().zip(&mut started) {
        if let Ok(Some(status)) = one.child.0.try_wait() {
            crashed.push((server.name, format!("crashed ({status})")));
        }
    }
    drop(started); // and the servers
    Ok(Turns {
        conns,
        size,
        names: servers.iter().map(|s| s.name).collect(),
        rounds: measured,
        clock,
        errors,
        crashed,
    })
}

/// One loadgen child in slice mode (`--slices --handshake`), loading one server.
struct Loadgen {
    /// Its server's index: the lines it prints are tagged with it.
    index: usize,
    stdin: ChildStdin,
    /// Its last lines on stderr, read by a thread (for error messages).
    complaints: Option<thread::JoinHandle<String>>,
    /// Kills it if still running, and reaps it.
    child: Reaper,
}

impl Loadgen {
    fn spawn(
        index: usize,
        server: &Started,
        conns: usize,
        size: usize,
        secs: f64,
        s: &Settings,
        lines: mpsc::Sender<(usize, Option<String>)>,
    ) -> Result<Loadgen, String> {
        let mut child = command(&s.bin_dir.join("loadgen"), s.pin.map(|p| p.1))
            .args(["--addr", &server.addr.to_string()])
            .args(["--conns", &conns.to_string(), "--size", &size.to_string()])
            .args(["--secs", &secs.to_string(), "--threads", "1"])
            .args(["--slice-ms", &SLICE_MS.to_string()])
            .args(["--connect-rate", &s.connect_rate.to_string()])
            .args(["--connect-timeout", &s.connect_timeout.to_string()])
            .args(["--mark-window", "--handshake", "--slices"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("loadgen: {e}"))?;
        let stdout = child.stdout.take().expect("piped");
        let stdin = child.stdin.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send((index, Some(line))).is_err() {
                    return;
                }
            }
            let _ = lines.send((index, None)); // it closed its stdout: it is gone
        });
        let complaints = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Ok(Loadgen {
            index,
            stdin,
            complaints: Some(complaints),
            child: Reaper(child),
        })
    }

    /// Answers its mark: it starts its next slice (or, after the last, closes
    /// its connections and prints its result).
    fn go(&mut self) -> Result<(), String> {
        self.stdin
            .write_all(b"go\n")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("loadgen {}: {e}", self.index))
    }

    /// Stops it after `why`, and adds the last thing it said on stderr.
    fn failed(&mut self, why: String) -> String {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
        let text = self.complaints.take().and_then(|t| t.join().ok());
        match text.as_deref().and_then(|t| t.lines().last()) {
            Some(said) => format!("{why} ({said})"),
            None => why,
        }
    }
}

/// The loadgens' stdout lines, tagged with their server's index, kept per
/// loadgen until asked for.
struct Lines {
    receiver: mpsc::Receiver<(usize, Option<String>)>,
    /// Lines received but not yet asked for; `None` when a loadgen is gone.
    kept: Vec<VecDeque<Option<String>>>,
}

impl Lines {
    fn new(receiver: mpsc::Receiver<(usize, Option<String>)>, count: usize) -> Lines {
        Lines {
            receiver,
            kept: vec![VecDeque::new(); count],
        }
    }

    /// Waits up to `wait` for loadgen `k`'s next line that starts with
    /// `prefix` (skipping its others, such as the human summary).
    fn expect(&mut self, k: usize, prefix: &str, wait: Duration) -> Result<String, String> {
        let deadline = Instant::now() + wait;
        loop {
            match self.kept[k].pop_front() {
                Some(Some(line)) if line.starts_with(prefix) => return Ok(line),
                Some(Some(_)) => continue,
                Some(None) => {
                    self.kept[k].push_front(None);
                    return Err(format!("loadgen {k} exited before `{prefix}`"));
                }
                None => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.receiver.recv_timeout(left) {
                Ok((from, line)) => self.kept[from].push_back(line),
                Err(_) => return Err(format!("loadgen {k}: no `{prefix}` within {wait:?}")),
            }
        }
    }
}

/// The turns stage as a markdown table: per cell, each server's CPU per
/// echo and echoes per second over all its slices, and coop's ratios to the
/// others, as the median of the rounds with their range.
pub fn table(turns: &[Turns]) -> String {
    let Some(first) = turns.first() else {
        return String::new();
    };
    let others = &first.names[1..];
    let mut out = String::from("| cell | rounds |");
    for name in &first.names {
        out.push_str(&format!(" {name} CPU µs/echo |"));
    }
    for other in others {
        out.push_str(&format!(" CPU coop / {other} |"));
    }
    for name in &first.names {
        out.push_str(&format!(" {name} req/s |"));
    }
    out.push_str(" errors |\n|---|");
    let columns = 1 + first.names.len() * 2 + others.len() + 1;
    out.push_str(&"---:|".repeat(columns));
    out.push('\n');
    for t in turns {
        let cell = format!(
            "{} × {}",
            group_thousands(t.conns as f64),
            crate::report::size_label(t.size)
        );
        out.push_str(&format!("| {cell} | {} |", t.rounds.len()));
        for name in &first.names {
            let cpu = t.overall(name, true);
            out.push_str(&cpu.map_or(" – |".into(), |c| format!(" {c:.3} |")));
        }
        for other in others {
            let ratios = t.ratios("coop", other, true);
            let (lo, hi) = crate::median::range(&ratios);
            out.push_str(&match ratios.is_empty() {
                true => " – |".into(),
                false => format!(
                    " {:.3} ({lo:.3}–{hi:.3}) |",
                    crate::median::median(ratios.clone())
                ),
            });
        }
        for name in &first.names {
            let rps = t.overall(name, false);
            out.push_str(&rps.map_or(" – |".into(), |r| format!(" {} |", group_thousands(r))));
        }
        out.push_str(&format!(" {} |\n", t.errors.iter().sum::<u64>()));
    }
    out
}

/// `slice target=1 msgs=46294 secs=0.250376` as (1, 46294, 0.250376).
fn parse_slice(line: &str) -> Option<(usize, u64, f64)> {
    Some((
        field(line, "target")? as usize,
        field(line, "msgs")? as u64,
        field(line, "secs")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(cpu_ns: u64, msgs: u64) -> Slice {
        Slice {
            cpu_ns: Some(cpu_ns),
            msgs,
            secs: 0.25,
        }
    }

    /// Review (session 37): the stage's failed connections were one sum
    /// over all its servers, and every comparison said it: 100 failures
    /// of mio_raw's loadgen stood in the coop / tokio verdicts too, as if
    /// coop or tokio had lost them.
    #[test]
    fn failed_connections_are_said_in_the_comparisons_of_their_server() {
        let round = vec![slice(50_000_000, 10_000); 3];
        let turns = Turns {
            conns: 100,
            size: 64,
            names: vec!["coop", "tokio", "mio_raw"],
            rounds: vec![round; 8],
            clock: CpuClock::Schedstat,
            errors: vec![0, 0, 100],
            crashed: Vec::new(),
        };
        assert_eq!(turns.trouble("coop", "tokio"), "");
        assert_eq!(
            turns.trouble("coop", "mio_raw"),
            "; in turns: mio_raw 100 failed connections"
        );
        assert!(table(&[turns]).contains(" 100 |\n"));
    }

    #[test]
    fn slice_lines_parse_and_others_do_not() {
        assert_eq!(
            parse_slice("slice target=1 msgs=46294 secs=0.250376"),
            Some((1, 46294, 0.250376))
        );
        assert_eq!(parse_slice("slice start"), None);
    }

    #[test]
    fn the_order_changes_so_that_no_server_keeps_a_place() {
        assert_eq!(order(0, 3), [0, 1, 2]);
        assert_eq!(order(1, 3), [2, 1, 0]);
        assert_eq!(order(2, 3), [1, 2, 0]);
        for n in 1..=6 {
            let rounds: Vec<Vec<usize>> = (0..2 * n).map(|r| order(r, n)).collect();
            for k in 0..n {
                let first = rounds.iter().filter(|o| o[0] == k).count();
                assert_eq!(first, 2, "server {k} of {n} goes first twice");
            }
            for a in 0..n {
                for b in (0..n).filter(|&b| b != a) {
                    let place = |o: &Vec<usize>, x| o.iter().position(|&y| y == x);
                    let a_first = rounds.iter().filter(|o| place(o, a) < place(o, b)).count();
                    assert_eq!(a_first, n, "{a} before {b}, of {n}");
                }
            }
        }
    }

    #[test]
    fn ratios_are_taken_round_by_round() {
        let turns = Turns {
            conns: 100,
            size: 64,
            names: vec!["coop", "mio_raw"],
            // coop: 5.0 then 10.0 µs per echo; mio_raw: 4.0 both times.
            rounds: vec![
                vec![slice(50_000_000, 10_000), slice(40_000_000, 10_000)],
                vec![slice(100_000_000, 10_000), slice(40_000_000, 10_000)],
            ],
            clock: CpuClock::Schedstat,
            errors: vec![0, 0],
            crashed: Vec::new(),
        };
        assert_eq!(turns.ratios("coop", "mio_raw", true), vec![1.25, 2.5]);
        assert_eq!(turns.ratios("coop", "tokio", true), Vec::<f64>::new());
        assert_eq!(turns.overall("coop", true), Some(7.5));
        assert_eq!(turns.overall("mio_raw", false), Some(40_000.0));
        assert_eq!(turns.ratios("coop", "mio_raw", false), vec![1.0, 1.0]);
    }
}

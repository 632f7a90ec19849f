//! Running `loadgen` for one cell, and sampling CPU time at its window marks.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::cell::{Reaper, Settings, command};
use crate::procfs;

/// What loadgen's `conns=...` line says.
#[derive(Clone, Debug, Default)]
pub struct Load {
    pub msgs: u64,
    pub rps: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub errors: u64,
    pub connected: u64,
    /// loadgen's summary of the errors by kind, such as `(ConnectTimeout 92)`.
    pub error_kinds: String,
}

/// CPU ticks used between `window start` and `window end`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Window {
    pub server_ticks: Option<u64>,
    pub loadgen_ticks: Option<u64>,
    /// Busy time of the whole machine, all CPUs.
    pub machine_ticks: Option<u64>,
}

/// Runs loadgen against `addr`; returns its numbers and the CPU time it and
/// the server used in the window.
pub fn run(
    addr: SocketAddr,
    conns: usize,
    size: usize,
    server_pid: u32,
    s: &Settings,
) -> io::Result<(Load, Window)> {
    let mut child = command(&s.bin_dir.join("loadgen"), s.pin.map(|p| p.1))
        .arg("--addr")
        .arg(addr.to_string())
        .args(["--conns", &conns.to_string(), "--size", &size.to_string()])
        .args(["--secs", &s.secs.to_string(), "--threads", "1"])
        .args(["--connect-rate", &s.connect_rate.to_string()])
        .args(["--connect-timeout", &s.connect_timeout.to_string()])
        .arg("--mark-window")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let loadgen_pid = child.id();
    let mut loadgen = Reaper(child);

    // Read stdout on a thread that samples the server the moment a mark
    // arrives. It reports when stdout closes, that is when loadgen exits; we
    // reap loadgen only after that, so its `/proc/PID/stat` is there to read
    // (a zombie keeps it) however late this thread runs.
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let sample = || {
            (
                procfs::cpu_ticks(server_pid),
                procfs::cpu_ticks(loadgen_pid),
                procfs::machine_busy_ticks(),
            )
        };
        let (mut start, mut end, mut result) = ((None, None, None), (None, None, None), None);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            match line.trim() {
                "window start" => start = sample(),
                "window end" => end = sample(),
                text if text.starts_with("conns=") => result = Some(parse_load(text)),
                // `100 of 100 connections passed the warm-up echo; 0 errors (...)`
                text if text.contains("passed the warm-up echo") => {
                    if let (Some(Ok(load)), Some(at)) = (&mut result, text.find(" errors")) {
                        load.error_kinds = text[at + " errors".len()..].trim().to_string();
                    }
                }
                _ => {}
            }
        }
        let used = |a: Option<u64>, b: Option<u64>| a.zip(b).map(|(a, b)| b.saturating_sub(a));
        let window = Window {
            server_ticks: used(start.0, end.0),
            loadgen_ticks: used(start.1, end.1),
            machine_ticks: used(start.2, end.2),
        };
        let _ = done.send((result, window));
    });
    let errors = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    // Connect, warm up, measure, drain (2 s at most), plus generous slack.
    let expected = conns as f64 / s.connect_rate + s.connect_timeout + s.secs + 2.0;
    let deadline = Instant::now() + Duration::from_secs_f64(expected + 20.0);
    let timeout = deadline.saturating_duration_since(Instant::now());
    let read = finished.recv_timeout(timeout).ok();
    let status = loadgen.0.try_wait()?;
    drop(loadgen); // kills it if it overran, and reaps it
    let stderr = errors.join().unwrap_or_default();
    match read {
        Some((Some(load), window)) => Ok((load?, window)),
        None => Err(io::Error::other("did not finish in time; killed")),
        Some((None, _)) => Err(io::Error::other(format!(
            "{}, no result line: {}",
            status.map_or("no exit status".into(), |s| s.to_string()),
            stderr.lines().last().unwrap_or("")
        ))),
    }
}

/// Parses `conns=100 size=64 ... rps=93191 p50_us=1065 ...`.
fn parse_load(line: &str) -> io::Result<Load> {
    let map: HashMap<&str, &str> = line
        .split_whitespace()
        .filter_map(|word| word.split_once('='))
        .collect();
    let get = |key: &str| -> io::Result<f64> {
        map.get(key)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| io::Error::other(format!("loadgen line lacks {key}: {line}")))
    };
    Ok(Load {
        msgs: get("msgs")? as u64,
        rps: get("rps")?,
        p50_us: get("p50_us")? as u64,
        p99_us: get("p99_us")? as u64,
        p999_us: get("p999_us")? as u64,
        errors: get("errors")? as u64,
        connected: get("connected")? as u64,
        error_kinds: String::new(),
    })
}

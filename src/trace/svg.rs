//! An SVG timing diagram: one lane per task or thread, time across.
//!
//! ```text
//!  event loop   ░░░░░        ░░░░░░░░░         idle in mio::Poll
//!  task 1       ──██──────────██───────        ── alive, waiting
//!  task 2         ──████████──────██──         ██ being polled (busy)
//!  blocking 0          ▓▓▓▓▓▓▓▓                ▓▓ blocking-pool job
//! ```
//!
//! Wakes are small marks above a lane, coloured by reason.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Event, Trace};

const WIDTH: f64 = 1000.0;
const LABEL: f64 = 170.0;
const LANE: f64 = 18.0;
const TOP: f64 = 46.0;
/// Lanes drawn at most; a trace of thousands of tasks gets a note instead.
const MAX_TASK_LANES: usize = 120;

/// One lane's spans.
#[derive(Default)]
struct Lane {
    label: String,
    alive: Option<(u64, u64)>,
    busy: Vec<(u64, u64)>,
    wakes: Vec<(u64, &'static str)>,
}

pub(super) fn render(trace: &Trace, title: &str) -> String {
    let t0 = trace.events.first().map_or(0, Event::start_us);
    let t1 = t0 + (trace.duration().as_micros() as u64).max(1);
    let mut park = Lane {
        label: "event loop (idle)".into(),
        ..Lane::default()
    };
    let mut blocking: BTreeMap<usize, Lane> = BTreeMap::new();
    let mut tasks: BTreeMap<u64, Lane> = BTreeMap::new();
    for event in &trace.events {
        match event {
            Event::Spawn { task, .. } => {
                let lane = tasks.entry(*task).or_default();
                lane.label = trace.task_label(*task);
                lane.alive = Some((event.start_us(), t1));
            }
            Event::Poll {
                task,
                start_us,
                end_us,
            } => {
                tasks
                    .entry(*task)
                    .or_default()
                    .busy
                    .push((*start_us, *end_us));
            }
            Event::Wake {
                task,
                reason,
                at_us,
            } => {
                tasks
                    .entry(*task)
                    .or_default()
                    .wakes
                    .push((*at_us, reason.name()));
            }
            Event::Finish { task, at_us } => {
                if let Some((start, _)) = tasks.entry(*task).or_default().alive {
                    tasks.get_mut(task).unwrap().alive = Some((start, *at_us));
                }
            }
            Event::Park { start_us, end_us } => park.busy.push((*start_us, *end_us)),
            Event::Blocking {
                thread,
                start_us,
                end_us,
            } => {
                let lane = blocking.entry(*thread).or_default();
                lane.label = format!("blocking thread {thread}");
                lane.busy.push((*start_us, *end_us));
            }
        }
    }
    let hidden = tasks.len().saturating_sub(MAX_TASK_LANES);
    let mut lanes: Vec<(Lane, &str)> = vec![(park, "#c8d6e5")];
    lanes.extend(blocking.into_values().map(|l| (l, "#8e44ad")));
    lanes.extend(tasks.into_values().take(MAX_TASK_LANES).map(|mut l| {
        if l.label.is_empty() {
            l.label = "task".into();
        }
        (l, "#e67e22")
    }));

    let height = TOP + LANE * lanes.len() as f64 + 66.0;
    let x =
        |t: u64| LABEL + (t.saturating_sub(t0)) as f64 / (t1 - t0) as f64 * (WIDTH - LABEL - 10.0);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" font-family=\"monospace\" font-size=\"11\">"
    );
    let _ = writeln!(svg, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let _ = writeln!(
        svg,
        "<text x=\"8\" y=\"18\" font-size=\"14\">{}</text>",
        escape(title)
    );
    // Time axis: about ten ticks, in ms.
    let span_ms = (t1 - t0) as f64 / 1000.0;
    let step = nice_step(span_ms / 10.0);
    let ticks = (span_ms / step + 1e-9).floor() as u64;
    for k in 0..=ticks {
        // k × step, not a running sum: no creeping float error in labels.
        let ms = (k as f64 * step * 1e6).round() / 1e6;
        let px = x(t0 + (ms * 1000.0) as u64);
        let _ = writeln!(
            svg,
            "<line x1=\"{px:.1}\" y1=\"{}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/><text x=\"{px:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666\">{ms} ms</text>",
            TOP - 8.0,
            height - 38.0,
            TOP - 12.0
        );
    }
    for (i, (lane, colour)) in lanes.iter().enumerate() {
        let y = TOP + LANE * i as f64;
        let _ = writeln!(
            svg,
            "<text x=\"8\" y=\"{:.1}\">{}</text>",
            y + 12.0,
            escape(&truncate(&lane.label, 22))
        );
        if let Some((a, b)) = lane.alive {
            let _ = writeln!(
                svg,
                "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#999\" stroke-width=\"1\"/>",
                x(a),
                y + 9.0,
                x(b),
                y + 9.0
            );
        }
        for &(a, b) in &lane.busy {
            let w = (x(b) - x(a)).max(1.0);
            // A thin white outline keeps back-to-back polls apart.
            let _ = writeln!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"12\" fill=\"{colour}\" stroke=\"white\" stroke-width=\"0.5\"/>",
                x(a),
                y + 3.0
            );
        }
        for &(t, reason) in &lane.wakes {
            let _ = writeln!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"2\" height=\"4\" fill=\"{}\"><title>wake: {reason}</title></rect>",
                x(t),
                y,
                wake_colour(reason)
            );
        }
    }
    let legend_y = height - 34.0;
    let legend = [
        ("#e67e22", "task being polled (busy)"),
        ("#999", "task alive, waiting"),
        ("#8e44ad", "blocking-pool job"),
        ("#c8d6e5", "loop idle in mio::Poll"),
    ];
    for (i, (colour, text)) in legend.iter().enumerate() {
        let lx = 8.0 + 240.0 * i as f64;
        let _ = writeln!(
            svg,
            "<rect x=\"{lx}\" y=\"{:.1}\" width=\"12\" height=\"10\" fill=\"{colour}\"/><text x=\"{}\" y=\"{legend_y}\">{text}</text>",
            legend_y - 9.0,
            lx + 16.0
        );
    }
    // Wake marks, by reason.
    let wakes = [
        ("io", "#2980b9"),
        ("timer", "#27ae60"),
        ("task", "#c0392b"),
        ("yield", "#f1c40f"),
        ("remote", "#8e44ad"),
    ];
    let _ = write!(
        svg,
        "<text x=\"8\" y=\"{:.1}\" fill=\"#666\">wake marks:</text>",
        legend_y + 14.0
    );
    for (i, (name, colour)) in wakes.iter().enumerate() {
        let lx = 100.0 + 90.0 * i as f64;
        let _ = writeln!(
            svg,
            "<rect x=\"{lx}\" y=\"{:.1}\" width=\"3\" height=\"8\" fill=\"{colour}\"/><text x=\"{}\" y=\"{:.1}\">{name}</text>",
            legend_y + 6.0,
            lx + 6.0,
            legend_y + 14.0
        );
    }
    if hidden > 0 {
        let _ = writeln!(
            svg,
            "<text x=\"8\" y=\"{:.1}\" fill=\"#666\">(+{hidden} more tasks not drawn)</text>",
            height - 34.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn wake_colour(reason: &str) -> &'static str {
    match reason {
        "io" => "#2980b9",
        "timer" => "#27ae60",
        "task" => "#c0392b",
        "yield" => "#f1c40f",
        "remote" => "#8e44ad",
        _ => "#555",
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw` (and at least 0.001).
fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(0.001);
    let pow = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * pow)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * pow)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        s.chars().take(n - 1).chain(std::iter::once('…')).collect()
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

//! Timing diagrams for the runs that are not coop runs.
//!
//! coop's recorder draws the coop runs (`Trace::to_svg`). Plain threads and
//! processes have no recorder, so each model writes down when each request
//! or job started and ended, and this file draws those in the same visual
//! style as coop's diagrams (same sizes, colours and legend), so the
//! pictures of all six models can be compared side by side:
//!
//! ```text
//!  page 0 · thread 0     ──────────────             ── blocked in the kernel (waiting)
//!  job 3 · main thread                ████████       ██ running on a CPU (busy)
//! ```

use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::time::Instant;

/// A picture of one run, to be written with `--trace-dir`.
pub enum Picture {
    /// Recorded by coop's runtime (`Builder::trace(true)`).
    Coop(coop::trace::Trace),
    /// Recorded by the model itself (threads, processes).
    Lanes(Timeline),
    /// Nothing recorded (coop runs without `--trace-dir`).
    None,
}

impl Picture {
    /// Writes `DIR/<stem>.svg` and `DIR/<stem>.json`.
    pub fn write(&self, dir: &Path, stem: &str, title: &str) -> io::Result<()> {
        let (svg, json) = match self {
            Picture::Coop(trace) => (trace.to_svg(title), trace.to_chrome_json()),
            Picture::Lanes(timeline) => (timeline.to_svg(title), timeline.to_chrome_json()),
            Picture::None => return Ok(()),
        };
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join(format!("{stem}.svg")), svg)?;
        std::fs::write(dir.join(format!("{stem}.json")), json)
    }
}

/// One lane: a request, a job or a process.
pub struct Lane {
    /// What the lane shows, and where it ran ("page 3 · thread 3").
    pub label: String,
    /// When it was alive but waiting, in µs since the run began.
    pub waiting: Option<(u64, u64)>,
    /// When it was running on a CPU, in µs since the run began.
    pub busy: Vec<(u64, u64)>,
}

/// Lanes recorded during one run.
pub struct Timeline {
    /// Time zero.
    pub origin: Instant,
    /// One per request or job, in order.
    pub lanes: Vec<Lane>,
}

const WIDTH: f64 = 1000.0;
const LABEL: f64 = 170.0;
const LANE: f64 = 18.0;
const TOP: f64 = 46.0;
const BUSY: &str = "#e67e22";
const WAITING: &str = "#999";

impl Timeline {
    /// An empty timeline starting now.
    pub fn new() -> Timeline {
        Timeline {
            origin: Instant::now(),
            lanes: Vec::new(),
        }
    }

    /// Microseconds from the origin to `at`.
    pub fn us(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_micros() as u64
    }

    /// A request: running from `start` until it was `sent`, then blocked
    /// in the kernel until `end` (the reading at the end is too short to
    /// show, so it is drawn as a mark, like coop's last poll of a task).
    pub fn request(&mut self, label: String, start: Instant, sent: Instant, end: Instant) {
        let (start, sent, end) = (self.us(start), self.us(sent), self.us(end));
        self.lanes.push(Lane {
            label,
            waiting: Some((start, end)),
            busy: vec![(start, sent), (end, end)],
        });
    }

    /// A lane that computed from `start` to `end`.
    pub fn busy(&mut self, label: String, start: Instant, end: Instant) {
        let span = (self.us(start), self.us(end));
        self.lanes.push(Lane {
            label,
            waiting: None,
            busy: vec![span],
        });
    }

    fn end_us(&self) -> u64 {
        let ends = self
            .lanes
            .iter()
            .flat_map(|l| l.waiting.iter().chain(&l.busy));
        ends.map(|&(_, end)| end).max().unwrap_or(0).max(1)
    }

    /// The lanes as an SVG timing diagram, drawn like coop's `Trace::to_svg`.
    pub fn to_svg(&self, title: &str) -> String {
        let t1 = self.end_us();
        let x = |t: u64| LABEL + t as f64 / t1 as f64 * (WIDTH - LABEL - 10.0);
        let height = TOP + LANE * self.lanes.len() as f64 + 50.0;
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" font-family=\"monospace\" font-size=\"11\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"8\" y=\"18\" font-size=\"14\">{}</text>",
            escape(title)
        );
        let span_ms = t1 as f64 / 1000.0;
        let step = nice_step(span_ms / 10.0);
        // tick = k × step, not a running sum: adding 0.05 three times gives
        // 0.15000000000000002, which would show in the label.
        for k in 0..=(span_ms / step + 1e-9) as u64 {
            let tick = (k as f64 * step * 1000.0).round() / 1000.0;
            let px = x((tick * 1000.0) as u64);
            let _ = writeln!(
                svg,
                "<line x1=\"{px:.1}\" y1=\"{}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/><text x=\"{px:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666\">{tick} ms</text>",
                TOP - 8.0,
                height - 38.0,
                TOP - 12.0
            );
        }
        for (i, lane) in self.lanes.iter().enumerate() {
            let y = TOP + LANE * i as f64;
            let _ = writeln!(
                svg,
                "<text x=\"8\" y=\"{:.1}\">{}</text>",
                y + 12.0,
                escape(&lane.label)
            );
            if let Some((a, b)) = lane.waiting {
                let _ = writeln!(
                    svg,
                    "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{WAITING}\" stroke-width=\"1\"/>",
                    x(a),
                    y + 9.0,
                    x(b),
                    y + 9.0
                );
            }
            for &(a, b) in &lane.busy {
                let _ = writeln!(
                    svg,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"12\" fill=\"{BUSY}\"/>",
                    x(a),
                    y + 3.0,
                    (x(b) - x(a)).max(1.0)
                );
            }
        }
        let legend_y = height - 18.0;
        let legend = [
            (BUSY, "thread running on a CPU (busy)"),
            (WAITING, "thread blocked in the kernel (waiting)"),
        ];
        for (i, (colour, text)) in legend.iter().enumerate() {
            let lx = 8.0 + 300.0 * i as f64;
            let _ = writeln!(
                svg,
                "<rect x=\"{lx}\" y=\"{:.1}\" width=\"12\" height=\"10\" fill=\"{colour}\"/><text x=\"{}\" y=\"{legend_y}\">{text}</text>",
                legend_y - 9.0,
                lx + 16.0
            );
        }
        svg.push_str("</svg>\n");
        svg
    }

    /// The lanes as Chrome trace-event JSON (one "thread" per lane).
    pub fn to_chrome_json(&self) -> String {
        let mut events = Vec::new();
        for (i, lane) in self.lanes.iter().enumerate() {
            let tid = i + 1;
            events.push(serde_json::json!({
                "name": "thread_name", "ph": "M", "pid": 1, "tid": tid,
                "args": { "name": lane.label },
            }));
            let spans = lane.waiting.iter().map(|s| ("waiting", s));
            for (name, &(a, b)) in spans.chain(lane.busy.iter().map(|s| ("busy", s))) {
                events.push(serde_json::json!({
                    "name": name, "ph": "X", "ts": a, "dur": b - a, "pid": 1, "tid": tid,
                }));
            }
        }
        serde_json::json!({ "displayTimeUnit": "ms", "traceEvents": events }).to_string()
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw` (as coop's renderer).
fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(0.001);
    let pow = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * pow)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * pow)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

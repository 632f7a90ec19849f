//! Timing diagrams for the runs that are not coop runs.
//!
//! coop's recorder draws the coop runs (`Trace::to_svg`). Plain threads and
//! processes have no recorder, so each model writes down when each request
//! or job started and ended, as lanes of a `coop::trace::Diagram`, and
//! coop's renderer draws them: the pictures of all six models come from one
//! renderer and can be compared side by side:
//!
//! ```text
//!  page 0 · thread 0     ──────────────             ── blocked in the kernel (waiting)
//!  job 3 · main thread                ████████       ██ running on a CPU (busy)
//! ```

use std::io;
use std::path::Path;
use std::time::Instant;

use coop::trace::{BUSY, Diagram, Lane, WAITING};

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

/// Lanes recorded during one run: one per request, job or process.
pub struct Timeline {
    /// Time zero.
    pub origin: Instant,
    /// One per request or job, in order (coop's own lane type, so that
    /// coop's renderer draws them).
    pub lanes: Vec<Lane>,
}

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

    /// A lane that computed from `start` to `end` (in µs since the origin).
    pub fn busy_lane(label: String, start: u64, end: u64) -> Lane {
        Lane {
            label,
            colour: BUSY,
            busy: vec![(start, end)],
            ..Lane::default()
        }
    }

    /// A request: running from `start` until it was `sent`, then blocked
    /// in the kernel until `end` (the reading at the end is too short to
    /// show, so it is drawn as a mark, like coop's last poll of a task).
    pub fn request(&mut self, label: String, start: Instant, sent: Instant, end: Instant) {
        let (start, sent, end) = (self.us(start), self.us(sent), self.us(end));
        let mut lane = Timeline::busy_lane(label, start, sent);
        lane.alive = Some((start, end));
        lane.busy.push((end, end));
        self.lanes.push(lane);
    }

    /// A lane that computed from `start` to `end`.
    pub fn busy(&mut self, label: String, start: Instant, end: Instant) {
        let lane = Timeline::busy_lane(label, self.us(start), self.us(end));
        self.lanes.push(lane);
    }

    /// The lanes as an SVG timing diagram, drawn by coop's own renderer.
    pub fn to_svg(&self, title: &str) -> String {
        let diagram = Diagram {
            lanes: self.lanes.clone(),
            legend: vec![
                (BUSY, "thread running on a CPU (busy)"),
                (WAITING, "thread blocked in the kernel (waiting)"),
            ],
            hidden: 0,
        };
        diagram.to_svg(title)
    }

    /// The lanes as Chrome trace-event JSON (one "thread" per lane): its
    /// busy spans, and as "waiting" the rest of its life. The SVG draws
    /// the whole life as a line under the busy bars; here the two must
    /// not overlap, or Perfetto nests the busy slices inside a waiting one.
    pub fn to_chrome_json(&self) -> String {
        let mut events = Vec::new();
        for (i, lane) in self.lanes.iter().enumerate() {
            let tid = i + 1;
            events.push(serde_json::json!({
                "name": "thread_name", "ph": "M", "pid": 1, "tid": tid,
                "args": { "name": lane.label },
            }));
            let waiting = lane.alive.map(|alive| gaps(alive, &lane.busy));
            let spans = waiting.iter().flatten().map(|s| ("waiting", s));
            for (name, &(a, b)) in spans.chain(lane.busy.iter().map(|s| ("busy", s))) {
                events.push(serde_json::json!({
                    "name": name, "ph": "X", "ts": a, "dur": b - a, "pid": 1, "tid": tid,
                }));
            }
        }
        serde_json::json!({ "displayTimeUnit": "ms", "traceEvents": events }).to_string()
    }
}

/// The parts of `alive` that no span of `busy` covers.
fn gaps(alive: (u64, u64), busy: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut busy = busy.to_vec();
    busy.sort();
    let (mut from, mut gaps) = (alive.0, Vec::new());
    for (a, b) in busy {
        if a.min(alive.1) > from {
            gaps.push((from, a.min(alive.1)));
        }
        from = from.max(b);
    }
    if alive.1 > from {
        gaps.push((from, alive.1));
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

    /// A thread is busy or waiting, never both: in the Chrome trace, the
    /// complete events of one lane ("thread") must not overlap, or
    /// Perfetto draws a "busy" slice nested inside a "waiting" one. A
    /// request's lane used to be one "waiting" slice over its whole life,
    /// with its busy spans inside it.
    #[test]
    fn a_lanes_busy_and_waiting_slices_never_overlap() {
        let mut timeline = Timeline::new();
        let at = |ms| timeline.origin + Duration::from_millis(ms);
        let (start, sent, end) = (at(1), at(3), at(10));
        let (job_start, job_end) = (at(2), at(5));
        timeline.request("page 0 · thread 0".into(), start, sent, end);
        timeline.busy("job 0 · main".into(), job_start, job_end);
        let json: serde_json::Value = serde_json::from_str(&timeline.to_chrome_json()).unwrap();
        let mut lanes: BTreeMap<u64, Vec<(u64, u64, String)>> = BTreeMap::new();
        for e in json["traceEvents"].as_array().unwrap() {
            if e["ph"] == "X" {
                let ts = e["ts"].as_u64().unwrap();
                let span = (ts, ts + e["dur"].as_u64().unwrap(), e.to_string());
                lanes
                    .entry(e["tid"].as_u64().unwrap())
                    .or_default()
                    .push(span);
            }
        }
        for spans in lanes.values_mut() {
            spans.sort();
            for w in spans.windows(2) {
                assert!(w[0].1 <= w[1].0, "overlap: {} and {}", w[0].2, w[1].2);
            }
        }
        // The request ran 1-3 ms, waited 3-10 ms, and read at 10 ms.
        let names = |tid| {
            lanes[&tid]
                .iter()
                .map(|(a, b, e)| (*a / 1000, *b / 1000, e.contains("\"busy\"")))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(1),
            [(1, 3, true), (3, 10, false), (10, 10, true)],
            "{lanes:?}"
        );
        assert_eq!(names(2), [(2, 5, true)]);
    }
}

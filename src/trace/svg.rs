//! SVG timing diagrams: one lane per task or thread, time across.
//!
//! ```text
//!  event loop   ░░░░░        ░░░░░░░░░         idle in mio::Poll
//!  task 1       ──██──────────██───────        ── alive, waiting
//!  task 2         ──████████──────██──         ██ being polled (busy)
//!  blocking 0          ▓job 3▓▓                ▓▓ blocking-pool job
//! ```
//!
//! A [`Diagram`] knows nothing about runtimes: it is lanes of spans. A
//! [`Trace`] becomes one through [`Trace::to_diagram`]; a program that times
//! plain threads or processes builds its own, so that every model of
//! concurrency is drawn the same way (the `concurrency_models` example does
//! both). Wakes are small marks above a lane, coloured by reason. A span can
//! carry a tag, written inside it where it fits and shown as its tooltip:
//! a blocking thread's job is tagged with the task that awaits it.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Event, Trace, label};

const WIDTH: f64 = 1000.0;
const LABEL: f64 = 170.0;
const LANE: f64 = 18.0;
const TOP: f64 = 46.0;
/// Task lanes drawn at most; a trace of thousands of tasks gets a note.
const MAX_TASK_LANES: usize = 120;

/// The colour of busy spans of a task (or of a thread doing work).
pub const BUSY: &str = "#e67e22";
/// The colour of the line that shows a lane alive but waiting.
pub const WAITING: &str = "#999";
/// The colour of blocking-pool jobs.
pub const BLOCKING: &str = "#8e44ad";
/// The colour of the loop's waits in `mio::Poll`.
pub const IDLE: &str = "#c8d6e5";

/// Wake reasons and their mark colours, in the legend's order: every
/// reason the runtime records (every task's first wake is its spawn).
const WAKE_COLOURS: [(&str, &str); 7] = [
    ("spawn", "#555"),
    ("io", "#2980b9"),
    ("timer", "#27ae60"),
    ("task", "#c0392b"),
    ("yield", "#f1c40f"),
    ("remote", "#8e44ad"),
    ("other", OTHER_WAKE),
];

/// The colour of `other` wakes, and of any reason a hand-made diagram
/// names that is not in [`WAKE_COLOURS`].
const OTHER_WAKE: &str = "#bbb";

/// One lane of a [`Diagram`]. Times are microseconds on any common clock.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lane {
    /// The text at the left.
    pub label: String,
    /// The colour of the busy spans.
    pub colour: &'static str,
    /// From when to when the lane existed (drawn as a thin line).
    pub alive: Option<(u64, u64)>,
    /// When it was busy (drawn as bars).
    pub busy: Vec<(u64, u64)>,
    /// Marks above the lane: (time, reason), coloured by reason name.
    pub wakes: Vec<(u64, &'static str)>,
    /// Text for some of the busy spans, as (start, end, text): written
    /// inside the span where it fits, and its tooltip either way. A
    /// blocking thread's job is tagged with the task that awaits it.
    pub tags: Vec<(u64, u64, String)>,
}

/// A timing diagram: lanes of spans over a common time axis.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diagram {
    /// The lanes, top to bottom.
    pub lanes: Vec<Lane>,
    /// The legend: (colour, text) pairs.
    pub legend: Vec<(&'static str, &'static str)>,
    /// Lanes left out (noted under the diagram).
    pub hidden: usize,
}

/// The lane of `task`, created (named `task N`) on first sight.
fn task_lane(tasks: &mut BTreeMap<u64, Lane>, task: u64) -> &mut Lane {
    tasks.entry(task).or_insert_with(|| Lane {
        label: label(task, None),
        colour: BUSY,
        ..Lane::default()
    })
}

impl Trace {
    /// The trace as a [`Diagram`]: the loop's idle lane, one lane per
    /// blocking thread, then one per task (at most 120).
    pub fn to_diagram(&self) -> Diagram {
        let end = self.events.iter().map(Event::end_us).max().unwrap_or(0);
        let mut idle = Lane {
            label: "event loop (idle)".into(),
            colour: IDLE,
            ..Lane::default()
        };
        let mut blocking: BTreeMap<usize, Lane> = BTreeMap::new();
        let mut tasks: BTreeMap<u64, Lane> = BTreeMap::new();
        for event in &self.events {
            match *event {
                Event::Spawn {
                    task,
                    ref name,
                    at_us,
                    ..
                } => {
                    let lane = task_lane(&mut tasks, task);
                    if let Some(name) = name {
                        lane.label = name.clone();
                    }
                    lane.alive = Some((at_us, end));
                }
                Event::Poll {
                    task,
                    start_us,
                    end_us,
                } => {
                    task_lane(&mut tasks, task).busy.push((start_us, end_us));
                }
                Event::Wake {
                    task,
                    reason,
                    at_us,
                } => {
                    task_lane(&mut tasks, task)
                        .wakes
                        .push((at_us, reason.name()));
                }
                Event::Finish { task, at_us } => {
                    let lane = task_lane(&mut tasks, task);
                    if let Some((start, _)) = lane.alive {
                        lane.alive = Some((start, at_us));
                    }
                }
                Event::Park { start_us, end_us } => idle.busy.push((start_us, end_us)),
                Event::Blocking {
                    thread,
                    task,
                    start_us,
                    end_us,
                } => {
                    // The waiting task was spawned before its job ran, so
                    // its lane, and its name if it has one, exist by now.
                    let owner = tasks
                        .get(&task)
                        .map_or_else(|| label(task, None), |l| l.label.clone());
                    let lane = blocking.entry(thread).or_insert_with(|| Lane {
                        label: format!("blocking thread {thread}"),
                        colour: BLOCKING,
                        ..Lane::default()
                    });
                    lane.busy.push((start_us, end_us));
                    lane.tags.push((start_us, end_us, owner));
                }
            }
        }
        let hidden = tasks.len().saturating_sub(MAX_TASK_LANES);
        let mut lanes = vec![idle];
        lanes.extend(blocking.into_values());
        lanes.extend(tasks.into_values().take(MAX_TASK_LANES));
        Diagram {
            lanes,
            legend: vec![
                (BUSY, "task being polled (busy)"),
                (WAITING, "task alive, waiting"),
                (BLOCKING, "blocking-pool job"),
                (IDLE, "loop idle in mio::Poll"),
            ],
            hidden,
        }
    }
}

impl Diagram {
    /// The diagram as SVG, titled `title`.
    pub fn to_svg(&self, title: &str) -> String {
        // The axis covers everything drawn: spans, tags and wake marks. A
        // wake can come after every span (a task woken just before the
        // trace was taken, or after it finished), or before them in a
        // hand-made diagram; an axis of the spans alone drew it outside
        // the chart, or at its edge at the wrong time.
        let spans = self.lanes.iter().flat_map(|l| {
            let tags = l.tags.iter().map(|&(a, b, _)| (a, b));
            let wakes = l.wakes.iter().map(|&(t, _)| (t, t));
            l.alive
                .into_iter()
                .chain(l.busy.iter().copied())
                .chain(tags)
                .chain(wakes)
        });
        // Either end of a span may be the earlier: `Diagram` and `Trace`
        // are public, and a hand-made span can end before it starts.
        let t0 = spans.clone().map(|(a, b)| a.min(b)).min().unwrap_or(0);
        let t1 = spans.map(|(a, b)| a.max(b)).max().unwrap_or(0);
        // At least 1 µs, so that one instant still makes an axis (not
        // `t1 = t0 + 1`, which overflows when `t0` is `u64::MAX`).
        let span = (t1 - t0).max(1);
        let any_wakes = self.lanes.iter().any(|l| !l.wakes.is_empty());
        let height = TOP + LANE * self.lanes.len() as f64 + if any_wakes { 66.0 } else { 50.0 };
        let x = |t: u64| LABEL + t.saturating_sub(t0) as f64 / span as f64 * (WIDTH - LABEL - 10.0);
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
        let span_ms = span as f64 / 1000.0;
        let step = nice_step(span_ms / 10.0);
        let ticks = (span_ms / step + 1e-9).floor() as u64;
        for k in 0..=ticks {
            // k × step, not a running sum: no creeping float error in labels.
            let ms = (k as f64 * step * 1e6).round() / 1e6;
            let px = x(t0.saturating_add((ms * 1000.0) as u64));
            let _ = writeln!(
                svg,
                "<line x1=\"{px:.1}\" y1=\"{}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/><text x=\"{px:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666\">{ms} ms</text>",
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
                escape(&truncate(&lane.label, 22))
            );
            if let Some((a, b)) = lane.alive {
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
                // A thin white outline keeps back-to-back spans apart; a
                // span narrower than that would vanish under it.
                let w = (x(b) - x(a)).max(1.0);
                let outline = if w >= 3.0 {
                    " stroke=\"white\" stroke-width=\"0.5\""
                } else {
                    ""
                };
                let _ = writeln!(
                    svg,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"12\" fill=\"{}\"{outline}/>",
                    x(a),
                    y + 3.0,
                    escape(lane.colour)
                );
            }
            for (a, b, text) in &lane.tags {
                // Monospace at 9 px is about 5.5 px a character.
                let w = x(*b) - x(*a);
                let inside = if text.chars().count() as f64 * 5.5 + 4.0 <= w {
                    format!(
                        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" fill=\"white\">{}</text>",
                        x(*a) + 2.0,
                        y + 12.0,
                        escape(text)
                    )
                } else {
                    String::new()
                };
                let _ = writeln!(
                    svg,
                    "<g><title>{}, {:.1} ms</title><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"12\" fill=\"none\" pointer-events=\"all\"/>{inside}</g>",
                    escape(text),
                    b.saturating_sub(*a) as f64 / 1000.0,
                    x(*a),
                    y + 3.0,
                    w.max(1.0)
                );
            }
            for &(t, reason) in &lane.wakes {
                let _ = writeln!(
                    svg,
                    "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"2\" height=\"4\" fill=\"{}\"><title>wake: {}</title></rect>",
                    x(t),
                    wake_colour(reason),
                    escape(reason)
                );
            }
        }
        let legend_y = height - if any_wakes { 34.0 } else { 18.0 };
        for (i, (colour, text)) in self.legend.iter().enumerate() {
            let lx = 8.0 + 240.0 * i as f64;
            let _ = writeln!(
                svg,
                "<rect x=\"{lx}\" y=\"{:.1}\" width=\"12\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{legend_y}\">{}</text>",
                legend_y - 9.0,
                escape(colour),
                lx + 16.0,
                escape(text)
            );
        }
        if any_wakes {
            let _ = write!(
                svg,
                "<text x=\"8\" y=\"{:.1}\" fill=\"#666\">wake marks:</text>",
                legend_y + 14.0
            );
            for (i, (name, colour)) in WAKE_COLOURS.iter().enumerate() {
                let lx = 100.0 + 90.0 * i as f64;
                let _ = writeln!(
                    svg,
                    "<rect x=\"{lx}\" y=\"{:.1}\" width=\"3\" height=\"8\" fill=\"{colour}\"/><text x=\"{}\" y=\"{:.1}\">{name}</text>",
                    legend_y + 6.0,
                    lx + 6.0,
                    legend_y + 14.0
                );
            }
        }
        if self.hidden > 0 {
            let _ = writeln!(
                svg,
                "<text x=\"8\" y=\"{:.1}\" fill=\"#666\">(+{} more lanes not drawn)</text>",
                legend_y - 16.0,
                self.hidden
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

fn wake_colour(reason: &str) -> &'static str {
    WAKE_COLOURS
        .iter()
        .find(|(name, _)| *name == reason)
        .map_or(OTHER_WAKE, |(_, colour)| colour)
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

/// `s` as XML character data or a double-quoted attribute value: markup
/// characters and `"` escaped, and characters
/// XML 1.0 forbids even escaped (C0 controls but tab, LF, CR; U+FFFE,
/// U+FFFF) replaced by U+FFFD.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Task `task`, named `name`, spawned at time 0.
    fn spawn(task: u64, name: Option<&str>) -> Event {
        Event::Spawn {
            task,
            name: name.map(str::to_owned),
            location: "here".into(),
            at_us: 0,
        }
    }

    /// A blocking-pool job is tagged with the task that awaits it, by name,
    /// or by number when it has none; the tag is written inside a bar wide
    /// enough for it and is the bar's tooltip either way.
    #[test]
    fn a_blocking_job_is_tagged_with_the_task_that_awaits_it() {
        let trace = Trace {
            events: vec![
                spawn(1, Some("hash <3>")),
                spawn(2, None),
                Event::Blocking {
                    thread: 0,
                    task: 1,
                    start_us: 0,
                    end_us: 90_000,
                },
                Event::Blocking {
                    thread: 0,
                    task: 2,
                    start_us: 90_000,
                    end_us: 90_500,
                },
            ],
        };
        let diagram = trace.to_diagram();
        let lane = diagram
            .lanes
            .iter()
            .find(|l| l.label == "blocking thread 0")
            .expect("a lane for the pool thread");
        assert_eq!(
            lane.tags,
            [
                (0, 90_000, "hash <3>".to_owned()),
                (90_000, 90_500, "task 2".to_owned())
            ]
        );
        let svg = diagram.to_svg("tags");
        // The wide bar has its text inside; the narrow one only its tooltip.
        assert!(svg.contains(">hash &lt;3&gt;</text></g>"), "{svg}");
        assert!(
            svg.contains("<title>hash &lt;3&gt;, 90.0 ms</title>"),
            "{svg}"
        );
        assert!(svg.contains("<title>task 2, 0.5 ms</title>"), "{svg}");
        assert!(!svg.contains(">task 2</text></g>"), "{svg}");
    }

    /// XML 1.0 forbids most control characters even escaped, so a task
    /// named with an ANSI colour code, or a title with a bell, must not
    /// put one in the document.
    #[test]
    fn control_characters_in_names_leave_the_svg_well_formed() {
        let trace = Trace {
            events: vec![spawn(1, Some("red \u{1b}[31mjob"))],
        };
        let svg = trace.to_svg("title \u{7}");
        let bad: Vec<char> = svg
            .chars()
            .filter(|&c| (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r'))
            .collect();
        assert!(bad.is_empty(), "characters XML 1.0 forbids: {bad:?}");
        assert!(
            svg.contains("red \u{FFFD}[31mjob"),
            "the name is kept, the control replaced"
        );
        assert_eq!(escape("a<b&c>"), "a&lt;b&amp;c&gt;");
    }

    /// A `Diagram` is public, built by hand for plain threads too (the
    /// `concurrency_models` example). A wake mark's reason is written into
    /// its tooltip and a lane's or legend's colour into a `fill="…"`
    /// attribute: each must be escaped like every other text, or the SVG is
    /// not well-formed. (Found in review, session 25.)
    #[test]
    fn hand_made_wake_reasons_and_colours_are_escaped() {
        let diagram = Diagram {
            lanes: vec![Lane {
                label: "worker".into(),
                colour: "red\" onclick=\"x",
                busy: vec![(0, 10)],
                wakes: vec![(5, "read<->write & more")],
                ..Lane::default()
            }],
            legend: vec![("blue\"", "a lane")],
            ..Diagram::default()
        };
        let svg = diagram.to_svg("wakes");
        assert!(
            svg.contains("<title>wake: read&lt;-&gt;write &amp; more</title>"),
            "{svg}"
        );
        assert!(svg.contains("fill=\"red&quot; onclick=&quot;x\""), "{svg}");
        assert!(svg.contains("fill=\"blue&quot;\""), "{svg}");
    }

    /// Every task's first wake is its spawn, so every task lane of a trace
    /// carries a spawn mark; the legend under the marks named five reasons
    /// and left that grey mark (and the rarer `other`) unexplained. Every
    /// reason the runtime records has its own colour and a legend entry.
    /// (Found in review, session 32.)
    #[test]
    fn every_wake_reason_has_its_own_colour_in_the_legend() {
        let names = super::super::WakeReason::NAMES;
        for name in names {
            assert!(
                WAKE_COLOURS.iter().any(|&(n, _)| n == name),
                "no legend entry for {name} wake marks"
            );
        }
        let mut colours: Vec<&str> = names.iter().map(|n| wake_colour(n)).collect();
        colours.sort_unstable();
        colours.dedup();
        assert_eq!(colours.len(), names.len(), "two reasons share a colour");
        // A traced task's lane shows its spawn mark, and the legend names it.
        let trace = Trace {
            events: vec![
                spawn(1, None),
                Event::Wake {
                    task: 1,
                    reason: super::super::WakeReason::Spawn,
                    at_us: 0,
                },
                Event::Poll {
                    task: 1,
                    start_us: 0,
                    end_us: 1_000,
                },
            ],
        };
        let svg = trace.to_svg("spawn");
        let spawn = wake_colour("spawn");
        assert!(
            svg.contains(&format!("fill=\"{spawn}\"><title>wake: spawn")),
            "{svg}"
        );
        assert!(svg.contains(&format!("fill=\"{spawn}\"/><text")), "{svg}");
        assert!(svg.contains(">spawn</text>"), "{svg}");
    }

    /// The x coordinates of every `rect` and `line` drawn in `svg`.
    fn drawn_xs(svg: &str) -> Vec<f64> {
        svg.split(" x=\"")
            .chain(svg.split(" x1=\""))
            .chain(svg.split(" x2=\""))
            .filter(|rest| !rest.starts_with('<'))
            .filter_map(|rest| rest[..rest.find('"')?].parse().ok())
            .collect()
    }

    /// `Diagram` and `Trace` are public, built by hand too, and nothing
    /// stops a span that ends before it starts. The axis ran from the
    /// earliest start to the latest end, so such a span starting after
    /// every end was drawn past the right edge of the chart (x = 1437 in a
    /// 1000-wide picture). And an axis ending at the last microsecond a
    /// `u64` holds overflowed (`t0 + 1`), a panic in a debug build.
    /// (Found in review, session 37.)
    #[test]
    fn a_span_that_ends_before_it_starts_is_drawn_inside_the_chart() {
        let right = WIDTH - 10.0;
        let diagram = Diagram {
            lanes: vec![Lane {
                label: "worker".into(),
                colour: BUSY,
                alive: Some((0, 1_000)),
                busy: vec![(0, 1_000), (5_000, 2_000)],
                tags: vec![(5_000, 2_000, "late".into())],
                ..Lane::default()
            }],
            ..Diagram::default()
        };
        let svg = diagram.to_svg("reversed");
        let xs = drawn_xs(&svg);
        assert!(
            xs.iter().all(|&x| x <= right + 1.0),
            "drawn past the chart's right edge: {xs:?}\n{svg}"
        );
        // The reversed span sits at the end of a 5 ms axis.
        assert!(svg.contains(">5 ms</text>"), "{svg}");

        let end_of_time = Diagram {
            lanes: vec![Lane {
                label: "last".into(),
                colour: BUSY,
                busy: vec![(u64::MAX, u64::MAX)],
                ..Lane::default()
            }],
            ..Diagram::default()
        };
        let svg = end_of_time.to_svg("the last microsecond");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    /// The x coordinates of the wake marks in `svg`, in order.
    fn wake_marks(svg: &str) -> Vec<f64> {
        svg.lines()
            .filter(|l| l.contains("<title>wake:"))
            .map(|l| {
                let x = l.split("x=\"").nth(1).expect("an x");
                x[..x.find('"').unwrap()].parse().unwrap()
            })
            .collect()
    }

    /// The time axis ran over the lanes' spans only, so a wake after the
    /// last of them (a task woken just before the trace was taken, or after
    /// it finished) was drawn past the right edge of the chart, and one
    /// before the first at its left edge, at the wrong time. (Found in
    /// review, session 28.)
    #[test]
    fn every_wake_mark_is_inside_the_chart_and_in_time_order() {
        // Task 1 runs for 1 ms and finishes; it is woken at 5 ms anyway.
        let trace = Trace {
            events: vec![
                spawn(1, None),
                Event::Poll {
                    task: 1,
                    start_us: 0,
                    end_us: 1_000,
                },
                Event::Finish {
                    task: 1,
                    at_us: 1_000,
                },
                Event::Wake {
                    task: 1,
                    reason: super::super::WakeReason::Timer,
                    at_us: 5_000,
                },
            ],
        };
        let svg = trace.to_svg("late wake");
        let right = WIDTH - 10.0;
        assert_eq!(wake_marks(&svg), [right], "{svg}");
        // The axis reaches it: its last tick is 5 ms.
        assert!(svg.contains(">5 ms</text>"), "{svg}");
        // A hand-made lane woken before its first span and after its last.
        let diagram = Diagram {
            lanes: vec![Lane {
                label: "worker".into(),
                colour: BUSY,
                busy: vec![(1_000, 2_000)],
                wakes: vec![(0, "io"), (3_000, "timer")],
                ..Lane::default()
            }],
            ..Diagram::default()
        };
        let svg = diagram.to_svg("early and late wakes");
        let marks = wake_marks(&svg);
        assert_eq!(marks, [LABEL, right], "{svg}");
        // The span sits between them, a third of the way along.
        let third = LABEL + (right - LABEL) / 3.0;
        assert!(svg.contains(&format!("<rect x=\"{third:.1}\"")), "{svg}");
    }
}

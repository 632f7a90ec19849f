//! The four charts of the report, from the rows of the table.

use crate::cell::Measurement;
use crate::report::{Row, size_label};
use crate::servers::SERVERS;
use crate::svg::{Chart, Point, Scale, Series, group_thousands};

/// The charts, as `(file name, alt text, chart)`, over the cells of `size` bytes.
pub fn all(rows: &[Row], size: usize) -> Vec<(&'static str, &'static str, Chart)> {
    let series = |value: &dyn Fn(&Row, &Measurement) -> Option<f64>| -> Vec<Series> {
        SERVERS
            .iter()
            .filter(|s| rows.iter().any(|r| r.server.name == s.name))
            .map(|server| {
                let mut points: Vec<Point> = rows
                    .iter()
                    .filter(|r| r.server.name == server.name && r.size == size)
                    .filter_map(|r| {
                        let y = value(r, r.measured()?)?;
                        Some(Point {
                            x: r.conns as f64,
                            y,
                            complete: r.all_served(),
                        })
                    })
                    .collect();
                // The line joins the points in order: cells come in the
                // order `--conns` named them, which need not be ascending.
                points.sort_by(|a, b| a.x.total_cmp(&b.x));
                Series {
                    name: server.name.to_string(),
                    color: server.color.to_string(),
                    points,
                }
            })
            .filter(|series| !series.points.is_empty())
            .collect()
    };
    let x_label = format!(
        "concurrent connections (log scale), {} messages",
        size_label(size)
    );
    vec![
        (
            "throughput.svg",
            "Echoes per second against connections",
            Chart {
                title: "Throughput (higher is better)".into(),
                x_label: x_label.clone(),
                y_label: "echoes per second".into(),
                y_scale: Scale::Linear,
                y_format: si,
                series: series(&|_, m| Some(m.load.rps)),
            },
        ),
        (
            "p99.svg",
            "99th percentile round trip against connections",
            Chart {
                title: "p99 round-trip latency (lower is better)".into(),
                x_label: x_label.clone(),
                y_label: "p99 round trip (log scale)".into(),
                y_scale: Scale::Log,
                y_format: micros,
                // No echoes, no round trips: loadgen's empty histogram
                // says 0, which is no latency at all.
                series: series(&|_, m| Some(m.load.p99_us as f64).filter(|_| m.load.msgs > 0)),
            },
        ),
        (
            "cpu.svg",
            "Server CPU time per echo against connections",
            Chart {
                title: "Server CPU time per echo (lower is better)".into(),
                x_label: x_label.clone(),
                y_label: "µs of CPU (user + system) per echo".into(),
                y_scale: Scale::Linear,
                // Not `{v:.0}`: below 2.5 µs the ticks step by 0.5, which
                // whole numbers would label 0, 0, 1, 2, 2, 2.
                y_format: trim,
                series: series(&|_, m| m.cpu_us_per_echo),
            },
        ),
        (
            "memory.svg",
            "Memory per connection, kernel stacks included, against connections",
            Chart {
                title: "Memory per connection, kernel stacks included (lower is better)".into(),
                x_label,
                y_label: "KiB per connection (log scale)".into(),
                y_scale: Scale::Log,
                y_format: |v| format!("{} KiB", trim(v)),
                // Only where every connection was served: the pool holds the
                // others in a queue, which costs it almost nothing, and serves none.
                series: series(&|r, m| {
                    Some(m.mem_per_conn_kib(r.conns)).filter(|v| *v > 0.0 && r.all_served())
                }),
            },
        ),
    ]
}

/// `120k`, `1.5M`.
fn si(value: f64) -> String {
    match value {
        v if v >= 1e6 => format!("{}M", trim(v / 1e6)),
        v if v >= 1e3 => format!("{}k", trim(v / 1e3)),
        v => trim(v),
    }
}

/// `100 µs`, `1 ms`, `1 s`.
fn micros(value: f64) -> String {
    match value {
        v if v >= 1e6 => format!("{} s", trim(v / 1e6)),
        v if v >= 1e3 => format!("{} ms", trim(v / 1e3)),
        v => format!("{} µs", trim(v)),
    }
}

/// A tick value with as many decimals as it needs (`0.01`, `2.5`, `1,000`).
fn trim(value: f64) -> String {
    if value >= 1000.0 {
        return group_thousands(value);
    }
    let decimals = if value > 0.0 && value < 1.0 {
        (-value.log10()).ceil() as usize
    } else {
        1
    };
    let text = format!("{value:.decimals$}");
    match text.strip_suffix(".0") {
        Some(whole) => whole.to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::Outcome;

    /// One `coop` row of `conns` × 64 B, `cpu` µs per echo, all served.
    fn cpu_row(conns: usize, cpu: f64) -> Row {
        let mut m = Measurement {
            cpu_us_per_echo: Some(cpu),
            ..Measurement::default()
        };
        (m.load.msgs, m.load.connected) = (1000, conns as u64);
        Row {
            server: &SERVERS[0],
            conns,
            size: 64,
            outcome: Outcome::Measured(Box::new(m)),
        }
    }

    /// Review (session 37): the CPU chart labelled its ticks with whole
    /// numbers, so a chart whose highest CPU per echo was under 2.5 µs
    /// (ticks 0, 0.5, 1, ... 2.5) read 0, 0, 1, 2, 2, 2.
    #[test]
    fn cpu_ticks_below_a_microsecond_apart_keep_their_decimals() {
        let charts = all(&[cpu_row(100, 1.2), cpu_row(1000, 2.4)], 64);
        let (_, _, cpu) = charts.iter().find(|c| c.0 == "cpu.svg").unwrap();
        let svg = cpu.render();
        for label in [">0.5<", ">1.5<", ">2.5<"] {
            assert!(svg.contains(label), "no tick label {label} in {svg}");
        }
    }

    /// Review (session 37): the points were joined in the order of the
    /// rows, that is of `--conns`: `--conns 1000,1,100` drew a line from
    /// 1,000 back to 1 and out to 100 again.
    #[test]
    fn each_line_runs_from_fewer_connections_to_more() {
        let rows = [cpu_row(1000, 8.0), cpu_row(1, 30.0), cpu_row(100, 6.0)];
        for (file, _, chart) in all(&rows, 64) {
            for series in &chart.series {
                let xs: Vec<f64> = series.points.iter().map(|p| p.x).collect();
                assert!(xs.is_sorted(), "{file}, {}: {xs:?}", series.name);
            }
        }
    }

    /// Review: a server that accepted every connection but echoed nothing
    /// (every warm-up timed out) has no round trips, and loadgen's empty
    /// histogram says p99 = 0. The p99 chart drew that 0 at the bottom of
    /// its log axis, below every other server: the best latency of all.
    #[test]
    fn a_server_that_echoed_nothing_has_no_latency_point() {
        let row = |name: &str, msgs: u64, p99: u64| {
            let mut m = Measurement::default();
            m.load.msgs = msgs;
            m.load.p99_us = p99;
            m.load.connected = if msgs > 0 { 100 } else { 0 };
            m.load.errors = if msgs > 0 { 0 } else { 100 };
            Row {
                server: SERVERS.iter().find(|s| s.name == name).unwrap(),
                conns: 100,
                size: 64,
                outcome: Outcome::Measured(Box::new(m)),
            }
        };
        let rows = [row("coop", 0, 0), row("tokio", 50_000, 900)];
        let charts = all(&rows, 64);
        let (_, _, p99) = charts.iter().find(|c| c.0 == "p99.svg").unwrap();
        for series in &p99.series {
            for point in &series.points {
                assert!(point.y > 0.0, "{}: p99 {} drawn", series.name, point.y);
            }
        }
    }
}

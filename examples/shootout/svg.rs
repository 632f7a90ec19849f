//! Line charts as hand-written SVG: one line per server against the number of
//! connections, on a logarithmic x axis.
//!
//! Deliberately plain: a title, labelled axes with grid lines, a legend on the
//! right, one colour per server. A hollow marker is a point where not every
//! connection was served (the numbers are for those that were).

use std::fmt::Write;

/// Width and height of every chart, in SVG user units (pixels).
const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 440.0;
/// The plot area inside the chart.
const LEFT: f64 = 86.0;
const RIGHT: f64 = WIDTH - 170.0;
const TOP: f64 = 48.0;
const BOTTOM: f64 = HEIGHT - 58.0;

/// How the y axis maps values.
#[derive(Clone, Copy, PartialEq)]
pub enum Scale {
    /// From zero, evenly spaced ticks.
    Linear,
    /// Powers of ten; for values that span several orders of magnitude.
    Log,
}

/// One point of a series.
pub struct Point {
    pub x: f64,
    pub y: f64,
    /// Every connection was served; drawn filled, else hollow.
    pub complete: bool,
}

/// One line: a server.
pub struct Series {
    pub name: String,
    pub color: String,
    pub points: Vec<Point>,
}

pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub y_scale: Scale,
    /// Formats a y tick value (units included, if short).
    pub y_format: fn(f64) -> String,
    pub series: Vec<Series>,
}

impl Chart {
    /// The whole chart as an SVG document.
    pub fn render(&self) -> String {
        let points = || self.series.iter().flat_map(|s| s.points.iter());
        let xs: Vec<f64> = points().map(|p| p.x).filter(|x| *x > 0.0).collect();
        let ys: Vec<f64> = points().map(|p| p.y).filter(|y| y.is_finite()).collect();
        // x: whole decades around the data.
        // (With no points at all, as in a run whose servers all fell over,
        // the fold stays infinite: one decade from 1 then.)
        let x_lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let x_lo = if x_lo.is_finite() { x_lo.max(1.0) } else { 1.0 };
        let x_hi = xs.iter().copied().fold(1.0, f64::max);
        let (x0, x1) = decades(x_lo, x_hi);
        let (y_ticks, y0, y1) = match self.y_scale {
            Scale::Linear => linear_ticks(ys.iter().copied().fold(0.0, f64::max)),
            Scale::Log => {
                let positive = ys.iter().copied().filter(|y| *y > 0.0);
                let lo = positive.clone().fold(f64::INFINITY, f64::min);
                let hi = positive.fold(0.0, f64::max);
                let (e0, e1) = if hi > 0.0 { decades(lo, hi) } else { (0, 1) };
                let ticks = (e0..=e1).map(|e| 10f64.powi(e)).collect();
                (ticks, 10f64.powi(e0), 10f64.powi(e1))
            }
        };
        let px = |x: f64| {
            let t = (x.log10() - x0 as f64) / (x1 - x0) as f64;
            LEFT + t * (RIGHT - LEFT)
        };
        let py = |y: f64| {
            let t = match self.y_scale {
                Scale::Linear => (y - y0) / (y1 - y0),
                Scale::Log => (y.max(y0).log10() - y0.log10()) / (y1.log10() - y0.log10()),
            };
            BOTTOM - t * (BOTTOM - TOP)
        };

        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif" font-size="13">"#
        );
        let _ = writeln!(
            svg,
            r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
        );
        text(&mut svg, WIDTH / 2.0, 26.0, "middle", 16.0, &self.title, "");
        // Grid and tick labels.
        for e in x0..=x1 {
            let x = px(10f64.powi(e));
            line(&mut svg, (x, TOP), (x, BOTTOM), "#dddddd", 1.0);
            let label = group_thousands(10f64.powi(e));
            text(&mut svg, x, BOTTOM + 18.0, "middle", 12.0, &label, "");
        }
        for &y in &y_ticks {
            let at = py(y);
            line(&mut svg, (LEFT, at), (RIGHT, at), "#dddddd", 1.0);
            let label = (self.y_format)(y);
            text(&mut svg, LEFT - 8.0, at + 4.0, "end", 12.0, &label, "");
        }
        // Axes and their labels.
        line(&mut svg, (LEFT, BOTTOM), (RIGHT, BOTTOM), "#333333", 1.5);
        line(&mut svg, (LEFT, TOP), (LEFT, BOTTOM), "#333333", 1.5);
        let x_mid = (LEFT + RIGHT) / 2.0;
        text(
            &mut svg,
            x_mid,
            HEIGHT - 16.0,
            "middle",
            13.0,
            &self.x_label,
            "",
        );
        let y_mid = (TOP + BOTTOM) / 2.0;
        let rotate = format!(r#" transform="rotate(-90 20 {y_mid})""#);
        text(
            &mut svg,
            20.0,
            y_mid,
            "middle",
            13.0,
            &self.y_label,
            &rotate,
        );

        // The lines, then the markers on top; the first series (coop) last,
        // so that it is drawn over the others where they overlap.
        for series in self.series.iter().rev() {
            let mut path = String::new();
            for point in &series.points {
                let _ = write!(path, "{:.1},{:.1} ", px(point.x), py(point.y));
            }
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2.2"/>"#,
                path.trim_end(),
                series.color
            );
            for point in &series.points {
                let fill = if point.complete {
                    &series.color
                } else {
                    "white"
                };
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{fill}" stroke="{}" stroke-width="2"/>"#,
                    px(point.x),
                    py(point.y),
                    series.color
                );
            }
        }

        // Legend.
        let lx = RIGHT + 20.0;
        for (i, series) in self.series.iter().enumerate() {
            let y = TOP + 10.0 + 22.0 * i as f64;
            line(&mut svg, (lx, y), (lx + 26.0, y), &series.color, 2.2);
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{y:.1}" r="4" fill="{}"/>"#,
                lx + 13.0,
                series.color
            );
            text(
                &mut svg,
                lx + 34.0,
                y + 4.0,
                "start",
                13.0,
                &series.name,
                "",
            );
        }
        let note_y = TOP + 10.0 + 22.0 * self.series.len() as f64 + 6.0;
        let _ = writeln!(
            svg,
            r##"<circle cx="{:.1}" cy="{note_y:.1}" r="4" fill="white" stroke="#666666" stroke-width="2"/>"##,
            lx + 13.0
        );
        text(
            &mut svg,
            lx + 34.0,
            note_y + 4.0,
            "start",
            11.0,
            "not all served",
            "",
        );
        svg.push_str("</svg>\n");
        svg
    }
}

/// Exponents of the powers of ten just below `lo` and just above `hi`; at
/// least one decade apart.
fn decades(lo: f64, hi: f64) -> (i32, i32) {
    let e0 = lo.log10().floor() as i32;
    let e1 = (hi.log10().ceil() as i32).max(e0 + 1);
    (e0, e1)
}

/// Ticks from 0 at a step of 1, 2 or 5 × 10ⁿ, five or so of them up to `max`.
fn linear_ticks(max: f64) -> (Vec<f64>, f64, f64) {
    let max = if max > 0.0 { max } else { 1.0 };
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude);
    let top = (max / step).ceil() * step;
    let ticks = (0..=(top / step).round() as usize)
        .map(|i| i as f64 * step)
        .collect();
    (ticks, 0.0, top)
}

/// `10000` as `10,000`.
pub fn group_thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 { format!("-{out}") } else { out }
}

fn line(svg: &mut String, (x1, y1): (f64, f64), (x2, y2): (f64, f64), color: &str, width: f64) {
    let _ = writeln!(
        svg,
        r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{color}" stroke-width="{width}"/>"#
    );
}

/// A text element; `extra` goes into the tag as is (a transform).
fn text(svg: &mut String, x: f64, y: f64, anchor: &str, size: f64, content: &str, extra: &str) {
    let escaped = content
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let _ = writeln!(
        svg,
        r##"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" font-size="{size}"{extra} fill="#222222">{escaped}</text>"##
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chart with nothing to draw (every server of a cell fell over, or a
    /// run of one cell that has no points for it) is still a document: the
    /// empty x range once made the axis' decades overflow.
    #[test]
    fn a_chart_with_no_points_renders() {
        for y_scale in [Scale::Linear, Scale::Log] {
            let chart = Chart {
                title: "empty".into(),
                x_label: "connections".into(),
                y_label: "req/s".into(),
                y_scale,
                y_format: |y| format!("{y}"),
                series: vec![Series {
                    name: "coop".into(),
                    color: "#000".into(),
                    points: Vec::new(),
                }],
            };
            let svg = chart.render();
            assert!(
                svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
                "{svg}"
            );
        }
    }
}

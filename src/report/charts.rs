//! Inline SVG charts for the HTML report: line charts, stacked shares and a timeline, all on
//! one shared time axis so the charts of a report line up under each other.
//!
//! Hand-written rather than drawn with a plotting crate: the report needs three simple chart
//! shapes, plain `<text>` labels, `<title>` tooltips and escaped names, and a plotting crate
//! brings font handling (to measure its labels) and a large compile for little of that.
//! Colours are presentation attributes, so a chart copied out of the page still renders.

use std::fmt::Write as _;

use super::escape::markup;
use super::model::Span;

/// Width of every chart in SVG units (they scale to the page width).
pub const WIDTH: f64 = 960.0;
/// Left margin: room for y-axis labels and timeline row labels.
const LEFT: f64 = 156.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 30.0;
const AXIS: f64 = 30.0;
const PLOT_HEIGHT: f64 = 190.0;
const ROW_HEIGHT: f64 = 22.0;
const LEGEND_ROW: f64 = 18.0;

/// Colours for series and backends (Tableau 10), reused in order.
pub const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];
/// Fill of fault windows.
pub const FAULT_FILL: &str = "#e15759";
/// Colour of rollback marks.
pub const ROLLBACK: &str = "#2e7d32";
/// Colour of fault injection marks.
pub const INJECT: &str = "#b71c1c";

/// A chart's time axis is a report [`Span`]: the run time shown, in seconds from the origin.
impl Span {
    /// The span shown from `start` to `end`, never empty, so scales never divide by zero.
    pub fn shown(start: f64, end: f64) -> Self {
        let end = if end > start { end } else { start + 1.0 };
        Span { start, end }
    }

    fn x(&self, t: f64) -> f64 {
        let t = t.clamp(self.start, self.end);
        LEFT + (t - self.start) / (self.end - self.start) * (WIDTH - LEFT - RIGHT)
    }
}

/// A shaded span behind the data, such as a fault window.
#[derive(Debug, Clone)]
pub struct Band {
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// Shown on hover and above the band.
    pub label: String,
}

/// A vertical line at an instant, such as a rollback.
#[derive(Debug, Clone)]
pub struct Mark {
    /// When, seconds.
    pub at: f64,
    /// Shown on hover.
    pub label: String,
    /// Line colour.
    pub color: &'static str,
    /// CSS class, so a reader (or a test) can find rollbacks.
    pub class: &'static str,
}

/// One line of a line chart; `None` values leave a gap (no data in that bucket).
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// Line colour.
    pub color: &'static str,
    /// (seconds, value) points.
    pub points: Vec<(f64, Option<f64>)>,
}

/// What the y axis shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unit {
    /// 0–100 %.
    Percent,
    /// Milliseconds, from 0 to a rounded maximum.
    Millis,
}

/// A line chart over time.
#[derive(Debug, Clone)]
pub struct LineChart<'a> {
    /// Heading inside the chart, also its accessible name.
    pub title: &'a str,
    /// The y axis.
    pub unit: Unit,
    /// Time shown.
    pub range: Span,
    /// Shaded spans.
    pub bands: &'a [Band],
    /// Vertical marks.
    pub marks: &'a [Mark],
    /// The lines.
    pub series: Vec<Series>,
}

/// Shares of a whole over time, stacked to 100 %.
#[derive(Debug, Clone)]
pub struct ShareChart<'a> {
    /// Heading.
    pub title: &'a str,
    /// Time shown.
    pub range: Span,
    /// Shaded spans.
    pub bands: &'a [Band],
    /// Vertical marks.
    pub marks: &'a [Mark],
    /// Start of each bucket, seconds.
    pub times: Vec<f64>,
    /// Bucket width, seconds.
    pub step: f64,
    /// One layer per part: its name and its count in each bucket.
    pub layers: Vec<(String, Vec<u64>)>,
}

/// One thing on a timeline row.
#[derive(Debug, Clone)]
pub enum Item {
    /// Something that lasted.
    Span {
        /// Start, seconds.
        start: f64,
        /// End, seconds.
        end: f64,
        /// Fill colour.
        color: &'static str,
        /// Shown on hover.
        label: String,
    },
    /// Something that happened at an instant.
    Point {
        /// When, seconds.
        at: f64,
        /// Fill colour.
        color: &'static str,
        /// Shown on hover.
        label: String,
    },
}

/// A row of the timeline.
#[derive(Debug, Clone)]
pub struct Row {
    /// Row label, left of the plot.
    pub label: String,
    /// What happened on it.
    pub items: Vec<Item>,
}

/// Rows of spans and instants over time.
#[derive(Debug, Clone)]
pub struct Timeline<'a> {
    /// Heading.
    pub title: &'a str,
    /// Time shown.
    pub range: Span,
    /// Vertical marks across every row.
    pub marks: &'a [Mark],
    /// The rows, top to bottom.
    pub rows: Vec<Row>,
}

/// Formats a number with at most `digits` decimals and no trailing zeros.
fn num(value: f64, digits: usize) -> String {
    let text = format!("{value:.digits$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// A "nice" step (1, 2 or 5 × 10^n) that cuts `span` into about `count` parts.
fn nice_step(span: f64, count: f64) -> f64 {
    let raw = (span / count).max(f64::MIN_POSITIVE);
    let magnitude = 10f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

fn time_label(seconds: f64) -> String {
    if seconds.abs() >= 120.0 && (seconds % 60.0).abs() < 1e-9 {
        format!("{}m", num(seconds / 60.0, 0))
    } else {
        format!("{}s", num(seconds, 1))
    }
}

fn open(out: &mut String, class: &str, title: &str, height: f64) {
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart {class}\" viewBox=\"0 0 {WIDTH} {h}\" width=\"100%\" role=\"img\" aria-label=\"{t}\"><title>{t}</title>\
         <rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{h}\" fill=\"#ffffff\"/>\
         <text x=\"{LEFT}\" y=\"18\" font-size=\"14\" font-weight=\"600\" fill=\"#222\">{t}</text>",
        h = num(height, 1),
        t = markup(title),
    );
}

/// Time ticks, grid lines and labels below a plot area spanning `top..bottom`.
fn time_axis(out: &mut String, range: Span, top: f64, bottom: f64) {
    let step = nice_step(range.end - range.start, 10.0).max(0.5);
    let mut t = (range.start / step).ceil() * step;
    while t <= range.end + 1e-9 {
        let x = range.x(t);
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"#eee\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
            bottom + 14.0,
            time_label(t)
        );
        t += step;
    }
    let _ = write!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{bottom:.1}\" x2=\"{:.1}\" y2=\"{bottom:.1}\" stroke=\"#999\"/>",
        WIDTH - RIGHT
    );
}

fn bands(out: &mut String, range: Span, bands: &[Band], top: f64, bottom: f64) {
    for band in bands {
        let (x1, x2) = (range.x(band.start), range.x(band.end));
        let _ = write!(
            out,
            "<g class=\"band-fault\"><title>{label}</title><rect x=\"{x1:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{FAULT_FILL}\" fill-opacity=\"0.12\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"{INJECT}\">{label}</text></g>",
            (x2 - x1).max(1.0),
            bottom - top,
            x1 + 3.0,
            top + 11.0,
            label = markup(&band.label),
        );
    }
}

fn marks(out: &mut String, range: Span, marks: &[Mark], top: f64, bottom: f64) {
    for mark in marks {
        let x = range.x(mark.at);
        let _ = write!(
            out,
            "<g class=\"{}\"><title>{}</title><line x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"{}\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/></g>",
            mark.class,
            markup(&mark.label),
            mark.color
        );
    }
}

/// A legend in rows under the plot; returns its height.
fn legend(out: &mut String, entries: &[(&str, &str)], top: f64) -> f64 {
    let (mut x, mut y) = (LEFT, top + 12.0);
    for (name, color) in entries {
        // 6.5 units per character at font-size 11 is a safe estimate for sans-serif.
        let width = 26.0 + 6.5 * name.chars().count() as f64;
        if x + width > WIDTH - RIGHT && x > LEFT {
            x = LEFT;
            y += LEGEND_ROW;
        }
        let _ = write!(
            out,
            "<g class=\"legend\"><rect x=\"{x:.1}\" y=\"{:.1}\" width=\"12\" height=\"10\" fill=\"{color}\"/>\
             <text x=\"{:.1}\" y=\"{y:.1}\" font-size=\"11\" fill=\"#333\">{}</text></g>",
            y - 9.0,
            x + 16.0,
            markup(name)
        );
        x += width;
    }
    if entries.is_empty() {
        0.0
    } else {
        y - top + 8.0
    }
}

/// Legend rows `entries` will take, to size the SVG before drawing.
fn legend_height(entries: &[(&str, &str)]) -> f64 {
    let mut scratch = String::new();
    legend(&mut scratch, entries, 0.0)
}

/// Renders a line chart.
pub fn line_chart(chart: &LineChart<'_>) -> String {
    let values = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|(_, v)| *v));
    let (min, max, suffix, digits) = match chart.unit {
        // Zoomed so that a dip to 99.5 % is visible, down to the full scale for an outage.
        Unit::Percent => {
            let lowest = values.fold(100.0f64, f64::min);
            let min = [99.0, 95.0, 90.0, 80.0, 50.0]
                .into_iter()
                .find(|floor| lowest >= *floor)
                .unwrap_or(0.0);
            (min, 100.0, "%", 1)
        }
        Unit::Millis => {
            let top = values.fold(0.0f64, f64::max).max(1.0);
            let step = nice_step(top, 5.0);
            (0.0, (top / step).ceil() * step, " ms", 1)
        }
    };
    let entries: Vec<(&str, &str)> = chart
        .series
        .iter()
        .map(|s| (s.name.as_str(), s.color))
        .collect();
    let bottom = TOP + PLOT_HEIGHT;
    let height = bottom + AXIS + legend_height(&entries);
    let y = |v: f64| bottom - ((v.clamp(min, max) - min) / (max - min)) * PLOT_HEIGHT;
    let mut out = String::new();
    let class = match chart.unit {
        Unit::Percent => "chart-ratio",
        Unit::Millis => "chart-latency",
    };
    open(&mut out, class, chart.title, height);
    let step = nice_step(max - min, 5.0);
    let mut v = min;
    while v <= max + 1e-9 {
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{py:.1}\" x2=\"{:.1}\" y2=\"{py:.1}\" stroke=\"#eee\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#555\">{}{suffix}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            y(v) + 4.0,
            num(v, digits),
            py = y(v),
        );
        v += step;
    }
    bands(&mut out, chart.range, chart.bands, TOP, bottom);
    time_axis(&mut out, chart.range, TOP, bottom);
    for series in &chart.series {
        let mut path = String::new();
        let mut pen_down = false;
        for (t, value) in &series.points {
            match value {
                Some(v) => {
                    let _ = write!(
                        path,
                        "{}{:.1},{:.1}",
                        if pen_down { " L" } else { " M" },
                        chart.range.x(*t),
                        y(*v)
                    );
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        if !path.is_empty() {
            let _ = write!(
                out,
                "<path class=\"series\" d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\" stroke-linejoin=\"round\"><title>{}</title></path>",
                path.trim_start(),
                series.color,
                markup(&series.name)
            );
        }
    }
    marks(&mut out, chart.range, chart.marks, TOP, bottom);
    legend(&mut out, &entries, bottom + AXIS);
    out.push_str("</svg>");
    out
}

/// Renders shares stacked to 100 %, one step per bucket; empty buckets stay empty.
pub fn share_chart(chart: &ShareChart<'_>) -> String {
    let entries: Vec<(&str, &str)> = chart
        .layers
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (name.as_str(), PALETTE[i % PALETTE.len()]))
        .collect();
    let bottom = TOP + PLOT_HEIGHT;
    let height = bottom + AXIS + legend_height(&entries);
    let y = |share: f64| bottom - share.clamp(0.0, 1.0) * PLOT_HEIGHT;
    let mut out = String::new();
    open(&mut out, "chart-shares", chart.title, height);
    for v in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#555\">{}%</text>",
            LEFT - 6.0,
            y(v) + 4.0,
            num(v * 100.0, 0)
        );
    }
    let totals: Vec<u64> = (0..chart.times.len())
        .map(|i| {
            chart
                .layers
                .iter()
                .map(|(_, c)| c.get(i).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let mut below = vec![0.0f64; chart.times.len()];
    for (index, (name, counts)) in chart.layers.iter().enumerate() {
        let mut rects = String::new();
        for (i, t) in chart.times.iter().enumerate() {
            let count = counts.get(i).copied().unwrap_or(0);
            if totals[i] == 0 || count == 0 {
                continue;
            }
            let share = count as f64 / totals[i] as f64;
            let (x1, x2) = (chart.range.x(*t), chart.range.x(t + chart.step));
            let (y1, y2) = (y(below[i] + share), y(below[i]));
            below[i] += share;
            let _ = write!(
                rects,
                "<rect x=\"{x1:.1}\" y=\"{y1:.1}\" width=\"{:.2}\" height=\"{:.2}\"/>",
                (x2 - x1).max(0.5),
                (y2 - y1).max(0.0)
            );
        }
        let _ = write!(
            out,
            "<g class=\"layer\" fill=\"{}\"><title>{}</title>{rects}</g>",
            PALETTE[index % PALETTE.len()],
            markup(name)
        );
    }
    bands(&mut out, chart.range, chart.bands, TOP, bottom);
    time_axis(&mut out, chart.range, TOP, bottom);
    marks(&mut out, chart.range, chart.marks, TOP, bottom);
    legend(&mut out, &entries, bottom + AXIS);
    out.push_str("</svg>");
    out
}

/// Renders rows of spans and instants.
pub fn timeline(chart: &Timeline<'_>) -> String {
    let bottom = TOP + 6.0 + ROW_HEIGHT * chart.rows.len() as f64;
    let height = bottom + AXIS;
    let mut out = String::new();
    open(&mut out, "chart-timeline", chart.title, height);
    time_axis(&mut out, chart.range, TOP, bottom);
    for (index, row) in chart.rows.iter().enumerate() {
        let middle = TOP + 6.0 + ROW_HEIGHT * (index as f64 + 0.5);
        let label: String = if row.label.chars().count() > 23 {
            row.label.chars().take(22).chain(['…']).collect()
        } else {
            row.label.clone()
        };
        let _ = write!(
            out,
            "<g class=\"row\"><title>{}</title><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#333\">{}</text></g>",
            markup(&row.label),
            LEFT - 6.0,
            middle + 4.0,
            markup(&label)
        );
        for item in &row.items {
            match item {
                Item::Span {
                    start,
                    end,
                    color,
                    label,
                } => {
                    let (x1, x2) = (chart.range.x(*start), chart.range.x(*end));
                    let _ = write!(
                        out,
                        "<rect class=\"span\" x=\"{x1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"12\" rx=\"2\" fill=\"{color}\"><title>{}</title></rect>",
                        middle - 6.0,
                        (x2 - x1).max(2.0),
                        markup(label)
                    );
                }
                Item::Point { at, color, label } => {
                    let x = chart.range.x(*at);
                    let _ = write!(
                        out,
                        "<path class=\"point\" d=\"M{x:.1},{:.1} l5,6 l-5,6 l-5,-6 z\" fill=\"{color}\"><title>{}</title></path>",
                        middle - 6.0,
                        markup(label)
                    );
                }
            }
        }
    }
    marks(&mut out, chart.range, chart.marks, TOP, bottom);
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps_are_one_two_or_five() {
        assert_eq!(nice_step(40.0, 10.0), 5.0);
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(nice_step(7.0, 10.0), 1.0);
        assert_eq!(nice_step(180.0, 10.0), 20.0);
    }

    #[test]
    fn gaps_break_the_line_and_names_are_escaped() {
        let svg = line_chart(&LineChart {
            title: "ratio <web>",
            unit: Unit::Percent,
            range: Span::shown(0.0, 10.0),
            bands: &[],
            marks: &[],
            series: vec![Series {
                name: "<b>".into(),
                color: PALETTE[0],
                points: vec![
                    (0.0, Some(100.0)),
                    (1.0, Some(100.0)),
                    (2.0, None),
                    (3.0, Some(50.0)),
                ],
            }],
        });
        assert!(svg.contains("ratio &lt;web&gt;"), "{svg}");
        assert!(!svg.contains("<b>"));
        let path = svg.split("d=\"").nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(path.matches('M').count(), 2, "{path}");
    }

    #[test]
    fn shares_stack_to_the_full_height() {
        let svg = share_chart(&ShareChart {
            title: "shares",
            range: Span::shown(0.0, 1.0),
            bands: &[],
            marks: &[],
            times: vec![0.0],
            step: 1.0,
            layers: vec![("a".into(), vec![1]), ("b".into(), vec![3])],
        });
        let heights: Vec<f64> = svg
            .split("height=\"")
            .skip(2)
            .filter_map(|s| s.split('"').next()?.parse().ok())
            .filter(|h: &f64| *h < PLOT_HEIGHT + 1.0)
            .take(2)
            .collect();
        assert_eq!(heights.len(), 2, "{svg}");
        assert!(
            (heights[0] + heights[1] - PLOT_HEIGHT).abs() < 0.1,
            "{heights:?}"
        );
        assert!((heights[1] / heights[0] - 3.0).abs() < 0.01, "{heights:?}");
    }
}

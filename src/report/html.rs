//! `report.html`: one self-contained page (inline CSS and SVG, no script, nothing fetched) that
//! a person can open from a CI artifact or attach to a postmortem: the verdict, the recovery
//! timeline, and per probe the success ratio, latency and traffic shares over time with the
//! fault windows shaded and rollbacks marked.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::charts::{
    self, Band, INJECT, Item, LineChart, Mark, PALETTE, ROLLBACK, Row, Series, ShareChart,
    Timeline, Unit,
};
use super::escape::markup;
use super::model::{EventKind, Outcome, ProbeReport, Report, Span, WindowName};

const STYLE: &str = r#"
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0; background: #f6f7f9; }
main { max-width: 1000px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 8px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 12px; font-size: 13px; font-weight: 600; vertical-align: middle; margin-left: 8px; }
.pass { background: #e3f4e5; color: #1b5e20; }
.fail { background: #fde7e7; color: #b71c1c; }
.warn { background: #fff3d6; color: #8a5a00; }
.summary { font-size: 15px; margin: 6px 0 12px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 8px 0; font-size: 13px; }
dl.meta dt { color: #666; }
dl.meta dd { margin: 0; font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: 13px; margin: 6px 0 12px; }
th, td { border: 1px solid #e2e2e2; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f2f5; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-family: ui-monospace, monospace; font-size: 12px; }
svg.chart { display: block; margin: 8px 0 14px; border: 1px solid #e2e2e2; border-radius: 4px; }
footer { margin-top: 32px; color: #666; font-size: 12px; }
"#;

/// Renders the page.
pub fn render(report: &Report) -> String {
    render_with_history(report, &[])
}

/// Renders the page with a chart of the experiment's earlier runs (oldest first) under the
/// verdict, when `history` is not empty.
pub fn render_with_history(report: &Report, history: &[super::history::HistoryRun]) -> String {
    let range = time_range(report);
    let (bands, marks) = fault_bands_and_marks(report);
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"generator\" content=\"steadfast {}\">\
         <title>{} — {}</title><style>{STYLE}</style></head><body><main>",
        markup(&report.tool.version),
        markup(&report.experiment.name),
        markup(report.verdict.outcome.as_str()),
    );
    header(&mut out, report);
    verdict_table(&mut out, report);
    if !history.is_empty() {
        out.push_str("<h2 id=\"history\">History</h2>");
        out.push_str(&super::history::chart(history));
    }
    out.push_str("<h2>Recovery timeline</h2>");
    out.push_str(&charts::timeline(&Timeline {
        title: "Phases, faults, outages and recovery",
        range,
        marks: &marks,
        rows: timeline_rows(report),
    }));
    for probe in &report.probes {
        probe_section(&mut out, probe, range, &bands, &marks);
    }
    faults_section(&mut out, report);
    events_section(&mut out, report);
    let _ = writeln!(
        out,
        "<footer>steadfast {} · report version {} · spec sha256 <code>{}</code></footer></main></body></html>",
        markup(&report.tool.version),
        report.report_version,
        markup(&report.experiment.spec_sha256),
    );
    out
}

fn verdict_class(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "pass",
        Outcome::Failed | Outcome::NotSteady => "fail",
        Outcome::Aborted | Outcome::RollbackIncomplete => "warn",
    }
}

/// The whole run, or the span of what was recorded when the run window is missing.
fn time_range(report: &Report) -> Span {
    if let Some(run) = report.windows.run {
        return Span::shown(run.start, run.end);
    }
    let times = report.timeline.iter().map(|e| e.at).chain(
        report
            .probes
            .iter()
            .flat_map(|p| p.series.iter().map(|s| s.t)),
    );
    let (lo, hi) = times.fold((f64::MAX, f64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
    if lo <= hi {
        Span::shown(lo, hi)
    } else {
        Span::shown(0.0, report.run.duration_seconds)
    }
}

fn fault_bands_and_marks(report: &Report) -> (Vec<Band>, Vec<Mark>) {
    let bands = report
        .faults
        .iter()
        .filter_map(|f| {
            f.window.map(|w| Band {
                start: w.start,
                end: w.end,
                label: format!("fault {}", f.name),
            })
        })
        .collect();
    let marks = report
        .timeline
        .iter()
        .filter_map(|e| {
            let fault = e.fault.as_deref().unwrap_or("");
            match e.event.known()? {
                // Faults without an undo record (a killed pod) still mark where rollback began.
                EventKind::PhaseStarted if e.detail == "rollback" => Some(Mark {
                    at: e.at,
                    label: format!("rollback started at {:.1}s", e.at),
                    color: ROLLBACK,
                    class: "mark-rollback",
                }),
                EventKind::FaultInjected => Some(Mark {
                    at: e.at,
                    label: format!("{fault} injected at {:.1}s: {}", e.at, e.detail),
                    color: INJECT,
                    class: "mark-inject",
                }),
                EventKind::RolledBack => Some(Mark {
                    at: e.at,
                    label: format!("{fault} rolled back at {:.1}s: {}", e.at, e.detail),
                    color: ROLLBACK,
                    class: "mark-rollback",
                }),
                EventKind::RollbackFailed => Some(Mark {
                    at: e.at,
                    label: format!("{fault} rollback FAILED at {:.1}s: {}", e.at, e.detail),
                    color: "#000000",
                    class: "mark-rollback-failed",
                }),
                _ => None,
            }
        })
        .collect();
    (bands, marks)
}

fn header(out: &mut String, report: &Report) {
    let _ = write!(
        out,
        "<header><h1>{}<span class=\"badge {}\" id=\"verdict\">{}</span></h1><p class=\"summary\">{}</p>",
        markup(&report.experiment.name),
        verdict_class(report.verdict.outcome),
        markup(report.verdict.outcome.as_str()),
        markup(&report.verdict.summary),
    );
    if let Some(description) = &report.experiment.description {
        let _ = write!(out, "<p>{}</p>", markup(description));
    }
    out.push_str("<dl class=\"meta\">");
    let mut meta = |key: &str, value: String| {
        let _ = write!(out, "<dt>{key}</dt><dd>{}</dd>", markup(&value));
    };
    meta("run", report.run.id.clone());
    meta(
        "started",
        report
            .run
            .started_at
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string(),
    );
    meta("duration", format!("{:.1}s", report.run.duration_seconds));
    meta("seed", report.run.seed.to_string());
    meta(
        "resilience score",
        format!("{:.1} / 100", super::score::of(report)),
    );
    if !report.experiment.labels.is_empty() {
        meta(
            "labels",
            report
                .experiment
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if let Some(file) = &report.experiment.file {
        meta("file", file.clone());
    }
    if let Some(cluster) = &report.cluster {
        let parts: Vec<String> = [
            cluster.context.as_ref().map(|c| format!("context {c}")),
            cluster.server.as_ref().map(|s| format!("server {s}")),
            cluster.region.as_ref().map(|r| format!("region {r}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !parts.is_empty() {
            meta("cluster", parts.join(" · "));
        }
    }
    let rollback = if report.rollback.complete {
        format!(
            "complete ({} undo record(s) applied)",
            report.rollback.applied
        )
    } else {
        format!(
            "INCOMPLETE: {} (run `steadfast rollback`)",
            report.rollback.pending.join("; ")
        )
    };
    meta("rollback", rollback);
    if let Some(control_plane) = &report.control_plane {
        meta(
            "control plane",
            format!(
                "misbehaved: {}",
                super::control_plane::endpoint_lines(control_plane).join("; ")
            ),
        );
    }
    out.push_str("</dl></header>");
}

fn verdict_table(out: &mut String, report: &Report) {
    out.push_str(
        "<h2>Targets</h2><table id=\"targets\"><thead><tr><th>target</th><th>probe</th><th>window</th>\
         <th>required</th><th>measured</th><th>result</th><th>evidence</th></tr></thead><tbody>",
    );
    for t in &report.targets {
        let (class, word) = if t.passed {
            ("pass", "pass")
        } else {
            ("fail", "FAIL")
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td>\
             <td><span class=\"badge {class}\">{word}</span></td><td>{}</td></tr>",
            markup(&t.name),
            markup(&t.probe),
            markup(t.window.name()),
            markup(&t.required),
            markup(t.measured.as_deref().unwrap_or("no data")),
            markup(&t.detail),
        );
    }
    if report.targets.is_empty() {
        out.push_str("<tr><td colspan=\"7\">no target was judged</td></tr>");
    }
    out.push_str("</tbody></table>");
}

/// Runs of consecutive buckets where a probe failed (some, or all, attempts).
fn outages(probe: &ProbeReport) -> Vec<(f64, f64, bool)> {
    let step = series_step(probe);
    let mut spans: Vec<(f64, f64, bool)> = Vec::new();
    for point in &probe.series {
        let Some(ratio) = point.success_ratio else {
            continue;
        };
        if ratio >= 1.0 {
            continue;
        }
        let total = ratio <= 0.0;
        match spans.last_mut() {
            Some((_, end, was_total))
                if (point.t - *end).abs() < step / 2.0 && *was_total == total =>
            {
                *end = point.t + step;
            }
            _ => spans.push((point.t, point.t + step, total)),
        }
    }
    spans
}

fn series_step(probe: &ProbeReport) -> f64 {
    probe
        .series
        .windows(2)
        .map(|w| w[1].t - w[0].t)
        .find(|d| *d > 0.0)
        .unwrap_or(0.5)
}

fn timeline_rows(report: &Report) -> Vec<Row> {
    let mut rows = Vec::new();
    let phases: Vec<Item> = [
        ("steady state before", report.windows.before, "#90a4ae"),
        ("faults", report.windows.during, "#ef9a9a"),
        ("steady state after", report.windows.after, "#a5d6a7"),
    ]
    .into_iter()
    .filter_map(|(name, span, color)| {
        span.map(|s| Item::Span {
            start: s.start,
            end: s.end,
            color,
            label: format!("{name}: {:.1}s – {:.1}s", s.start, s.end),
        })
    })
    .collect();
    rows.push(Row {
        label: "phases".into(),
        items: phases,
    });
    for fault in &report.faults {
        let mut items = Vec::new();
        if let Some(w) = fault.window {
            items.push(Item::Span {
                start: w.start,
                end: w.end,
                color: "#f4b6b6",
                label: format!("{} window: {:.1}s – {:.1}s", fault.name, w.start, w.end),
            });
        }
        let firings: Vec<f64> = report
            .timeline
            .iter()
            .filter(|e| {
                e.event.known() == Some(EventKind::FaultInjected)
                    && e.fault.as_deref() == Some(&fault.name)
            })
            .map(|e| e.at)
            .collect();
        for e in report
            .timeline
            .iter()
            .filter(|e| e.fault.as_deref() == Some(&fault.name))
        {
            let color = match e.event.known() {
                Some(EventKind::FaultInjected) => INJECT,
                Some(EventKind::RolledBack) => ROLLBACK,
                Some(EventKind::FaultSkipped | EventKind::FaultNoEffect) => "#9e9e9e",
                Some(EventKind::FaultConfirmed) => "#1565c0",
                Some(EventKind::FaultDetected) => "#ef6c00",
                _ => "#000000",
            };
            let targets = if e.targets.is_empty() {
                String::new()
            } else {
                format!(" [{}]", e.targets.join(", "))
            };
            items.push(Item::Point {
                at: e.at,
                color,
                label: format!("{} at {:.1}s: {}{targets}", e.event, e.at, e.detail),
            });
        }
        rows.push(Row {
            label: format!("fault {}", fault.name),
            items,
        });
        match (fault.healed, fault.healed_after_seconds) {
            (Some(true), Some(after)) => rows.push(Row {
                label: format!("healing {}", fault.name),
                items: firings
                    .iter()
                    .map(|at| Item::Span {
                        start: *at,
                        end: at + after,
                        color: "#81c784",
                        label: format!(
                            "every replacement Ready within {after:.1}s of its disruption"
                        ),
                    })
                    .collect(),
            }),
            (Some(false), _) => rows.push(Row {
                label: format!("healing {}", fault.name),
                items: firings
                    .iter()
                    .map(|at| Item::Point {
                        at: *at,
                        color: "#b71c1c",
                        label: "not healed within the timeout".into(),
                    })
                    .collect(),
            }),
            _ => {}
        }
    }
    for probe in &report.probes {
        if !probe.series.is_empty() {
            rows.push(Row {
                label: format!("{} failures", probe.name),
                items: outages(probe)
                    .into_iter()
                    .map(|(start, end, total)| Item::Span {
                        start,
                        end,
                        color: if total { "#c62828" } else { "#ffb74d" },
                        label: format!(
                            "{} {:.1}s – {:.1}s",
                            if total {
                                "outage (every attempt failed)"
                            } else {
                                "some attempts failed"
                            },
                            start,
                            end
                        ),
                    })
                    .collect(),
            });
        }
        if !probe.evaluations.is_empty() {
            rows.push(Row {
                label: format!("{} ({})", probe.name, probe.kind),
                items: probe
                    .evaluations
                    .iter()
                    .map(|e| Item::Point {
                        at: e.at,
                        color: if e.held { "#43a047" } else { "#e53935" },
                        label: format!(
                            "{:.1}s: {}{}",
                            e.at,
                            if e.held { "held" } else { "did not hold" },
                            if e.detail.is_empty() {
                                String::new()
                            } else {
                                format!(" — {}", e.detail)
                            }
                        ),
                    })
                    .collect(),
            });
        }
    }
    for target in &report.targets {
        if let Some(span) = target.span {
            rows.push(Row {
                label: format!("target {}", target.name),
                items: vec![Item::Span {
                    start: span.start,
                    end: span.end.max(span.start),
                    color: if target.passed { "#66bb6a" } else { "#e53935" },
                    label: format!(
                        "{}: measured {}, required {}",
                        target.name,
                        target.measured.as_deref().unwrap_or("no data"),
                        target.required
                    ),
                }],
            });
        }
    }
    rows
}

fn probe_section(
    out: &mut String,
    probe: &ProbeReport,
    range: Span,
    bands: &[Band],
    marks: &[Mark],
) {
    let _ = write!(
        out,
        "<h2>Probe {} <small>({})</small></h2>",
        markup(&probe.name),
        markup(probe.kind.as_str())
    );
    window_table(out, probe);
    if probe.series.is_empty() {
        return;
    }
    let ratio: Vec<(f64, Option<f64>)> = probe
        .series
        .iter()
        .map(|p| (p.t, p.success_ratio.map(|r| r * 100.0)))
        .collect();
    out.push_str(&charts::line_chart(&LineChart {
        title: &format!("{}: success ratio", probe.name),
        unit: Unit::Percent,
        range,
        bands,
        marks,
        series: vec![Series {
            name: "success ratio".into(),
            color: PALETTE[0],
            points: ratio,
        }],
    }));
    out.push_str(&charts::line_chart(&LineChart {
        title: &format!("{}: latency of successful attempts", probe.name),
        unit: Unit::Millis,
        range,
        bands,
        marks,
        series: vec![
            Series {
                name: "p50".into(),
                color: PALETTE[0],
                points: probe.series.iter().map(|p| (p.t, p.p50_ms)).collect(),
            },
            Series {
                name: "p99".into(),
                color: PALETTE[1],
                points: probe.series.iter().map(|p| (p.t, p.p99_ms)).collect(),
            },
        ],
    }));
    let mut layers: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (i, point) in probe.series.iter().enumerate() {
        for (backend, count) in &point.backends {
            layers
                .entry(backend.as_str())
                .or_insert_with(|| vec![0; probe.series.len()])[i] = *count;
        }
    }
    if !layers.is_empty() {
        out.push_str(&charts::share_chart(&ShareChart {
            title: &format!("{}: share of successful responses per backend", probe.name),
            range,
            bands,
            marks,
            times: probe.series.iter().map(|p| p.t).collect(),
            step: series_step(probe),
            layers: layers
                .into_iter()
                .map(|(name, counts)| (name.to_owned(), counts))
                .collect(),
        }));
    }
    if !probe.backends.is_empty() {
        out.push_str(
            "<table class=\"backends\"><thead><tr><th>backend</th><th>successes</th><th>share</th>\
             <th>fair share</th><th>served after deletion</th></tr></thead><tbody>",
        );
        for b in &probe.backends {
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}%</td><td class=\"num\">{:.1}%</td><td class=\"num\">{}</td></tr>",
                markup(&b.backend),
                b.successes,
                b.share * 100.0,
                b.expected_share * 100.0,
                b.served_after_deletion
            );
        }
        out.push_str("</tbody></table>");
    }
}

fn window_table(out: &mut String, probe: &ProbeReport) {
    out.push_str(
        "<table class=\"windows\"><thead><tr><th>window</th><th>attempts</th><th>successes</th>\
         <th>availability</th><th>p50</th><th>p99</th><th>longest outage</th><th>failures</th></tr></thead><tbody>",
    );
    for name in [
        WindowName::Before,
        WindowName::During,
        WindowName::After,
        WindowName::Run,
    ] {
        let Some(w) = probe.windows.get(&name) else {
            continue;
        };
        let ratio = w.availability.or(w.satisfied);
        let failures = w
            .failures
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = write!(
            out,
            "<tr><td>{name}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            w.attempts,
            w.successes,
            ratio.map_or("–".to_owned(), |r| format!("{:.3}%", r * 100.0)),
            w.latency_ms
                .map_or("–".to_owned(), |l| format!("{:.1} ms", l.p50)),
            w.latency_ms
                .map_or("–".to_owned(), |l| format!("{:.1} ms", l.p99)),
            w.longest_outage_seconds
                .map_or("–".to_owned(), |s| format!("{s:.2}s")),
            markup(&failures),
        );
    }
    out.push_str("</tbody></table>");
}

fn faults_section(out: &mut String, report: &Report) {
    if report.faults.is_empty() {
        return;
    }
    out.push_str(
        "<h2>Faults</h2><table id=\"faults\"><thead><tr><th>fault</th><th>kind</th><th>window</th>\
         <th>firings</th><th>targets</th><th>action timing</th><th>effect</th><th>detection</th><th>self-healing</th></tr></thead><tbody>",
    );
    for f in &report.faults {
        let healing = match (f.healed, f.healed_after_seconds) {
            (Some(true), Some(s)) => format!("healed in {s:.1}s"),
            (Some(false), _) => "not healed".to_owned(),
            _ => "n/a".to_owned(),
        };
        let effect_text = super::markdown::effect_cell(f);
        let effect = markup(&effect_text);
        let detection = super::markdown::detection_cell(f);
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{effect}</td><td>{detection}</td><td>{healing}</td></tr>",
            markup(&f.name),
            markup(f.kind.as_str()),
            f.window.map_or("–".to_owned(), |w| format!(
                "{:.1}s – {:.1}s",
                w.start, w.end
            )),
            f.firings,
            f.targets.len(),
            markup(&super::markdown::action_timing(f)),
        );
    }
    out.push_str("</tbody></table><h3>Objects touched</h3><table class=\"touched\"><thead><tr><th>at</th>\
         <th>fault</th><th>kind</th><th>object</th><th>node</th><th>zone</th><th>effect</th></tr></thead><tbody>");
    for f in &report.faults {
        for t in &f.targets {
            let effect = match &t.detail {
                Some(detail) => format!("{}: {detail}", t.effect),
                None => t.effect.to_string(),
            };
            let _ = write!(
                out,
                "<tr><td class=\"num\">{:.1}s</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                t.at,
                markup(&f.name),
                markup(t.kind.key()),
                markup(&t.name),
                markup(t.node.as_deref().unwrap_or("")),
                markup(t.zone.as_deref().unwrap_or("")),
                markup(&effect),
            );
        }
    }
    out.push_str("</tbody></table>");
}

fn events_section(out: &mut String, report: &Report) {
    out.push_str(
        "<h2>Events</h2><table id=\"events\"><thead><tr><th>at</th><th>event</th><th>fault</th>\
         <th>detail</th></tr></thead><tbody>",
    );
    for e in &report.timeline {
        let detail = if e.targets.is_empty() {
            e.detail.clone()
        } else {
            format!("{} ({})", e.detail, e.targets.join(", "))
        };
        let _ = write!(
            out,
            "<tr><td class=\"num\">{:.1}s</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.at,
            markup(e.event.as_str()),
            markup(e.fault.as_deref().unwrap_or("")),
            markup(&detail),
        );
    }
    out.push_str("</tbody></table>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::SeriesPoint;

    fn point(t: f64, ratio: Option<f64>) -> SeriesPoint {
        SeriesPoint {
            t,
            attempts: 10,
            success_ratio: ratio,
            p50_ms: None,
            p99_ms: None,
            backends: BTreeMap::new(),
        }
    }

    #[test]
    fn outages_join_adjacent_buckets_and_tell_total_from_partial() {
        let probe = ProbeReport {
            name: "web".into(),
            kind: crate::spec::ProbeKind::Http.into(),
            windows: BTreeMap::new(),
            series: vec![
                point(0.0, Some(1.0)),
                point(0.5, Some(0.5)),
                point(1.0, Some(0.0)),
                point(1.5, Some(0.0)),
                point(2.0, Some(1.0)),
                point(2.5, None),
                point(3.0, Some(0.9)),
            ],
            backends: Vec::new(),
            evaluations: Vec::new(),
            transitions: Vec::new(),
            endpoint_of: None,
        };
        assert_eq!(
            outages(&probe),
            [(0.5, 1.0, false), (1.0, 2.0, true), (3.0, 3.5, false)]
        );
    }
}

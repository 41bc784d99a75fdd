//! What `steadfast probe` prints: the steady-state probes measured over one window, and whether
//! the steady state held. The per-probe parts are the run report's [`ProbeReport`]s, so a probe
//! reads the same here as in a run's report.

use std::fmt::Write as _;

use serde::Serialize;

use super::model::{OrOther, ProbeReport, ProbeWindow, Span, WindowName};
use crate::spec::ProbeKind;

/// Name of the one window in each probe's `windows`.
pub const WINDOW: WindowName = WindowName::Probe;

/// The steady state over one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SteadyStateReport {
    /// `metadata.name` of the experiment.
    pub experiment: String,
    /// The window judged, seconds from the start of probing.
    pub window: Span,
    /// Whether every judged probe held its steady-state expectation.
    pub steady: bool,
    /// One line per probe that did not.
    pub reasons: Vec<String>,
    /// Each probe's measurements; per-endpoint probes follow their Service's probe.
    pub probes: Vec<ProbeReport>,
}

fn pct(ratio: f64) -> String {
    format!("{:.2}%", ratio * 100.0)
}

fn http_lines(text: &mut String, probe: &ProbeReport, window: &ProbeWindow) {
    let failed = window.attempts - window.successes;
    let _ = write!(
        text,
        "  requests {}: {} ok, {failed} failed",
        window.attempts, window.successes
    );
    if !window.failures.is_empty() {
        let kinds: Vec<String> = window
            .failures
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        let _ = write!(text, " ({})", kinds.join(", "));
    }
    let availability = window.availability.map_or("-".to_owned(), pct);
    let _ = writeln!(text, "; availability {availability}");
    if let Some(l) = &window.latency_ms {
        let _ = writeln!(
            text,
            "  latency p50 {:.1}ms  p90 {:.1}ms  p99 {:.1}ms  max {:.1}ms",
            l.p50, l.p90, l.p99, l.max
        );
    }
    let outage = window.longest_outage_seconds.unwrap_or(0.0);
    let _ = writeln!(text, "  longest outage {outage:.2}s");
    if !probe.backends.is_empty() && probe.endpoint_of.is_none() {
        let shares: Vec<String> = probe
            .backends
            .iter()
            .map(|b| {
                format!(
                    "{} {} (fair {})",
                    b.backend,
                    pct(b.share),
                    pct(b.expected_share)
                )
            })
            .collect();
        let _ = writeln!(text, "  backends {}", shares.join(", "));
    }
}

fn condition_lines(text: &mut String, probe: &ProbeReport, window: &ProbeWindow) {
    let satisfied = window.satisfied.map_or("-".to_owned(), pct);
    let _ = writeln!(
        text,
        "  held {}/{} evaluations ({satisfied})",
        window.successes, window.attempts
    );
    if let Some(last) = probe.evaluations.last() {
        let state = if last.held { "held" } else { "failed" };
        let _ = writeln!(text, "  last: {state}: {}", last.detail);
    }
    let mut open: Option<f64> = None;
    for t in &probe.transitions {
        match (t.held, open) {
            (false, None) => {
                open = Some(t.at);
                let _ = writeln!(text, "  failed at {:.3}s: {}", t.at, t.detail);
            }
            (true, Some(start)) => {
                open = None;
                let _ = writeln!(
                    text,
                    "  held again at {:.3}s, after {:.3}s",
                    t.at,
                    t.at - start
                );
            }
            _ => {}
        }
    }
}

/// The report for people.
pub fn render_text(report: &SteadyStateReport) -> String {
    let mut text = String::new();
    let seconds = report.window.end - report.window.start;
    let verdict = if report.steady {
        "the steady state holds"
    } else {
        "the steady state does NOT hold"
    };
    let _ = writeln!(text, "{}: {verdict} over {seconds:.1}s", report.experiment);
    for reason in &report.reasons {
        let _ = writeln!(text, "  - {reason}");
    }
    for probe in &report.probes {
        let _ = writeln!(text);
        match &probe.endpoint_of {
            Some(of) => {
                let _ = writeln!(
                    text,
                    "{} (endpoint of {of}, reported, not judged)",
                    probe.name
                );
            }
            None => {
                let _ = writeln!(text, "{} ({})", probe.name, probe.kind);
            }
        }
        let Some(window) = probe.windows.get(&WINDOW) else {
            let _ = writeln!(text, "  nothing measured");
            continue;
        };
        if probe.kind == OrOther::Known(ProbeKind::Http) {
            http_lines(&mut text, probe, window);
        } else {
            condition_lines(&mut text, probe, window);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::report::model::{BackendShare, Evaluation, Percentiles, Transition};

    fn window(attempts: u64, successes: u64) -> ProbeWindow {
        ProbeWindow {
            attempts,
            successes,
            failures: BTreeMap::new(),
            availability: None,
            latency_ms: None,
            longest_outage_seconds: None,
            satisfied: None,
        }
    }

    fn probe(name: &str, kind: ProbeKind, w: ProbeWindow) -> ProbeReport {
        ProbeReport {
            name: name.into(),
            kind: kind.into(),
            windows: BTreeMap::from([(WINDOW, w)]),
            series: vec![],
            backends: vec![],
            evaluations: vec![],
            transitions: vec![],
            endpoint_of: None,
        }
    }

    #[test]
    fn text_names_counts_latency_shares_and_flaps() {
        let mut web = probe(
            "web",
            ProbeKind::Http,
            ProbeWindow {
                failures: BTreeMap::from([("connect".to_owned(), 3)]),
                availability: Some(0.997),
                latency_ms: Some(Percentiles {
                    p50: 2.0,
                    p90: 3.0,
                    p99: 9.5,
                    p999: 12.0,
                    max: 20.0,
                }),
                longest_outage_seconds: Some(0.25),
                ..window(1000, 997)
            },
        );
        web.backends = vec![BackendShare {
            backend: "web-a".into(),
            successes: 997,
            share: 1.0,
            expected_share: 1.0,
            served_after_deletion: 0,
        }];
        let mut endpoint = probe("web@web-a", ProbeKind::Http, window(10, 10));
        endpoint.endpoint_of = Some("web".into());
        let mut replicas = probe(
            "replicas",
            ProbeKind::Kubernetes,
            ProbeWindow {
                satisfied: Some(0.9),
                ..window(10, 9)
            },
        );
        replicas.evaluations = vec![Evaluation {
            at: 9.0,
            held: true,
            value: Some(6.0),
            detail: "6 ready".into(),
        }];
        replicas.transitions = vec![
            Transition {
                at: 1.25,
                held: false,
                detail: "5 ready".into(),
            },
            Transition {
                at: 1.5,
                held: true,
                detail: "6 ready".into(),
            },
        ];
        let report = SteadyStateReport {
            experiment: "demo".into(),
            window: Span {
                start: 0.0,
                end: 10.0,
            },
            steady: false,
            reasons: vec!["replicas: expectation did not hold (5 ready)".into()],
            probes: vec![web, endpoint, replicas],
        };
        let text = render_text(&report);
        for expected in [
            "demo: the steady state does NOT hold over 10.0s",
            "  - replicas: expectation did not hold (5 ready)",
            "  requests 1000: 997 ok, 3 failed (connect 3); availability 99.70%",
            "  latency p50 2.0ms  p90 3.0ms  p99 9.5ms  max 20.0ms",
            "  longest outage 0.25s",
            "  backends web-a 100.00% (fair 100.00%)",
            "web@web-a (endpoint of web, reported, not judged)",
            "  held 9/10 evaluations (90.00%)",
            "  last: held: 6 ready",
            "  failed at 1.250s: 5 ready",
            "  held again at 1.500s, after 0.250s",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
    }
}

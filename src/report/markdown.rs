//! `summary.md`: the verdict and the targets as a table, short enough for a pull-request comment.

use std::fmt::Write;

use super::model::{EffectStatus, FaultReport, Outcome, Report};

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// A fault's effect in a few words: confirmed, or no effect and why.
pub fn effect_cell(f: &FaultReport) -> String {
    match &f.effect {
        None => "n/a".to_owned(),
        Some(e) => match (e.status, &e.reason) {
            (EffectStatus::NoEffect, Some(reason)) if e.allowed => {
                format!("no effect (allowed): {reason}")
            }
            (EffectStatus::NoEffect, Some(reason)) => format!("**no effect**: {reason}"),
            (EffectStatus::Confirmed, _) => e.confirmed_at.map_or("confirmed".to_owned(), |at| {
                format!("confirmed at {at:.1}s")
            }),
            (status, _) => status.to_string(),
        },
    }
}

/// When the system noticed a fault: injected → detected.
pub fn detection_cell(f: &FaultReport) -> String {
    match (f.detection_ms, f.detected_at) {
        (Some(ms), Some(at)) => format!("{:.1}s after injection (at {at:.1}s)", ms / 1000.0),
        (None, Some(at)) => format!("first at {at:.1}s; a firing went unnoticed"),
        _ => "n/a".to_owned(),
    }
}

/// Renders the summary.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let icon = match report.verdict.outcome {
        Outcome::Passed => "✅",
        Outcome::Failed | Outcome::NotSteady => "❌",
        Outcome::Aborted | Outcome::RollbackIncomplete => "⚠️",
    };
    let _ = writeln!(
        out,
        "## {icon} {} — {}",
        cell(&report.experiment.name),
        report.verdict.outcome
    );
    let _ = writeln!(out);
    if let Some(description) = &report.experiment.description {
        let _ = writeln!(out, "{}\n", cell(description));
    }
    let _ = writeln!(out, "{}\n", cell(&report.verdict.summary));
    let _ = writeln!(
        out,
        "Resilience score: **{:.1}** / 100\n",
        super::score::of(report)
    );
    let _ = writeln!(
        out,
        "| target | probe | window | required | measured | result |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for t in &report.targets {
        let _ = writeln!(
            out,
            "| {} | {} | {} | `{}` | {} | {} |",
            cell(&t.name),
            cell(&t.probe),
            t.window.name(),
            cell(&t.required),
            cell(t.measured.as_deref().unwrap_or("no data")),
            if t.passed { "pass" } else { "**FAIL**" }
        );
    }
    if !report.faults.is_empty() {
        let _ = writeln!(
            out,
            "\n| fault | kind | firings | targets | action timing | effect | detection | self-healing |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        for f in &report.faults {
            let healing = match (f.healed, f.healed_after_seconds) {
                (Some(true), Some(s)) => format!("healed in {s:.1}s"),
                (Some(false), _) => "**not healed**".to_owned(),
                _ => "n/a".to_owned(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {healing} |",
                cell(&f.name),
                f.kind,
                f.firings,
                f.targets.len(),
                action_timing(f),
                cell(&effect_cell(f)),
                detection_cell(f)
            );
        }
    }
    if let Some(control_plane) = &report.control_plane {
        let _ = writeln!(
            out,
            "\nControl plane: {} API error(s), {} retr{} during the run\n",
            control_plane.errors,
            control_plane.retries,
            if control_plane.retries == 1 {
                "y"
            } else {
                "ies"
            }
        );
        let _ = writeln!(out, "| api | endpoint | errors | retries |");
        let _ = writeln!(out, "|---|---|---|---|");
        for e in &control_plane.endpoints {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                e.api,
                cell(&e.endpoint),
                e.errors,
                e.retries
            );
        }
    }
    let rollback = if report.rollback.complete {
        format!(
            "every fault rolled back ({} undo record(s) applied)",
            report.rollback.applied
        )
    } else {
        format!(
            "**rollback incomplete**: {}",
            cell(&report.rollback.pending.join(", "))
        )
    };
    let _ = writeln!(
        out,
        "\nRun `{}` · seed {} · {:.0}s · {rollback} · steadfast {}",
        report.run.id, report.run.seed, report.run.duration_seconds, report.tool.version
    );
    out
}

/// The worst lag (schedule to first action) and spread (first to last action) over a fault's
/// firings: `lag 12 ms · spread 3 ms`, or `–` when no firing was timed.
pub(crate) fn action_timing(f: &FaultReport) -> String {
    let worst = |pick: fn(&super::model::FiringTimes) -> Option<f64>| {
        f.firing_times.iter().filter_map(pick).reduce(f64::max)
    };
    match (worst(|t| t.lag_ms), worst(|t| t.spread_ms)) {
        (Some(lag), Some(spread)) => format!("lag {lag:.0} ms · spread {spread:.0} ms"),
        _ => "–".to_owned(),
    }
}

//! The resilience score: one number from 0 to 100 per run, and per suite, so a trend and a
//! release bar can be read at a glance without hiding which target moved it.
//!
//! # Formula
//! - A run whose verdict is `passed` or `failed` scores its targets; any other verdict
//!   (not steady, aborted, rollback incomplete) scores 0, since its targets were not fairly
//!   measured. A run with no targets that passed scores 100.
//! - Each target has a weight by what it measures: availability 3; longest outage and recovery
//!   2; everything else 1. Users feel availability first and outage length second.
//! - A met target earns full credit (1). A missed target earns partial credit by margin:
//!   `0.5 × max(0, 1 − miss)`, where `miss` is how far past its bound it landed, in units of
//!   what the bound allows:
//!   - upper bounds (`<`, `<=`, e.g. recovery `<= 30s`): `(value − bound) / bound`;
//!   - lower bounds on a percentage (`>=`, e.g. availability `>= 99%`): the overrun of the
//!     error budget, `(bound − value) / max(100 − bound, 1)`;
//!   - other lower bounds: `(bound − value) / bound`.
//!
//!   A near miss so keeps almost half the credit; a miss by the whole allowance or more keeps
//!   none. A missed target without a value or a readable bound earns 0.
//! - Score = `100 × Σ weight × credit / Σ weight`, rounded to one decimal.
//! - A suite's score is the mean of its experiments' scores (each experiment's newest run),
//!   so one experiment with many targets does not drown the others.

use super::model::{OrOther, Outcome, Report, TargetReport};
use crate::spec::Measure;

/// The weight of a target measuring `measure`.
pub fn weight(measure: &OrOther<Measure>) -> f64 {
    match measure {
        OrOther::Known(Measure::Availability) => 3.0,
        OrOther::Known(Measure::LongestOutage | Measure::Recovery) => 2.0,
        // Written by early versions.
        OrOther::Other(word) if word == "longest_outage" => 2.0,
        _ => 1.0,
    }
}

/// The direction and value of a bound read back from a target's `required` text.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Bound {
    /// `<` or `<=`: lower values are better.
    AtMost(f64),
    /// `>` or `>=`: higher values are better; `percent` when written with `%`.
    AtLeast { value: f64, percent: bool },
}

/// Reads `>= 99%`, `<= 30s`, `p99 < 300ms`, `> 2`.
fn parse_required(required: &str) -> Option<Bound> {
    let text = required.trim();
    // `p99 < 300ms`: the percentile names what is bounded, not the bound.
    let text = match text.strip_prefix('p') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => {
            rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
        }
        _ => text,
    }
    .trim();
    let (upper, rest) = if let Some(rest) = text.strip_prefix("<=") {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix(">=") {
        (false, rest)
    } else if let Some(rest) = text.strip_prefix('<') {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix('>') {
        (false, rest)
    } else {
        return None;
    };
    let rest = rest.trim();
    let (value, percent) = if let Some(number) = rest.strip_suffix('%') {
        (number.trim().parse::<f64>().ok()?, true)
    } else if let Ok(number) = rest.parse::<f64>() {
        (number, false)
    } else {
        (humantime::parse_duration(rest).ok()?.as_secs_f64(), false)
    };
    if !value.is_finite() {
        return None;
    }
    Some(if upper {
        Bound::AtMost(value)
    } else {
        Bound::AtLeast { value, percent }
    })
}

/// The credit one target earns, from 0 to 1.
pub fn credit(target: &TargetReport) -> f64 {
    if target.passed {
        return 1.0;
    }
    let (Some(value), Some(bound)) = (target.value, parse_required(&target.required)) else {
        return 0.0;
    };
    let miss = match bound {
        Bound::AtMost(bound) if bound > 0.0 => (value - bound) / bound,
        Bound::AtMost(_) => f64::INFINITY,
        Bound::AtLeast {
            value: bound,
            percent: true,
        } => (bound - value) / (100.0 - bound).max(1.0),
        Bound::AtLeast { value: bound, .. } if bound > 0.0 => (bound - value) / bound,
        Bound::AtLeast { .. } => f64::INFINITY,
    };
    if miss.is_nan() {
        return 0.0;
    }
    0.5 * (1.0 - miss.max(0.0)).max(0.0)
}

/// The run's score, 0–100 (see the module documentation).
pub fn run_score(report: &Report) -> f64 {
    if !matches!(report.verdict.outcome, Outcome::Passed | Outcome::Failed) {
        return 0.0;
    }
    score_targets(&report.targets, report.verdict.outcome == Outcome::Passed)
}

/// The score of a set of judged targets; `passed` decides a run with none.
pub fn score_targets(targets: &[TargetReport], passed: bool) -> f64 {
    let total: f64 = targets.iter().map(|t| weight(&t.measure)).sum();
    if total <= 0.0 {
        return if passed { 100.0 } else { 0.0 };
    }
    let earned: f64 = targets.iter().map(|t| weight(&t.measure) * credit(t)).sum();
    round1(100.0 * earned / total)
}

/// The score a report carries, or the formula's when it was written before scores existed.
pub fn of(report: &Report) -> f64 {
    report.resilience_score.unwrap_or_else(|| run_score(report))
}

/// A suite's score: the mean of its runs' scores; `None` without runs.
pub fn suite_score(scores: &[f64]) -> Option<f64> {
    if scores.is_empty() {
        return None;
    }
    Some(round1(scores.iter().sum::<f64>() / scores.len() as f64))
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(measure: Measure, required: &str, value: Option<f64>, passed: bool) -> TargetReport {
        TargetReport {
            name: format!("{}-{required}", measure.key()),
            probe: "web".into(),
            measure: measure.into(),
            window: crate::spec::Window::During,
            required: required.into(),
            measured: None,
            value,
            passed,
            detail: String::new(),
            span: None,
        }
    }

    #[test]
    fn every_target_met_scores_100() {
        let targets = [
            target(Measure::Availability, ">= 99%", Some(99.9), true),
            target(Measure::Recovery, "<= 30s", Some(12.0), true),
        ];
        assert_eq!(score_targets(&targets, true), 100.0);
    }

    #[test]
    fn a_near_miss_keeps_almost_half_its_credit_and_a_far_miss_none() {
        // Recovery 33s against <= 30s: 10% over, credit 0.5 × 0.9 = 0.45.
        let near = target(Measure::Recovery, "<= 30s", Some(33.0), false);
        assert!((credit(&near) - 0.45).abs() < 1e-9);
        // 61s is more than the whole allowance over: nothing.
        assert_eq!(
            credit(&target(Measure::Recovery, "<= 30s", Some(61.0), false)),
            0.0
        );
    }

    #[test]
    fn availability_misses_are_measured_against_the_error_budget() {
        // >= 99% allows 1%; 98.5% spends 1.5%, overrunning by half the budget: 0.25.
        let miss = target(Measure::Availability, ">= 99%", Some(98.5), false);
        assert!((credit(&miss) - 0.25).abs() < 1e-9);
        // Against >= 100% (no budget) one point of loss is a whole allowance.
        assert_eq!(
            credit(&target(Measure::Availability, ">= 100%", Some(99.0), false)),
            0.0
        );
    }

    #[test]
    fn weights_favour_availability_then_outage_and_recovery() {
        // availability (3) met, latency (1) missed without credit, recovery (2) met:
        // 100 × (3 + 2) / 6 = 83.3.
        let targets = [
            target(Measure::Availability, ">= 99%", Some(99.5), true),
            target(Measure::Latency, "p99 < 300ms", None, false),
            target(Measure::Recovery, "<= 30s", Some(10.0), true),
        ];
        assert_eq!(score_targets(&targets, false), 83.3);
    }

    #[test]
    fn latency_bounds_are_read_past_their_percentile() {
        let slow = target(Measure::Latency, "p99 < 300ms", Some(0.45), false);
        assert!((credit(&slow) - 0.25).abs() < 1e-9);
    }

    #[test]
    fn a_suite_scores_the_mean_of_its_runs() {
        assert_eq!(suite_score(&[100.0, 80.0, 90.0]), Some(90.0));
        assert_eq!(suite_score(&[]), None);
    }
}

//! The trend gate: a target judged against its own history, so "recovery got 40% slower than
//! the last ten runs" fails a release even when every absolute bound still holds.
//!
//! ```yaml
//! regressions:
//!   - experiment: checkout-pod-kill
//!     target: recovery            # or `measure: recovery` for every target measuring it
//!     against: last 10 passed runs
//!     statistic: median           # median | mean | min | max
//!     worseByMoreThan: 25%
//! ```
//!
//! The history is the other reports of the experiment among those the gate reads (a
//! directory or an `s3://` prefix holds them all). "Worse" follows the measure: lower is worse
//! for percentages (availability, satisfied, balance), higher is worse for durations.

use serde::Deserialize;

use super::policy::PolicyError;
use crate::report::Report;
use crate::report::model::Outcome;

/// Most runs a baseline may cover: a gate reads every report it is given, so the bound keeps a
/// typo (`last 10000`) from meaning "all of history".
pub const MAX_AGAINST: usize = 1000;

/// One entry of `spec.regressions` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegressionSpec {
    /// The experiment.
    pub experiment: String,
    /// One target by name.
    #[serde(default)]
    pub target: Option<String>,
    /// Every target measuring this (`recovery`, `availability`, ...).
    #[serde(default)]
    pub measure: Option<String>,
    /// `last N runs` or `last N passed runs`.
    pub against: String,
    /// `median` (default), `mean`, `min` or `max`.
    #[serde(default)]
    pub statistic: Option<String>,
    /// How much worse than the baseline is tolerated, e.g. `25%`.
    pub worse_by_more_than: String,
}

/// Which targets a rule covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A target by name.
    Target(String),
    /// Every target with this measure.
    Measure(String),
}

/// How the baseline is summarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistic {
    /// The middle value (mean of the two middle ones for an even count).
    Median,
    /// The arithmetic mean.
    Mean,
    /// The smallest.
    Min,
    /// The largest.
    Max,
}

impl Statistic {
    /// The word as written in policies.
    pub fn word(self) -> &'static str {
        match self {
            Statistic::Median => "median",
            Statistic::Mean => "mean",
            Statistic::Min => "min",
            Statistic::Max => "max",
        }
    }

    /// Applies the statistic; `None` for no values.
    pub fn of(self, values: &[f64]) -> Option<f64> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        Some(match self {
            Statistic::Median if n % 2 == 1 => sorted[n / 2],
            Statistic::Median => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
            Statistic::Mean => sorted.iter().sum::<f64>() / n as f64,
            Statistic::Min => sorted[0],
            Statistic::Max => sorted[n - 1],
        })
    }
}

/// A resolved regression rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Regression {
    /// Field path, for messages (`spec.regressions[0]`).
    pub path: String,
    /// The experiment.
    pub experiment: String,
    /// The targets covered.
    pub subject: Subject,
    /// How many earlier runs make the baseline.
    pub runs: usize,
    /// Only runs that passed.
    pub passed_only: bool,
    /// The summary of the baseline.
    pub statistic: Statistic,
    /// Tolerated worsening, in percent of the baseline.
    pub tolerance_percent: f64,
}

impl Regression {
    /// `median of last 10 passed runs`.
    pub fn describe_baseline(&self) -> String {
        format!(
            "{} of last {} {}run(s)",
            self.statistic.word(),
            self.runs,
            if self.passed_only { "passed " } else { "" }
        )
    }
}

/// Parses `last 10 passed runs`, `last 5 runs`, `last 1 run`.
fn parse_against(text: &str) -> Option<(usize, bool)> {
    let words: Vec<String> = text
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let (count, passed) = match words.as_slice() {
        ["last", n, "runs" | "run"] => (n, false),
        ["last", n, "passed", "runs" | "run"] => (n, true),
        _ => return None,
    };
    let count: usize = count.parse().ok()?;
    (1..=MAX_AGAINST)
        .contains(&count)
        .then_some((count, passed))
}

/// Checks and resolves `spec.regressions[i]`, pushing one error per bad field.
pub fn resolve(
    file: &str,
    index: usize,
    spec: &RegressionSpec,
    errors: &mut Vec<PolicyError>,
) -> Option<Regression> {
    let path = format!("spec.regressions[{index}]");
    let mut fail = |field: &str, message: String, hint: &str| {
        errors.push(PolicyError {
            file: file.to_owned(),
            line: None,
            path: if field.is_empty() {
                path.clone()
            } else {
                format!("{path}.{field}")
            },
            message,
            hint: hint.to_owned(),
        });
    };
    let mut ok = true;
    if spec.experiment.trim().is_empty() {
        fail(
            "experiment",
            "is empty".into(),
            "give the experiment's metadata.name",
        );
        ok = false;
    }
    let subject = match (&spec.target, &spec.measure) {
        (Some(target), None) if !target.trim().is_empty() => Some(Subject::Target(target.clone())),
        (None, Some(measure)) if !measure.trim().is_empty() => {
            Some(Subject::Measure(measure.clone()))
        }
        (Some(_), Some(_)) => {
            fail(
                "",
                "has both `target` and `measure`".into(),
                "keep one: a target by name, or every target of a measure",
            );
            None
        }
        _ => {
            fail(
                "target",
                "is missing or empty".into(),
                "set `target: NAME` (as the report shows it) or `measure: recovery`",
            );
            None
        }
    };
    let against = parse_against(&spec.against);
    if against.is_none() {
        fail(
            "against",
            format!("`{}` is not a run window", spec.against),
            &format!("write `last 10 passed runs` or `last 5 runs` (1 to {MAX_AGAINST} runs)"),
        );
    }
    let statistic = match spec.statistic.as_deref().map(str::trim) {
        None | Some("median") => Some(Statistic::Median),
        Some("mean") => Some(Statistic::Mean),
        Some("min") => Some(Statistic::Min),
        Some("max") => Some(Statistic::Max),
        Some(other) => {
            fail(
                "statistic",
                format!("`{other}` is not a statistic"),
                "use median, mean, min or max",
            );
            None
        }
    };
    let tolerance = spec
        .worse_by_more_than
        .trim()
        .strip_suffix('%')
        .and_then(|n| n.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0);
    if tolerance.is_none() {
        fail(
            "worseByMoreThan",
            format!("`{}` is not a percentage", spec.worse_by_more_than),
            "write a non-negative percentage like `25%`",
        );
    }
    let (subject, (runs, passed_only), statistic, tolerance_percent) =
        (subject?, against?, statistic?, tolerance?);
    ok.then(|| Regression {
        path,
        experiment: spec.experiment.clone(),
        subject,
        runs,
        passed_only,
        statistic,
        tolerance_percent,
    })
}

/// One target judged against its history.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendResult {
    /// The target.
    pub target: String,
    /// Holds (or there is no baseline yet).
    pub passed: bool,
    /// Baseline, current value and change in words.
    pub detail: String,
}

fn shown(value: f64, percent: bool) -> String {
    if percent {
        format!("{value:.3}%")
    } else {
        super::policy::seconds_text(value)
    }
}

/// Judges `current` (the newest run) against the earlier runs in `history` (any order, may
/// include `current`, which is skipped by run id and by finish time).
pub fn judge(rule: &Regression, current: &Report, history: &[&Report]) -> Vec<TrendResult> {
    let mut earlier: Vec<&Report> = history
        .iter()
        .copied()
        .filter(|r| r.run.id != current.run.id && r.run.finished_at < current.run.finished_at)
        .filter(|r| !rule.passed_only || r.verdict.outcome == Outcome::Passed)
        .collect();
    earlier.sort_by_key(|r| std::cmp::Reverse(r.run.finished_at));
    earlier.truncate(rule.runs);
    let mut results = Vec::new();
    for target in current.targets.iter().filter(|t| match &rule.subject {
        Subject::Target(name) => t.name == *name,
        Subject::Measure(measure) => t.measure.as_str() == measure,
    }) {
        let percent = target.measure.is_percent();
        let values: Vec<f64> = earlier
            .iter()
            .filter_map(|r| r.targets.iter().find(|t| t.name == target.name)?.value)
            .collect();
        let Some(value) = target.value else {
            results.push(TrendResult {
                target: target.name.clone(),
                passed: false,
                detail: "no current value to compare with its history".into(),
            });
            continue;
        };
        let Some(baseline) = rule.statistic.of(&values) else {
            results.push(TrendResult {
                target: target.name.clone(),
                passed: true,
                detail: format!(
                    "no baseline yet: no earlier {}run with a value; current {}",
                    if rule.passed_only { "passed " } else { "" },
                    shown(value, percent)
                ),
            });
            continue;
        };
        let change = if baseline.abs() > f64::EPSILON {
            (value - baseline) / baseline.abs() * 100.0
        } else if (value - baseline).abs() <= f64::EPSILON {
            0.0
        } else {
            f64::INFINITY.copysign(value - baseline)
        };
        let worsening = if percent { -change } else { change };
        let passed = worsening <= rule.tolerance_percent;
        results.push(TrendResult {
            target: target.name.clone(),
            passed,
            detail: format!(
                "baseline {} ({} over {} run(s)), current {}, change {:+.1}%; {} by more than {}% fails",
                shown(baseline, percent),
                rule.describe_baseline(),
                values.len(),
                shown(value, percent),
                change,
                if percent { "lower" } else { "higher" },
                rule.tolerance_percent
            ),
        });
    }
    if results.is_empty() {
        let names: Vec<&str> = current.targets.iter().map(|t| t.name.as_str()).collect();
        results.push(TrendResult {
            target: match &rule.subject {
                Subject::Target(name) | Subject::Measure(name) => name.clone(),
            },
            passed: false,
            detail: format!(
                "{} names no target of the run (it has: {})",
                rule.path,
                names.join(", ")
            ),
        });
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_statistics_parse() {
        assert_eq!(parse_against("last 10 passed runs"), Some((10, true)));
        assert_eq!(parse_against("last 1 run"), Some((1, false)));
        assert_eq!(parse_against("last ten runs"), None);
        assert_eq!(parse_against("last 0 runs"), None);
        assert_eq!(Statistic::Median.of(&[3.0, 1.0, 2.0, 10.0]), Some(2.5));
        assert_eq!(Statistic::Mean.of(&[1.0, 2.0, 3.0]), Some(2.0));
        assert_eq!(Statistic::Max.of(&[]), None);
    }
}

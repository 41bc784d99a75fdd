//! Judging a set of reports against a policy: pure, given the reports and the current time, so
//! every rule is tested without files or clocks.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::policy::{Bound, GatePolicy, KnownFailure, PolicyError, Requirement, Threshold};
use crate::report::Report;
use crate::report::model::{Outcome, TargetReport};

/// A report and where it was read from.
#[derive(Debug, Clone)]
pub struct SourcedReport {
    /// The file.
    pub path: String,
    /// The report.
    pub report: Report,
}

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Holds.
    Pass,
    /// Does not hold: the gate fails.
    Fail,
    /// Does not hold, but a known failure that has not expired accepts it.
    Waived,
}

impl Status {
    /// The word in the table.
    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Waived => "waived",
        }
    }
}

/// One line of the decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// The experiment, or the label selector of a label requirement.
    pub subject: String,
    /// What was checked: `present`, `age`, `run`, `target NAME`, `labels`.
    pub check: String,
    /// The outcome.
    pub status: Status,
    /// Evidence in words.
    pub detail: String,
}

/// The gate's decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The policy's name.
    pub policy: String,
    /// Every check, in policy order.
    pub checks: Vec<Check>,
    /// Known failures that matched nothing that failed (candidates for removal).
    pub unused_known_failures: Vec<String>,
    /// Reports read.
    pub reports_read: usize,
    /// The suite's resilience score: the mean of the judged runs' scores.
    pub suite_score: Option<f64>,
}

impl Decision {
    /// True when no check failed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Fail)
    }

    /// Checks with `status`.
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }
}

fn label_text(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Judges `reports` against `policy` at `now`.
///
/// Each experiment is judged by its newest run (by finish time); older runs are ignored.
///
/// # Errors
/// A [`PolicyError`] when a threshold's unit does not fit the measure of the target it names (a
/// duration for an availability), which only the reports can reveal.
pub fn evaluate(
    policy: &GatePolicy,
    reports: &[SourcedReport],
    now: DateTime<Utc>,
) -> Result<Decision, PolicyError> {
    let mut latest: BTreeMap<&str, &SourcedReport> = BTreeMap::new();
    for sourced in reports {
        let name = sourced.report.experiment.name.as_str();
        let newer = latest
            .get(name)
            .is_none_or(|seen| sourced.report.run.finished_at > seen.report.run.finished_at);
        if newer {
            latest.insert(name, sourced);
        }
    }

    let mut checks = Vec::new();
    // Experiments to judge, in the order the policy first names them.
    let mut judged: Vec<String> = Vec::new();
    for requirement in &policy.require {
        match requirement {
            Requirement::Experiment(name) => add(name, &mut judged),
            Requirement::Labels { labels, at_least } => {
                let matching: Vec<&str> = latest
                    .iter()
                    .filter(|(_, s)| {
                        labels
                            .iter()
                            .all(|(k, v)| s.report.experiment.labels.get(k) == Some(v))
                    })
                    .map(|(name, _)| *name)
                    .collect();
                let found = matching.len();
                checks.push(Check {
                    subject: label_text(labels),
                    check: "labels".into(),
                    status: if found >= *at_least as usize {
                        Status::Pass
                    } else {
                        Status::Fail
                    },
                    detail: format!(
                        "{found} experiment(s) with these labels (at least {at_least}): {}",
                        if matching.is_empty() {
                            "none".to_owned()
                        } else {
                            matching.join(", ")
                        }
                    ),
                });
                for name in matching {
                    add(name, &mut judged);
                }
            }
        }
    }

    let mut used_waivers = BTreeSet::new();
    let mut waive = |experiment: &str, target: Option<&str>, detail: String| -> (Status, String) {
        let matching = policy.known_failures.iter().enumerate().find(|(_, k)| {
            k.experiment == experiment && (k.target.is_none() || k.target.as_deref() == target)
        });
        match matching {
            Some((i, k)) if now < k.expires => {
                used_waivers.insert(i);
                (
                    Status::Waived,
                    format!(
                        "{detail} — known failure until {}: {}",
                        k.expires_text, k.reason
                    ),
                )
            }
            Some((i, k)) => {
                used_waivers.insert(i);
                (
                    Status::Fail,
                    format!(
                        "{detail} — the known failure expired {} ({}); fix it or renew the entry",
                        k.expires_text, k.reason
                    ),
                )
            }
            None => (Status::Fail, detail),
        }
    };

    let mut scores = Vec::new();
    for name in &judged {
        let Some(sourced) = latest.get(name.as_str()) else {
            checks.push(Check {
                subject: name.clone(),
                check: "present".into(),
                status: Status::Fail,
                detail: format!(
                    "no report of `{name}` among {} report(s) read",
                    reports.len()
                ),
            });
            continue;
        };
        let report = &sourced.report;
        let runs = reports
            .iter()
            .filter(|s| s.report.experiment.name == *name)
            .count();
        checks.push(Check {
            subject: name.clone(),
            check: "present".into(),
            status: Status::Pass,
            detail: format!(
                "run {} ({}{})",
                report.run.id,
                sourced.path,
                if runs > 1 {
                    format!(", newest of {runs}")
                } else {
                    String::new()
                }
            ),
        });
        if let Some(max_age) = policy.max_age {
            let age = now.signed_duration_since(report.run.finished_at);
            let age_text = humantime::format_duration(std::time::Duration::from_secs(
                age.num_seconds().max(0) as u64,
            ));
            let limit = humantime::format_duration(max_age);
            // A finish time in the future (clock skew) counts as fresh.
            let fresh = match age.to_std() {
                Ok(age) => age <= max_age,
                Err(_) => true,
            };
            checks.push(Check {
                subject: name.clone(),
                check: "age".into(),
                status: if fresh { Status::Pass } else { Status::Fail },
                detail: format!(
                    "finished {} ({age_text} ago; at most {limit})",
                    report.run.finished_at.format("%Y-%m-%d %H:%M UTC")
                ),
            });
        }
        // A run that did not reach a verdict on its targets: never accepted when its rollback
        // did not complete, otherwise only through a known failure of the whole experiment.
        let outcome = report.verdict.outcome;
        let (status, detail) = match outcome {
            Outcome::Passed | Outcome::Failed => (
                Status::Pass,
                format!("ran to the end and rolled back ({outcome})"),
            ),
            Outcome::RollbackIncomplete => (
                Status::Fail,
                format!(
                    "{}; never waived: something may still be broken",
                    report.verdict.summary
                ),
            ),
            Outcome::NotSteady | Outcome::Aborted => waive(
                name.as_str(),
                None,
                format!("{outcome}: {}", report.verdict.summary),
            ),
        };
        checks.push(Check {
            subject: name.clone(),
            check: "run".into(),
            status,
            detail,
        });
        for target in &report.targets {
            let threshold = policy
                .thresholds
                .iter()
                .find(|t| t.experiment == *name && t.target == target.name);
            let (passed, detail) = match threshold {
                Some(threshold) => judge_threshold(policy, threshold, target)?,
                None if policy.require_all_targets => (
                    target.passed,
                    format!(
                        "measured {}, required {}",
                        target.measured.as_deref().unwrap_or("no data"),
                        target.required
                    ),
                ),
                None => continue,
            };
            let (status, detail) = if passed {
                (Status::Pass, detail)
            } else {
                waive(name.as_str(), Some(target.name.as_str()), detail)
            };
            checks.push(Check {
                subject: name.clone(),
                check: format!("target {}", target.name),
                status,
                detail,
            });
        }
        let score = crate::report::score::of(report);
        scores.push(score);
        if let Some(min) = policy.min_score {
            checks.push(Check {
                subject: name.clone(),
                check: "score".into(),
                status: if score >= min {
                    Status::Pass
                } else {
                    Status::Fail
                },
                detail: format!("resilience score {score:.1}, gate requires >= {min}"),
            });
        }
        let history: Vec<&Report> = reports
            .iter()
            .filter(|s| s.report.experiment.name == *name)
            .map(|s| &s.report)
            .collect();
        for rule in policy.regressions.iter().filter(|r| r.experiment == *name) {
            for result in super::trend::judge(rule, report, &history) {
                let (status, detail) = if result.passed {
                    (Status::Pass, result.detail)
                } else {
                    waive(name.as_str(), Some(result.target.as_str()), result.detail)
                };
                checks.push(Check {
                    subject: name.clone(),
                    check: format!("regression {}", result.target),
                    status,
                    detail,
                });
            }
        }
        for threshold in policy.thresholds.iter().filter(|t| t.experiment == *name) {
            if !report.targets.iter().any(|t| t.name == threshold.target) {
                let names: Vec<&str> = report.targets.iter().map(|t| t.name.as_str()).collect();
                checks.push(Check {
                    subject: name.clone(),
                    check: format!("target {}", threshold.target),
                    status: Status::Fail,
                    detail: format!(
                        "{} names a target the run does not have (it has: {})",
                        threshold.path,
                        names.join(", ")
                    ),
                });
            }
        }
    }

    let unused_known_failures = policy
        .known_failures
        .iter()
        .enumerate()
        .filter(|(i, _)| !used_waivers.contains(i))
        .map(|(_, k)| describe_known(k))
        .collect();
    let suite_score = crate::report::score::suite_score(&scores);
    if let (Some(min), Some(suite)) = (policy.min_score, suite_score) {
        checks.push(Check {
            subject: "(suite)".into(),
            check: "score".into(),
            status: if suite >= min {
                Status::Pass
            } else {
                Status::Fail
            },
            detail: format!(
                "suite resilience score {suite:.1} (mean of {} run(s)), gate requires >= {min}",
                scores.len()
            ),
        });
    }
    Ok(Decision {
        policy: policy.name.clone(),
        checks,
        unused_known_failures,
        reports_read: reports.len(),
        suite_score,
    })
}

/// Adds `name` to the experiments to judge, once.
fn add(name: &str, judged: &mut Vec<String>) {
    if !judged.iter().any(|n| n == name) {
        judged.push(name.to_owned());
    }
}

fn describe_known(k: &KnownFailure) -> String {
    match &k.target {
        Some(target) => format!("{} / {} (until {})", k.experiment, target, k.expires_text),
        None => format!("{} (until {})", k.experiment, k.expires_text),
    }
}

/// A target against the gate's own bounds instead of the experiment's.
fn judge_threshold(
    policy: &GatePolicy,
    threshold: &Threshold,
    target: &TargetReport,
) -> Result<(bool, String), PolicyError> {
    let percent = target.measure.is_percent();
    for (field, bound) in [
        ("atLeast", threshold.at_least),
        ("atMost", threshold.at_most),
    ] {
        let fits = match bound {
            Some(Bound::Percent(_)) => percent,
            Some(Bound::Seconds(_)) => !percent,
            Some(Bound::Number(_)) | None => true,
        };
        if !fits {
            let (is, wants) = if percent {
                ("a duration", "a percentage like `99.5%`")
            } else {
                ("a percentage", "a duration like `800ms`")
            };
            return Err(PolicyError {
                file: policy.file.clone(),
                line: None,
                path: format!("{}.{field}", threshold.path),
                message: format!(
                    "is {is}, but target `{}` of `{}` measures {}",
                    target.name, threshold.experiment, target.measure
                ),
                hint: format!("write {wants}"),
            });
        }
    }
    let Some(value) = target.value else {
        return Ok((false, "no data to compare with the gate's bound".into()));
    };
    let shown = if percent {
        format!("{value:.3}%")
    } else {
        super::policy::seconds_text(value)
    };
    let low = threshold.at_least.is_none_or(|b| value >= b.value());
    let high = threshold.at_most.is_none_or(|b| value <= b.value());
    let bounds: Vec<String> = [
        threshold.at_least.map(|b| format!(">= {b}")),
        threshold.at_most.map(|b| format!("<= {b}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    Ok((
        low && high,
        format!(
            "measured {shown}, gate requires {} (experiment: {})",
            bounds.join(" and "),
            target.required
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json;

    const POLICY: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: GatePolicy
metadata: {name: t}
spec:
  maxAge: 1d
  require: [{experiment: web}]
  knownFailures:
    - {experiment: web, target: avail, reason: T-1, expires: 2026-06-30}
"#;

    fn report(finished: &str, passed: bool) -> SourcedReport {
        let text = format!(
            r#"{{"reportVersion":1,"tool":{{"name":"steadfast","version":"0"}},
            "run":{{"id":"r","seed":1,"startedAt":"{finished}","finishedAt":"{finished}","durationSeconds":1}},
            "experiment":{{"name":"web","specSha256":"0"}},
            "verdict":{{"outcome":"{o}","summary":"s"}},"exitCode":0,"windows":{{}},
            "timeline":[],"faults":[],"probes":[],
            "targets":[{{"name":"avail","probe":"web","measure":"availability","window":"during",
              "required":">= 99%","value":98.0,"passed":{passed},"detail":"d"}}],
            "rollback":{{"complete":true,"applied":0}}}}"#,
            o = if passed { "passed" } else { "failed" },
        );
        SourcedReport {
            path: "r.json".into(),
            report: json::parse(&text).unwrap(),
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_known_failure_holds_through_its_last_day_and_not_after() {
        let policy = GatePolicy::parse("g.yaml", POLICY).unwrap();
        let reports = [report("2026-06-30T12:00:00Z", false)];
        let last_day = evaluate(&policy, &reports, at("2026-06-30T23:59:59Z")).unwrap();
        assert!(last_day.passed(), "{last_day:#?}");
        assert_eq!(last_day.count(Status::Waived), 1);
        let day_after = evaluate(&policy, &reports, at("2026-07-01T00:00:01Z")).unwrap();
        assert!(!day_after.passed());
    }

    #[test]
    fn age_is_measured_from_the_finish_of_the_newest_run() {
        let policy = GatePolicy::parse("g.yaml", POLICY).unwrap();
        let reports = [
            report("2026-06-01T00:00:00Z", true),
            report("2026-06-02T00:00:00Z", true),
        ];
        let fresh = evaluate(&policy, &reports, at("2026-06-02T23:00:00Z")).unwrap();
        assert!(fresh.passed(), "{fresh:#?}");
        assert_eq!(fresh.unused_known_failures.len(), 1);
        let stale = evaluate(&policy, &reports, at("2026-06-03T01:00:00Z")).unwrap();
        let age = stale.checks.iter().find(|c| c.check == "age").unwrap();
        assert_eq!(age.status, Status::Fail, "{age:?}");
    }
}

//! Judging each target: find its window, ask the evidence, compare, keep the numbers.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::evidence::{Evidence, RunWindows, TimeWindow};
use crate::spec::quantity::{Comparison, DurationSpec, Percent};
use crate::spec::{ExperimentSpec, Measure, TargetSpec, Window};

/// Default success ratio that counts as recovered.
pub const DEFAULT_RECOVERED_AT: f64 = 0.99;
/// Default time success must stay above it.
pub const DEFAULT_STABLE_FOR: Duration = Duration::from_secs(5);

/// One target, judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetResult {
    /// The target's name.
    pub name: String,
    /// The probe it judges.
    pub probe: String,
    /// What it measures.
    pub measure: Measure,
    /// The window it was judged over.
    pub window: Window,
    /// The fault it is restricted to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// The bound, as written (`>= 99.5%`).
    pub required: String,
    /// The measured value, formatted like the bound (`99.82%`), or None without data.
    pub measured: Option<String>,
    /// The measured value as a number: percent for ratios, seconds for durations.
    pub value: Option<f64>,
    /// Whether the target was met.
    pub passed: bool,
    /// What the numbers mean, e.g. where the longest outage was.
    pub detail: String,
    /// The span of run time judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<TimeWindow>,
}

/// Judges every target of `spec`.
pub fn evaluate(
    spec: &ExperimentSpec,
    windows: &RunWindows,
    evidence: &Evidence<'_>,
) -> Vec<TargetResult> {
    spec.spec
        .targets
        .iter()
        .filter_map(|target| judge(target, windows, evidence))
        .collect()
}

fn window_of(target: &TargetSpec, windows: &RunWindows) -> Option<TimeWindow> {
    match target.window {
        Window::Before => windows.before,
        Window::After => windows.after,
        Window::Run => windows.run,
        Window::During => match &target.fault {
            Some(fault) => windows.faults.get(fault).copied(),
            None => windows.during,
        },
    }
}

fn judge(
    target: &TargetSpec,
    windows: &RunWindows,
    evidence: &Evidence<'_>,
) -> Option<TargetResult> {
    let measure = target.measure()?;
    let span = window_of(target, windows);
    let mut result = TargetResult {
        name: target.display_name(),
        probe: target.probe.clone(),
        measure,
        window: target.window,
        fault: target.fault.clone(),
        required: String::new(),
        measured: None,
        value: None,
        passed: false,
        detail: String::new(),
        span,
    };
    let Some(span) = span else {
        result.required = required_text(target);
        result.detail = format!(
            "the `{}` window did not happen in this run",
            target.window.name()
        );
        return Some(result);
    };
    let http = evidence.http.get(&target.probe).copied();
    match measure {
        Measure::Availability => {
            let bound = target.availability?;
            let ratio = http.and_then(|h| h.availability(span));
            percent_result(
                &mut result,
                bound,
                ratio.map(|r| r * 100.0),
                "of requests succeeded",
            );
        }
        Measure::Latency => {
            let bound = target.latency?;
            result.required = bound.to_string();
            let measured = http.and_then(|h| h.latency_percentile(span, bound.percentile));
            duration_result(
                &mut result,
                bound.bound,
                measured,
                &format!("p{} of successful requests", bound.percentile),
            );
            result.required = bound.to_string();
        }
        Measure::LongestOutage => {
            let bound = target.longest_outage?;
            match http {
                None => duration_result(&mut result, bound, None, ""),
                Some(h) => match h.longest_outage(span) {
                    None => {
                        duration_result(&mut result, bound, Some(Duration::ZERO), "");
                        result.detail = "no failed request in the window".to_owned();
                    }
                    Some(outage) => {
                        duration_result(&mut result, bound, Some(outage.len()), "");
                        result.detail = format!(
                            "longest outage from {:.3}s to {:.3}s",
                            outage.start.as_secs_f64(),
                            outage.end.as_secs_f64()
                        );
                        result.span = Some(outage);
                    }
                },
            }
        }
        Measure::Recovery => {
            let bound = target.recovery?;
            let threshold = target
                .recovered_at
                .map_or(DEFAULT_RECOVERED_AT, Percent::ratio);
            let stable_for = target
                .stable_for
                .map_or(DEFAULT_STABLE_FOR, DurationSpec::get);
            let until = windows.run.map_or(span.end, |r| r.end);
            let faults: Vec<(&String, &TimeWindow)> = windows
                .faults
                .iter()
                .filter(|(name, _)| target.fault.as_ref().is_none_or(|f| f == *name))
                .collect();
            let mut worst: Option<(Duration, &str)> = None;
            let mut unrecovered = Vec::new();
            for (name, fault_window) in faults {
                match http.and_then(|h| {
                    h.time_to_recover(fault_window.start, until, threshold, stable_for)
                }) {
                    Some(took) if worst.is_none_or(|(w, _)| took > w) => worst = Some((took, name)),
                    Some(_) => {}
                    None => unrecovered.push(name.clone()),
                }
            }
            if unrecovered.is_empty() {
                duration_result(&mut result, bound, worst.map(|(d, _)| d), "");
                if let Some((_, fault)) = worst {
                    result.detail = format!(
                        "slowest recovery after fault `{fault}` (success ≥ {}% for {})",
                        threshold * 100.0,
                        DurationSpec(stable_for)
                    );
                }
            } else {
                duration_result(&mut result, bound, None, "");
                result.detail = format!("never recovered after: {}", unrecovered.join(", "));
            }
        }
        Measure::Balance => {
            let bound = target.balance?;
            let deviation = http.and_then(|h| h.balance_deviation(span));
            result.required = bound.to_string();
            match deviation {
                Some(points) => {
                    result.value = Some(points);
                    result.measured = Some(format!("{points:.2}%"));
                    result.passed = bound.holds(Percent::new(points));
                    result.detail =
                        "largest gap between a backend's share and its fair share, in points"
                            .to_owned();
                }
                None => result.detail = "no backend identities were seen".to_owned(),
            }
        }
        Measure::Satisfied => {
            let bound = target.satisfied?;
            let ratio = evidence
                .conditions
                .get(&target.probe)
                .and_then(|c| c.satisfied_ratio(span));
            percent_result(
                &mut result,
                bound,
                ratio.map(|r| r * 100.0),
                "of evaluations held",
            );
        }
        Measure::SelfHealing => {
            let bound = target.self_healing?;
            slowest_of_faults(
                &mut result,
                bound,
                &evidence.healing,
                target.fault.as_deref(),
                "self-healing",
                "until every replacement was Ready",
                "not healed after",
            );
        }
        Measure::Detection => {
            let bound = target.detection?;
            slowest_of_faults(
                &mut result,
                bound,
                &evidence.detection,
                target.fault.as_deref(),
                "detection",
                "from the injection until the system noticed (endpoints left, nodes NotReady)",
                "never noticed",
            );
        }
    }
    Some(result)
}

fn required_text(target: &TargetSpec) -> String {
    [
        target.availability.map(|c| c.to_string()),
        target.latency.map(|c| c.to_string()),
        target.longest_outage.map(|c| c.to_string()),
        target.recovery.map(|c| c.to_string()),
        target.balance.map(|c| c.to_string()),
        target.satisfied.map(|c| c.to_string()),
        target.self_healing.map(|c| c.to_string()),
        target.detection.map(|c| c.to_string()),
    ]
    .into_iter()
    .flatten()
    .next()
    .unwrap_or_default()
}

fn percent_result(
    result: &mut TargetResult,
    bound: Comparison<Percent>,
    percent: Option<f64>,
    what: &str,
) {
    result.required = bound.to_string();
    match percent {
        Some(value) => {
            result.value = Some(value);
            result.measured = Some(format!("{value:.3}%"));
            result.passed = bound.holds(Percent::new(value));
            result.detail = format!("{value:.3}% {what}");
        }
        None => result.detail = "no data in the window".to_owned(),
    }
}

/// Judges the slowest of the per-fault durations in `evidence` (all faults, or only `fault`):
/// no evidence, or a fault without a duration, fails with a detail saying which.
fn slowest_of_faults(
    result: &mut TargetResult,
    bound: Comparison<DurationSpec>,
    evidence: &BTreeMap<String, Option<Duration>>,
    fault: Option<&str>,
    what: &str,
    unit: &str,
    missing: &str,
) {
    let relevant: Vec<(&String, &Option<Duration>)> = evidence
        .iter()
        .filter(|(name, _)| fault.is_none_or(|f| f == name.as_str()))
        .collect();
    let without: Vec<&str> = relevant
        .iter()
        .filter(|(_, d)| d.is_none())
        .map(|(n, _)| n.as_str())
        .collect();
    if relevant.is_empty() {
        duration_result(result, bound, None, "");
        result.detail = format!("no {what} evidence was recorded");
    } else if without.is_empty() {
        let slowest = relevant.iter().filter_map(|(_, d)| **d).max();
        duration_result(result, bound, slowest, unit);
    } else {
        duration_result(result, bound, None, "");
        result.detail = format!("{missing}: {}", without.join(", "));
    }
}

fn duration_result(
    result: &mut TargetResult,
    bound: Comparison<DurationSpec>,
    measured: Option<Duration>,
    what: &str,
) {
    result.required = bound.to_string();
    match measured {
        Some(value) => {
            result.value = Some(value.as_secs_f64());
            result.measured = Some(format_duration(value));
            result.passed = bound.holds(DurationSpec(value));
            if !what.is_empty() {
                result.detail = what.to_owned();
            }
        }
        None => result.detail = "no data in the window".to_owned(),
    }
}

/// Milliseconds below ten seconds, seconds above: precise where it matters.
pub fn format_duration(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{:.1}ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_experiment;
    use crate::verdict::{ConditionEvidence, HttpEvidence, Verdict};

    struct Fake {
        availability: f64,
        p99: Duration,
        outage: Option<(f64, f64)>,
        recover: Option<Duration>,
        balance: Option<f64>,
    }

    impl HttpEvidence for Fake {
        fn availability(&self, _: TimeWindow) -> Option<f64> {
            Some(self.availability)
        }
        fn latency_percentile(&self, _: TimeWindow, _: f64) -> Option<Duration> {
            Some(self.p99)
        }
        fn longest_outage(&self, _: TimeWindow) -> Option<TimeWindow> {
            self.outage.map(|(a, b)| {
                TimeWindow::new(Duration::from_secs_f64(a), Duration::from_secs_f64(b))
            })
        }
        fn time_to_recover(
            &self,
            _: Duration,
            _: Duration,
            _: f64,
            _: Duration,
        ) -> Option<Duration> {
            self.recover
        }
        fn balance_deviation(&self, _: TimeWindow) -> Option<f64> {
            self.balance
        }
    }

    struct Always(f64);

    impl ConditionEvidence for Always {
        fn satisfied_ratio(&self, _: TimeWindow) -> Option<f64> {
            Some(self.0)
        }
    }

    const SPEC: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: Experiment
metadata: {name: t}
spec:
  duration: 1m
  steadyState:
    probes:
      - name: web
        http: {url: "http://127.0.0.1/", backendHeader: x-pod}
      - name: replicas
        kubernetes: {workload: {kind: Deployment, namespace: a, name: b}}
  faults:
    - {name: kill, at: 10s, for: 20s, podKill: {target: {namespaces: [a]}}}
  targets:
    - {name: avail, probe: web, availability: ">= 99.5%"}
    - {name: p99, probe: web, window: run, latency: "p99 < 300ms"}
    - {name: outage, probe: web, longestOutage: "<= 2s"}
    - {name: recover, probe: web, recovery: "<= 15s"}
    - {name: balance, probe: web, window: before, balance: "<= 10%"}
    - {name: after, probe: replicas, window: after, satisfied: ">= 100%"}
    - {name: heal, probe: replicas, selfHealing: "<= 1m"}
"#;

    fn windows() -> RunWindows {
        let w = |a: u64, b: u64| TimeWindow::new(Duration::from_secs(a), Duration::from_secs(b));
        RunWindows {
            before: Some(w(0, 10)),
            during: Some(w(10, 30)),
            after: Some(w(40, 50)),
            run: Some(w(0, 50)),
            faults: [("kill".to_owned(), w(10, 30))].into_iter().collect(),
        }
    }

    fn judge_with(fake: &Fake, replicas: f64, heal: Option<Duration>) -> Vec<TargetResult> {
        let (spec, _) = parse_experiment("t.yaml", SPEC).unwrap();
        let mut evidence = Evidence::default();
        evidence.http.insert("web".into(), fake);
        let always = Always(replicas);
        evidence.conditions.insert("replicas".into(), &always);
        evidence.healing.insert("kill".into(), heal);
        evaluate(&spec, &windows(), &evidence)
    }

    fn by_name<'a>(results: &'a [TargetResult], name: &str) -> &'a TargetResult {
        results.iter().find(|r| r.name == name).unwrap()
    }

    #[test]
    fn healthy_evidence_meets_every_target() {
        let fake = Fake {
            availability: 0.998,
            p99: Duration::from_millis(120),
            outage: Some((12.0, 12.8)),
            recover: Some(Duration::from_secs(4)),
            balance: Some(3.5),
        };
        let results = judge_with(&fake, 1.0, Some(Duration::from_secs(20)));
        assert_eq!(results.len(), 7);
        for r in &results {
            assert!(r.passed, "{r:?}");
        }
        let outage = by_name(&results, "outage");
        assert_eq!(outage.measured.as_deref(), Some("800.0ms"));
        assert!(
            outage.detail.contains("12.000s to 12.800s"),
            "{}",
            outage.detail
        );
        assert_eq!(
            by_name(&results, "avail").measured.as_deref(),
            Some("99.800%")
        );
        assert_eq!(Verdict::from_results(&results), Verdict::Passed);
    }

    #[test]
    fn each_breach_fails_its_own_target_with_the_numbers() {
        let fake = Fake {
            availability: 0.99,
            p99: Duration::from_millis(300),
            outage: Some((11.0, 14.5)),
            recover: None,
            balance: Some(12.0),
        };
        let results = judge_with(&fake, 0.5, None);
        for name in [
            "avail", "p99", "outage", "recover", "balance", "after", "heal",
        ] {
            assert!(!by_name(&results, name).passed, "{name} should fail");
        }
        assert_eq!(by_name(&results, "p99").required, "p99 < 300ms");
        assert_eq!(by_name(&results, "outage").value, Some(3.5));
        assert!(
            by_name(&results, "recover")
                .detail
                .contains("never recovered after: kill")
        );
        assert!(
            by_name(&results, "heal")
                .detail
                .contains("not healed after: kill")
        );
        let Verdict::Failed { missed } = Verdict::from_results(&results) else {
            panic!("failed verdict")
        };
        assert_eq!(missed.len(), 7);
    }

    #[test]
    fn no_outage_counts_as_zero_and_missing_windows_fail() {
        let fake = Fake {
            availability: 1.0,
            p99: Duration::ZERO,
            outage: None,
            recover: Some(Duration::ZERO),
            balance: None,
        };
        let results = judge_with(&fake, 1.0, Some(Duration::ZERO));
        let outage = by_name(&results, "outage");
        assert!(outage.passed);
        assert_eq!(outage.value, Some(0.0));
        let balance = by_name(&results, "balance");
        assert!(!balance.passed);
        assert!(balance.detail.contains("no backend identities"));

        let (spec, _) = parse_experiment("t.yaml", SPEC).unwrap();
        let mut evidence = Evidence::default();
        evidence.http.insert("web".into(), &fake);
        let missing_after = RunWindows {
            after: None,
            ..windows()
        };
        let results = evaluate(&spec, &missing_after, &evidence);
        let after = by_name(&results, "after");
        assert!(!after.passed);
        assert!(after.detail.contains("did not happen"));
    }
}

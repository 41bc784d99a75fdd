//! Evaluations of condition probes (PromQL, Kubernetes readiness, Auto Scaling capacity): one
//! entry per evaluation, which happen every few seconds, so a list stays small.

use std::time::Duration;

use serde::Serialize;

/// One evaluation of a condition.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionEvaluation {
    /// Offset from the run's origin.
    pub at: Duration,
    /// Whether the expectation held.
    pub held: bool,
    /// The observed value, when numeric (a PromQL result, a ready count).
    pub value: Option<f64>,
    /// One line for people (which series failed, which group is short).
    pub detail: String,
}

/// A change of a condition between holding and failing: what a watched condition records the
/// moment it sees it, so a flap shorter than any poll interval still shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionTransition {
    /// Offset from the run's origin.
    pub at: Duration,
    /// The state entered: true for failed → held, false for held → failed.
    pub held: bool,
    /// The evaluation's detail at that instant.
    pub detail: String,
}

/// A stretch during which a condition did not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedSpan {
    /// The first failed evaluation.
    pub start: Duration,
    /// The next evaluation that held; `None` when none did before the log ends.
    pub end: Option<Duration>,
}

impl FailedSpan {
    /// Its length, when it ended.
    pub fn length(&self) -> Option<Duration> {
        self.end.map(|end| end.saturating_sub(self.start))
    }
}

/// All evaluations of one condition probe, in time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConditionLog {
    evaluations: Vec<ConditionEvaluation>,
}

impl ConditionLog {
    /// Appends an evaluation; out-of-order ones are placed in order.
    pub fn record(&mut self, evaluation: ConditionEvaluation) {
        let at = self.evaluations.partition_point(|e| e.at <= evaluation.at);
        self.evaluations.insert(at, evaluation);
    }

    /// Every evaluation.
    pub fn evaluations(&self) -> &[ConditionEvaluation] {
        &self.evaluations
    }

    /// Evaluations in `[from, to)`.
    pub fn between(&self, from: Duration, to: Duration) -> &[ConditionEvaluation] {
        let start = self.evaluations.partition_point(|e| e.at < from);
        let end = self.evaluations.partition_point(|e| e.at < to);
        &self.evaluations[start..end.max(start)]
    }

    /// Every change between held and failed, in time order. A log that starts failing starts
    /// with a transition to failed; one that starts holding does not count its start.
    pub fn transitions(&self) -> Vec<ConditionTransition> {
        let mut previous = true;
        let mut out = Vec::new();
        for evaluation in &self.evaluations {
            if evaluation.held != previous {
                out.push(ConditionTransition {
                    at: evaluation.at,
                    held: evaluation.held,
                    detail: evaluation.detail.clone(),
                });
                previous = evaluation.held;
            }
        }
        out
    }

    /// The stretches from a failed evaluation to the next one that held.
    pub fn failed_spans(&self) -> Vec<FailedSpan> {
        let mut spans = Vec::new();
        let mut open: Option<Duration> = None;
        for transition in self.transitions() {
            match (transition.held, open) {
                (false, None) => open = Some(transition.at),
                (true, Some(start)) => {
                    spans.push(FailedSpan {
                        start,
                        end: Some(transition.at),
                    });
                    open = None;
                }
                _ => {}
            }
        }
        if let Some(start) = open {
            spans.push(FailedSpan { start, end: None });
        }
        spans
    }

    /// Share of evaluations in `[from, to)` that held; None without evaluations.
    pub fn satisfied_ratio(&self, from: Duration, to: Duration) -> Option<f64> {
        let window = self.between(from, to);
        (!window.is_empty())
            .then(|| window.iter().filter(|e| e.held).count() as f64 / window.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval_ms(ms: u64, held: bool) -> ConditionEvaluation {
        ConditionEvaluation {
            at: Duration::from_millis(ms),
            held,
            value: None,
            detail: String::new(),
        }
    }

    #[test]
    fn a_flap_between_heartbeats_is_one_failed_span() {
        let mut log = ConditionLog::default();
        // Heartbeats every second, a watch-seen flap from 1.2 s to 1.5 s, a failure at the end.
        for (ms, held) in [
            (0, true),
            (1_000, true),
            (1_200, false),
            (1_500, true),
            (2_000, true),
            (3_000, false),
            (4_000, false),
        ] {
            log.record(eval_ms(ms, held));
        }
        let transitions: Vec<(u128, bool)> = log
            .transitions()
            .iter()
            .map(|t| (t.at.as_millis(), t.held))
            .collect();
        assert_eq!(
            transitions,
            vec![(1_200, false), (1_500, true), (3_000, false)]
        );
        let spans = log.failed_spans();
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0].length(), Some(Duration::from_millis(300)));
        assert_eq!(spans[1].end, None);
    }

    #[test]
    fn a_log_that_starts_failing_starts_with_a_transition() {
        let mut log = ConditionLog::default();
        log.record(eval_ms(0, false));
        log.record(eval_ms(700, true));
        assert_eq!(log.transitions().len(), 2);
        assert_eq!(
            log.failed_spans()[0].length(),
            Some(Duration::from_millis(700))
        );
    }

    fn eval(secs: u64, held: bool) -> ConditionEvaluation {
        ConditionEvaluation {
            at: Duration::from_secs(secs),
            held,
            value: None,
            detail: String::new(),
        }
    }

    #[test]
    fn ratios_count_only_the_window() {
        let mut log = ConditionLog::default();
        for (t, held) in [(0, true), (10, false), (5, true), (15, true)] {
            log.record(eval(t, held));
        }
        assert_eq!(
            log.evaluations()
                .iter()
                .map(|e| e.at.as_secs())
                .collect::<Vec<_>>(),
            vec![0, 5, 10, 15]
        );
        assert_eq!(
            log.satisfied_ratio(Duration::ZERO, Duration::from_secs(10)),
            Some(1.0)
        );
        assert_eq!(
            log.satisfied_ratio(Duration::from_secs(5), Duration::from_secs(20)),
            Some(2.0 / 3.0)
        );
        assert_eq!(
            log.satisfied_ratio(Duration::from_secs(16), Duration::from_secs(20)),
            None
        );
    }
}

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

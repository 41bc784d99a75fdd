//! What the verdict needs to know, as narrow traits: the measurement store implements them for
//! real runs, tests implement them with plain numbers.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::measure::TimeWindow;
pub use crate::measure::units::secs;

/// The windows of one run, fixed as it happened.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunWindows {
    /// Steady state before the faults.
    pub before: Option<TimeWindow>,
    /// From the first fault's start to the last fault's end.
    pub during: Option<TimeWindow>,
    /// Steady state after recovery.
    pub after: Option<TimeWindow>,
    /// The whole run.
    pub run: Option<TimeWindow>,
    /// Each fault's window (`at` to `at + for`, as it actually ran).
    pub faults: BTreeMap<String, TimeWindow>,
}

/// Measurements of one HTTP probe.
pub trait HttpEvidence {
    /// Successful attempts / attempts, 0–1; None without attempts.
    fn availability(&self, window: TimeWindow) -> Option<f64>;
    /// The `percentile` (0–100) latency of successful attempts.
    fn latency_percentile(&self, window: TimeWindow, percentile: f64) -> Option<Duration>;
    /// When the longest outage began and ended, None when there was none.
    fn longest_outage(&self, window: TimeWindow) -> Option<TimeWindow>;
    /// Time from `from` until success stayed at or above `threshold` (0–1) for `stable_for`,
    /// looking no further than `until`; None when it never did.
    fn time_to_recover(
        &self,
        from: Duration,
        until: Duration,
        threshold: f64,
        stable_for: Duration,
    ) -> Option<Duration>;
    /// The largest gap between a backend's share and its fair share among the ready endpoints,
    /// in percentage points; None without backend identities.
    fn balance_deviation(&self, window: TimeWindow) -> Option<f64>;
}

/// Evaluations of a condition probe (Prometheus, Kubernetes, Auto Scaling).
pub trait ConditionEvidence {
    /// Evaluations whose expectation held / evaluations, 0–1; None without evaluations.
    fn satisfied_ratio(&self, window: TimeWindow) -> Option<f64>;
}

/// Everything measured in one run, by probe name.
#[derive(Default)]
pub struct Evidence<'a> {
    /// HTTP probes.
    pub http: BTreeMap<String, &'a dyn HttpEvidence>,
    /// Condition probes.
    pub conditions: BTreeMap<String, &'a dyn ConditionEvidence>,
    /// Per fault, the time until everything it replaced was Ready again (None: not healed).
    pub healing: BTreeMap<String, Option<Duration>>,
    /// Per fault, the slowest time from an injection until the system noticed it (None: a
    /// firing was never noticed); faults with nothing to notice are absent.
    pub detection: BTreeMap<String, Option<Duration>>,
}

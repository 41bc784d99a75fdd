//! The measurement store as verdict evidence.

use std::time::Duration;

use super::evidence::{HttpEvidence, TimeWindow};
use crate::measure::{LatencyOf, MeasurementStore, RecoveryCriteria};

impl HttpEvidence for MeasurementStore {
    fn availability(&self, w: TimeWindow) -> Option<f64> {
        self.window(w).availability
    }

    fn latency_percentile(&self, w: TimeWindow, percentile: f64) -> Option<Duration> {
        MeasurementStore::latency_percentile(self, w, percentile, LatencyOf::Successes)
    }

    fn longest_outage(&self, w: TimeWindow) -> Option<TimeWindow> {
        MeasurementStore::longest_outage(self, w).map(|o| TimeWindow::new(o.start, o.end))
    }

    fn time_to_recover(
        &self,
        from: Duration,
        until: Duration,
        threshold: f64,
        stable_for: Duration,
    ) -> Option<Duration> {
        let criteria = RecoveryCriteria::new(threshold, stable_for).ok()?;
        MeasurementStore::time_to_recover(self, from, criteria)
            .filter(|r| r.at <= until)
            .map(|r| r.after)
    }

    fn balance_deviation(&self, w: TimeWindow) -> Option<f64> {
        self.backend_shares(w).max_deviation_pp
    }
}

impl super::evidence::ConditionEvidence for crate::measure::ConditionLog {
    fn satisfied_ratio(&self, w: TimeWindow) -> Option<f64> {
        crate::measure::ConditionLog::satisfied_ratio(self, w.start, w.end)
    }
}

//! Everything the verdict and the report usually want about one window, in one value.

use serde::Serialize;

use super::outage::Outage;
use super::shares::BackendShares;
use super::store::MeasurementStore;
use super::window::{TimeWindow, WindowStats};

/// Counts, latency, longest outage and load balance of one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowSummary {
    /// Attempts, outcomes, availability and latency of successful attempts.
    pub stats: WindowStats,
    /// The longest outage, `None` when nothing failed.
    pub longest_outage: Option<Outage>,
    /// Per-backend shares and responses after deletion.
    pub backend_shares: BackendShares,
}

impl MeasurementStore {
    /// [`MeasurementStore::window`], [`MeasurementStore::longest_outage`] and
    /// [`MeasurementStore::backend_shares`] of `window` together.
    pub fn summary(&self, window: TimeWindow) -> WindowSummary {
        WindowSummary {
            stats: self.window(window),
            longest_outage: self.longest_outage(window),
            backend_shares: self.backend_shares(window),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::sample::{FailureKind, Outcome};
    use super::super::testing::{Stream, ms, store};
    use super::*;

    #[test]
    fn summary_agrees_with_the_single_queries() {
        let samples = Stream::new(200.0).run_full(ms(5_000), |k, at| {
            let outcome = if at >= ms(2_000) && at < ms(2_500) {
                Outcome::Failure(FailureKind::Connect)
            } else {
                Outcome::Success
            };
            (
                outcome,
                ms(2),
                Some(Arc::from(if k % 2 == 0 { "a" } else { "b" })),
            )
        });
        let s = store(&samples);
        let w = TimeWindow::new(ms(1_000), ms(4_000));
        let summary = s.summary(w);
        assert_eq!(summary.stats, s.window(w));
        assert_eq!(summary.longest_outage, s.longest_outage(w));
        assert_eq!(summary.backend_shares, s.backend_shares(w));
        assert_eq!(summary.stats.attempts, 600);
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["longestOutage"]["lengthMs"], 505.0);
        assert_eq!(json["backendShares"]["maxDeviationPp"], 0.0);
    }
}

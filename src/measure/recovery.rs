//! Time to recover: how long after an instant (a fault's start or its rollback) the service was
//! back to steady success.
//!
//! # Definition
//! The recovery instant `T` is `from` itself when the service was fine from there, or else the
//! intended start of the earliest *successful* attempt after `from` such that the success ratio
//! of all attempts scheduled in `[T, T + stable_for)` is at least `threshold`. The stretch needs
//! at least one attempt and must end before the store's data does.
//!
//! Recovery starts with a success: with a 1 % tolerance, an instant in the last few failures of
//! an outage could otherwise pass. The successes tried are, per bucket, its first success and the
//! first success after its last failure, so a clean recovery is found exactly at the first
//! success after the outage, and a gradual one to within a bucket.

use std::time::Duration;

use serde::Serialize;

use super::error::MeasureError;
use super::store::MeasurementStore;
use super::units;

/// What counts as recovered.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryCriteria {
    /// Lowest acceptable success ratio, in 0..=1 (e.g. 0.99).
    pub threshold: f64,
    /// How long the ratio must hold.
    #[serde(rename = "stableForMs", serialize_with = "units::millis")]
    pub stable_for: Duration,
}

impl RecoveryCriteria {
    /// Checked criteria.
    ///
    /// # Errors
    /// [`MeasureError::InvalidThreshold`] outside 0..=1.
    pub fn new(threshold: f64, stable_for: Duration) -> Result<Self, MeasureError> {
        if !(0.0..=1.0).contains(&threshold) {
            return Err(MeasureError::InvalidThreshold { threshold });
        }
        Ok(RecoveryCriteria {
            threshold,
            stable_for,
        })
    }
}

/// When the service was back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recovery {
    /// The recovery instant.
    #[serde(rename = "atMs", serialize_with = "units::millis")]
    pub at: Duration,
    /// `at` minus the instant measured from.
    #[serde(rename = "afterMs", serialize_with = "units::millis")]
    pub after: Duration,
}

impl MeasurementStore {
    /// The first instant at or after `from` from which the criteria hold; `None` if they never
    /// do within the data.
    pub fn time_to_recover(&self, from: Duration, criteria: RecoveryCriteria) -> Option<Recovery> {
        let start = units::nanos(from);
        let stable = units::nanos(criteria.stable_for).max(1);
        let end = units::nanos(self.covered().end);
        let passes = |t: u64| {
            t.checked_add(stable).is_some_and(|until| until <= end)
                && self
                    .tally(t, t + stable)
                    .ratio()
                    .is_some_and(|r| r >= criteria.threshold)
        };
        let found = |at: u64| {
            Some(Recovery {
                at: units::duration(at),
                after: units::duration(at - start),
            })
        };
        if passes(start) {
            return found(start);
        }
        for i in self.bucket_range(start, end) {
            let bucket = &self.buckets[i];
            let from_here = start.max(self.bucket_start(i));
            let first = bucket.success.first_at_or_after(from_here);
            let after_failures = if bucket.failure.count > 0 {
                bucket
                    .success
                    .first_at_or_after(bucket.failure.last.saturating_add(1).max(from_here))
            } else {
                None
            };
            for candidate in [first, after_failures].into_iter().flatten() {
                if passes(candidate) {
                    return found(candidate);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::sample::{FailureKind, Outcome};
    use super::super::testing::{Stream, ms, store};
    use super::*;

    fn criteria() -> RecoveryCriteria {
        RecoveryCriteria::new(0.99, ms(5_000)).unwrap()
    }

    #[test]
    fn recovers_at_the_first_success_after_a_clean_outage() {
        let samples = Stream::new(200.0).run_with(ms(30_000), |_, at| {
            if at >= ms(10_000) && at < ms(12_345) {
                Outcome::Failure(FailureKind::Connect)
            } else {
                Outcome::Success
            }
        });
        let s = store(&samples);
        let r = s.time_to_recover(ms(10_000), criteria()).unwrap();
        assert_eq!(r.at, ms(12_345));
        assert_eq!(r.after, ms(2_345));
        // Measured from before the outage, the service was fine then already.
        let early = s.time_to_recover(ms(1_000), criteria()).unwrap();
        assert_eq!(early.after, Duration::ZERO);
    }

    #[test]
    fn a_flaky_tail_delays_recovery() {
        // After the outage, 5 % errors for 4 s, then clean.
        let samples = Stream::new(200.0).run_with(ms(30_000), |k, at| {
            let down = at >= ms(10_000) && at < ms(11_000);
            let flaky = at >= ms(11_000) && at < ms(15_000) && k % 20 == 0;
            if down || flaky {
                Outcome::Failure(FailureKind::Status)
            } else {
                Outcome::Success
            }
        });
        let s = store(&samples);
        let r = s.time_to_recover(ms(10_000), criteria()).unwrap();
        // 1 % of 1000 attempts may fail in the 5 s window: 10 of the 200/s*5%=10/s flaky ones,
        // so recovery is about a second before the flaky stretch ends.
        assert!(r.at > ms(13_500) && r.at < ms(15_001), "{:?}", r.at);
    }

    #[test]
    fn never_recovering_or_too_little_data_gives_none() {
        let samples = Stream::new(200.0).run_with(ms(20_000), |_, at| {
            if at >= ms(10_000) {
                Outcome::Failure(FailureKind::Timeout)
            } else {
                Outcome::Success
            }
        });
        let s = store(&samples);
        assert!(s.time_to_recover(ms(10_000), criteria()).is_none());
        let late = store(&Stream::new(200.0).run_with(ms(12_000), |_, _| Outcome::Success));
        assert!(late.time_to_recover(ms(8_000), criteria()).is_none());
        assert!(RecoveryCriteria::new(1.5, ms(1)).is_err());
    }
}

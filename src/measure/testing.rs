//! Synthetic sample streams with known truth, for the tests of this module.

use std::sync::Arc;
use std::time::Duration;

use super::config::StoreConfig;
use super::sample::{Outcome, Sample};
use super::store::MeasurementStore;

/// Milliseconds as a duration.
pub fn ms(value: u64) -> Duration {
    Duration::from_millis(value)
}

/// A constant-rate probe schedule starting at the run origin.
pub struct Stream {
    interval: Duration,
}

impl Stream {
    /// `rate` attempts per second.
    pub fn new(rate: f64) -> Self {
        Stream {
            interval: Duration::from_nanos((1e9 / rate).round() as u64),
        }
    }

    /// Intended starts `k * interval` below `until`.
    fn instants(&self, until: Duration) -> impl Iterator<Item = (u64, Duration)> + '_ {
        (0u64..)
            .map(|k| (k, self.interval * u32::try_from(k).unwrap_or(u32::MAX)))
            .take_while(move |(_, at)| *at < until)
    }

    /// Samples with outcomes from `outcome(k, intended)`, 1 ms latency and no backend.
    pub fn run_with(
        &mut self,
        until: Duration,
        mut outcome: impl FnMut(u64, Duration) -> Outcome,
    ) -> Vec<Sample> {
        self.run_full(until, |k, at| (outcome(k, at), ms(1), None))
    }

    /// Samples with outcome, latency and backend from `f(k, intended)`.
    pub fn run_full(
        &mut self,
        until: Duration,
        mut f: impl FnMut(u64, Duration) -> (Outcome, Duration, Option<Arc<str>>),
    ) -> Vec<Sample> {
        self.instants(until)
            .map(|(k, at)| {
                let (outcome, latency, backend) = f(k, at);
                Sample {
                    intended: at,
                    latency,
                    outcome,
                    backend,
                }
            })
            .collect()
    }
}

/// A default store fed with `samples`.
pub fn store(samples: &[Sample]) -> MeasurementStore {
    store_with(StoreConfig::default(), samples)
}

/// A store with `config` fed with `samples`.
pub fn store_with(config: StoreConfig, samples: &[Sample]) -> MeasurementStore {
    let mut s = MeasurementStore::new(config).unwrap();
    for sample in samples {
        s.record(sample).unwrap();
    }
    s
}

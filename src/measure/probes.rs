//! The stores of every probe of a run, owned by the engine in one place.

use std::collections::BTreeMap;

use super::config::StoreConfig;
use super::error::MeasureError;
use super::sample::Sample;
use super::store::MeasurementStore;

/// One [`MeasurementStore`] per probe name, all with the same settings.
#[derive(Debug)]
pub struct ProbeMeasurements {
    config: StoreConfig,
    stores: BTreeMap<String, MeasurementStore>,
}

impl ProbeMeasurements {
    /// No probes yet; stores are made on first use.
    pub fn new(config: StoreConfig) -> Self {
        ProbeMeasurements {
            config,
            stores: BTreeMap::new(),
        }
    }

    /// The store of `probe`, made empty if it has none yet.
    ///
    /// # Errors
    /// As [`MeasurementStore::new`].
    pub fn probe_mut(&mut self, probe: &str) -> Result<&mut MeasurementStore, MeasureError> {
        match self.stores.entry(probe.to_owned()) {
            std::collections::btree_map::Entry::Occupied(entry) => Ok(entry.into_mut()),
            std::collections::btree_map::Entry::Vacant(entry) => {
                Ok(entry.insert(MeasurementStore::new(self.config)?))
            }
        }
    }

    /// Records one sample of `probe`.
    ///
    /// # Errors
    /// As [`MeasurementStore::record`].
    pub fn record(&mut self, probe: &str, sample: &Sample) -> Result<(), MeasureError> {
        self.probe_mut(probe)?.record(sample)
    }

    /// The store of `probe`, if it recorded anything.
    pub fn probe(&self, probe: &str) -> Option<&MeasurementStore> {
        self.stores.get(probe)
    }

    /// Every probe's store, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &MeasurementStore)> {
        self.stores
            .iter()
            .map(|(name, store)| (name.as_str(), store))
    }
}

#[cfg(test)]
mod tests {
    use super::super::sample::Outcome;
    use super::super::testing::ms;
    use super::*;

    #[test]
    fn keeps_probes_apart() {
        let mut all = ProbeMeasurements::new(StoreConfig::default());
        for k in 0..10u64 {
            let sample = Sample {
                intended: ms(k * 10),
                latency: ms(1),
                outcome: Outcome::Success,
                backend: None,
            };
            all.record(if k < 3 { "web" } else { "api" }, &sample)
                .unwrap();
        }
        let names: Vec<_> = all.iter().map(|(n, s)| (n, s.samples_recorded())).collect();
        assert_eq!(names, vec![("api", 7), ("web", 3)]);
        assert!(all.probe("db").is_none());
    }
}

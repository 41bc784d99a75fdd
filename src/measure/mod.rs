//! Measurements: what the probes saw, kept in fixed time buckets so memory depends on the run's
//! length and the bucket width, never on the probe rate.
//!
//! A probe hands each attempt to its [`MeasurementStore`] as a [`Sample`]. The store files it
//! under the bucket (default 100 ms) of its *intended* start, so late and out-of-order samples
//! land where they belong. Per bucket it keeps counts by outcome, the first and last instant of
//! successes, failures and each backend's responses, and a 128-slot occupancy map; latencies go
//! to compact HDR histograms per latency slice (default 1 s). An hour at 1,000 samples/s with
//! four backends takes about 25 MB (see `benches/measure_memory.rs`); a higher rate only fills in
//! the latency histograms a little.
//!
//! After the run, any [`TimeWindow`] can be asked for:
//! - [`MeasurementStore::window`]: attempts, outcomes, availability, latency percentiles;
//! - [`MeasurementStore::longest_outage`] and [`MeasurementStore::outages`] (definition in
//!   [`outage`]);
//! - [`MeasurementStore::time_to_recover`] from an instant (definition in [`recovery`]);
//! - [`MeasurementStore::backend_shares`] against the [`EndpointTimeline`] (in [`shares`]);
//! - [`MeasurementStore::series`] for plots;
//! - [`MeasurementStore::summary`]: counts, longest outage and shares together.
//!
//! Windows on bucket edges are counted exactly; a window edge inside a bucket splits it assuming
//! its instants are evenly spaced, which is exact for a constant-rate probe whose outcome changes
//! at most once in that bucket. Serialized results use camelCase and milliseconds ([`units`]).

mod bucket;
pub mod conditions;
pub mod config;
pub mod endpoints;
pub mod error;
pub mod latency;
pub mod outage;
pub mod probes;
pub mod recovery;
pub mod sample;
pub mod series;
pub mod shares;
mod span;
pub mod store;
pub mod summary;
pub mod units;
pub mod window;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod testing;

pub use conditions::{ConditionEvaluation, ConditionLog, ConditionTransition, FailedSpan};
pub use config::StoreConfig;
pub use endpoints::{EndpointEvent, EndpointState, EndpointTimeline};
pub use error::MeasureError;
pub use latency::{LatencyOf, LatencySummary};
pub use outage::Outage;
pub use probes::ProbeMeasurements;
pub use recovery::{Recovery, RecoveryCriteria};
pub use sample::{FailureKind, Outcome, Sample};
pub use series::SeriesPoint;
pub use shares::{BackendShare, BackendShares, ServedAfterDeletion};
pub use store::MeasurementStore;
pub use summary::WindowSummary;
pub use window::{FailureCounts, TimeWindow, WindowStats};

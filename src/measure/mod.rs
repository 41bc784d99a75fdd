//! Measurements: what the probes saw, kept in fixed time buckets so memory depends on the run's
//! length and the bucket width, never on the probe rate.

pub mod sample;

pub use sample::{FailureKind, Outcome, Sample};

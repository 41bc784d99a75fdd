//! What can go wrong when configuring, feeding or querying the measurement store.

use std::time::Duration;

/// Errors of the measurement store.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MeasureError {
    /// The bucket width is zero or too wide for the occupancy maps to mean anything.
    #[error(
        "bucket width {width:?} is outside 1 ms ..= 10 s\nhint: the default of 100 ms suits probe rates from 10/s to 10,000/s"
    )]
    InvalidBucketWidth {
        /// The width asked for.
        width: Duration,
    },
    /// Latency histograms must cover whole buckets.
    #[error(
        "latency slice {slice:?} is not a positive multiple of the bucket width {width:?}\nhint: use a whole number of buckets, e.g. 1 s for 100 ms buckets"
    )]
    InvalidLatencySlice {
        /// The slice asked for.
        slice: Duration,
        /// The bucket width it must divide into.
        width: Duration,
    },
    /// A sample was scheduled past the store's horizon; it was not recorded.
    #[error(
        "sample scheduled at {intended:?} lies beyond the store's horizon of {horizon:?}\nhint: raise the horizon to cover the whole run"
    )]
    BeyondHorizon {
        /// The sample's intended start.
        intended: Duration,
        /// The configured horizon.
        horizon: Duration,
    },
    /// A success-ratio threshold outside 0..=1.
    #[error("success-ratio threshold {threshold} is outside 0..=1")]
    InvalidThreshold {
        /// The threshold asked for.
        threshold: f64,
    },
    /// A time-series resolution that is zero.
    #[error("time-series resolution must be positive")]
    InvalidResolution,
    /// The latency histogram could not be set up (its bounds are constants, so this is a bug).
    #[error("latency histogram setup failed: {0}")]
    Histogram(#[from] hdrhistogram::CreationError),
}

//! How finely the store keeps time, checked once so recording cannot fail on configuration.

use std::time::Duration;

use super::error::MeasureError;

/// Default bucket width: fine enough for outage edges, coarse enough for hours of data.
pub const DEFAULT_BUCKET_WIDTH: Duration = Duration::from_millis(100);
/// Default latency slice: one histogram per second keeps an hour under ten megabytes.
pub const DEFAULT_LATENCY_SLICE: Duration = Duration::from_secs(1);
/// Default horizon: no run lasts a day; a sample past it is a clock bug, not data.
pub const DEFAULT_HORIZON: Duration = Duration::from_secs(24 * 3_600);
/// Default cap on distinct backend names: beyond it a misbehaving identity header (a request id
/// echoed back, say) would grow memory with the probe rate.
pub const DEFAULT_MAX_BACKENDS: usize = 256;

/// Validated settings of a [`super::MeasurementStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreConfig {
    bucket_width: Duration,
    latency_slice: Duration,
    horizon: Duration,
    max_backends: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            bucket_width: DEFAULT_BUCKET_WIDTH,
            latency_slice: DEFAULT_LATENCY_SLICE,
            horizon: DEFAULT_HORIZON,
            max_backends: DEFAULT_MAX_BACKENDS,
        }
    }
}

impl StoreConfig {
    /// Settings with the given bucket width and a latency slice of one second (or one bucket,
    /// when buckets are wider).
    ///
    /// # Errors
    /// [`MeasureError::InvalidBucketWidth`] outside 1 ms ..= 10 s.
    pub fn new(bucket_width: Duration) -> Result<Self, MeasureError> {
        let slice = if bucket_width >= DEFAULT_LATENCY_SLICE {
            bucket_width
        } else {
            let per_second = DEFAULT_LATENCY_SLICE.as_nanos() / bucket_width.as_nanos().max(1);
            bucket_width * u32::try_from(per_second).unwrap_or(1)
        };
        if bucket_width < Duration::from_millis(1) || bucket_width > Duration::from_secs(10) {
            return Err(MeasureError::InvalidBucketWidth {
                width: bucket_width,
            });
        }
        StoreConfig {
            bucket_width,
            ..StoreConfig::default()
        }
        .with_latency_slice(slice)
    }

    /// Changes how much time one latency histogram covers.
    ///
    /// # Errors
    /// [`MeasureError::InvalidLatencySlice`] unless a positive multiple of the bucket width.
    pub fn with_latency_slice(mut self, slice: Duration) -> Result<Self, MeasureError> {
        let width = self.bucket_width.as_nanos();
        if slice.is_zero() || !slice.as_nanos().is_multiple_of(width) {
            return Err(MeasureError::InvalidLatencySlice {
                slice,
                width: self.bucket_width,
            });
        }
        self.latency_slice = slice;
        Ok(self)
    }

    /// Changes the horizon past which samples are refused.
    pub fn with_horizon(mut self, horizon: Duration) -> Self {
        self.horizon = horizon;
        self
    }

    /// Changes how many distinct backend names are kept apart.
    pub fn with_max_backends(mut self, max: usize) -> Self {
        self.max_backends = max.min(usize::from(u16::MAX));
        self
    }

    /// Width of one bucket.
    pub fn bucket_width(&self) -> Duration {
        self.bucket_width
    }

    /// Time covered by one latency histogram.
    pub fn latency_slice(&self) -> Duration {
        self.latency_slice
    }

    /// Samples scheduled at or after this offset are refused.
    pub fn horizon(&self) -> Duration {
        self.horizon
    }

    /// Distinct backend names kept apart.
    pub fn max_backends(&self) -> usize {
        self.max_backends
    }
}

//! Where probes put their samples.
//!
//! The sink is called on the probe's hot path, once per attempt, from many tasks at once, so it
//! must not block: the measurement store buckets samples under a short lock, a channel hands them
//! to another task. A sink that cannot take a sample says so, and the probe counts the loss
//! instead of silently measuring less.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::measure::Sample;

/// Receives every sample a probe produces.
pub trait SampleSink: Send + Sync + 'static {
    /// Takes one sample without blocking.
    ///
    /// # Errors
    /// [`SinkError`] when the sample could not be kept; the probe counts it as lost.
    fn record(&self, sample: Sample) -> Result<(), SinkError>;
}

/// Why a sink refused a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The sink is full: its consumer does not keep up with the probe rate.
    #[error("sample sink is full")]
    Full,
    /// The consumer has gone away.
    #[error("sample sink is closed")]
    Closed,
}

/// A bounded channel: the consumer (e.g. the measurement task) drains it at its own pace.
impl SampleSink for mpsc::Sender<Sample> {
    fn record(&self, sample: Sample) -> Result<(), SinkError> {
        self.try_send(sample).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => SinkError::Full,
            mpsc::error::TrySendError::Closed(_) => SinkError::Closed,
        })
    }
}

impl<S: SampleSink + ?Sized> SampleSink for Arc<S> {
    fn record(&self, sample: Sample) -> Result<(), SinkError> {
        (**self).record(sample)
    }
}

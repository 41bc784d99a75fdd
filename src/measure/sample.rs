//! The unit a probe hands to the measurement store.

use std::sync::Arc;
use std::time::Duration;

/// One probe attempt as the probe saw it.
///
/// Times are offsets from the run's origin (a monotonic instant the engine fixes once), so
/// samples from different probes line up without wall-clock skew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// When the attempt was *scheduled* to start. Latency counts from here, not from when the
    /// request left, so a stalled backend cannot hide behind a stalled client (no coordinated
    /// omission).
    pub intended: Duration,
    /// From the intended start to the end of the response, or to the failure.
    pub latency: Duration,
    /// Whether the attempt met every expectation of its probe.
    pub outcome: Outcome,
    /// The backend that answered, from the probe's identity header, when it said.
    pub backend: Option<Arc<str>>,
}

/// Whether one attempt met its probe's expectations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Every expectation held.
    Success,
    /// The attempt failed, and how.
    Failure(FailureKind),
}

/// Why an attempt failed; kept apart so a report can tell a refused connection from a slow one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FailureKind {
    /// The connection could not be made (refused, reset before a response, DNS).
    Connect,
    /// No complete response within the probe's timeout.
    Timeout,
    /// A response whose status is outside the expected set.
    Status,
    /// A response whose body did not match.
    Body,
    /// A response slower than the probe's latency expectation.
    Latency,
    /// The connection broke mid-response or the peer spoke bad HTTP.
    Protocol,
    /// The start was skipped because the concurrency cap was reached: the service was too slow
    /// to keep up with the schedule, which counts against availability.
    Dropped,
}

impl FailureKind {
    /// Every kind, in declaration order; the measurement store keeps one counter per entry.
    pub const ALL: [FailureKind; 7] = [
        FailureKind::Connect,
        FailureKind::Timeout,
        FailureKind::Status,
        FailureKind::Body,
        FailureKind::Latency,
        FailureKind::Protocol,
        FailureKind::Dropped,
    ];

    /// Position in [`FailureKind::ALL`], so counters can live in a plain array.
    pub fn index(self) -> usize {
        match self {
            FailureKind::Connect => 0,
            FailureKind::Timeout => 1,
            FailureKind::Status => 2,
            FailureKind::Body => 3,
            FailureKind::Latency => 4,
            FailureKind::Protocol => 5,
            FailureKind::Dropped => 6,
        }
    }
}

impl Outcome {
    /// True when the attempt counts towards availability.
    pub fn is_success(self) -> bool {
        matches!(self, Outcome::Success)
    }
}

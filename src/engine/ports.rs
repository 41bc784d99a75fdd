//! The engine's view of the outside world: narrow traits the adapters implement.

use std::time::Duration;

use async_trait::async_trait;

use crate::verdict::{Evidence, TimeWindow};

/// Whether the steady state held over a window, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SteadyCheck {
    /// True when every probe's steady expectation held.
    pub holds: bool,
    /// For each probe that did not hold, one line.
    pub reasons: Vec<String>,
}

impl SteadyCheck {
    /// A check that held.
    pub fn ok() -> Self {
        Self {
            holds: true,
            reasons: Vec::new(),
        }
    }
}

/// The probes of one run, running in the background and queryable while they run.
#[async_trait]
pub trait Probes: Send + Sync {
    /// Starts every probe; they run until [`Probes::stop`].
    async fn start(&self) -> anyhow::Result<()>;
    /// Whether each probe's steady-state expectation held over `window`.
    fn steady(&self, window: TimeWindow) -> SteadyCheck;
    /// Availability (0–1) of an HTTP probe over `window`, for abort conditions.
    fn availability(&self, probe: &str, window: TimeWindow) -> Option<f64>;
    /// Stops every probe and waits for in-flight work to be recorded.
    async fn stop(&self);
    /// What the verdict needs, after [`Probes::stop`].
    fn evidence(&self) -> Evidence<'_>;
}

/// Why the run lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds it.
    #[error("another run holds the lock: {holder} (until {expires})")]
    Held {
        /// Who.
        holder: String,
        /// When the hold lapses unless renewed.
        expires: String,
    },
    /// The lock store failed.
    #[error("run lock: {0}")]
    Store(String),
}

/// A lock that keeps two experiments from overlapping on one cluster.
#[async_trait]
pub trait RunLock: Send + Sync {
    /// Takes the lock for `holder`, or takes over a lapsed one.
    async fn acquire(&self, holder: &str, ttl: Duration) -> Result<(), LockError>;
    /// Extends the hold; called well within the TTL.
    async fn renew(&self) -> Result<(), LockError>;
    /// Gives it up.
    async fn release(&self) -> Result<(), LockError>;
}

/// The cluster-wide "stop all chaos" switch.
#[async_trait]
pub trait HaltSwitch: Send + Sync {
    /// The reason when chaos is halted, None when it may proceed.
    async fn halted(&self) -> anyhow::Result<Option<String>>;
}

/// An external stop condition, such as a Prometheus alert firing.
#[async_trait]
pub trait AbortCheck: Send + Sync {
    /// A reason to abort now, or None.
    async fn check(&self) -> anyhow::Result<Option<String>>;
}

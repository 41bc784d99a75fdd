//! The run engine: steady state before, the fault timeline with probes running all along,
//! rollback, recovery, steady state after, verdict.
//!
//! It holds no SDK type. Probes, faults, undo, the run lock and the halt switch come in as
//! traits, so the whole lifecycle — aborts and signals included — is tested with fakes and a
//! paused clock, and driven for real by `steadfast run` with the cluster adapters.

pub mod effects;
pub mod observer;
pub mod ports;
pub mod run;
pub mod schedule;
pub mod timeline;

pub use effects::{EffectStatus, FiringEffect, Noticed};
pub use observer::{RunObserver, Silent, Status};
pub use ports::{AbortCheck, HaltSwitch, LockError, Probes, RunLock, SteadyCheck};
pub use run::{Engine, EngineOptions, Interrupts, RunOutcome, StartError};
pub use schedule::{FiringPlan, plan_firings};
pub use timeline::{Event, EventKind, FiringTiming, Phase};

#[cfg(test)]
mod tests;

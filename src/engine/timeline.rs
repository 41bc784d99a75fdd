//! What happened in a run, in order, for the report's timeline and charts.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::fault::{RollbackOutcome, TargetEffect, TargetRef};

/// The phases of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// Probing before any fault.
    SteadyBefore,
    /// Faults on their timeline.
    Faults,
    /// Undoing every fault.
    Rollback,
    /// Waiting for the steady state to return.
    Recovery,
    /// Probing after recovery.
    SteadyAfter,
    /// Done.
    Finished,
}

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Offset from the run's origin, in seconds.
    #[serde(with = "crate::verdict::evidence::secs")]
    pub at: Duration,
    /// What.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// When a firing was due and when its actions were issued, as offsets from the run's origin:
/// how late it acted (the lag) and how far apart its actions went (the spread), since a
/// disruption meant to be simultaneous is only as simultaneous as its actions.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FiringTiming {
    /// When the schedule said to fire.
    pub scheduled: Duration,
    /// When each target's action was issued, in the order of the effects.
    pub actions: Vec<Duration>,
}

impl FiringTiming {
    /// From the scheduled instant to the first action.
    pub fn lag(&self) -> Option<Duration> {
        self.actions
            .iter()
            .min()
            .map(|first| first.saturating_sub(self.scheduled))
    }

    /// From the first action to the last.
    pub fn spread(&self) -> Option<Duration> {
        let first = self.actions.iter().min()?;
        let last = self.actions.iter().max()?;
        Some(last.saturating_sub(*first))
    }
}

/// The kinds of events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum EventKind {
    /// A phase began.
    PhaseStarted {
        /// Which.
        phase: Phase,
    },
    /// A fault acted.
    FaultInjected {
        /// The fault.
        fault: String,
        /// Which repetition.
        firing: u32,
        /// What it chose.
        targets: Vec<TargetRef>,
        /// What happened to each.
        effects: Vec<TargetEffect>,
        /// The seed of the choice.
        seed: u64,
        /// When it was due and when each action went out.
        #[serde(default)]
        timing: FiringTiming,
    },
    /// A fault could not act (nothing was changed).
    FaultSkipped {
        /// The fault.
        fault: String,
        /// Which repetition.
        firing: u32,
        /// Why.
        reason: String,
    },
    /// An undo record was applied.
    RolledBack {
        /// The fault.
        fault: String,
        /// The record.
        undo: String,
        /// What was found and done.
        outcome: RollbackOutcome,
    },
    /// An undo record could not be applied.
    RollbackFailed {
        /// The fault.
        fault: String,
        /// The record.
        undo: String,
        /// The error.
        error: String,
    },
    /// The run was stopped early.
    Aborted {
        /// Why.
        reason: String,
    },
}

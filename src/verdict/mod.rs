//! The verdict: availability targets judged against measurements, pure and deterministic, so
//! the same evidence always yields the same answer and every answer shows its numbers.

pub mod evidence;
pub mod judge;
pub mod measured;

pub use evidence::{ConditionEvidence, Evidence, HttpEvidence, RunWindows, TimeWindow};
pub use judge::{TargetResult, evaluate};

use serde::{Deserialize, Serialize};

use crate::exit::ExitStatus;

/// How a run ended, in the order of severity a release gate cares about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum Verdict {
    /// Every target was met and everything was rolled back.
    Passed,
    /// A target was missed.
    Failed {
        /// Names of the missed targets.
        missed: Vec<String>,
    },
    /// The steady state did not hold before the faults, so none was injected.
    NotSteady {
        /// What did not hold.
        reason: String,
    },
    /// The run was stopped early and rolled back.
    Aborted {
        /// Why.
        reason: String,
    },
    /// A rollback did not complete: the system may still carry a fault.
    RollbackIncomplete {
        /// The undo records left pending.
        pending: Vec<String>,
    },
}

impl Verdict {
    /// The process exit status this verdict maps to (documented in the README).
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Verdict::Passed => ExitStatus::Success,
            Verdict::Failed { .. } | Verdict::NotSteady { .. } => ExitStatus::TargetsMissed,
            Verdict::Aborted { .. } => ExitStatus::Aborted,
            Verdict::RollbackIncomplete { .. } => ExitStatus::RollbackIncomplete,
        }
    }

    /// A short label for tables and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed { .. } => "failed",
            Verdict::NotSteady { .. } => "not steady",
            Verdict::Aborted { .. } => "aborted",
            Verdict::RollbackIncomplete { .. } => "rollback incomplete",
        }
    }

    /// The verdict of a run that ran to the end: passed unless a target failed.
    pub fn from_results(results: &[TargetResult]) -> Self {
        let missed: Vec<String> = results
            .iter()
            .filter(|r| !r.passed)
            .map(|r| r.name.clone())
            .collect();
        if missed.is_empty() {
            Verdict::Passed
        } else {
            Verdict::Failed { missed }
        }
    }
}

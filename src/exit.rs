//! Exit codes are API: CI pipelines gate releases on them, so they never change meaning.
//!
//! Once a run has started changing things, its code is its verdict's and nothing after the
//! rollback changes it: a report or stdout that cannot be written is an error on stderr, not
//! a different code, so 4 (rollback incomplete) is never hidden, and a passing run whose
//! report is lost still exits 0 (a gate reading the report finds it missing).

use std::process::ExitCode;

/// How a command ended, as the process reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: the command did what was asked; for `run`, every availability target was met.
    Success,
    /// 1: the experiment ran and rolled back cleanly, but a target was missed (or the steady
    /// state did not hold before faults); for `gate`, the policy failed.
    TargetsMissed,
    /// 2: bad usage, an invalid experiment, or a tool error before anything was changed.
    Invalid,
    /// 3: the run was aborted (an `abortWhen` availability breach or Prometheus alert, the halt
    /// switch, or SIGINT/SIGTERM — a second signal too) and everything was rolled back.
    Aborted,
    /// 4: a rollback did not complete: something may still be broken and a human must look.
    RollbackIncomplete,
}

impl ExitStatus {
    /// The numeric code; documented in the README.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::TargetsMissed => 1,
            ExitStatus::Invalid => 2,
            ExitStatus::Aborted => 3,
            ExitStatus::RollbackIncomplete => 4,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}

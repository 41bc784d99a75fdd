//! The write-ahead journal: every undo record is on disk, synced, before its fault acts, so a
//! run killed at any instant leaves behind exactly what `steadfast rollback` needs.
//!
//! The format is JSON lines, append-only. A crash can tear only the last line; readers skip a
//! torn tail instead of refusing the whole file. A [`JournalMirror`] can keep a copy in the
//! cluster, so the pending undo of a run is visible from any machine.

pub mod file;
pub mod mirror;
pub mod pending;
pub mod recover;
pub mod rollback;
pub mod writer;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use file::{FileJournal, JournalError, default_journal_path, read_entries};
pub use mirror::{JournalMirror, MirrorError};
pub use pending::{Pending, pending_records, settle};
pub use recover::{
    FindError, Found, LiveLock, LockHeld, LockRule, LockUnreadable, Recovery, RecoveryObserver,
};
pub use rollback::{DEFAULT_UNDO_DEADLINE, RetryPolicy, UndoApplier, UndoReport};
pub use writer::Journal;

use crate::fault::{RollbackOutcome, UndoRecord};

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "camelCase")]
pub enum JournalEntry {
    /// A run began.
    RunStarted {
        /// The run.
        run_id: String,
        /// The experiment's name.
        experiment: String,
        /// Who ran it (user@host or the pod name).
        holder: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A change is about to be made; this is how to undo it.
    Undo(UndoRecord),
    /// An undo record was applied.
    RolledBack {
        /// The record's id.
        id: String,
        /// What the rollback found and did.
        outcome: RollbackOutcome,
        /// When.
        at: DateTime<Utc>,
    },
    /// Applying an undo record failed; it stays pending.
    RollbackFailed {
        /// The record's id.
        id: String,
        /// The error.
        error: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A run ended (every undo applied or given up on).
    RunFinished {
        /// The run.
        run_id: String,
        /// When.
        at: DateTime<Utc>,
    },
}

/// The undo records that have no `RolledBack` entry, in the order they were written.
pub fn pending(entries: &[JournalEntry]) -> Vec<UndoRecord> {
    let done: std::collections::HashSet<&str> = entries
        .iter()
        .filter_map(|e| match e {
            JournalEntry::RolledBack { id, .. } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    entries
        .iter()
        .filter_map(|e| match e {
            JournalEntry::Undo(record) if !done.contains(record.id.as_str()) => {
                Some(record.clone())
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::UndoAction;

    fn undo(id: &str) -> JournalEntry {
        JournalEntry::Undo(UndoRecord {
            id: id.into(),
            run_id: "r1".into(),
            fault: "f".into(),
            action: UndoAction::Uncordon { node: "n1".into() },
            created_at: Utc::now(),
        })
    }

    #[test]
    fn rolled_back_records_are_no_longer_pending() {
        let entries = vec![
            undo("a"),
            undo("b"),
            JournalEntry::RolledBack {
                id: "a".into(),
                outcome: RollbackOutcome::Restored {
                    detail: "uncordoned".into(),
                },
                at: Utc::now(),
            },
            JournalEntry::RollbackFailed {
                id: "b".into(),
                error: "timeout".into(),
                at: Utc::now(),
            },
        ];
        let left: Vec<String> = pending(&entries).into_iter().map(|r| r.id).collect();
        assert_eq!(left, vec!["b".to_owned()]);
    }
}

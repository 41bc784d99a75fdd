//! A copy of the journal kept off this machine (in the cluster itself), so that a laptop that
//! died mid-run, or the next run from anywhere, can still see and apply what is pending.
//!
//! The core only knows [`JournalMirror`]; the ConfigMap adapter lives in `infra::cluster`. The
//! mirror is bounded (a ConfigMap holds at most 1 MiB): when an entry does not fit it first
//! drops what no rollback needs any more — finished runs, applied undo records — and if it
//! still does not fit it refuses, so the engine refuses to inject rather than lose an undo
//! record.

use std::collections::HashSet;

use async_trait::async_trait;

use super::{JournalEntry, pending};

/// Why the mirror could not take or give entries.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// No room for the entry even after compaction.
    #[error(
        "{place} is full: {needed} bytes needed, at most {limit} allowed, even without finished runs"
    )]
    Full {
        /// Where the mirror lives.
        place: String,
        /// Bytes the mirror would hold with the entry.
        needed: usize,
        /// Its limit.
        limit: usize,
    },
    /// The store failed or did not answer.
    #[error("{place}: {message}")]
    Store {
        /// Where the mirror lives.
        place: String,
        /// What went wrong.
        message: String,
    },
}

/// Somewhere else the journal's entries are kept.
#[async_trait]
pub trait JournalMirror: Send + Sync {
    /// Where, for messages (`ConfigMap ns/name`).
    fn place(&self) -> String;
    /// Appends one entry durably, or says why not.
    async fn append(&self, entry: &JournalEntry) -> Result<(), MirrorError>;
    /// Every entry it holds, in order.
    async fn entries(&self) -> Result<Vec<JournalEntry>, MirrorError>;
}

/// The entries a rollback still needs: pending undo records and the start of every run that did
/// not finish (who ran it), in their order.
pub fn compact(entries: &[JournalEntry]) -> Vec<JournalEntry> {
    let pending: HashSet<String> = pending(entries).into_iter().map(|r| r.id).collect();
    let finished: HashSet<&str> = entries
        .iter()
        .filter_map(|e| match e {
            JournalEntry::RunFinished { run_id, .. } => Some(run_id.as_str()),
            _ => None,
        })
        .collect();
    entries
        .iter()
        .filter(|e| match e {
            JournalEntry::Undo(record) => pending.contains(&record.id),
            JournalEntry::RunStarted { run_id, .. } => !finished.contains(run_id.as_str()),
            _ => false,
        })
        .cloned()
        .collect()
}

/// Entries as JSON lines.
pub fn render(entries: &[JournalEntry]) -> String {
    entries
        .iter()
        .filter_map(|e| serde_json::to_string(e).ok())
        .map(|line| line + "\n")
        .collect()
}

/// Entries of JSON lines; lines that do not parse are skipped, as in the file journal.
pub fn parse(text: &str) -> Vec<JournalEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// `text` with `entry` appended, compacted first when it would not fit in `limit` bytes.
///
/// # Errors
/// The size needed when even the compacted text with the entry is over `limit`.
pub fn append_within(text: &str, entry: &JournalEntry, limit: usize) -> Result<String, usize> {
    let line = render(std::slice::from_ref(entry));
    if text.len() + line.len() <= limit {
        return Ok(format!("{text}{line}"));
    }
    let mut entries = parse(text);
    entries.push(entry.clone());
    let compacted = render(&compact(&entries));
    if compacted.len() <= limit {
        Ok(compacted)
    } else {
        Err(compacted.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::{RollbackOutcome, UndoAction, UndoRecord};
    use chrono::Utc;

    fn undo(run: &str, id: &str) -> JournalEntry {
        JournalEntry::Undo(UndoRecord {
            id: id.into(),
            run_id: run.into(),
            fault: "cordon".into(),
            action: UndoAction::Uncordon {
                node: "node-1".into(),
            },
            created_at: Utc::now(),
        })
    }

    fn started(run: &str) -> JournalEntry {
        JournalEntry::RunStarted {
            run_id: run.into(),
            experiment: "e".into(),
            holder: "me@host".into(),
            at: Utc::now(),
        }
    }

    fn rolled_back(id: &str) -> JournalEntry {
        JournalEntry::RolledBack {
            id: id.into(),
            outcome: RollbackOutcome::Restored {
                detail: "uncordoned".into(),
            },
            at: Utc::now(),
        }
    }

    fn finished(run: &str) -> JournalEntry {
        JournalEntry::RunFinished {
            run_id: run.into(),
            at: Utc::now(),
        }
    }

    #[test]
    fn compaction_keeps_exactly_what_a_rollback_needs() {
        let entries = vec![
            started("old"),
            undo("old", "old/1"),
            rolled_back("old/1"),
            finished("old"),
            started("dead"),
            undo("dead", "dead/1"),
            undo("dead", "dead/2"),
            rolled_back("dead/1"),
        ];
        let kept = compact(&entries);
        assert!(matches!(&kept[0], JournalEntry::RunStarted { run_id, .. } if run_id == "dead"));
        assert!(matches!(&kept[1], JournalEntry::Undo(r) if r.id == "dead/2"));
        assert_eq!(kept.len(), 2);
        assert_eq!(pending(&kept).len(), pending(&entries).len());
    }

    #[test]
    fn a_full_mirror_compacts_then_refuses_rather_than_drop_an_undo_record() {
        let one = render(&[undo("r", "r/0")]).len();
        // Room for three records (timestamps vary a little in length).
        let limit = one * 3 + one / 2;
        let mut text = String::new();
        // Finished business is dropped to make room, as often as needed.
        for i in 0..10 {
            let id = format!("r/{i}");
            text = append_within(&text, &undo("r", &id), limit).unwrap();
            text = append_within(&text, &rolled_back(&id), limit).unwrap();
        }
        assert!(text.len() <= limit);
        assert!(pending(&parse(&text)).is_empty());
        // Pending records are never dropped: the fourth does not fit.
        for i in 0..3 {
            text = append_within(&text, &undo("r", &format!("p/{i}")), limit).unwrap();
        }
        let needed = append_within(&text, &undo("r", "p/3"), limit).unwrap_err();
        assert!(needed > limit);
        assert_eq!(pending(&parse(&text)).len(), 3);
    }
}

//! What is left to undo, from the local journal and the cluster's copy of it, for
//! [`super::recover`].

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::{JournalEntry, JournalError, JournalMirror, pending, read_entries};
use crate::fault::UndoRecord;

/// Undo records pending somewhere, each once.
#[derive(Debug, Default)]
pub struct Pending {
    /// In the order written: the local journal's first, then the cluster's that are not local.
    pub records: Vec<UndoRecord>,
    /// How many are pending in the local journal.
    pub local: usize,
    /// How many are pending in the cluster's copy (and not settled locally).
    pub cluster: usize,
    /// `rolledBack` entries of the local journal for records the cluster's copy still holds
    /// pending: a run killed between its two writes. Appending them to the copy settles it.
    pub settled: Vec<JournalEntry>,
}

/// What is pending in the local journal at `path` and, when given, in `mirror`. The mirror's
/// pending records join `records` only with `include_mirror`: another machine's run may still
/// be going, so its records are applied only when asked.
///
/// # Errors
/// When either cannot be read.
pub async fn pending_records(
    path: &Path,
    mirror: Option<&dyn JournalMirror>,
    include_mirror: bool,
) -> Result<Pending, JournalError> {
    let entries = read_entries(path)?;
    let mut records = pending(&entries);
    let local = records.len();
    let done: HashMap<&str, &JournalEntry> = entries
        .iter()
        .filter_map(|e| match e {
            JournalEntry::RolledBack { id, .. } => Some((id.as_str(), e)),
            _ => None,
        })
        .collect();
    let mut cluster = 0;
    let mut settled = Vec::new();
    if let Some(mirror) = mirror {
        let known: HashSet<String> = records.iter().map(|r| r.id.clone()).collect();
        for record in pending(&mirror.entries().await?) {
            if let Some(entry) = done.get(record.id.as_str()) {
                settled.push((*entry).clone());
                continue;
            }
            cluster += 1;
            if include_mirror && !known.contains(&record.id) {
                records.push(record);
            }
        }
    }
    Ok(Pending {
        records,
        local,
        cluster,
        settled,
    })
}

/// Appends `settled` to the mirror, so it no longer shows records the local journal has
/// rolled back; failures are reported, not fatal (the next run or rollback tries again).
pub async fn settle(mirror: &dyn JournalMirror, settled: &[JournalEntry]) {
    for entry in settled {
        if let Err(err) = mirror.append(entry).await {
            tracing::warn!(%err, "could not update the cluster's copy of the journal");
            return;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use chrono::Utc;

    use super::*;
    use crate::fault::RollbackOutcome;
    use crate::journal::{FileJournal, MirrorError};

    /// A mirror in memory.
    #[derive(Default)]
    pub(crate) struct MemoryMirror(Mutex<Vec<JournalEntry>>);

    #[async_trait]
    impl JournalMirror for MemoryMirror {
        fn place(&self) -> String {
            "memory".into()
        }
        async fn append(&self, entry: &JournalEntry) -> Result<(), MirrorError> {
            self.0.lock().unwrap().push(entry.clone());
            Ok(())
        }
        async fn entries(&self) -> Result<Vec<JournalEntry>, MirrorError> {
            Ok(self.0.lock().unwrap().clone())
        }
    }

    fn undo(id: &str) -> JournalEntry {
        JournalEntry::Undo(crate::journal::rollback::tests::record(id))
    }

    #[tokio::test]
    async fn a_record_rolled_back_locally_but_not_in_the_cluster_is_settled_not_reapplied() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let file = FileJournal::open(&path).unwrap();
        file.append(&undo("mine")).unwrap();
        // Killed after the local `rolledBack` line, before the cluster's.
        file.append(&JournalEntry::RolledBack {
            id: "mine".into(),
            outcome: RollbackOutcome::Restored {
                detail: "uncordoned".into(),
            },
            at: Utc::now(),
        })
        .unwrap();
        let mirror = MemoryMirror::default();
        mirror.append(&undo("mine")).await.unwrap();
        mirror.append(&undo("theirs")).await.unwrap();

        let found = pending_records(&path, Some(&mirror), false).await.unwrap();
        assert!(
            found.records.is_empty(),
            "another machine's record waits for --from-cluster"
        );
        assert_eq!((found.local, found.cluster, found.settled.len()), (0, 1, 1));
        let ids = |p: &Pending| p.records.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        let with = pending_records(&path, Some(&mirror), true).await.unwrap();
        assert_eq!(ids(&with), ["theirs"]);

        settle(&mirror, &found.settled).await;
        let left: Vec<String> = pending(&mirror.entries().await.unwrap())
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(left, ["theirs"]);
    }
}

//! Recovery: applying what an earlier run left pending, for `steadfast rollback` and
//! `run --recover-first` alike (the scheduler starts `steadfast rollback`). Finding the records
//! in the local journal and the cluster's copy, settling the copy, refusing while a live run may
//! own them, and applying them through the shared [`UndoApplier`] happen here, once; the
//! commands only build the pieces and print.

use std::path::Path;

use async_trait::async_trait;

use super::{
    FileJournal, Journal, JournalError, JournalMirror, Pending, RetryPolicy, UndoApplier,
    UndoReport, pending_records, settle,
};
use crate::fault::{UndoRecord, Undoer};

/// A live run's hold on the run lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHeld {
    /// Who holds it.
    pub holder: String,
    /// When the hold lapses unless renewed.
    pub expires: String,
}

/// The run lock could not be read; the message says what and where.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LockUnreadable(pub String);

/// Who holds the run lock now, read without taking it: records pending in the cluster's copy
/// of the journal may belong to a run that is still going.
#[async_trait]
pub trait LiveLock: Send + Sync {
    /// The live holder, or None when the lock is free or lapsed.
    ///
    /// # Errors
    /// When the lock cannot be read.
    async fn live_holder(&self) -> Result<Option<LockHeld>, LockUnreadable>;
}

/// When recovery asks the [`LiveLock`] before it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockRule {
    /// Only when the cluster's copy adds records the local journal does not hold (`steadfast
    /// rollback`): those may be another machine's live run's; the local ones are this
    /// machine's own and the user asked for them.
    ClusterRecords,
    /// Whenever anything is pending (`run --recover-first`): a run about to start must not
    /// undo a live run's changes under its feet.
    AnyRecords,
}

/// Why the pending records could not be found.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    /// The local journal or the cluster's copy could not be read.
    #[error(transparent)]
    Read(JournalError),
    /// The local journal could not be opened to journal what recovery applies.
    #[error(transparent)]
    Open(JournalError),
}

/// Follows a recovery as it goes, so a command can print each line as it happens.
pub trait RecoveryObserver {
    /// Once, after the lock allowed it and before the first record is applied.
    fn applying(&mut self, pending: &Pending);
    /// After each record, newest first.
    fn applied(&mut self, record: &UndoRecord, report: &UndoReport);
}

/// What a recovery came to.
#[derive(Debug)]
pub enum Recovery {
    /// Nothing was pending.
    Nothing,
    /// Nothing was applied: a live run holds the lock and the records may be its own.
    Refused(LockHeld),
    /// Every pending record was tried, newest first.
    Applied {
        /// Each record with what applying it came to, in the order applied.
        reports: Vec<(UndoRecord, UndoReport)>,
        /// Whether every record is undone. A record applied but not journaled counts as
        /// undone: applying it again later finds it restored.
        complete: bool,
    },
}

/// The pending records, with the journal that recovery, and a run after it, writes to.
pub struct Found {
    journal: Journal,
    pending: Pending,
}

/// Finds what is pending in the local journal at `path` and in `mirror` (whose own records
/// join only with `include_mirror`), settles the mirror's records the local journal already
/// rolled back, and opens the journal, mirrored when `mirror` is given.
///
/// # Errors
/// When the journal or the mirror cannot be read, or the journal cannot be opened.
pub async fn find(
    path: &Path,
    mirror: Option<Box<dyn JournalMirror>>,
    include_mirror: bool,
) -> Result<Found, FindError> {
    let pending = pending_records(path, mirror.as_deref(), include_mirror)
        .await
        .map_err(FindError::Read)?;
    if let Some(mirror) = &mirror {
        settle(mirror.as_ref(), &pending.settled).await;
    }
    let file = FileJournal::open(path).map_err(FindError::Open)?;
    let journal = match mirror {
        Some(mirror) => Journal::mirrored(file, mirror),
        None => Journal::local(file),
    };
    Ok(Found { journal, pending })
}

impl Found {
    /// What is pending.
    pub fn pending(&self) -> &Pending {
        &self.pending
    }

    /// The journal recovery writes to.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The journal, for the run that follows the recovery.
    pub fn into_journal(self) -> Journal {
        self.journal
    }

    /// Applies every pending record newest first through `undoer`, retried by `policy`, unless
    /// `lock` (None: no lock another run could hold) has a live holder when `rule` says to ask.
    ///
    /// # Errors
    /// When the lock cannot be read; nothing was applied then.
    pub async fn recover(
        &self,
        undoer: &dyn Undoer,
        policy: RetryPolicy,
        lock: Option<&dyn LiveLock>,
        rule: LockRule,
        observer: &mut dyn RecoveryObserver,
    ) -> Result<Recovery, LockUnreadable> {
        let pending = &self.pending;
        if pending.records.is_empty() {
            return Ok(Recovery::Nothing);
        }
        let ask = match rule {
            LockRule::AnyRecords => true,
            LockRule::ClusterRecords => pending.records.len() > pending.local,
        };
        if let (true, Some(lock)) = (ask, lock)
            && let Some(held) = lock.live_holder().await?
        {
            return Ok(Recovery::Refused(held));
        }
        observer.applying(pending);
        let applier = UndoApplier::new(undoer, &self.journal, policy);
        let mut reports = Vec::with_capacity(pending.records.len());
        let complete = applier
            .apply_all(&pending.records, |record, report| {
                observer.applied(record, report);
                reports.push((record.clone(), report.clone()));
            })
            .await;
        Ok(Recovery::Applied { reports, complete })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::fault::RollbackOutcome;
    use crate::journal::pending::tests::MemoryMirror;
    use crate::journal::rollback::tests::{FlakyUndoer, record};
    use crate::journal::{DEFAULT_UNDO_DEADLINE, JournalEntry, pending, read_entries};

    /// A lock that answers as told and counts how often it was asked.
    struct FakeLock {
        held: Option<LockHeld>,
        asked: Mutex<u32>,
    }

    impl FakeLock {
        fn free() -> Self {
            Self {
                held: None,
                asked: Mutex::new(0),
            }
        }
        fn held_by(holder: &str) -> Self {
            Self {
                held: Some(LockHeld {
                    holder: holder.into(),
                    expires: "soon".into(),
                }),
                asked: Mutex::new(0),
            }
        }
        fn asked(&self) -> u32 {
            *self.asked.lock().unwrap()
        }
    }

    #[async_trait]
    impl LiveLock for FakeLock {
        async fn live_holder(&self) -> Result<Option<LockHeld>, LockUnreadable> {
            *self.asked.lock().unwrap() += 1;
            Ok(self.held.clone())
        }
    }

    /// Records what the observer saw.
    #[derive(Default)]
    struct Seen {
        applying: Vec<usize>,
        applied: Vec<(String, u32)>,
    }

    impl RecoveryObserver for Seen {
        fn applying(&mut self, pending: &Pending) {
            self.applying.push(pending.records.len());
        }
        fn applied(&mut self, record: &UndoRecord, report: &UndoReport) {
            self.applied.push((record.id.clone(), report.attempts));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn recovery_retries_an_undo_whose_first_attempts_fail_as_the_engine_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        FileJournal::open(&path)
            .unwrap()
            .append(&JournalEntry::Undo(record("r/cordon/0/0")))
            .unwrap();
        let undoer = FlakyUndoer::failing_first(4);
        let mut seen = Seen::default();

        let found = find(&path, None, false).await.unwrap();
        let recovery = found
            .recover(
                &undoer,
                RetryPolicy::within(DEFAULT_UNDO_DEADLINE),
                None,
                LockRule::AnyRecords,
                &mut seen,
            )
            .await
            .unwrap();

        let Recovery::Applied { reports, complete } = recovery else {
            panic!("{recovery:?}");
        };
        assert!(complete, "{reports:?}");
        assert_eq!(undoer.attempts("r/cordon/0/0"), 5);
        assert!(matches!(
            &reports[0].1.result,
            Ok(RollbackOutcome::Restored { detail }) if detail == "uncordoned"
        ));
        assert_eq!(seen.applying, [1]);
        assert_eq!(seen.applied, [("r/cordon/0/0".to_owned(), 5)]);
        assert!(pending(&read_entries(&path).unwrap()).is_empty());
    }

    #[tokio::test]
    async fn nothing_pending_applies_nothing_and_never_asks_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let lock = FakeLock::held_by("other");
        let mut seen = Seen::default();

        let found = find(&path, Some(Box::new(MemoryMirror::default())), true)
            .await
            .unwrap();
        let recovery = found
            .recover(
                &FlakyUndoer::failing_first(0),
                RetryPolicy::default(),
                Some(&lock),
                LockRule::AnyRecords,
                &mut seen,
            )
            .await
            .unwrap();

        assert!(matches!(recovery, Recovery::Nothing), "{recovery:?}");
        assert_eq!(lock.asked(), 0);
        assert!(seen.applying.is_empty());
    }

    #[tokio::test]
    async fn the_clusters_records_are_not_undone_while_a_live_run_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mirror = MemoryMirror::default();
        mirror
            .append(&JournalEntry::Undo(record("theirs")))
            .await
            .unwrap();
        let lock = FakeLock::held_by("ci@runner (pid 7)");
        let undoer = FlakyUndoer::failing_first(0);
        let mut seen = Seen::default();

        let found = find(&path, Some(Box::new(mirror)), true).await.unwrap();
        assert_eq!((found.pending().local, found.pending().cluster), (0, 1));
        let recovery = found
            .recover(
                &undoer,
                RetryPolicy::default(),
                Some(&lock),
                LockRule::ClusterRecords,
                &mut seen,
            )
            .await
            .unwrap();

        assert!(
            matches!(&recovery, Recovery::Refused(held) if held.holder == "ci@runner (pid 7)"),
            "{recovery:?}"
        );
        assert_eq!(undoer.attempts("theirs"), 0);
        assert!(seen.applying.is_empty() && seen.applied.is_empty());
    }

    #[tokio::test]
    async fn local_records_are_rolled_back_without_asking_the_lock_but_a_run_asks_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        FileJournal::open(&path)
            .unwrap()
            .append(&JournalEntry::Undo(record("mine")))
            .unwrap();
        let lock = FakeLock::held_by("other");
        let undoer = FlakyUndoer::failing_first(0);

        let found = find(&path, None, false).await.unwrap();
        let before_run = found
            .recover(
                &undoer,
                RetryPolicy::default(),
                Some(&lock),
                LockRule::AnyRecords,
                &mut Seen::default(),
            )
            .await
            .unwrap();
        assert!(matches!(before_run, Recovery::Refused(_)), "{before_run:?}");
        assert_eq!(undoer.attempts("mine"), 0);

        let rollback = found
            .recover(
                &undoer,
                RetryPolicy::default(),
                Some(&lock),
                LockRule::ClusterRecords,
                &mut Seen::default(),
            )
            .await
            .unwrap();
        assert!(
            matches!(rollback, Recovery::Applied { complete: true, .. }),
            "{rollback:?}"
        );
        assert_eq!(lock.asked(), 1, "only the run asked");
        assert!(pending(&read_entries(&path).unwrap()).is_empty());
    }

    #[tokio::test]
    async fn a_free_lock_lets_the_clusters_records_be_applied_and_their_copy_updated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mirror = MemoryMirror::default();
        mirror
            .append(&JournalEntry::Undo(record("theirs")))
            .await
            .unwrap();
        let lock = FakeLock::free();

        let found = find(&path, Some(Box::new(mirror)), true).await.unwrap();
        let recovery = found
            .recover(
                &FlakyUndoer::failing_first(0),
                RetryPolicy::default(),
                Some(&lock),
                LockRule::ClusterRecords,
                &mut Seen::default(),
            )
            .await
            .unwrap();

        assert!(
            matches!(recovery, Recovery::Applied { complete: true, .. }),
            "{recovery:?}"
        );
        assert_eq!(lock.asked(), 1);
        let copy = found.journal().mirror().unwrap().entries().await.unwrap();
        assert!(pending(&copy).is_empty(), "{copy:?}");
    }
}

//! Applying undo records: the one way the engine's rollback, `steadfast rollback`,
//! `run --recover-first` and the scheduler (which starts `steadfast rollback`) restore what a
//! fault changed, so they cannot drift apart in how hard they try.
//!
//! A failed undo is the most expensive failure a chaos tool can have: something stays broken.
//! So a record is not given up after one refused connection; it is retried with jittered
//! exponential backoff until a deadline. Every attempt goes through the [`Undoer`], which
//! re-reads live state first, so retrying after a half-applied attempt, or after the system
//! healed by itself, is harmless.

use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;
use tracing::warn;

use super::{Journal, JournalEntry};
use crate::fault::{FaultError, RollbackOutcome, UndoRecord, Undoer};

/// How long one undo record is retried before it is left pending, unless told otherwise.
pub const DEFAULT_UNDO_DEADLINE: Duration = Duration::from_secs(120);

/// The shortest time one attempt may take before it is abandoned, even when the deadline is
/// nearer: an attempt cut off too early can only fail.
const ATTEMPT_FLOOR: Duration = Duration::from_secs(10);

/// How an undo record is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// No attempt starts after this long from the first.
    pub deadline: Duration,
    /// The pause before the first retry (before jitter).
    pub first_delay: Duration,
    /// The longest pause between attempts (before jitter).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::within(DEFAULT_UNDO_DEADLINE)
    }
}

impl RetryPolicy {
    /// Retries until `deadline`, from 500 ms doubling up to 15 s between attempts.
    pub fn within(deadline: Duration) -> Self {
        Self {
            deadline,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(15),
        }
    }

    /// The pause after failed attempt number `attempt` (1 for the first): exponential, capped,
    /// then jittered into [half, full] by `unit` in [0, 1), so that many records or many
    /// machines retrying against one recovering endpoint do not hit it in lockstep.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let exp = self
            .first_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let base = exp.min(self.max_delay);
        base.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
    }
}

/// What applying one record came to.
#[derive(Debug, Clone, PartialEq)]
pub struct UndoReport {
    /// What the last attempt found and did, or the last error.
    pub result: Result<RollbackOutcome, String>,
    /// How many attempts were made.
    pub attempts: u32,
    /// Why the result could not be journaled, when it could not: the next rollback re-checks.
    pub unjournaled: Option<String>,
}

impl UndoReport {
    /// Whether the record is undone.
    pub fn applied(&self) -> bool {
        self.result.is_ok()
    }
}

/// Applies undo records through an [`Undoer`] with retries, journaling each result.
pub struct UndoApplier<'a> {
    undoer: &'a dyn Undoer,
    journal: &'a Journal,
    policy: RetryPolicy,
}

impl<'a> UndoApplier<'a> {
    /// Applies with `undoer`, journals to `journal`, retries by `policy`.
    pub fn new(undoer: &'a dyn Undoer, journal: &'a Journal, policy: RetryPolicy) -> Self {
        Self {
            undoer,
            journal,
            policy,
        }
    }

    /// Applies `record`, retrying until it succeeds or the deadline passes, and journals
    /// `rolledBack` or `rollbackFailed`. An error no retry can cure (no adapter knows the
    /// action) is not retried.
    pub async fn apply(&self, record: &UndoRecord) -> UndoReport {
        let start = Instant::now();
        let deadline = start + self.policy.deadline;
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            let remaining = deadline
                .saturating_duration_since(Instant::now())
                .max(ATTEMPT_FLOOR);
            let error = match tokio::time::timeout(remaining, self.undoer.undo(record)).await {
                Ok(Ok(outcome)) => break Ok(outcome),
                Ok(Err(err @ FaultError::Refused(_))) => break Err(err.to_string()),
                Ok(Err(err)) => err.to_string(),
                Err(_) => format!("{} timed out after {remaining:?}", record.action.describe()),
            };
            let pause = self.policy.delay(attempts, rand::random::<f64>());
            if Instant::now() + pause >= deadline {
                break Err(error);
            }
            warn!(
                undo = %record.id,
                attempt = attempts,
                %error,
                retry_in = ?pause,
                "undo failed; retrying"
            );
            tokio::time::sleep(pause).await;
        };
        let entry = match &result {
            Ok(outcome) => JournalEntry::RolledBack {
                id: record.id.clone(),
                outcome: outcome.clone(),
                at: Utc::now(),
            },
            Err(error) => JournalEntry::RollbackFailed {
                id: record.id.clone(),
                error: error.clone(),
                at: Utc::now(),
            },
        };
        let unjournaled = match self.journal.append(&entry).await {
            Ok(()) => None,
            Err(err) => {
                warn!(undo = %record.id, %err, "could not journal the rollback; the next `steadfast rollback` re-checks");
                Some(err.to_string())
            }
        };
        UndoReport {
            result,
            attempts,
            unjournaled,
        }
    }

    /// Applies `records` newest first (later changes may build on earlier ones), calling
    /// `each` after every record; true when every one is undone.
    pub async fn apply_all(
        &self,
        records: &[UndoRecord],
        mut each: impl FnMut(&UndoRecord, &UndoReport),
    ) -> bool {
        let mut complete = true;
        for record in records.iter().rev() {
            let report = self.apply(record).await;
            complete &= report.applied();
            each(record, &report);
        }
        complete
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::fault::UndoAction;
    use crate::journal::{FileJournal, read_entries};

    /// An undo target that refuses the first `failures` attempts per record, as an endpoint
    /// that is briefly unreachable does, and records when each attempt came.
    pub(crate) struct FlakyUndoer {
        failures: u32,
        attempts: Mutex<Vec<(String, Instant)>>,
    }

    impl FlakyUndoer {
        pub(crate) fn failing_first(failures: u32) -> Self {
            Self {
                failures,
                attempts: Mutex::new(Vec::new()),
            }
        }

        /// How many attempts `id` got.
        pub(crate) fn attempts(&self, id: &str) -> u32 {
            let attempts = self.attempts.lock().unwrap();
            u32::try_from(attempts.iter().filter(|(i, _)| i == id).count()).unwrap()
        }

        /// The pauses between the attempts on `id`.
        pub(crate) fn pauses(&self, id: &str) -> Vec<Duration> {
            let attempts = self.attempts.lock().unwrap();
            let at: Vec<Instant> = attempts
                .iter()
                .filter(|(i, _)| i == id)
                .map(|(_, at)| *at)
                .collect();
            at.windows(2).map(|w| w[1] - w[0]).collect()
        }
    }

    #[async_trait]
    impl Undoer for FlakyUndoer {
        fn handles(&self, _: &UndoAction) -> bool {
            true
        }
        async fn undo(&self, record: &UndoRecord) -> Result<RollbackOutcome, FaultError> {
            let mut attempts = self.attempts.lock().unwrap();
            attempts.push((record.id.clone(), Instant::now()));
            let seen = attempts.iter().filter(|(i, _)| *i == record.id).count();
            if u32::try_from(seen).unwrap() <= self.failures {
                return Err(FaultError::Api {
                    action: "uncordon".into(),
                    message: "connection refused".into(),
                });
            }
            Ok(RollbackOutcome::Restored {
                detail: "uncordoned".into(),
            })
        }
    }

    /// An uncordon record of run `r`: the undo the journal tests pass around.
    pub(crate) fn record(id: &str) -> UndoRecord {
        UndoRecord {
            id: id.into(),
            run_id: "r".into(),
            fault: "cordon".into(),
            action: UndoAction::Uncordon {
                node: "node-1".into(),
            },
            created_at: Utc::now(),
        }
    }

    fn journal(dir: &tempfile::TempDir) -> Journal {
        Journal::local(FileJournal::open(&dir.path().join("journal.jsonl")).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn an_undo_that_fails_its_first_attempts_is_retried_with_growing_pauses_until_applied() {
        let dir = tempfile::tempdir().unwrap();
        let journal = journal(&dir);
        let undoer = FlakyUndoer::failing_first(4);
        let applier = UndoApplier::new(&undoer, &journal, RetryPolicy::default());

        let report = applier.apply(&record("u1")).await;

        assert!(report.applied(), "{report:?}");
        assert_eq!(report.attempts, 5);
        assert_eq!(undoer.attempts("u1"), 5);
        let pauses = undoer.pauses("u1");
        for (retry, pause) in (1u32..).zip(&pauses) {
            let full = RetryPolicy::default().delay(retry, 1.0);
            assert!(
                *pause >= full / 2 && *pause <= full,
                "pause {retry} was {pause:?}, expected within [{:?}, {full:?}]",
                full / 2
            );
        }
        let entries = read_entries(journal.path()).unwrap();
        assert!(matches!(
            entries.as_slice(),
            [JournalEntry::RolledBack { id, .. }] if id == "u1"
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn an_undo_that_keeps_failing_is_given_up_at_the_deadline_and_journaled_as_failed() {
        let dir = tempfile::tempdir().unwrap();
        let journal = journal(&dir);
        let undoer = FlakyUndoer::failing_first(u32::MAX);
        let policy = RetryPolicy::within(Duration::from_secs(30));
        let applier = UndoApplier::new(&undoer, &journal, policy);
        let start = Instant::now();

        let report = applier.apply(&record("u1")).await;

        assert!(!report.applied());
        assert!(report.attempts > 3, "{report:?}");
        assert!(start.elapsed() <= policy.deadline, "{:?}", start.elapsed());
        let entries = read_entries(journal.path()).unwrap();
        assert!(matches!(
            entries.as_slice(),
            [JournalEntry::RollbackFailed { id, error, .. }] if id == "u1" && error.contains("connection refused")
        ));
    }

    #[test]
    fn pauses_double_up_to_the_cap_and_jitter_stays_within_half_to_full() {
        let policy = RetryPolicy::default();
        let full: Vec<Duration> = (1..=7).map(|a| policy.delay(a, 1.0)).collect();
        assert_eq!(full[0], Duration::from_millis(500));
        assert_eq!(full[1], Duration::from_secs(1));
        assert_eq!(full[4], Duration::from_secs(8));
        assert_eq!(full[6], policy.max_delay);
        assert_eq!(policy.delay(3, 0.0), Duration::from_secs(1));
        assert_eq!(policy.delay(40, 0.0), policy.max_delay / 2);
    }
}

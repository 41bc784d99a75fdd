//! Proof that a fault did something: after acting, each fault reads back through the API what it
//! changed (the pod terminating, the node cordoned, the instance stopping, the subnet on the
//! deny-all ACL) and records when it saw it. A fault whose change cannot be seen has missed, and
//! a run must not read its quiet probes as resilience.

use std::future::Future;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{Effect, Injection, TargetRef};

/// Default time a fault's change has to show through the API (`effectTimeout`).
pub const DEFAULT_EFFECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between two reads while waiting for a change to show.
pub const CONFIRM_INTERVAL: Duration = Duration::from_millis(200);

/// Whether a firing's change was seen through the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum Confirmation {
    /// Every target the fault changed shows the change.
    Confirmed {
        /// When the last one was seen changed.
        at: SystemTime,
    },
    /// Nothing was changed, or the change never showed within the timeout.
    NoEffect {
        /// Why, naming the target.
        reason: String,
    },
    /// The fault has no way to read its change back.
    Unchecked,
}

/// When the system under test noticed a firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum Detection {
    /// Nothing to notice for this fault (a cordon), or nothing watched.
    NotApplicable,
    /// Noticed: the lost endpoints left their Services, or the nodes turned NotReady.
    Detected {
        /// When the last watched object was seen noticed.
        at: SystemTime,
    },
    /// Not noticed within the timeout.
    NotDetected,
}

/// What one read of a target found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The change shows.
    Done,
    /// Not yet; what was seen instead.
    Pending(String),
}

/// Reads back every target the injection changed (`Applied`), with `check`, until each shows its
/// change or `timeout` ends. Bounded in time and in reads (one per [`CONFIRM_INTERVAL`] per
/// target); an error from `check` counts as "not yet", so a blip of the API is retried.
pub async fn confirm_each<F, Fut>(
    injection: &Injection,
    timeout: Duration,
    check: F,
) -> Confirmation
where
    F: Fn(TargetRef) -> Fut,
    Fut: Future<Output = Result<Check, String>>,
{
    let mut pending: Vec<TargetRef> = injection
        .effects
        .iter()
        .filter(|e| e.effect == Effect::Applied)
        .map(|e| e.target.clone())
        .collect();
    if pending.is_empty() {
        return Confirmation::NoEffect {
            reason: nothing_applied(injection),
        };
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let rounds = timeout.as_millis() / CONFIRM_INTERVAL.as_millis().max(1) + 2;
    let mut last = String::new();
    let mut confirmed_at = SystemTime::now();
    for _ in 0..rounds {
        let mut still = Vec::new();
        for target in pending {
            // Each read is bounded by what is left of the timeout: a hung API call must not
            // hold the confirmation past it.
            let left = deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .max(CONFIRM_INTERVAL);
            let answer = tokio::time::timeout(left, check(target.clone()))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {}ms", left.as_millis())));
            match answer {
                Ok(Check::Done) => confirmed_at = SystemTime::now(),
                Ok(Check::Pending(seen)) => {
                    last = format!("{}: {seen}", target.display_name());
                    still.push(target);
                }
                Err(err) => {
                    last = format!("{}: {err}", target.display_name());
                    still.push(target);
                }
            }
        }
        pending = still;
        if pending.is_empty() {
            return Confirmation::Confirmed { at: confirmed_at };
        }
        if tokio::time::Instant::now() + CONFIRM_INTERVAL > deadline {
            break;
        }
        tokio::time::sleep(CONFIRM_INTERVAL).await;
    }
    Confirmation::NoEffect {
        reason: format!(
            "the change did not show within {}s ({last})",
            timeout.as_secs()
        ),
    }
}

/// Why no target was changed, from the injection's own effects.
fn nothing_applied(injection: &Injection) -> String {
    let reasons: Vec<String> = injection
        .effects
        .iter()
        .map(|e| {
            let why = match &e.effect {
                Effect::Applied => "applied".to_owned(),
                Effect::BlockedByBudget { budget } => format!("blocked by budget {budget}"),
                Effect::Skipped { reason } => reason.clone(),
                Effect::Failed { error } => error.clone(),
            };
            format!("{}: {why}", e.target.display_name())
        })
        .collect();
    if reasons.is_empty() {
        "no target was changed".to_owned()
    } else {
        format!("no target was changed ({})", reasons.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::fault::{TargetEffect, TargetKind};

    fn target(name: &str) -> TargetRef {
        TargetRef {
            kind: TargetKind::Pod,
            name: name.into(),
            namespace: Some("shop".into()),
            node: None,
            zone: None,
        }
    }

    fn injection(effects: Vec<(&str, Effect)>) -> Injection {
        Injection {
            effects: effects
                .into_iter()
                .map(|(name, effect)| TargetEffect {
                    target: target(name),
                    effect,
                    at: SystemTime::now(),
                })
                .collect(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_that_shows_on_the_third_read_is_confirmed_after_it() {
        let reads = AtomicU32::new(0);
        let started = SystemTime::now();
        let outcome = confirm_each(
            &injection(vec![("web-1", Effect::Applied)]),
            Duration::from_secs(5),
            |_| {
                let n = reads.fetch_add(1, Ordering::SeqCst);
                async move {
                    Ok(if n >= 2 {
                        Check::Done
                    } else {
                        Check::Pending("running".into())
                    })
                }
            },
        )
        .await;
        assert_eq!(reads.load(Ordering::SeqCst), 3);
        let Confirmation::Confirmed { at } = outcome else {
            panic!("{outcome:?}");
        };
        assert!(at >= started);
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_that_never_shows_is_no_effect_naming_the_target() {
        let reads = AtomicU32::new(0);
        let outcome = confirm_each(
            &injection(vec![("web-1", Effect::Applied)]),
            Duration::from_secs(2),
            |_| {
                reads.fetch_add(1, Ordering::SeqCst);
                async { Ok(Check::Pending("running".into())) }
            },
        )
        .await;
        let Confirmation::NoEffect { reason } = outcome else {
            panic!("{outcome:?}");
        };
        assert!(reason.contains("shop/web-1: running"), "{reason}");
        let n = reads.load(Ordering::SeqCst);
        assert!((10..=12).contains(&n), "bounded reads: {n}");
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_applied_is_no_effect_without_a_read() {
        let outcome = confirm_each(
            &injection(vec![(
                "web-1",
                Effect::Skipped {
                    reason: "the pod was already gone".into(),
                },
            )]),
            Duration::from_secs(2),
            |_| async { panic!("no read for a target that was not changed") },
        )
        .await;
        assert_eq!(
            outcome,
            Confirmation::NoEffect {
                reason: "no target was changed (shop/web-1: the pod was already gone)".into()
            }
        );
    }
}

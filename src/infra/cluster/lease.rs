//! The run lock: a `coordination.k8s.io/v1` Lease, taken with optimistic concurrency so two
//! runs racing for it cannot both win, and taken over only once its holder stopped renewing.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{DeleteParams, PostParams, Preconditions};
use kube::{Api, Client};

use super::{API_TIMEOUT, timed};
use crate::engine::{LockError, RunLock};
use crate::journal::{LiveLock, LockHeld, LockUnreadable};

/// The Lease's name.
pub const LEASE_NAME: &str = "steadfast-run-lock";

/// A run lock held in a Lease.
pub struct LeaseLock {
    api: Api<Lease>,
    held: Mutex<Option<(String, Duration)>>,
}

impl LeaseLock {
    /// A lock in `namespace`.
    pub fn new(client: Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            held: Mutex::new(None),
        }
    }

    fn lease(holder: &str, ttl: Duration, existing: Option<Lease>) -> Lease {
        let now = MicroTime(Timestamp::now());
        let mut lease = existing.unwrap_or_else(|| Lease {
            metadata: ObjectMeta {
                name: Some(LEASE_NAME.to_owned()),
                ..ObjectMeta::default()
            },
            spec: None,
        });
        let transitions = lease
            .spec
            .as_ref()
            .and_then(|s| s.lease_transitions)
            .unwrap_or(0);
        let same_holder = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            == Some(holder);
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            lease_duration_seconds: Some(i32::try_from(ttl.as_secs()).unwrap_or(i32::MAX)),
            acquire_time: if same_holder {
                lease.spec.as_ref().and_then(|s| s.acquire_time.clone())
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(if same_holder {
                transitions
            } else {
                transitions + 1
            }),
            ..LeaseSpec::default()
        });
        lease
    }

    fn holder(&self) -> Result<(String, Duration), LockError> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| LockError::Store("the lock is not held".to_owned()))
    }
}

/// A write bounded by [`API_TIMEOUT`], keeping the API's own error so a conflict is told by its
/// status code (`None`: no answer in time).
async fn bounded<T>(
    call: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, Option<kube::Error>> {
    match tokio::time::timeout(API_TIMEOUT, call).await {
        Ok(result) => result.map_err(Some),
        Err(_) => Err(None),
    }
}

/// Who holds the lock now and until when, without taking it: a recovery checks this before it
/// undoes records that may belong to a run still going.
#[async_trait]
impl LiveLock for LeaseLock {
    async fn live_holder(&self) -> Result<Option<LockHeld>, LockUnreadable> {
        let lease = timed("read the run lock", self.api.get_opt(LEASE_NAME))
            .await
            .map_err(|err| LockUnreadable(LockError::Store(err).to_string()))?;
        Ok(lease
            .as_ref()
            .and_then(live_holder)
            .map(|(holder, expires)| LockHeld {
                holder,
                expires: expires.to_string(),
            }))
    }
}

/// The holder and expiry of a live lease, or None when it lapsed or is free.
fn live_holder(lease: &Lease) -> Option<(String, Timestamp)> {
    let spec = lease.spec.as_ref()?;
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty())?;
    let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref())?.0;
    let expires = renewed
        .checked_add(SignedDuration::from_secs(i64::from(
            spec.lease_duration_seconds.unwrap_or(0),
        )))
        .ok()?;
    (expires > Timestamp::now()).then_some((holder, expires))
}

/// Most attempts of one lock write whose answer was uncertain (5xx, no answer), re-reading
/// the Lease before each: a server error during a chaos run must not cost the run its lock.
const LOCK_ATTEMPTS: u32 = 5;

/// Whether a failed write may or may not have happened, so the Lease must be read again.
fn uncertain(error: &Option<kube::Error>) -> bool {
    match error {
        None => true,
        Some(kube::Error::Api(status)) => status.code >= 500 || status.code == 429,
        Some(_) => true,
    }
}

/// The holder of the Lease as read, empty when none.
fn holder_of(lease: &Lease) -> &str {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .unwrap_or_default()
}

#[async_trait]
impl RunLock for LeaseLock {
    async fn acquire(&self, holder: &str, ttl: Duration) -> Result<(), LockError> {
        let mut attempt = 0;
        let result = loop {
            let existing = timed("read the run lock", self.api.get_opt(LEASE_NAME))
                .await
                .map_err(LockError::Store)?;
            let result = match existing {
                None => {
                    bounded(
                        self.api
                            .create(&PostParams::default(), &Self::lease(holder, ttl, None)),
                    )
                    .await
                }
                Some(lease) => {
                    if let Some((other, expires)) = live_holder(&lease).filter(|(h, _)| h != holder)
                    {
                        return Err(LockError::Held {
                            holder: other,
                            expires: expires.to_string(),
                        });
                    }
                    // resourceVersion is kept, so a racing taker gets 409 Conflict.
                    let replaced = Self::lease(holder, ttl, Some(lease));
                    bounded(
                        self.api
                            .replace(LEASE_NAME, &PostParams::default(), &replaced),
                    )
                    .await
                }
            };
            attempt += 1;
            match result {
                // The write may have landed: read again and take (or keep) it from there.
                Err(ref e) if uncertain(e) && attempt < LOCK_ATTEMPTS => {
                    tokio::time::sleep(crate::infra::kube::retry::backoff(attempt, rand::random()))
                        .await;
                }
                other => break other,
            }
        };
        match result {
            Ok(_) => {
                *self
                    .held
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some((holder.to_owned(), ttl));
                Ok(())
            }
            // 409: another run created or took the lease between our read and our write.
            Err(Some(kube::Error::Api(status))) if status.code == 409 => {
                let current = timed("read the run lock", self.api.get_opt(LEASE_NAME))
                    .await
                    .map_err(LockError::Store)?;
                let (holder, expires) = current
                    .as_ref()
                    .and_then(live_holder)
                    .unwrap_or_else(|| ("another run".to_owned(), Timestamp::now()));
                Err(LockError::Held {
                    holder,
                    expires: expires.to_string(),
                })
            }
            Err(Some(err)) => Err(LockError::Store(format!("write the run lock: {err}"))),
            Err(None) => Err(LockError::Store(format!(
                "write the run lock: no answer within {}s",
                API_TIMEOUT.as_secs()
            ))),
        }
    }

    async fn renew(&self) -> Result<(), LockError> {
        let (holder, ttl) = self.holder()?;
        let mut attempt = 0;
        loop {
            let lease = timed("read the run lock", self.api.get(LEASE_NAME))
                .await
                .map_err(LockError::Store)?;
            let current = holder_of(&lease).to_owned();
            if current != holder {
                return Err(LockError::Held {
                    holder: current,
                    expires: "unknown".to_owned(),
                });
            }
            let renewed = Self::lease(&holder, ttl, Some(lease));
            let result = bounded(
                self.api
                    .replace(LEASE_NAME, &PostParams::default(), &renewed),
            )
            .await;
            attempt += 1;
            match result {
                Ok(_) => return Ok(()),
                // A 409 after an uncertain renewal that landed, or one that failed: read again;
                // the holder check above tells a real loss.
                Err(ref e)
                    if attempt < LOCK_ATTEMPTS
                        && (uncertain(e)
                            || matches!(e, Some(kube::Error::Api(s)) if s.code == 409)) =>
                {
                    tokio::time::sleep(crate::infra::kube::retry::backoff(attempt, rand::random()))
                        .await;
                }
                Err(Some(err)) => {
                    return Err(LockError::Store(format!("renew the run lock: {err}")));
                }
                Err(None) => {
                    return Err(LockError::Store(format!(
                        "renew the run lock: no answer within {}s",
                        API_TIMEOUT.as_secs()
                    )));
                }
            }
        }
    }

    async fn release(&self) -> Result<(), LockError> {
        let Ok((holder, _)) = self.holder() else {
            return Ok(());
        };
        let Some(lease) = timed("read the run lock", self.api.get_opt(LEASE_NAME))
            .await
            .map_err(LockError::Store)?
        else {
            return Ok(());
        };
        if lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            != Some(holder.as_str())
        {
            return Ok(());
        }
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: lease.metadata.resource_version.clone(),
                uid: None,
            }),
            ..DeleteParams::default()
        };
        timed("release the run lock", self.api.delete(LEASE_NAME, &params))
            .await
            .map_err(LockError::Store)?;
        *self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        Ok(())
    }
}

//! The journal's in-cluster copy: a ConfigMap `<state namespace>/steadfast-journal` holding the
//! entries as JSON lines, so the undo of a run from a laptop that died is still in the cluster
//! for `steadfast rollback --from-cluster`, and the next run, from anywhere, sees it pending.
//!
//! Each append is a read-modify-write with the object's resourceVersion (optimistic
//! concurrency), retried on conflict and on answers that leave the write uncertain (429, 5xx):
//! the re-read tells whether the entry already landed, so it is never written twice. A ConfigMap holds at most 1 MiB; the data is kept under
//! [`DEFAULT_LIMIT`], compacted when needed, and an entry that still does not fit is refused.

use async_trait::async_trait;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::{Api, Client};
use std::collections::BTreeMap;

use super::API_TIMEOUT;
use crate::journal::mirror::{append_within, parse};
use crate::journal::{JournalEntry, JournalMirror, MirrorError};

/// The ConfigMap's name.
pub const JOURNAL_NAME: &str = "steadfast-journal";
/// The data key holding the JSON lines.
pub const JOURNAL_KEY: &str = "journal.jsonl";
/// Bytes of journal the ConfigMap may hold: the API server refuses objects over 1 MiB, and the
/// metadata needs some of it.
pub const DEFAULT_LIMIT: usize = 1024 * 1024 - 64 * 1024;
/// Attempts of one append when other writers race it or the server errs.
const ATTEMPTS: u32 = 8;

/// The journal mirror in a ConfigMap.
pub struct ConfigMapJournal {
    api: Api<ConfigMap>,
    namespace: String,
    limit: usize,
}

impl ConfigMapJournal {
    /// The mirror in `namespace`, with the default size limit.
    pub fn new(client: Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            limit: DEFAULT_LIMIT,
        }
    }

    /// The same with another size limit (tests use a small one to reach it).
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    fn error(&self, message: impl std::fmt::Display) -> MirrorError {
        MirrorError::Store {
            place: self.place(),
            message: message.to_string(),
        }
    }

    async fn call<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = Result<T, kube::Error>>,
    ) -> Result<Result<T, kube::Error>, MirrorError> {
        tokio::time::timeout(API_TIMEOUT, call)
            .await
            .map_err(|_| self.error(format!("{what}: no answer within {API_TIMEOUT:?}")))
    }

    fn object(text: String, resource_version: Option<String>) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(JOURNAL_NAME.to_owned()),
                resource_version,
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_owned(),
                    "steadfast".to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(JOURNAL_KEY.to_owned(), text)])),
            ..ConfigMap::default()
        }
    }
}

fn conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 409)
}

/// Whether a failed write may or may not have happened (throttled, server error, no answer):
/// read again, and write only if the entry is not there.
fn uncertain(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => status.code >= 500 || status.code == 429,
        _ => true,
    }
}

#[async_trait]
impl JournalMirror for ConfigMapJournal {
    fn place(&self) -> String {
        format!("ConfigMap {}/{JOURNAL_NAME}", self.namespace)
    }

    async fn append(&self, entry: &JournalEntry) -> Result<(), MirrorError> {
        let mut last = String::new();
        let mut maybe_written = false;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(crate::infra::kube::retry::backoff(
                    attempt - 1,
                    rand::random(),
                ))
                .await;
            }
            let existing = self
                .call("read", self.api.get_opt(JOURNAL_NAME))
                .await?
                .map_err(|err| self.error(format!("read: {err}")))?;
            let (text, version) = match &existing {
                Some(cm) => (
                    cm.data
                        .as_ref()
                        .and_then(|d| d.get(JOURNAL_KEY))
                        .cloned()
                        .unwrap_or_default(),
                    cm.metadata.resource_version.clone(),
                ),
                None => (String::new(), None),
            };
            if maybe_written && parse(&text).contains(entry) {
                return Ok(());
            }
            let updated =
                append_within(&text, entry, self.limit).map_err(|needed| MirrorError::Full {
                    place: self.place(),
                    needed,
                    limit: self.limit,
                })?;
            let written = if existing.is_some() {
                let object = Self::object(updated, version);
                self.call(
                    "write",
                    self.api
                        .replace(JOURNAL_NAME, &PostParams::default(), &object),
                )
                .await?
            } else {
                let object = Self::object(updated, None);
                self.call("create", self.api.create(&PostParams::default(), &object))
                    .await?
            };
            match written {
                Ok(_) => return Ok(()),
                Err(err) if conflict(&err) => last = format!("write: {err}"),
                Err(err) if uncertain(&err) => {
                    maybe_written = true;
                    last = format!("write: {err}");
                }
                Err(err) => return Err(self.error(format!("write: {err}"))),
            }
        }
        Err(self.error(format!(
            "still failing after {ATTEMPTS} attempts (conflicts with other writers or server errors); last: {last}"
        )))
    }

    async fn entries(&self) -> Result<Vec<JournalEntry>, MirrorError> {
        let existing = self
            .call("read", self.api.get_opt(JOURNAL_NAME))
            .await?
            .map_err(|err| self.error(format!("read: {err}")))?;
        Ok(existing
            .and_then(|cm| cm.data)
            .and_then(|mut d| d.remove(JOURNAL_KEY))
            .map(|text| parse(&text))
            .unwrap_or_default())
    }
}

//! The journal's in-cluster copy: a ConfigMap `<state namespace>/steadfast-journal` holding the
//! entries as JSON lines, so the undo of a run from a laptop that died is still in the cluster
//! for `steadfast rollback --from-cluster`, and the next run, from anywhere, sees it pending.
//!
//! Each append is a read-modify-write with the object's resourceVersion (optimistic
//! concurrency), retried on conflict, and on server errors, throttling and dropped connections
//! too: such a write may have happened, so the retry re-reads first and stops when the entry is
//! already there; the resourceVersion keeps a stale retry from writing over anything. A ConfigMap holds at most 1 MiB; the data is kept under
//! [`DEFAULT_LIMIT`], compacted when needed, and an entry that still does not fit is refused.

use std::collections::BTreeMap;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::{Api, Client};

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
/// Attempts of one append, when other writers race it or the server fails.
const ATTEMPTS: u32 = 10;

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

/// Whether a failed write is worth another attempt: throttling, server errors and failures
/// without an answer (a dropped connection); a refusal such as 403 or 422 is final.
fn retryable(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        kube::Error::SerdeError(_) | kube::Error::BuildRequest(_) => false,
        _ => true,
    }
}

#[async_trait]
impl JournalMirror for ConfigMapJournal {
    fn place(&self) -> String {
        format!("ConfigMap {}/{JOURNAL_NAME}", self.namespace)
    }

    async fn append(&self, entry: &JournalEntry) -> Result<(), MirrorError> {
        let mut last_error = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                let wait = crate::infra::kube::retry::backoff(attempt - 1, rand::random());
                tokio::time::sleep(wait).await;
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
            // An earlier attempt that got no clear answer may have written it.
            if attempt > 0 && parse(&text).contains(entry) {
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
                Err(err) if conflict(&err) || retryable(&err) => last_error = err.to_string(),
                Err(err) => return Err(self.error(format!("write: {err}"))),
            }
        }
        Err(self.error(format!(
            "write: still failing after {ATTEMPTS} attempts: {last_error}"
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

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure("injected", "InternalError")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn server_errors_throttling_and_lost_answers_are_retried_refusals_are_not() {
        for code in [429, 500, 503, 504] {
            assert!(retryable(&status(code)), "{code}");
        }
        for code in [400, 403, 404, 422] {
            assert!(!retryable(&status(code)), "{code}");
        }
        let lost = kube::Error::Service("connection reset by peer".into());
        assert!(retryable(&lost));
        assert!(conflict(&status(409)) && !retryable(&status(409)));
    }
}

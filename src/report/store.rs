//! The report store: where a run's files go and where `gate` and `report --history` read them
//! back. A directory and an S3 bucket (src/infra/aws/s3.rs) behind one small trait, so the
//! report code names no SDK and both are read the same way.
//!
//! Layout under a location's prefix, append-only so two runs never rewrite each other's keys:
//!
//! ```text
//! <prefix>/<experiment>/<timestamp>-<run-id>/{report.json,junit.xml,summary.md,report.html}
//! <prefix>/<experiment>/index/<timestamp>-<run-id>.json   one small entry per run
//! <prefix>/<experiment>/index.json                        a snapshot of that listing
//! ```
//!
//! Listing `index/` is the source of truth: every run writes only its own entry there, so
//! concurrent runs cannot lose each other. `index.json` is rebuilt from the listing by each run
//! for readers that cannot list; when two runs race, the later listing may miss the other run
//! until the next run rewrites it, and nothing else depends on it.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::location::join_key;
use super::model::{Outcome, Report};
use super::{html, json, junit, markdown};

/// Most keys one listing returns: a bound on a prefix that holds years of runs.
pub const MAX_LIST_KEYS: usize = 100_000;
/// Deepest directory level a directory store lists.
const MAX_DEPTH: usize = 8;

/// Server-side encryption of uploaded objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encryption {
    /// S3-managed keys (`AES256`), the default: on without any key to manage.
    #[default]
    Aes256,
    /// The bucket's or account's KMS key (`aws:kms`).
    Kms,
}

/// A failed store call, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct StoreError {
    /// The key or directory.
    pub key: String,
    /// What went wrong.
    pub message: String,
}

/// Objects by key under one root (a bucket or a directory).
#[async_trait]
pub trait ReportStore: Send + Sync {
    /// Writes `body` at `key`, replacing nothing another run wrote (keys are per run).
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), StoreError>;
    /// Reads `key`.
    async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError>;
    /// Every key under `prefix` (recursively), sorted, at most [`MAX_LIST_KEYS`].
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// `key` as a user would write it (`s3://bucket/key` or a path), for messages.
    fn describe(&self, key: &str) -> String;
}

/// A directory as a store; keys are `/`-separated paths below it.
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    /// A store rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, key: &str) -> PathBuf {
        if key.is_empty() {
            self.root.clone()
        } else {
            self.root.join(key)
        }
    }
}

fn io_error(key: &str, err: &std::io::Error) -> StoreError {
    StoreError {
        key: key.to_owned(),
        message: err.to_string(),
    }
}

#[async_trait]
impl ReportStore for DirStore {
    async fn put(&self, key: &str, body: Vec<u8>, _content_type: &str) -> Result<(), StoreError> {
        let path = self.path(key);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| io_error(key, &e))?;
        }
        tokio::fs::write(&path, body)
            .await
            .map_err(|e| io_error(key, &e))
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        tokio::fs::read(self.path(key))
            .await
            .map_err(|e| io_error(key, &e))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let start = self.path(prefix);
        let meta = std::fs::metadata(&start).map_err(|e| io_error(prefix, &e))?;
        let mut keys = Vec::new();
        if meta.is_file() {
            keys.push(prefix.to_owned());
        } else {
            walk(&start, prefix, 0, &mut keys).map_err(|e| io_error(prefix, &e))?;
        }
        keys.sort();
        Ok(keys)
    }

    fn describe(&self, key: &str) -> String {
        self.path(key).display().to_string()
    }
}

fn walk(dir: &Path, key: &str, depth: usize, keys: &mut Vec<String>) -> std::io::Result<()> {
    if depth >= MAX_DEPTH {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        if keys.len() >= MAX_LIST_KEYS {
            return Ok(());
        }
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = join_key(key, &name);
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), &child, depth + 1, keys)?;
        } else {
            keys.push(child);
        }
    }
    Ok(())
}

/// One run in an experiment's index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexEntry {
    /// Run id.
    pub run_id: String,
    /// Start (UTC, RFC 3339).
    pub started_at: String,
    /// Verdict.
    pub outcome: Outcome,
    /// The run's key prefix, holding its four files.
    pub key: String,
}

/// `<timestamp>-<run-id>`: sortable by start time, unique per run.
pub fn run_name(report: &Report) -> String {
    format!(
        "{}-{}",
        report.run.started_at.format("%Y%m%dT%H%M%S%.3fZ"),
        report.run.id
    )
}

/// What an upload did.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    /// The run's prefix as a user would write it.
    pub location: String,
    /// One line per object that could not be written (after the store's own retries).
    pub failures: Vec<String>,
}

/// Writes the run's four files, its index entry and the index snapshot under `base`.
/// Every object is attempted even when one fails, so one bad write loses as little as it can.
pub async fn upload(store: &dyn ReportStore, base: &str, report: &Report) -> Upload {
    let experiment = join_key(base, &report.experiment.name);
    let name = run_name(report);
    let run = join_key(&experiment, &name);
    let entry = IndexEntry {
        run_id: report.run.id.clone(),
        started_at: report.run.started_at.to_rfc3339(),
        outcome: report.verdict.outcome,
        key: run.clone(),
    };
    let files: [(&str, String, &str); 4] = [
        ("report.json", json::render(report), "application/json"),
        ("junit.xml", junit::render(&[report]), "application/xml"),
        ("summary.md", markdown::render(report), "text/markdown"),
        ("report.html", html::render(report), "text/html"),
    ];
    let mut failures = Vec::new();
    for (file, body, kind) in files {
        let key = join_key(&run, file);
        if let Err(err) = store.put(&key, body.into_bytes(), kind).await {
            failures.push(format!("{}: {}", store.describe(&key), err.message));
        }
    }
    let index = join_key(&experiment, "index");
    let entry_key = join_key(&index, &format!("{name}.json"));
    let entry_body = serde_json::to_vec(&entry).unwrap_or_default();
    if let Err(err) = store.put(&entry_key, entry_body, "application/json").await {
        failures.push(format!("{}: {}", store.describe(&entry_key), err.message));
    } else {
        // The snapshot: the runs the listing shows now, this one included.
        match store.list(&index).await {
            Ok(keys) => {
                let runs: Vec<&str> = keys
                    .iter()
                    .filter_map(|k| k.rsplit('/').next()?.strip_suffix(".json"))
                    .collect();
                let body = serde_json::to_vec_pretty(&serde_json::json!({
                    "experiment": report.experiment.name,
                    "runs": runs,
                }))
                .unwrap_or_default();
                let key = join_key(&experiment, "index.json");
                if let Err(err) = store.put(&key, body, "application/json").await {
                    failures.push(format!("{}: {}", store.describe(&key), err.message));
                }
            }
            Err(err) => failures.push(format!("{}: {}", store.describe(&index), err.message)),
        }
    }
    Upload {
        location: store.describe(&run),
        failures,
    }
}

/// A report read back, with where it came from.
#[derive(Debug, Clone)]
pub struct StoredReport {
    /// As a user would write it.
    pub source: String,
    /// The report.
    pub report: Report,
}

/// Every `report.json` under `prefix`, parsed, in key order.
///
/// # Errors
/// The listing or a read fails, or a `report.json` is not a report.
pub async fn read_reports(
    store: &dyn ReportStore,
    prefix: &str,
) -> Result<Vec<StoredReport>, StoreError> {
    let keys = store.list(prefix).await?;
    let mut reports = Vec::new();
    for key in keys
        .iter()
        .filter(|k| *k == "report.json" || k.ends_with("/report.json") || *k == prefix)
    {
        let bytes = store.get(key).await?;
        let text = String::from_utf8_lossy(&bytes);
        let report = json::parse(&text).map_err(|err| StoreError {
            key: store.describe(key),
            message: format!(
                "{err} (hint: pass report.json files written by `steadfast run`, or their directories)"
            ),
        })?;
        reports.push(StoredReport {
            source: store.describe(key),
            report,
        });
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(id: &str, started: &str) -> Report {
        json::parse(&format!(
            r#"{{"reportVersion":1,"tool":{{"name":"steadfast","version":"0"}},
            "run":{{"id":"{id}","seed":1,"startedAt":"{started}","finishedAt":"{started}","durationSeconds":1}},
            "experiment":{{"name":"web","specSha256":"0"}},
            "verdict":{{"outcome":"passed","summary":"s"}},"exitCode":0,"windows":{{}},
            "timeline":[],"faults":[],"probes":[],"targets":[],
            "rollback":{{"complete":true,"applied":0}}}}"#
        ))
        .unwrap()
    }

    #[tokio::test]
    async fn runs_land_under_their_own_keys_and_read_back_through_the_listing() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        let a = report("web-a", "2026-01-01T00:00:00Z");
        let b = report("web-b", "2026-01-01T00:00:00Z");
        let (ua, ub) = tokio::join!(upload(&store, "ci", &a), upload(&store, "ci", &b));
        assert!(
            ua.failures.is_empty() && ub.failures.is_empty(),
            "{ua:?} {ub:?}"
        );
        let keys = store.list("ci/web").await.unwrap();
        for run in ["20260101T000000.000Z-web-a", "20260101T000000.000Z-web-b"] {
            for file in ["report.json", "junit.xml", "summary.md", "report.html"] {
                assert!(keys.contains(&format!("ci/web/{run}/{file}")), "{keys:?}");
            }
            assert!(
                keys.contains(&format!("ci/web/index/{run}.json")),
                "{keys:?}"
            );
        }
        let read = read_reports(&store, "ci").await.unwrap();
        let ids: Vec<&str> = read.iter().map(|r| r.report.run.id.as_str()).collect();
        assert_eq!(ids, ["web-a", "web-b"]);
    }
}

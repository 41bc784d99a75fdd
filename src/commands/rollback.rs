//! `steadfast rollback`: replay every pending undo record of the journal, idempotently, so a
//! run killed at any instant leaves nothing broken. The cluster's copy of the journal is read
//! with `--from-cluster` (the machine that ran the experiment may be gone) and kept up to date
//! either way, so the next run does not find the records pending.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use chrono::Utc;

use crate::cli::RollbackArgs;
use crate::exit::ExitStatus;
use crate::fault::{RollbackOutcome, UndoRecord, Undoer};
use crate::infra::aws::{AwsClients, AwsOptions};
use crate::infra::cluster::{ConfigMapJournal, LeaseLock, state_namespace};
use crate::infra::wiring::CompositeUndoer;
use crate::journal::{
    FileJournal, Journal, JournalEntry, JournalMirror, default_journal_path, pending, read_entries,
};

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
) -> anyhow::Result<Pending> {
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

/// The cluster's copy of the journal in the state namespace.
pub fn cluster_mirror(client: kube::Client) -> ConfigMapJournal {
    ConfigMapJournal::new(client, &state_namespace())
}

/// Applies `records` in reverse order of writing; true when every one was applied. A record
/// that was applied but could not be journaled is reported and counts as applied: applying it
/// again later finds it restored.
///
/// # Errors
/// When output fails.
pub async fn apply(
    records: &[UndoRecord],
    undoer: &dyn Undoer,
    journal: &Journal,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let mut complete = true;
    for record in records.iter().rev() {
        let entry = match undoer.undo(record).await {
            Ok(outcome) => {
                let detail = match &outcome {
                    RollbackOutcome::Restored { detail } => format!("restored: {detail}"),
                    RollbackOutcome::AlreadyRestored { detail } => {
                        format!("already restored: {detail}")
                    }
                };
                writeln!(
                    out,
                    "{} ({}): {detail}",
                    record.id,
                    record.action.describe()
                )?;
                JournalEntry::RolledBack {
                    id: record.id.clone(),
                    outcome,
                    at: Utc::now(),
                }
            }
            Err(err) => {
                complete = false;
                writeln!(
                    out,
                    "{} ({}): FAILED: {err}",
                    record.id,
                    record.action.describe()
                )?;
                JournalEntry::RollbackFailed {
                    id: record.id.clone(),
                    error: err.to_string(),
                    at: Utc::now(),
                }
            }
        };
        if let Err(err) = journal.append(&entry).await {
            writeln!(out, "{}: could not journal this: {err}", record.id)?;
        }
    }
    Ok(complete)
}

/// Replays the journal.
///
/// # Errors
/// When the journal cannot be read or the cluster cannot be reached.
pub async fn run(args: &RollbackArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    // A closed stdout must not turn an incomplete rollback into a tool error.
    let out = &mut super::LoggedOut::new(out);
    let path = args.journal.clone().unwrap_or_else(default_journal_path);
    let local = pending(&read_entries(&path)?);
    let mut complete = true;
    if local.is_empty() && !args.from_cluster {
        writeln!(
            out,
            "nothing pending in {} (the cluster's copy is read with --from-cluster)",
            path.display()
        )?;
    } else {
        let cluster = super::cluster_of(&args.cluster);
        let options = cluster.kube_options();
        let kube = crate::infra::kube::KubeClient::connect(&options).await?;
        let mirror = (!args.no_cluster_journal).then(|| cluster_mirror(kube.raw().clone()));
        let found = pending_records(
            &path,
            mirror.as_ref().map(|m| m as &dyn JournalMirror),
            args.from_cluster,
        )
        .await?;
        if let Some(mirror) = &mirror {
            settle(mirror, &found.settled).await;
        }
        if args.from_cluster && found.records.len() > found.local {
            // Another machine's records: refuse while a run holds the lock, they may be its own.
            let lock = LeaseLock::new(kube.raw().clone(), &state_namespace());
            if let Some((holder, expires)) = lock.live_holder().await? {
                eprintln!(
                    "error: another run holds the lock: {holder} (until {expires}); the cluster's pending undo records may be its own\nhint: wait for it to finish, or `steadfast halt` to make it stop and roll back"
                );
                return Ok(ExitStatus::Invalid);
            }
        }
        let place = mirror.as_ref().map(JournalMirror::place);
        let undoer = CompositeUndoer::new(Some(kube), AwsOptions::from_spec(None));
        let file = FileJournal::open(&path)?;
        let journal = match mirror {
            Some(mirror) => Journal::mirrored(file, Box::new(mirror)),
            None => Journal::local(file),
        };
        if found.records.is_empty() {
            writeln!(
                out,
                "nothing pending in {} or {}",
                path.display(),
                place.unwrap_or_default()
            )?;
        } else {
            let mut origin = format!("{} in {}", found.local, path.display());
            if let (true, Some(place)) = (args.from_cluster, &place) {
                origin.push_str(&format!(", {} in {place}", found.cluster));
            }
            writeln!(
                out,
                "{} pending undo record(s) ({origin})",
                found.records.len()
            )?;
            complete = apply(&found.records, &undoer, &journal, out).await?;
        }
    }
    if let Some(region) = &args.sweep_region {
        let clients = AwsClients::connect(&AwsOptions::for_region(Some(region.clone()))).await?;
        let healed = crate::fault::aws_undo::sweep_network_acls(&clients.ec2, None).await?;
        writeln!(out, "sweep of {region}: {healed:?}")?;
    }
    Ok(if complete {
        ExitStatus::Success
    } else {
        ExitStatus::RollbackIncomplete
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::fault::UndoAction;
    use crate::journal::MirrorError;

    #[derive(Default)]
    struct MemoryMirror(Mutex<Vec<JournalEntry>>);

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
        JournalEntry::Undo(UndoRecord {
            id: id.into(),
            run_id: "r".into(),
            fault: "cordon".into(),
            action: UndoAction::Uncordon {
                node: "node-1".into(),
            },
            created_at: Utc::now(),
        })
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

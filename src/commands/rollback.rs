//! `steadfast rollback`: replay every pending undo record of the journal, idempotently, so a
//! run killed at any instant leaves nothing broken. The cluster's copy of the journal is read
//! with `--from-cluster` (the machine that ran the experiment may be gone) and kept up to date
//! either way, so the next run does not find the records pending.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use chrono::Utc;

use crate::cli::RollbackArgs;
use crate::exit::ExitStatus;
use crate::fault::{RollbackOutcome, UndoRecord, Undoer};
use crate::infra::aws::{AwsClients, AwsOptions};
use crate::infra::cluster::{ConfigMapJournal, state_namespace};
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
    /// How many are pending in the cluster's copy.
    pub cluster: usize,
}

/// What is pending in the local journal at `path` and, when given, in `mirror`.
///
/// # Errors
/// When either cannot be read.
pub async fn pending_records(
    path: &Path,
    mirror: Option<&dyn JournalMirror>,
) -> anyhow::Result<Pending> {
    let mut records = pending(&read_entries(path)?);
    let local = records.len();
    let mut cluster = 0;
    if let Some(mirror) = mirror {
        let remote = pending(&mirror.entries().await?);
        cluster = remote.len();
        let known: HashSet<String> = records.iter().map(|r| r.id.clone()).collect();
        records.extend(remote.into_iter().filter(|r| !known.contains(&r.id)));
    }
    Ok(Pending {
        records,
        local,
        cluster,
    })
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
        let read_from = if args.from_cluster {
            mirror.as_ref().map(|m| m as &dyn JournalMirror)
        } else {
            None
        };
        let found = pending_records(&path, read_from).await?;
        let place = mirror.as_ref().map(JournalMirror::place);
        let undoer = CompositeUndoer::new(kube, AwsOptions::from_spec(None));
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

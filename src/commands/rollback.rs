//! `steadfast rollback`: replay every pending undo record of the journal, idempotently, so a
//! run killed at any instant leaves nothing broken.

use std::io::Write;

use chrono::Utc;

use crate::cli::RollbackArgs;
use crate::exit::ExitStatus;
use crate::fault::{RollbackOutcome, UndoRecord, Undoer};
use crate::infra::aws::{AwsClients, AwsOptions};
use crate::infra::wiring::CompositeUndoer;
use crate::journal::{FileJournal, JournalEntry, default_journal_path, pending, read_entries};

/// Applies `records` in reverse order of writing; true when every one was applied.
///
/// # Errors
/// When the journal cannot be written or output fails.
pub async fn apply(
    records: &[UndoRecord],
    undoer: &dyn Undoer,
    journal: &FileJournal,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let mut complete = true;
    for record in records.iter().rev() {
        match undoer.undo(record).await {
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
                journal.append(&JournalEntry::RolledBack {
                    id: record.id.clone(),
                    outcome,
                    at: Utc::now(),
                })?;
            }
            Err(err) => {
                complete = false;
                writeln!(
                    out,
                    "{} ({}): FAILED: {err}",
                    record.id,
                    record.action.describe()
                )?;
                journal.append(&JournalEntry::RollbackFailed {
                    id: record.id.clone(),
                    error: err.to_string(),
                    at: Utc::now(),
                })?;
            }
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
    let records = pending(&read_entries(&path)?);
    let mut complete = true;
    if records.is_empty() {
        writeln!(out, "nothing pending in {}", path.display())?;
    } else {
        let cluster = super::cluster_of(&args.cluster);
        let options = cluster.kube_options();
        let kube = crate::infra::kube::KubeClient::connect(&options).await?;
        let undoer = CompositeUndoer::new(kube, AwsOptions::from_spec(None));
        let journal = FileJournal::open(&path)?;
        writeln!(
            out,
            "{} pending undo record(s) in {}",
            records.len(),
            path.display()
        )?;
        complete = apply(&records, &undoer, &journal, out).await?;
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

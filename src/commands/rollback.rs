//! `steadfast rollback`: replay every pending undo record of the journal, idempotently, so a
//! run killed at any instant leaves nothing broken. The cluster's copy of the journal is read
//! with `--from-cluster` (the machine that ran the experiment may be gone) and kept up to date
//! either way, so the next run does not find the records pending.

use std::io::Write;

use crate::cli::RollbackArgs;
use crate::exit::ExitStatus;
use crate::fault::{RollbackOutcome, UndoRecord};
use crate::infra::aws::{AwsClients, AwsOptions};
use crate::infra::cluster::{ConfigMapJournal, LeaseLock, state_namespace};
use crate::infra::wiring::CompositeUndoer;
use crate::journal::{
    FileJournal, Journal, JournalMirror, RetryPolicy, UndoApplier, UndoReport,
    default_journal_path, pending, pending_records, read_entries, settle,
};

/// The cluster's copy of the journal in the state namespace.
pub fn cluster_mirror(client: kube::Client) -> ConfigMapJournal {
    ConfigMapJournal::new(client, &state_namespace())
}

/// Applies `records` newest first with the shared [`UndoApplier`], printing a line per record;
/// true when every one is undone. A record that was applied but could not be journaled is
/// reported and counts as applied: applying it again later finds it restored.
///
/// # Errors
/// When output fails.
pub async fn apply(
    records: &[UndoRecord],
    applier: &UndoApplier<'_>,
    out: &mut dyn Write,
) -> std::io::Result<bool> {
    let mut written = Ok(());
    let complete = applier
        .apply_all(records, |record, report| {
            if written.is_ok() {
                written = print_report(out, record, report);
            }
        })
        .await;
    written.map(|()| complete)
}

fn print_report(
    out: &mut dyn Write,
    record: &UndoRecord,
    report: &UndoReport,
) -> std::io::Result<()> {
    let detail = match &report.result {
        Ok(RollbackOutcome::Restored { detail }) => format!("restored: {detail}"),
        Ok(RollbackOutcome::AlreadyRestored { detail }) => format!("already restored: {detail}"),
        Err(error) => format!("FAILED: {error}"),
    };
    let tries = match report.attempts {
        1 => String::new(),
        n => format!(" (after {n} attempts)"),
    };
    writeln!(
        out,
        "{} ({}): {detail}{tries}",
        record.id,
        record.action.describe()
    )?;
    if let Some(err) = &report.unjournaled {
        writeln!(out, "{}: could not journal this: {err}", record.id)?;
    }
    Ok(())
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
            let policy = RetryPolicy::within(args.undo_deadline.into());
            let applier = UndoApplier::new(&undoer, &journal, policy);
            complete = apply(&found.records, &applier, out).await?;
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
    use super::*;
    use crate::journal::DEFAULT_UNDO_DEADLINE;
    use crate::journal::rollback::tests::FlakyUndoer;

    #[tokio::test(start_paused = true)]
    async fn rollback_retries_an_undo_whose_first_attempts_fail_as_the_engine_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let file = FileJournal::open(&path).unwrap();
        let record = UndoRecord {
            id: "r/cordon/0/0".into(),
            run_id: "r".into(),
            fault: "cordon".into(),
            action: crate::fault::UndoAction::Uncordon {
                node: "node-1".into(),
            },
            created_at: chrono::Utc::now(),
        };
        file.append(&crate::journal::JournalEntry::Undo(record.clone()))
            .unwrap();
        let journal = Journal::local(file);
        let undoer = FlakyUndoer::failing_first(4);
        let applier = UndoApplier::new(
            &undoer,
            &journal,
            RetryPolicy::within(DEFAULT_UNDO_DEADLINE),
        );
        let mut out = Vec::new();

        let complete = apply(&pending(&read_entries(&path).unwrap()), &applier, &mut out)
            .await
            .unwrap();

        let printed = String::from_utf8(out).unwrap();
        assert!(complete, "{printed}");
        assert_eq!(undoer.attempts(&record.id), 5);
        assert!(
            printed.contains("restored: uncordoned (after 5 attempts)"),
            "{printed}"
        );
        assert!(pending(&read_entries(&path).unwrap()).is_empty());
    }
}

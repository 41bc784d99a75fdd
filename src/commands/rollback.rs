//! `steadfast rollback`: replay every pending undo record of the journal, idempotently, so a
//! run killed at any instant leaves nothing broken. The cluster's copy of the journal is read
//! with `--from-cluster` (the machine that ran the experiment may be gone) and kept up to date
//! either way, so the next run does not find the records pending.

use std::io::Write;

use super::recovery::ReportLines;
use crate::cli::RollbackArgs;
use crate::exit::ExitStatus;
use crate::infra::aws::{AwsClients, AwsOptions};
use crate::infra::cluster::{ConfigMapJournal, LeaseLock, state_namespace};
use crate::infra::wiring::CompositeUndoer;
use crate::journal::{
    JournalMirror, LiveLock, LockRule, Pending, Recovery, RetryPolicy, default_journal_path,
    pending, read_entries, recover,
};

/// The cluster's copy of the journal in the state namespace.
pub fn cluster_mirror(client: kube::Client) -> ConfigMapJournal {
    ConfigMapJournal::new(client, &state_namespace())
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
        let mirror = (!args.no_cluster_journal)
            .then(|| Box::new(cluster_mirror(kube.raw().clone())) as Box<dyn JournalMirror>);
        let found = recover::find(&path, mirror, args.from_cluster).await?;
        // Another machine's records are refused while a run holds the lock: they may be its own.
        let lock = LeaseLock::new(kube.raw().clone(), &state_namespace());
        let undoer = CompositeUndoer::new(Some(kube), AwsOptions::from_spec(None));
        let place = found.journal().mirror_place();
        let header = |found: &Pending| {
            let mut origin = format!("{} in {}", found.local, path.display());
            if let (true, Some(place)) = (args.from_cluster, &place) {
                origin.push_str(&format!(", {} in {place}", found.cluster));
            }
            Some(format!(
                "{} pending undo record(s) ({origin})",
                found.records.len()
            ))
        };
        let mut lines = ReportLines::new(&mut *out, header);
        let recovery = found
            .recover(
                &undoer,
                RetryPolicy::within(args.undo_deadline.into()),
                Some(&lock as &dyn LiveLock),
                LockRule::ClusterRecords,
                &mut lines,
            )
            .await;
        lines.finish()?;
        match recovery? {
            Recovery::Refused(held) => {
                eprintln!(
                    "error: another run holds the lock: {} (until {}); the cluster's pending undo records may be its own\nhint: wait for it to finish, or `steadfast halt` to make it stop and roll back",
                    held.holder, held.expires
                );
                return Ok(ExitStatus::Invalid);
            }
            Recovery::Nothing => writeln!(
                out,
                "nothing pending in {} or {}",
                path.display(),
                place.as_deref().unwrap_or_default()
            )?,
            Recovery::Applied { complete: all, .. } => complete = all,
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

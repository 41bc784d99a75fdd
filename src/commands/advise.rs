//! `steadfast advise`: read the cluster (and its Auto Scaling groups when AWS answers), run the
//! HA rules, print the findings. Read-only: list calls and AWS describes, nothing else.

use std::io::Write;
use std::time::Duration;

use tracing::{info, warn};

use crate::advise::{Snapshot, evaluate, render};
use crate::cli::{AdviseArgs, AdviseFormat};
use crate::exit::ExitStatus;
use crate::infra::kube::{KubeClient, KubeOptions, snapshot};

/// Deadline of each list call: advise should fail fast on a cluster that does not answer.
const LIST_TIMEOUT: Duration = Duration::from_secs(20);

/// Prints the findings; exit 0 when none is at or above `--fail-on`, 1 otherwise, 2 when the
/// cluster cannot be read.
///
/// # Errors
/// When output cannot be written.
pub async fn run(args: &AdviseArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let snapshot = match read(args).await {
        Ok(snapshot) => snapshot,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitStatus::Invalid);
        }
    };
    let findings = evaluate(&snapshot);
    let node_groups_read = !snapshot.node_groups.is_empty();
    match args.output {
        AdviseFormat::Text => render::text(&findings, out)?,
        AdviseFormat::Json => render::json(&findings, node_groups_read, out)?,
        AdviseFormat::Md => render::markdown(&findings, out)?,
    }
    Ok(if findings.iter().any(|f| f.severity >= args.fail_on) {
        ExitStatus::TargetsMissed
    } else {
        ExitStatus::Success
    })
}

/// The snapshot, or a one-line reason it could not be read.
async fn read(args: &AdviseArgs) -> Result<Snapshot, String> {
    let options = KubeOptions {
        call_timeout: LIST_TIMEOUT,
        ..super::cluster_of(&args.cluster).kube_options()
    };
    let unreachable = |e: &dyn std::fmt::Display| {
        let first = e.to_string();
        let first = first.lines().next().unwrap_or_default().to_owned();
        format!(
            "cannot read the cluster: {first} (hint: check --kubeconfig/KUBECONFIG and --context, and that the API server is up)"
        )
    };
    let client = KubeClient::connect(&options)
        .await
        .map_err(|e| unreachable(&e))?;
    let namespace = if args.all_namespaces {
        None
    } else {
        Some(
            args.namespace
                .clone()
                .unwrap_or_else(|| client.raw().default_namespace().to_owned()),
        )
    };
    let mut snapshot = snapshot::read(&client, namespace.as_deref())
        .await
        .map_err(|e| unreachable(&e))?;
    if args.no_aws {
        return Ok(snapshot);
    }
    let instances: Vec<String> = snapshot
        .nodes
        .iter()
        .filter_map(|n| n.instance_id.clone())
        .collect();
    if instances.is_empty() {
        info!("no node names an EC2 instance (spec.providerID); node groups not read");
        return Ok(snapshot);
    }
    match crate::infra::advise::node_groups(&crate::infra::advise::options(), &instances).await {
        Ok(groups) => snapshot.node_groups = groups,
        Err(e) => warn!("AWS not reachable, node groups not read: {e}"),
    }
    Ok(snapshot)
}

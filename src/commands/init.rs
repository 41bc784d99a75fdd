//! `steadfast init`: starter experiments for the Services of a namespace, from what the
//! cluster says about them (port, readiness path, workload, zones, budgets). Read-only on the
//! cluster; writes files only.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::advise::Snapshot;
use crate::advise::templates::{StarterInput, starters};
use crate::cli::InitArgs;
use crate::exit::ExitStatus;
use crate::infra::kube::{KubeClient, KubeOptions, snapshot};

/// Deadline of each list call.
const LIST_TIMEOUT: Duration = Duration::from_secs(20);

/// Writes the starters and prints the path of each; exit 2 when the cluster cannot be read,
/// the namespace has no matching Service, or a file exists (without `--force`).
///
/// # Errors
/// When output cannot be written.
pub async fn run(args: &InitArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let options = KubeOptions {
        call_timeout: LIST_TIMEOUT,
        ..super::cluster_of(&args.cluster).kube_options()
    };
    let read = async {
        let client = KubeClient::connect(&options).await?;
        snapshot::read(&client, Some(&args.namespace)).await
    };
    let snapshot = match read.await {
        Ok(s) => s,
        Err(e) => {
            let text = e.to_string();
            eprintln!(
                "error: cannot read the cluster: {} (hint: check --kubeconfig/KUBECONFIG and --context)",
                text.lines().next().unwrap_or_default()
            );
            return Ok(ExitStatus::Invalid);
        }
    };
    let inputs = inputs(&snapshot, args);
    if inputs.is_empty() {
        eprintln!(
            "error: init: no Service with a selector{} in namespace {} (hint: `kubectl -n {} get services`)",
            args.service
                .as_deref()
                .map(|s| format!(" named {s}"))
                .unwrap_or_default(),
            args.namespace,
            args.namespace
        );
        return Ok(ExitStatus::Invalid);
    }
    let files: Vec<_> = inputs.iter().flat_map(starters).collect();
    if !args.force
        && let Some(existing) = files
            .iter()
            .map(|f| args.out.join(&f.file_name))
            .find(|p| p.exists())
    {
        eprintln!(
            "error: init: {} exists (hint: pass --force to overwrite, or choose another --out)",
            existing.display()
        );
        return Ok(ExitStatus::Invalid);
    }
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("error: init: cannot create {}: {e}", args.out.display());
        return Ok(ExitStatus::Invalid);
    }
    for file in &files {
        let path = args.out.join(&file.file_name);
        if let Err(e) = write(&path, &file.text) {
            eprintln!("error: init: cannot write {}: {e}", path.display());
            return Ok(ExitStatus::Invalid);
        }
        writeln!(out, "{}", path.display())?;
    }
    Ok(ExitStatus::Success)
}

fn write(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// One input per selected Service with a selector.
fn inputs(s: &Snapshot, args: &InitArgs) -> Vec<StarterInput> {
    let mut zones: BTreeMap<&str, u32> = BTreeMap::new();
    for node in &s.nodes {
        if let Some(zone) = node.zone.as_deref() {
            *zones.entry(zone).or_default() += 1;
        }
    }
    s.services
        .iter()
        .filter(|svc| !svc.selector.is_empty())
        .filter(|svc| args.service.as_ref().is_none_or(|name| *name == svc.name))
        .map(|svc| {
            let workload = s.workloads.iter().find(|w| {
                w.namespace == svc.namespace
                    && crate::advise::model::selects(&svc.selector, &w.pod_labels)
            });
            // The zone hosting most of the Service's pods: the worst single-zone loss.
            let mut pods_per_zone: BTreeMap<&str, u32> = BTreeMap::new();
            if let Some(w) = workload {
                for pod in s.pods_of(w) {
                    if let Some(zone) = pod.node.as_deref().and_then(|n| s.zone_of(n)) {
                        *pods_per_zone.entry(zone).or_default() += 1;
                    }
                }
            }
            let zone = pods_per_zone
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(z, _)| *z)
                .or_else(|| zones.keys().next().copied());
            StarterInput {
                namespace: svc.namespace.clone(),
                service: svc.name.clone(),
                port: svc.port,
                path: workload
                    .and_then(|w| w.readiness_http.as_ref())
                    .map_or_else(|| "/".to_owned(), |(_, path)| path.clone()),
                selector: svc
                    .selector
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
                workload: workload.map(|w| (w.kind.as_str().to_owned(), w.name.clone())),
                zone: zone.map(str::to_owned),
                zone_nodes: zone.and_then(|z| zones.get(z).copied()).unwrap_or(0),
                total_nodes: u32::try_from(s.nodes.len()).unwrap_or(u32::MAX),
                has_budget: workload.is_some_and(|w| s.budgets_of(w).next().is_some()),
                duration: args.duration.into(),
            }
        })
        .collect()
}

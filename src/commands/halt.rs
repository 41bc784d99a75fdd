//! `steadfast halt` and `steadfast resume`: the cluster-wide stop switch every run checks
//! before it starts and every second while it runs.

use std::io::Write;

use crate::cli::{ClusterFlags, HaltArgs};
use crate::exit::ExitStatus;
use crate::infra::cluster::{ConfigMapHalt, state_namespace};
use crate::infra::kube::KubeClient;

async fn switch(cluster: &ClusterFlags) -> anyhow::Result<(ConfigMapHalt, String)> {
    let options = super::cluster_of(cluster).kube_options();
    let kube = KubeClient::connect(&options).await?;
    let namespace = state_namespace();
    Ok((
        ConfigMapHalt::new(kube.raw().clone(), &namespace),
        namespace,
    ))
}

/// Turns the switch on.
///
/// # Errors
/// When the cluster cannot be reached or written.
pub async fn halt(args: &HaltArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let (switch, namespace) = switch(&args.cluster).await?;
    let by = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
    switch.halt(&args.reason, &by).await?;
    writeln!(
        out,
        "chaos halted in namespace {namespace}: {}",
        args.reason
    )?;
    Ok(ExitStatus::Success)
}

/// Turns the switch off.
///
/// # Errors
/// When the cluster cannot be reached or written.
pub async fn resume(cluster: &ClusterFlags, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let (switch, namespace) = switch(cluster).await?;
    switch.resume().await?;
    writeln!(out, "chaos may run again (namespace {namespace})")?;
    Ok(ExitStatus::Success)
}

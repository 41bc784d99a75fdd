//! `steadfast sandbox up`: the local cluster for people, running until Ctrl-C.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::cli::{SandboxArgs, SandboxCommand, SandboxUpArgs};
use crate::exit::ExitStatus;
use crate::sandbox::{HostileSpec, RbacMode, Sandbox, SandboxOptions, Topology};

/// How long the topology may take to become Ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a sandbox subcommand.
///
/// # Errors
/// When the sandbox cannot start.
pub async fn run(args: &SandboxArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    match &args.command {
        SandboxCommand::Up(up) => up_until_interrupted(up, out).await,
    }
}

/// A started sandbox and the directory it writes to (kept alive as long as the sandbox).
pub struct RunningSandbox {
    /// The sandbox.
    pub sandbox: Sandbox,
    /// Its directory, removed on drop when it was temporary.
    pub dir: PathBuf,
    /// The mirror of the linked cloud: it stops when dropped, so it lives as long as this.
    _cloud: Option<crate::sandbox::cloud::CloudLink>,
    /// `(namespace/name, kubeconfig)` of each `--service-account`.
    pub service_account_kubeconfigs: Vec<(String, PathBuf)>,
    _temp: Option<tempfile::TempDir>,
}

/// Starts the sandbox of `args` and waits until its workloads are Ready.
///
/// # Errors
/// When the topology is invalid or the sandbox does not become Ready in time.
pub async fn start(args: &SandboxUpArgs) -> anyhow::Result<RunningSandbox> {
    let mut topology = Topology::load(&args.topology)?;
    if args.enforce_rbac {
        topology.rbac = RbacMode::Enforce;
    }
    if let Some(seed) = args.hostile {
        topology.hostile = Some(HostileSpec::preset(seed));
    }
    let (dir, temp) = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: cannot create", dir.display()))?;
            (dir.clone(), None)
        }
        None => {
            let temp = tempfile::Builder::new()
                .prefix("steadfast-sandbox-")
                .tempdir()?;
            (temp.path().to_owned(), Some(temp))
        }
    };
    let sandbox = Sandbox::start(&topology, SandboxOptions::new(&dir)).await?;
    let endpoint = args.aws_endpoint.clone().or_else(|| {
        std::env::var("AWS_ENDPOINT_URL")
            .ok()
            .filter(|e| !e.is_empty())
    });
    let mut cloud = None;
    if let Some(endpoint) = endpoint {
        let link = sandbox
            .link_cloud(crate::sandbox::cloud::CloudOptions::new(
                &endpoint,
                &topology_name(&args.topology),
            ))
            .await
            .with_context(|| format!("cannot link the sandbox to {endpoint}"))?;
        cloud = Some(link);
    }
    sandbox.wait_ready(READY_TIMEOUT).await?;
    let mut service_account_kubeconfigs = Vec::new();
    for (namespace, name) in &args.service_account {
        let path = sandbox
            .write_service_account_kubeconfig(namespace, name)
            .with_context(|| format!("--service-account {namespace}/{name}"))?;
        service_account_kubeconfigs.push((format!("{namespace}/{name}"), path));
    }
    Ok(RunningSandbox {
        sandbox,
        service_account_kubeconfigs,
        dir: dir.clone(),
        _cloud: cloud,
        _temp: temp,
    })
}

fn topology_name(path: &std::path::Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("sandbox")
        .to_owned()
}

async fn up_until_interrupted(
    args: &SandboxUpArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let running = start(args).await?;
    let sandbox = &running.sandbox;
    let kubeconfig = sandbox.kubeconfig_path().display().to_string();
    writeln!(out, "sandbox ready: {}", sandbox.api_url())?;
    writeln!(out, "kubeconfig:    {kubeconfig}")?;
    if sandbox.enforces_rbac() {
        writeln!(
            out,
            "rbac:          enforced (the kubeconfig above is system:masters)"
        )?;
    }
    if let Some(seed) = args.hostile {
        writeln!(
            out,
            "hostile:       seed {seed}: 10% 500/503/504, 5% 429 with Retry-After, 2% dropped connections, watches closed after 3-8 s, 20% of resumes 410 Gone"
        )?;
    }
    for (account, path) in &running.service_account_kubeconfigs {
        writeln!(
            out,
            "kubeconfig:    {}  (ServiceAccount {account})",
            path.display()
        )?;
    }
    writeln!(out, "nodes:         {}", node_list(&sandbox.node_names()))?;
    for (namespace, service) in services(&args.topology) {
        if let Some(url) = sandbox.service_url(&namespace, &service) {
            writeln!(out, "service:       {namespace}/{service} -> {url}")?;
        }
    }
    writeln!(
        out,
        "\ntry:  export KUBECONFIG={kubeconfig}; kubectl get nodes -o wide; kubectl get pods -A"
    )?;
    writeln!(
        out,
        "then: steadfast run experiments/demo.yaml   (Ctrl-C here stops the sandbox)"
    )?;
    out.flush()?;
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    running.sandbox.shutdown().await;
    Ok(ExitStatus::Success)
}

/// `(namespace, service)` pairs of a topology, for printing their URLs.
fn services(path: &std::path::Path) -> Vec<(String, String)> {
    Topology::load(path)
        .map(|t| {
            t.deployments
                .iter()
                .filter(|d| d.service.is_some())
                .map(|d| (d.namespace.clone(), d.name.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The node names, or on a large sandbox their count and the first few: a line per hundred
/// nodes would bury the rest of the summary.
fn node_list(names: &[String]) -> String {
    const SHOWN: usize = 6;
    if names.len() <= SHOWN {
        return names.join(", ");
    }
    format!(
        "{} nodes: {}, ... (kubectl get nodes lists them)",
        names.len(),
        names[..SHOWN].join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::node_list;

    #[test]
    fn a_large_sandbox_shows_its_node_count_and_the_first_few() {
        let names = |n: usize| (0..n).map(|i| format!("n{i}")).collect::<Vec<_>>();
        assert_eq!(node_list(&names(2)), "n0, n1");
        assert_eq!(
            node_list(&names(500)),
            "500 nodes: n0, n1, n2, n3, n4, n5, ... (kubectl get nodes lists them)"
        );
    }
}

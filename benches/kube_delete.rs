//! Benchmark: delete 1,000 selected pods from the sandbox at a given client QPS.
//!
//! The promise under test: steadfast paces itself. Deleting N pods at QPS q must take no longer
//! than 1.2 × N / q of wall time (the rate limiter is neither too slow nor leaky), whatever the
//! cluster does meanwhile (here the ReplicaSet controller recreates every pod).
//!
//! `cargo bench --bench kube_delete -- [--qps 100] [--burst 10] [--pods 1000]`
//!
//! Prints one JSON object: wall time of the deletions, achieved rate, the bound, peak RSS of the
//! process (which also hosts the sandbox) before and after. Exits non-zero over the bound.

use std::time::{Duration, Instant};

use steadfast::fault::Effect;
use steadfast::fault::Fault;
use steadfast::fault::kube_context::KubeFaultContext;
use steadfast::fault::pod_kill::PodKill;
use steadfast::infra::kube::{KubeClient, KubeOptions};
use steadfast::sandbox::{Sandbox, SandboxOptions, Topology};
use steadfast::spec::fault::{PodKillSpec, PodTargetSpec, SelectionMode};
use steadfast::spec::safety::SafetySpec;
use steadfast::spec::{DurationSpec, Percent};

fn arg(name: &str, default: u32) -> u32 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident set size of this process, in KiB (Linux `VmHWM`).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn topology(pods: u32) -> String {
    // 110 pods per node at most, as the kubelet's default; a third spare.
    let nodes_per_zone = (pods * 4 / 3).div_ceil(110 * 3).max(1);
    format!(
        r#"
apiVersion: steadfast.dev/v1alpha1
kind: SandboxTopology
region: us-east-1
zones:
  - {{name: us-east-1a, nodes: {nodes_per_zone}}}
  - {{name: us-east-1b, nodes: {nodes_per_zone}}}
  - {{name: us-east-1c, nodes: {nodes_per_zone}}}
timing:
  podStartupDelay: 100ms
  nodeBootDelay: 100ms
  terminationGracePeriod: 1s
  leaseRenewInterval: 1s
deployments:
  - {{name: small, namespace: bench, replicas: {pods}, labels: {{app: small}}}}
"#
    )
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let qps = arg("--qps", 100);
    let burst = arg("--burst", 10);
    let pods = arg("--pods", 1000);
    let topology = Topology::parse(&topology(pods), "bench topology")?;
    let dir = tempfile::tempdir()?;
    let sandbox = Sandbox::start(&topology, SandboxOptions::new(dir.path())).await?;
    sandbox.wait_ready(Duration::from_secs(600)).await?;
    let rss_before = peak_rss_kib();

    let kube = KubeClient::connect(&KubeOptions {
        kubeconfig: Some(sandbox.kubeconfig_path().to_path_buf()),
        qps,
        burst,
        ..KubeOptions::default()
    })
    .await?;
    let safety = SafetySpec {
        allow_namespaces: vec!["bench".into()],
        max_pods: pods,
        max_percent: Percent::new(100.0),
        api_qps: qps,
        api_burst: burst,
        ..SafetySpec::default()
    };
    let fault = PodKill::new(
        "bench".into(),
        PodKillSpec {
            target: PodTargetSpec {
                namespaces: vec!["bench".into()],
                selector: Some("app=small".into()),
                mode: SelectionMode::All,
                ..PodTargetSpec::default()
            },
            grace_period: DurationSpec::from_secs(0),
        },
        KubeFaultContext {
            kube,
            safety,
            run_seed: 1,
            own_pod: None,
        },
    );
    let plan_start = Instant::now();
    let plan = fault.plan("bench", 0).await?;
    let plan_time = plan_start.elapsed();
    let start = Instant::now();
    let injection = fault.inject(&plan).await?;
    let wall = start.elapsed();
    let deleted = injection
        .effects
        .iter()
        .filter(|e| e.effect == Effect::Applied)
        .count();
    let bound = Duration::from_secs_f64(1.2 * f64::from(pods) / f64::from(qps));
    let report = serde_json::json!({
        "pods": pods,
        "chosen": plan.targets.len(),
        "deleted": deleted,
        "qps": qps,
        "burst": burst,
        "planSeconds": plan_time.as_secs_f64(),
        "deleteWallSeconds": wall.as_secs_f64(),
        "achievedPerSecond": deleted as f64 / wall.as_secs_f64(),
        "boundSeconds": bound.as_secs_f64(),
        "withinBound": wall <= bound,
        "peakRssKiBBeforeDeleting": rss_before,
        "peakRssKiB": peak_rss_kib(),
    });
    println!("{report:#}");
    sandbox.shutdown().await;
    anyhow::ensure!(deleted == pods as usize, "deleted {deleted} of {pods}");
    anyhow::ensure!(wall <= bound, "{wall:?} is over the bound of {bound:?}");
    Ok(())
}

//! Cluster scale, as a regression test: a 3% pod kill among 3,000 `web` pods on 150 nodes
//! (debug build, bounds loose enough for a busy 2-core machine). The self-healing target must
//! pass, with a healing time no shorter than a pod can start and equal to what a Deployment
//! probe saw; the firing must act at its instant; and the run must not outlast its phases. The
//! release-build numbers at 10,000 pods come from `scripts/bench-scale`.

mod support;

#[path = "support/world.rs"]
mod world;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use steadfast::sandbox::Topology;
use support::sandbox::{both, repo};
use world::start_world_with;

/// 3% of `web`, with the Deployment probe watching its ready count.
const EXPERIMENT: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: Experiment
metadata:
  name: kill-3-percent
spec:
  duration: 20s
  steadyState:
    before: 3s
    after: 3s
    recoveryTimeout: 30s
    probes:
      - name: web-replicas
        kubernetes:
          workload: {kind: Deployment, namespace: shop, name: web}
  faults:
    - name: kill-web
      at: 2s
      for: 15s
      podKill:
        target: {namespaces: [shop], selector: app=web, mode: percent, percent: 3%}
  targets:
    - {probe: web-replicas, selfHealing: "<= 20s"}
  safety:
    allowNamespaces: [shop]
    maxPods: 100
    apiQps: 50
"#;

/// The shipped topology grown to 50 nodes per zone and 3,000 `web` pods.
fn large_topology() -> String {
    let text = std::fs::read_to_string(repo().join("experiments/sandbox/topology.yaml")).unwrap();
    let grown = text
        .replace("nodes: 2", "nodes: 50")
        .replace("replicas: 6", "replicas: 3000");
    assert_ne!(grown, text, "the shipped topology still names its sizes");
    grown
}

fn report_in(reports: &Path) -> Value {
    let dir = std::fs::read_dir(reports)
        .unwrap()
        .next()
        .expect("a report directory")
        .unwrap()
        .path();
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

fn number(value: &Value, field: &str) -> f64 {
    value[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} in {value:#}"))
}

/// The instant the Deployment probe first saw `web` whole again after `from`, and the gap to
/// its previous evaluation (how late it may have seen it).
fn probe_whole_after(report: &Value, from: f64, desired: f64) -> (f64, f64) {
    let probe = report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "web-replicas")
        .expect("the Deployment probe is reported");
    let series: Vec<(f64, f64)> = probe["evaluations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| Some((e["at"].as_f64()?, e["value"].as_f64()?)))
        .collect();
    let dip = series
        .iter()
        .position(|(at, ready)| *at >= from && *ready < desired)
        .unwrap_or_else(|| panic!("the probe saw the dip after {from}: {series:?}"));
    let whole = dip
        + series[dip..]
            .iter()
            .position(|(_, ready)| *ready >= desired)
            .unwrap_or_else(|| panic!("the probe saw the Deployment whole: {series:?}"));
    (series[whole].0, series[whole].0 - series[whole - 1].0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_percent_kill_of_3000_pods_is_timed_and_healed_truthfully() {
    let text = large_topology();
    let topology = Topology::parse(&text, "topology.yaml").unwrap();
    let world = start_world_with(&text, false)
        .await
        .expect("a world without a cloud link starts");
    world.namespace("steadfast-scale").await;
    let experiment = world.dir.path().join("kill-3-percent.yaml");
    std::fs::write(&experiment, EXPERIMENT).unwrap();
    let reports = world.dir.path().join("reports");
    let mut command = world.command(
        &["run", experiment.to_str().unwrap(), "--seed", "7"],
        "steadfast-scale",
    );
    command
        .env("STEADFAST_REPORTS_DIR", &reports)
        .kill_on_drop(true);
    let started = Instant::now();
    let output = tokio::time::timeout(Duration::from_secs(180), command.output())
        .await
        .expect("the run ends within three minutes")
        .expect("the binary starts");
    let wall = started.elapsed().as_secs_f64();
    let report = report_in(&reports);
    assert_eq!(
        output.status.code(),
        Some(0),
        "the self-healing target passes at 3,000 pods: {}\n{:#}",
        both(&output),
        report["targets"]
    );

    let fault = &report["faults"][0];
    let firing = &fault["firingTimes"][0];
    let actions: Vec<f64> = firing["actions"]
        .as_array()
        .expect("action times")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    assert_eq!(actions.len(), 90, "3% of 3,000 pods: {firing:#}");
    let startup = topology
        .timing
        .pod_startup_delay
        .expect("the topology sets a start-up delay")
        .as_secs_f64();
    let healed_after = number(fault, "healedAfterSeconds");
    let healed_at = number(firing, "healedAt");
    let first = actions.iter().copied().fold(f64::INFINITY, f64::min);
    let (whole_at, gap) = probe_whole_after(&report, first, 3000.0);
    let lag = number(firing, "lagMs");
    let spread = number(firing, "spreadMs");
    let run_end = number(&report["windows"]["run"], "end");
    eprintln!(
        "lag {lag:.0} ms, spread {spread:.0} ms, healed after {healed_after:.3} s at {healed_at:.3}, \
         probe whole at {whole_at:.3} (gap {gap:.3}), run {run_end:.1} s, process {wall:.1} s"
    );
    assert!(
        healed_after >= startup,
        "healed after {healed_after} s, sooner than a pod can start ({startup} s)"
    );
    assert!(
        (healed_at - whole_at).abs() <= gap + 0.5,
        "healed at {healed_at}, the probe saw the Deployment whole at {whole_at} (gap {gap})"
    );
    // Targets are resolved ahead of the instant: planning 3,000 pods does not delay the kill.
    assert!(lag <= 1_000.0, "scheduled to first action: {lag} ms");
    // 90 deletes at 50/s with a burst of 10 take 1.6 s; the bound is twice targets/qps + 0.5 s.
    assert!(spread <= 2.0 * (90.0 / 50.0 + 0.5) * 1_000.0, "{spread} ms");
    // Nothing is waited for silently after the last phase.
    assert!(
        wall <= run_end + 10.0,
        "the process took {wall:.1} s for a {run_end:.1} s run"
    );
}

//! What a report says about a `mode: all` pod kill must match what the cluster did: each
//! firing's pods go at once (the spread between the first and the last delete stays small),
//! and the self-healing time runs from the deletes until the Deployment is whole again, as a
//! Deployment probe watching on its own saw it. Runs `steadfast run` against the shipped
//! sandbox topology.

mod support;

#[path = "support/world.rs"]
mod world;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use steadfast::sandbox::Topology;
use support::sandbox::{both, repo};
use world::start_world_with;

/// Killing every `web` pod every 5 s, with a Deployment probe watching the ready count.
const EXPERIMENT: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: Experiment
metadata:
  name: kill-all-web
spec:
  duration: 15s
  steadyState:
    before: 3s
    after: 3s
    recoveryTimeout: 30s
    probes:
      - name: web-replicas
        kubernetes:
          workload: {kind: Deployment, namespace: shop, name: web}
  faults:
    - name: kill-all-web
      at: 1s
      for: 13s
      every: 5s
      podKill:
        target: {namespaces: [shop], selector: app=web, mode: all}
  targets:
    - {probe: web-replicas, selfHealing: "<= 15s"}
  safety:
    allowNamespaces: [shop]
    maxPods: 6
    maxPercent: 100%
"#;

/// One run at a time: two sandboxes on a small machine would blur the timings measured.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The shipped topology and the report of one run of [`EXPERIMENT`] on it.
async fn run_kill_all() -> (Topology, Value) {
    let text = std::fs::read_to_string(repo().join("experiments/sandbox/topology.yaml")).unwrap();
    let topology = Topology::parse(&text, "topology.yaml").unwrap();
    // Without a cloud link nothing can be missing: the world always starts.
    let world = start_world_with(&text, false)
        .await
        .expect("a world without a cloud link starts");
    world.namespace("steadfast-truth").await;
    let experiment = world.dir.path().join("kill-all-web.yaml");
    std::fs::write(&experiment, EXPERIMENT).unwrap();
    let reports = world.dir.path().join("reports");
    let mut command = world.command(
        &["run", experiment.to_str().unwrap(), "--seed", "5"],
        "steadfast-truth",
    );
    command
        .env("STEADFAST_REPORTS_DIR", &reports)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the run ends within two minutes")
        .expect("the binary starts");
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "the run is judged: {}",
        both(&output)
    );
    (topology, report_in(&reports))
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

fn fault(report: &Value) -> &Value {
    &report["faults"][0]
}

fn firings(report: &Value) -> &Vec<Value> {
    fault(report)["firingTimes"]
        .as_array()
        .unwrap_or_else(|| panic!("per-firing times in {:#}", fault(report)))
}

fn number(value: &Value, field: &str) -> f64 {
    value[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} in {value:#}"))
}

/// The Deployment probe's recorded (instant, ready count) series.
fn deployment_series(report: &Value) -> Vec<(f64, f64)> {
    let probe = report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "web-replicas")
        .expect("the Deployment probe is reported");
    probe["evaluations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| Some((e["at"].as_f64()?, e["value"].as_f64()?)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healing_runs_from_the_deletes_until_the_deployment_is_whole_again() {
    let _serial = SERIAL.lock().await;
    let (topology, report) = run_kill_all().await;
    let startup = topology
        .timing
        .pod_startup_delay
        .expect("the topology sets a start-up delay")
        .as_secs_f64();
    let desired = f64::from(topology.deployments[0].replicas);
    let overall = number(fault(&report), "healedAfterSeconds");
    eprintln!("reported healed after {overall:.3} s; start-up delay {startup} s");
    assert!(
        overall >= startup,
        "healed after {overall} s, sooner than a pod can start ({startup} s)"
    );
    let series = deployment_series(&report);
    let firings = firings(&report);
    assert!(firings.len() >= 2, "{firings:#?}");
    for firing in firings {
        let first_action = firing["actions"]
            .as_array()
            .expect("action times")
            .iter()
            .filter_map(Value::as_f64)
            .fold(f64::INFINITY, f64::min);
        let healed_at = number(firing, "healedAt");
        let after = number(firing, "healedAfterSeconds");
        assert!(after >= startup, "{firing:#}");
        assert!(
            (healed_at - first_action - after).abs() < 0.002,
            "{firing:#}"
        );
        // The probe's series: the first instant after the deletes it showed fewer than desired,
        // then the first instant it showed the Deployment whole again.
        let dip = series
            .iter()
            .position(|(at, ready)| *at >= first_action && *ready < desired)
            .unwrap_or_else(|| panic!("the probe saw the dip after {first_action}: {series:?}"));
        let whole = dip
            + series[dip..]
                .iter()
                .position(|(_, ready)| *ready >= desired)
                .unwrap_or_else(|| panic!("the probe saw the Deployment whole: {series:?}"));
        let (whole_at, _) = series[whole];
        let gap = whole_at - series[whole - 1].0;
        eprintln!(
            "firing at {first_action:.3}: healed at {healed_at:.3} ({after:.3} s), probe whole at {whole_at:.3} (gap {gap:.3})"
        );
        assert!(
            (healed_at - whole_at).abs() <= gap + 0.02,
            "healed at {healed_at}, the probe saw the Deployment whole at {whole_at} (gap {gap}): {series:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mode_all_firing_issues_its_deletes_at_once() {
    let _serial = SERIAL.lock().await;
    let (topology, report) = run_kill_all().await;
    let replicas = topology.deployments[0].replicas as usize;
    let series = deployment_series(&report);
    for firing in firings(&report) {
        let actions = firing["actions"].as_array().expect("action times");
        assert_eq!(actions.len(), replicas, "{firing:#}");
        let times: Vec<f64> = actions.iter().filter_map(Value::as_f64).collect();
        let first = times.iter().copied().fold(f64::INFINITY, f64::min);
        let last = times.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let spread = number(firing, "spreadMs");
        let lag = number(firing, "lagMs");
        eprintln!(
            "firing {}: spread {spread:.1} ms, lag {lag:.1} ms",
            firing["firing"]
        );
        assert!(((last - first) * 1000.0 - spread).abs() < 1.0, "{firing:#}");
        assert!(
            (first - number(firing, "scheduledAt")) * 1000.0 - lag < 1.0,
            "{firing:#}"
        );
        assert!(spread < 100.0, "six deletes spread over {spread} ms");
        // The cluster's side: the Deployment probe saw every pod gone within 100 ms of the
        // first one, not one more every 1/qps.
        let dip = series
            .iter()
            .position(|(at, ready)| *at >= first && *ready < replicas as f64)
            .unwrap_or_else(|| panic!("the probe saw the dip after {first}: {series:?}"));
        let (dip_at, _) = series[dip];
        let (gone_at, _) = series[dip..]
            .iter()
            .take_while(|(_, ready)| *ready < replicas as f64)
            .find(|(_, ready)| *ready == 0.0)
            .copied()
            .unwrap_or_else(|| panic!("the probe saw no instant with every pod gone: {series:?}"));
        eprintln!(
            "  the probe saw all gone {:.1} ms after the first",
            (gone_at - dip_at) * 1000.0
        );
        assert!(
            gone_at - dip_at < 0.1,
            "the pods went over {} s: {series:?}",
            gone_at - dip_at
        );
    }
}

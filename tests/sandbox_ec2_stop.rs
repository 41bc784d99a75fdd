//! The `ec2-stop` example end to end: `steadfast run experiments/sandbox/ec2-stop.yaml` against
//! the shipped sandbox topology linked to moto. Stopping a node's instance must show as a real
//! dip in the Service's availability (its backends refuse connections until the node is
//! `Unknown` and its pods leave the endpoints), and the run must see the cluster heal after the
//! instance is started again.

mod support;

#[path = "support/world.rs"]
mod world;

use std::time::Duration;

use serde_json::Value;
use support::sandbox::{both, repo};
use world::start_world_with;

/// The experiment lasts 40 s plus 10 s of steady state and up to 30 s of recovery; the rest is
/// room for a loaded machine.
const RUN_LIMIT: Duration = Duration::from_secs(240);

/// The one probe window of `probe` named `window`.
fn window<'a>(report: &'a Value, probe: &str, window: &str) -> &'a Value {
    let probe = report["probes"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == probe))
        .unwrap_or_else(|| panic!("probe {probe} in the report"));
    &probe["windows"][window]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2_stop_example_measures_the_dip_and_the_heal() {
    let topology =
        std::fs::read_to_string(repo().join("experiments/sandbox/topology.yaml")).unwrap();
    let Some(world) = start_world_with(&topology, true).await else {
        return;
    };
    let reports = world.dir.path().join("reports");
    let namespace = "steadfast-ec2-stop";
    world.namespace(namespace).await;
    let mut command = world.command(
        &["run", "experiments/sandbox/ec2-stop.yaml", "--seed", "11"],
        namespace,
    );
    command
        .env("STEADFAST_REPORTS_DIR", &reports)
        .kill_on_drop(true);
    let output = tokio::time::timeout(RUN_LIMIT, command.output())
        .await
        .unwrap_or_else(|_| panic!("ec2-stop ran longer than {RUN_LIMIT:?}"))
        .expect("the binary starts");
    let runs: Vec<_> = std::fs::read_dir(&reports)
        .unwrap_or_else(|e| panic!("no reports ({e}):\n{}", both(&output)))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(runs[0].join("report.json")).unwrap())
            .unwrap();
    let during = window(&report, "web", "during");
    let run = window(&report, "web", "run");
    let context = format!(
        "web during: {during}\nweb run: {run}\nverdict: {}\nfaults: {}\n{}",
        report["verdict"],
        report["faults"],
        both(&output)
    );
    eprintln!(
        "ec2-stop: availability during {} (run {}), longest outage {} s",
        during["availability"], run["availability"], during["longestOutageSeconds"]
    );

    // The dip is real: requests failed while the machine was off, in an outage of some length.
    let availability = during["availability"].as_f64().expect("availability");
    assert!(availability < 1.0, "no dip measured: {context}");
    assert!(
        during["attempts"].as_u64().unwrap_or(0) > 1000,
        "the probe kept its rate: {context}"
    );
    let longest = during["longestOutageSeconds"].as_f64().expect("outage");
    assert!(longest > 0.0, "{context}");
    assert!(
        run["failures"].to_string().contains("connect"),
        "the failures are refused connections: {context}"
    );

    // And the heal: recovery was measured (the dip lasts about the monitor grace, 10 s, until
    // the node is Unknown and its pods leave the Service), steady state after held.
    assert_eq!(report["faults"][0]["kind"], "ec2Stop", "{context}");
    let recovery = report["targets"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["measure"] == "recovery"))
        .unwrap_or_else(|| panic!("a recovery target: {context}"));
    let recovered = recovery["value"].as_f64().expect("recovery measured");
    eprintln!("ec2-stop: recovered {recovered} s after the stop");
    assert!(recovered > 0.0, "{recovery}\n{context}");
    assert_eq!(recovery["passed"], true, "{recovery}\n{context}");
    assert_eq!(
        window(&report, "web", "after")["availability"].as_f64(),
        Some(1.0),
        "{context}"
    );
    assert_eq!(
        window(&report, "web-replicas", "after")["satisfied"].as_f64(),
        Some(1.0),
        "replicas whole after: {context}"
    );
    assert_eq!(report["rollback"]["complete"], true, "{context}");
    assert_eq!(report["verdict"]["outcome"], "passed", "{context}");
    assert_eq!(output.status.code(), Some(0), "{context}");
    // Nodes Ready, replicas whole, nothing pending in the cloud or the cluster.
    if let Err(damage) = world.restored(Duration::from_secs(45)).await {
        panic!("left behind: {damage}\n{context}");
    }
}

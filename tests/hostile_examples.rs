//! The Kubernetes examples of `experiments/sandbox/` under the sandbox's `--hostile` preset
//! (10% 500/503/504, 5% APF 429, watches closed after 3–8 s, seeded): each ends with the same
//! exit code as on a friendly sandbox, its measured availability within 0.5 percentage points,
//! and leaves nothing behind.

mod support;

#[path = "support/world.rs"]
mod world;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use steadfast::sandbox::HostileSpec;
use support::sandbox::{both, repo};
use world::start_world_with;

/// An example lasts about 45 s; retries under hostility add a little.
const RUN_LIMIT: Duration = Duration::from_secs(180);

/// The examples that only need the Kubernetes API.
const EXAMPLES: [&str; 2] = ["pod-kill.yaml", "pod-evict.yaml"];

/// Runs `example` in state namespace `namespace`; its exit code and `web` availability.
async fn run(world: &world::World, example: &str, namespace: &str) -> (Option<i32>, f64, String) {
    world.namespace(namespace).await;
    let reports = world.dir.path().join(format!("reports-{namespace}"));
    let path = format!("experiments/sandbox/{example}");
    let mut command = world.command(&["run", &path, "--seed", "11"], namespace);
    command
        .env("STEADFAST_REPORTS_DIR", &reports)
        .kill_on_drop(true);
    let output = tokio::time::timeout(RUN_LIMIT, command.output())
        .await
        .unwrap_or_else(|_| panic!("{example} ran longer than {RUN_LIMIT:?}"))
        .expect("the binary starts");
    let report =
        only_report(&reports).unwrap_or_else(|| panic!("{example}: no report\n{}", both(&output)));
    let availability = report["probes"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "web"))
        .and_then(|p| p["windows"]["run"]["availability"].as_f64())
        .unwrap_or_else(|| panic!("{example}: web availability in {report}"));
    (output.status.code(), availability, both(&output))
}

/// Total misbehaviours the sandbox injected so far.
async fn injected(world: &world::World) -> u64 {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("request");
    let text = world
        .kube
        .request_text(request)
        .await
        .expect("/metrics answers under hostility");
    text.lines()
        .filter(|l| l.starts_with("steadfast_sandbox_hostile_injected_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum()
}

fn only_report(dir: &Path) -> Option<Value> {
    let run = std::fs::read_dir(dir).ok()?.next()?.ok()?.path();
    serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).ok()?).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_examples_end_alike_on_a_friendly_and_a_hostile_api_server() {
    let topology =
        std::fs::read_to_string(repo().join("experiments/sandbox/topology.yaml")).unwrap();
    let world = start_world_with(&topology, false)
        .await
        .expect("a sandbox without cloud needs no tool");
    let mut failures = Vec::new();
    for (i, example) in EXAMPLES.iter().enumerate() {
        let (friendly_exit, friendly, _) = run(&world, example, &format!("friendly-{i}")).await;
        if let Err(damage) = world.restored(Duration::from_secs(45)).await {
            failures.push(format!("{example} (friendly): left behind: {damage}"));
        }
        world.sandbox.set_hostile(Some(HostileSpec::preset(3)));
        let started = Instant::now();
        let (hostile_exit, hostile, output) = run(&world, example, &format!("hostile-{i}")).await;
        let took = started.elapsed();
        let injected = injected(&world).await;
        world.sandbox.set_hostile(None);
        eprintln!(
            "{example}: friendly exit {friendly_exit:?} availability {:.3}%, hostile exit {hostile_exit:?} availability {:.3}% in {:.1}s, {injected} injections",
            friendly * 100.0,
            hostile * 100.0,
            took.as_secs_f64()
        );
        if friendly_exit != hostile_exit {
            failures.push(format!(
                "{example}: exit {hostile_exit:?} under hostility, {friendly_exit:?} without\n{output}"
            ));
        }
        if (friendly - hostile).abs() > 0.005 {
            failures.push(format!(
                "{example}: availability {hostile} under hostility, {friendly} without"
            ));
        }
        if let Err(damage) = world.restored(Duration::from_secs(45)).await {
            failures.push(format!("{example} (hostile): left behind: {damage}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

//! The project's end-to-end examples: every experiment in `experiments/sandbox/` runs with
//! `steadfast run` against the shipped sandbox topology, linked to moto for the AWS faults. Each
//! must meet its targets, leave nothing pending, and leave the cluster and the cloud as they
//! were; so the examples a user copies are known to work.

mod support;

#[path = "support/world.rs"]
mod world;

use std::path::Path;
use std::time::{Duration, Instant};

use support::sandbox::{both, repo};
use world::start_world_with;

/// The longest experiment here lasts a minute plus its steady-state windows and recovery.
const RUN_LIMIT: Duration = Duration::from_secs(180);

/// Experiments that are not fault runs: the topology itself and the probe-only example.
const NOT_RUNS: [&str; 2] = ["topology.yaml", "steady-state.yaml"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sandbox_experiment_meets_its_targets_and_leaves_nothing_behind() {
    let dir = repo().join("experiments/sandbox");
    let topology = std::fs::read_to_string(dir.join("topology.yaml")).unwrap();
    let Some(world) = start_world_with(&topology, true).await else {
        eprintln!("SKIPPED: moto_server is not installed (scripts/setup installs it)");
        return;
    };
    let mut experiments: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension().is_some_and(|e| e == "yaml")
                && !NOT_RUNS.contains(&path.file_name().unwrap().to_str().unwrap())
        })
        .collect();
    experiments.sort();
    assert!(
        experiments.len() >= 8,
        "one experiment per fault kind at least: {experiments:?}"
    );

    let reports = world.dir.path().join("reports");
    let mut failures = Vec::new();
    for (i, experiment) in experiments.iter().enumerate() {
        let name = experiment
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        // A state namespace per run: each run's lease is its own.
        let namespace = format!("steadfast-e2e-{i}");
        world.namespace(&namespace).await;
        let started = Instant::now();
        let output = run(&world, experiment, &reports, &namespace).await;
        eprintln!(
            "{name}: exit {:?} in {:.1}s",
            output.status.code(),
            started.elapsed().as_secs_f64()
        );
        if output.status.code() != Some(0) {
            failures.push(format!(
                "{name}: exit {:?}\n{}",
                output.status.code(),
                both(&output)
            ));
        }
        if let Err(damage) = world.restored(Duration::from_secs(45)).await {
            failures.push(format!("{name}: left behind: {damage}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let written = std::fs::read_dir(&reports).unwrap().count();
    assert_eq!(written, experiments.len(), "a report directory per run");
}

async fn run(
    world: &world::World,
    experiment: &Path,
    reports: &Path,
    namespace: &str,
) -> std::process::Output {
    let path = experiment.to_str().unwrap();
    let mut command = world.command(&["run", path, "--seed", "11"], namespace);
    command
        .env("STEADFAST_REPORTS_DIR", reports)
        .kill_on_drop(true);
    tokio::time::timeout(RUN_LIMIT, command.output())
        .await
        .unwrap_or_else(|_| panic!("{path} ran longer than {RUN_LIMIT:?}"))
        .expect("the binary starts")
}

//! `steadfast init` end to end: on the sandbox it writes starters for the shop's Services that
//! `validate` and `plan` accept and that `run` carries to a verdict.

mod support;
#[path = "support/world.rs"]
mod world;

use std::collections::BTreeSet;
use std::time::Duration;

use support::sandbox::{both, repo};

const STATE_NAMESPACE: &str = "steadfast-init";
/// Steady state before and after (5 s each) + 12 s of faults + recovery, with room to spare.
const RUN_LIMIT: Duration = Duration::from_secs(150);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_writes_starters_that_validate_plan_and_run_to_a_verdict() {
    let shipped =
        std::fs::read_to_string(repo().join("experiments/sandbox/topology.yaml")).unwrap();
    let world = world::start_world_with(&shipped, false)
        .await
        .expect("no cloud needed");
    world.namespace(STATE_NAMESPACE).await;
    let out_dir = world.dir.path().join("starters");
    let out_arg = out_dir.to_str().unwrap();

    let init = world
        .output(
            &[
                "init",
                "--namespace",
                "shop",
                "--out",
                out_arg,
                "--duration",
                "12s",
            ],
            STATE_NAMESPACE,
        )
        .await;
    assert_eq!(init.status.code(), Some(0), "{}", both(&init));
    let written: BTreeSet<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    // web has a budget, so it also gets a drain; api has none.
    let want: BTreeSet<String> = [
        "api-pod-kill.yaml",
        "api-zone-outage.yaml",
        "web-node-drain.yaml",
        "web-pod-kill.yaml",
        "web-zone-outage.yaml",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(written, want, "{}", both(&init));
    let web = std::fs::read_to_string(out_dir.join("web-pod-kill.yaml")).unwrap();
    // The readiness probe's path, the Service's port, faults confined to the namespace.
    assert!(
        web.contains("service: {namespace: shop, name: web, port: 80, path: \"/healthz\"}"),
        "{web}"
    );
    assert!(web.contains("allowNamespaces: [shop]"), "{web}");

    // A second init refuses to overwrite.
    let again = world
        .output(
            &["init", "--namespace", "shop", "--out", out_arg],
            STATE_NAMESPACE,
        )
        .await;
    assert_eq!(again.status.code(), Some(2), "{}", both(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("--force"),
        "{}",
        both(&again)
    );

    let validate =
        support::sandbox::run(&["validate", out_arg], &[], Duration::from_secs(30)).await;
    assert_eq!(validate.status.code(), Some(0), "{}", both(&validate));

    for file in &want {
        let path = out_dir.join(file);
        let plan = world
            .output(
                &["plan", path.to_str().unwrap(), "-o", "json"],
                STATE_NAMESPACE,
            )
            .await;
        assert_eq!(plan.status.code(), Some(0), "{file}: {}", both(&plan));
        let doc: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
        let targets = doc["faults"][0]["plan"]["targets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            !targets.is_empty(),
            "{file} resolves no target: {}",
            both(&plan)
        );
    }

    let reports = world.dir.path().join("reports");
    let path = out_dir.join("web-pod-kill.yaml");
    let mut run = world.command(
        &["run", path.to_str().unwrap(), "--seed", "7"],
        STATE_NAMESPACE,
    );
    run.env("STEADFAST_REPORTS_DIR", &reports);
    let run = tokio::time::timeout(RUN_LIMIT, run.output())
        .await
        .expect("the run ends in time")
        .expect("the binary starts");
    let code = run.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "run exited {code:?}: {}",
        both(&run)
    );
    world.sandbox.shutdown().await;
}

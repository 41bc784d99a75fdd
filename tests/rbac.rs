//! `rbac::RULES` covers every request real runs make: experiments and the halt switch run
//! through the real binary against the sandbox, whose API server records each request's
//! (verb, resource). `tests/chart.rs` checks that the chart grants exactly `RULES`.

mod support;

use std::time::Duration;

use steadfast::infra::kube::access::ApiAccess;
use steadfast::infra::kube::rbac;
use support::sandbox::{both, run, start_in};

/// One run of an experiment on the sandbox is well under a minute; this bounds a stuck one.
const RUN_LIMIT: Duration = Duration::from_secs(180);

fn access(verb: &str, group: &str, resource: &str) -> ApiAccess {
    ApiAccess {
        group: group.into(),
        resource: resource.into(),
        verb: verb.into(),
    }
}

/// A representative set: podKill (with its http and kubernetes probes and the self-healing
/// watch) and nodeDrain (evictions, cordon, budgets), then `halt` and `resume`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_of_real_runs_is_granted_by_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start_in(dir.path()).await;
    let journal = dir.path().join("journal.jsonl");
    let reports = dir.path().join("reports");
    let env = [
        ("KUBECONFIG", sandbox.kubeconfig_path()),
        ("STEADFAST_JOURNAL", journal.as_path()),
        ("STEADFAST_REPORTS_DIR", reports.as_path()),
    ];
    for experiment in [
        "experiments/sandbox/pod-kill.yaml",
        "experiments/sandbox/node-drain.yaml",
    ] {
        let output = run(&["run", experiment, "--seed", "1"], &env, RUN_LIMIT).await;
        // 0 or 1: the run went through and rolled back; the verdict is not this test's concern.
        assert!(
            matches!(output.status.code(), Some(0 | 1)),
            "{experiment}: {}",
            both(&output)
        );
    }
    for args in [&["halt", "--reason", "rbac test"][..], &["resume"][..]] {
        let output = run(args, &env, RUN_LIMIT).await;
        assert_eq!(output.status.code(), Some(0), "{args:?}: {}", both(&output));
    }

    let used = sandbox.api_accesses();
    let granted = rbac::all_accesses();
    let missing: Vec<String> = used.difference(&granted).map(|a| a.to_string()).collect();
    assert!(
        missing.is_empty(),
        "requests not granted by rbac::RULES: {missing:?}\nall recorded: {used:?}"
    );
    // The recording saw each part of steadfast: faults, probes, lock, halt switch.
    for expected in [
        access("delete", "", "pods"),
        access("create", "", "pods/eviction"),
        access("patch", "", "nodes"),
        access("watch", "apps", "deployments"),
        access("get", "", "services"),
        access("update", "coordination.k8s.io", "leases"),
        access("create", "", "configmaps"),
        access("delete", "", "configmaps"),
    ] {
        assert!(
            used.contains(&expected),
            "{expected} was not recorded: {used:?}"
        );
    }
    sandbox.shutdown().await;
}

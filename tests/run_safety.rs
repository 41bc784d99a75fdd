//! Run-level safety against the sandbox with the real binary: a second run is refused with the
//! lock holder's identity, the halt switch refuses runs until resumed, and pending undo records
//! of an earlier run block a new one until they are rolled back.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use steadfast::engine::RunLock;
use steadfast::infra::cluster::LeaseLock;
use steadfast::sandbox::{Sandbox, SandboxOptions, Topology};

fn steadfast(args: &[&str], kubeconfig: &Path, journal: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_steadfast"))
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env("STEADFAST_JOURNAL", journal)
        .env("STEADFAST_NAMESPACE", "default")
        .output()
        .expect("the binary runs")
}

async fn sandbox(dir: &Path) -> Sandbox {
    let topology = Topology::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/sandbox/topology.yaml"),
    )
    .unwrap();
    let sandbox = Sandbox::start(&topology, SandboxOptions::new(dir))
        .await
        .unwrap();
    sandbox.wait_ready(Duration::from_secs(60)).await.unwrap();
    sandbox
}

async fn sandbox_client(kubeconfig: &Path) -> kube::Client {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    kube::Client::try_from(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_changes_nothing_a_second_run_is_refused_and_halt_stops_runs() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = sandbox(dir.path()).await;
    let kubeconfig = sandbox.kubeconfig_path().to_owned();
    let journal = dir.path().join("journal.jsonl");

    // A dry run chooses targets and describes undo without touching anything.
    let (k, j) = (kubeconfig.clone(), journal.clone());
    let planned = tokio::task::spawn_blocking(move || {
        let drain = steadfast(
            &[
                "plan",
                "experiments/sandbox/node-drain.yaml",
                "-o",
                "json",
                "--seed",
                "7",
            ],
            &k,
            &j,
        );
        let again = steadfast(
            &[
                "plan",
                "experiments/sandbox/node-drain.yaml",
                "-o",
                "json",
                "--seed",
                "7",
            ],
            &k,
            &j,
        );
        (drain, again)
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&planned.0.stdout);
    assert_eq!(
        planned.0.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&planned.0.stderr)
    );
    let plan: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let fault = &plan["faults"][0];
    assert_eq!(
        fault["plan"]["targets"].as_array().unwrap().len(),
        1,
        "{plan:#}"
    );
    assert!(
        fault["undo"][0]
            .as_str()
            .unwrap()
            .starts_with("uncordon node "),
        "{plan:#}"
    );
    let again: serde_json::Value = serde_json::from_slice(&planned.1.stdout).unwrap();
    assert_eq!(
        fault["plan"]["targets"], again["faults"][0]["plan"]["targets"],
        "the same seed plans the same targets"
    );
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> =
        kube::Api::all(sandbox_client(&kubeconfig).await);
    let cordoned = nodes
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|n| n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true))
        .count();
    assert_eq!(cordoned, 0, "plan changed nothing");
    assert!(!journal.exists(), "plan writes no journal");

    // Another run holds the lock.
    let lock = LeaseLock::new(sandbox_client(&kubeconfig).await, "default");
    lock.acquire("alice@laptop (pid 1)", Duration::from_secs(60))
        .await
        .unwrap();
    let refused = tokio::task::spawn_blocking({
        let (k, j) = (kubeconfig.clone(), journal.clone());
        move || steadfast(&["run", "experiments/demo.yaml"], &k, &j)
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("alice@laptop (pid 1)"),
        "the holder is named: {stderr}"
    );
    lock.release().await.unwrap();

    // Halted: runs refuse with the reason, exit 3; resume lifts it.
    let (k, j) = (kubeconfig.clone(), journal.clone());
    let outputs = tokio::task::spawn_blocking(move || {
        let halt = steadfast(&["halt", "--reason", "payment freeze"], &k, &j);
        let run = steadfast(&["run", "experiments/demo.yaml"], &k, &j);
        let resume = steadfast(&["resume"], &k, &j);
        (halt, run, resume)
    })
    .await
    .unwrap();
    assert_eq!(
        outputs.0.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&outputs.0.stderr)
    );
    let stderr = String::from_utf8_lossy(&outputs.1.stderr);
    assert_eq!(outputs.1.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("payment freeze"), "{stderr}");
    assert_eq!(
        outputs.2.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&outputs.2.stderr)
    );

    // A pending undo record from a dead run blocks the next run until rolled back.
    let record = steadfast::fault::UndoRecord {
        id: "dead-run/cordon/0/0".into(),
        run_id: "dead-run".into(),
        fault: "cordon".into(),
        action: steadfast::fault::UndoAction::Uncordon {
            node: sandbox.node_names()[0].clone(),
        },
        created_at: chrono::Utc::now(),
    };
    steadfast::journal::FileJournal::open(&journal)
        .unwrap()
        .append(&steadfast::journal::JournalEntry::Undo(record))
        .unwrap();
    let (k, j) = (kubeconfig.clone(), journal.clone());
    let (blocked, rollback, again) = tokio::task::spawn_blocking(move || {
        let blocked = steadfast(&["run", "experiments/demo.yaml"], &k, &j);
        let rollback = steadfast(&["rollback"], &k, &j);
        let again = steadfast(&["rollback"], &k, &j);
        (blocked, rollback, again)
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&blocked.stderr);
    assert_eq!(blocked.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("pending"), "{stderr}");
    let out = String::from_utf8_lossy(&rollback.stdout);
    assert_eq!(rollback.status.code(), Some(0), "{out}");
    assert!(out.contains("dead-run/cordon/0/0"), "{out}");
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("nothing pending"),
        "rollback is idempotent"
    );
    sandbox.shutdown().await;
}

/// Two real `run`s on one sandbox: while the first holds the lock, the second is refused with
/// exit 2, naming the first's identity (its pid), and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_concurrent_run_is_refused_with_the_first_runs_identity() {
    use k8s_openapi::api::coordination::v1::Lease;

    let dir = tempfile::tempdir().unwrap();
    let sandbox = sandbox(dir.path()).await;
    let kubeconfig = sandbox.kubeconfig_path().to_owned();
    // Separate local journals and no cluster copy: the lock alone must refuse the second run.
    let start = |journal: &str| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_steadfast"));
        command
            .args(["run", "experiments/demo.yaml", "--no-cluster-journal"])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("NO_COLOR", "1")
            .env("STEADFAST_JOURNAL", dir.path().join(journal))
            .env("STEADFAST_NAMESPACE", "default")
            .env("STEADFAST_REPORTS_DIR", dir.path().join("reports"))
            .kill_on_drop(true);
        command
    };
    let first = start("first.jsonl").spawn().expect("the binary runs");
    let first_pid = first.id().expect("the first run is alive");
    let leases: kube::Api<Lease> =
        kube::Api::namespaced(sandbox_client(&kubeconfig).await, "default");
    let mark = format!("pid {first_pid})");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let held = leases
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|lease| {
                lease
                    .spec
                    .as_ref()
                    .and_then(|s| s.holder_identity.as_deref())
                    .is_some_and(|holder| holder.contains(&mark))
            });
        if held {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first run took the lock within 30s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let second = tokio::time::timeout(Duration::from_secs(30), start("second.jsonl").output())
        .await
        .expect("the second run ends at once")
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&mark), "the first run is named: {stderr}");
    assert!(
        !dir.path().join("second.jsonl").exists()
            || steadfast::journal::read_entries(&dir.path().join("second.jsonl"))
                .unwrap()
                .is_empty(),
        "the refused run journaled nothing"
    );

    // The first run goes on to its verdict.
    let first = tokio::time::timeout(Duration::from_secs(120), first.wait_with_output())
        .await
        .expect("the first run finishes")
        .unwrap();
    assert!(
        matches!(first.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
}

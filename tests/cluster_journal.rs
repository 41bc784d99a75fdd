//! The journal's copy in the cluster, against the sandbox: what a run journals is mirrored to
//! the ConfigMap `steadfast-journal`; when the machine that ran it is gone (here: its journal
//! file), the next run from elsewhere refuses to start, `rollback --from-cluster` heals it and
//! `run --recover-first` rolls back before running. A full mirror refuses rather than drops.

mod support;

#[path = "support/world.rs"]
mod world;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use steadfast::engine::RunLock;
use steadfast::fault::{UndoAction, UndoRecord};
use steadfast::infra::cluster::lease::LEASE_NAME;
use steadfast::infra::cluster::{ConfigMapJournal, LeaseLock};
use steadfast::journal::{JournalEntry, JournalMirror, MirrorError, pending, read_entries};

use support::sandbox::both;
use world::{World, start_world};

const EXPERIMENT: &str = "tests/fixtures/journal/cordon.yaml";

fn undo(id: &str) -> JournalEntry {
    JournalEntry::Undo(UndoRecord {
        id: id.into(),
        run_id: "r".into(),
        fault: "cordon".into(),
        action: UndoAction::Uncordon {
            node: "node-1".into(),
        },
        created_at: chrono::Utc::now(),
    })
}

async fn cordoned(kube: &kube::Client) -> usize {
    let nodes: Api<Node> = Api::all(kube.clone());
    nodes
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|n| n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true))
        .count()
}

/// Runs the experiment with `journal` and kills it (SIGKILL) once its cordon is journaled.
async fn run_and_kill(world: &World, journal: &Path, namespace: &str) {
    let reports = world.dir.path().join("reports");
    let mut child = world
        .command(
            &[
                "run",
                EXPERIMENT,
                "--journal",
                journal.to_str().unwrap(),
                "--report-dir",
                reports.to_str().unwrap(),
            ],
            namespace,
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while pending(&read_entries(journal).unwrap()).is_empty() {
        if Instant::now() >= deadline || child.try_wait().unwrap().is_some() {
            let _ = child.start_kill();
            let output = child.wait_with_output().await.unwrap();
            panic!(
                "the cordon was never journaled:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The local journal is written first; wait until the cluster's copy holds the same pending
    // record and the cordon it guards is in place, then die without rolling back.
    let mirror = ConfigMapJournal::new(world.kube.clone(), namespace);
    let ids = |records: Vec<UndoRecord>| records.into_iter().map(|r| r.id).collect::<Vec<_>>();
    loop {
        let local = ids(pending(&read_entries(journal).unwrap()));
        let mirrored = match mirror.entries().await {
            Ok(entries) => ids(pending(&entries)),
            Err(_) => Vec::new(),
        };
        if mirrored == local && cordoned(&world.kube).await == 1 {
            break;
        }
        if Instant::now() >= deadline || child.try_wait().unwrap().is_some() {
            let _ = child.start_kill();
            let output = child.wait_with_output().await.unwrap();
            panic!(
                "the cordon was never mirrored and applied (local {local:?}, cluster {mirrored:?}):\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    // The killed run's lease would lapse after its TTL (60 s); end it now instead of waiting.
    let leases: Api<Lease> = Api::namespaced(world.kube.clone(), namespace);
    leases
        .delete(LEASE_NAME, &Default::default())
        .await
        .expect("the killed run held the lock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_local_journal_is_recovered_from_the_cluster() {
    let Some(world) = start_world(false).await else {
        return;
    };
    world.restored(Duration::from_secs(30)).await.unwrap();
    let namespace = "journal";
    // Each killed run's own machine; its journal is never seen again unless said.
    let laptop = |n: u32| world.dir.path().join(format!("laptop-{n}.jsonl"));
    let elsewhere = world.dir.path().join("elsewhere.jsonl");
    world.namespace(namespace).await;
    world.namespace("journal-other").await;
    let mirror = ConfigMapJournal::new(world.kube.clone(), namespace);

    run_and_kill(&world, &laptop(1), namespace).await;
    assert_eq!(
        cordoned(&world.kube).await,
        1,
        "the killed run left its cordon"
    );
    let mirrored = pending(&mirror.entries().await.unwrap());
    assert_eq!(
        mirrored.iter().map(|r| &r.id).collect::<Vec<_>>(),
        pending(&read_entries(&laptop(1)).unwrap())
            .iter()
            .map(|r| &r.id)
            .collect::<Vec<_>>(),
        "the cluster holds the same pending undo"
    );

    // From another machine: refused, pointing at the cluster's copy.
    let journal = elsewhere.to_str().unwrap();
    let refused = world
        .output(&["run", EXPERIMENT, "--journal", journal], namespace)
        .await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{}", both(&refused));
    assert!(
        stderr.contains("ConfigMap journal/steadfast-journal") && stderr.contains("--from-cluster"),
        "{stderr}"
    );
    // A plain rollback there has nothing local to do; --from-cluster heals it.
    let local = world
        .output(&["rollback", "--journal", journal], namespace)
        .await;
    assert!(
        String::from_utf8_lossy(&local.stdout).contains("nothing pending"),
        "{}",
        both(&local)
    );
    // While a run holds the lock, its records are not undone under its feet.
    let alice = LeaseLock::new(world.kube.clone(), namespace);
    alice
        .acquire("alice@laptop (pid 1)", Duration::from_secs(60))
        .await
        .unwrap();
    for args in [
        vec!["rollback", "--from-cluster", "--journal", journal],
        vec!["run", EXPERIMENT, "--journal", journal, "--recover-first"],
    ] {
        let refused = world.output(&args, namespace).await;
        assert_eq!(
            refused.status.code(),
            Some(2),
            "{args:?}: {}",
            both(&refused)
        );
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("alice@laptop (pid 1)"),
            "{args:?}: {}",
            both(&refused)
        );
    }
    assert_eq!(cordoned(&world.kube).await, 1, "nothing was undone");
    alice.release().await.unwrap();
    let healed = world
        .output(
            &["rollback", "--from-cluster", "--journal", journal],
            namespace,
        )
        .await;
    assert_eq!(healed.status.code(), Some(0), "{}", both(&healed));
    assert!(
        String::from_utf8_lossy(&healed.stdout).contains("restored: "),
        "{}",
        both(&healed)
    );
    assert_eq!(cordoned(&world.kube).await, 0);
    assert!(pending(&mirror.entries().await.unwrap()).is_empty());

    // Killed again; --recover-first from the other machine rolls back, then runs to its verdict.
    run_and_kill(&world, &laptop(2), namespace).await;
    let recovered = world
        .output(
            &[
                "run",
                EXPERIMENT,
                "--journal",
                journal,
                "--recover-first",
                "--report-dir",
                world.dir.path().join("reports").to_str().unwrap(),
            ],
            namespace,
        )
        .await;
    assert_eq!(recovered.status.code(), Some(0), "{}", both(&recovered));
    let stdout = String::from_utf8_lossy(&recovered.stdout);
    assert!(stdout.contains("restored: "), "{stdout}");
    assert!(pending(&mirror.entries().await.unwrap()).is_empty());
    assert_eq!(cordoned(&world.kube).await, 0);

    // --no-cluster-journal neither reads nor writes the cluster's copy.
    run_and_kill(&world, &laptop(3), namespace).await;
    let untouched = world
        .output(
            &[
                "run",
                EXPERIMENT,
                "--journal",
                journal,
                "--no-cluster-journal",
                "--report-dir",
                world.dir.path().join("reports").to_str().unwrap(),
            ],
            "journal-other",
        )
        .await;
    assert_eq!(untouched.status.code(), Some(0), "{}", both(&untouched));
    assert_eq!(pending(&mirror.entries().await.unwrap()).len(), 1);
    let healed = world
        .output(
            &["rollback", "--journal", laptop(3).to_str().unwrap()],
            namespace,
        )
        .await;
    assert_eq!(healed.status.code(), Some(0), "{}", both(&healed));
    assert!(pending(&mirror.entries().await.unwrap()).is_empty());
    world.restored(Duration::from_secs(30)).await.unwrap();
    world.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cluster_journal_refuses_an_entry_but_keeps_every_pending_one() {
    let Some(world) = start_world(false).await else {
        return;
    };
    world.namespace("full").await;
    let one = steadfast::journal::mirror::render(&[undo("x/0")]).len();
    let mirror = ConfigMapJournal::new(world.kube.clone(), "full").with_limit(one * 4 + one / 2);
    for i in 0..4 {
        mirror.append(&undo(&format!("x/{i}"))).await.unwrap();
    }
    let refused = mirror.append(&undo("x/4")).await.unwrap_err();
    assert!(matches!(refused, MirrorError::Full { .. }), "{refused}");
    assert!(
        refused.to_string().contains("full/steadfast-journal"),
        "{refused}"
    );
    let kept: Vec<String> = pending(&mirror.entries().await.unwrap())
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(kept, ["x/0", "x/1", "x/2", "x/3"]);
    // Rolling one back makes room again: finished business is compacted away.
    mirror
        .append(&JournalEntry::RolledBack {
            id: "x/0".into(),
            outcome: steadfast::fault::RollbackOutcome::Restored {
                detail: "uncordoned".into(),
            },
            at: chrono::Utc::now(),
        })
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    mirror.append(&undo("x/4")).await.unwrap();
    assert_eq!(pending(&mirror.entries().await.unwrap()).len(), 4);
    world.sandbox.shutdown().await;
}

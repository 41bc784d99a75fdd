//! Crash harness: `steadfast run` is killed with SIGKILL at seeded-random instants — before,
//! during and after injection — across podKill, nodeDrain, zoneOutage (sandbox) and
//! azPartition (sandbox linked to moto) runs, and a fresh `steadfast rollback` process reading
//! the same journal must leave everything as it was: no steadfast ACL in the cloud, every subnet
//! on its original ACL, no steadfast taint, every node schedulable and Ready, every deleted pod
//! replaced, and nothing pending in the journal nor in its copy in the cluster.
//!
//! The run and both rollbacks meet the sandbox's hostile preset (seeded per kill: 10% server
//! errors, 5% APF 429, dropped connections, watches closed every 3–8 s and resumes told 410
//! Gone), as a control plane busy with the very outage being tested would treat them; the
//! judging afterwards reads a friendly server, so it sees the state rather than the noise.
//!
//! One sandbox (and one moto) per fault kind is reused across its five kills; each kill is
//! judged only after the previous one was fully restored.

mod support;

#[path = "support/world.rs"]
mod world;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use steadfast::infra::cluster::ConfigMapJournal;
use steadfast::journal::{JournalEntry, JournalMirror, pending, read_entries};
use steadfast::sandbox::HostileSpec;

use support::sandbox::both;
use world::{World, start_world};

/// The seed of the kill instants; change it to explore other instants.
const SEED: u64 = 0x5eed_c4a5;
/// Kills per fault kind.
const KILLS: usize = 5;
/// Kill instants are drawn from this range after the child starts: the runs inject at about
/// 1.3 s, stop the fault at about 4.3 s and finish at about 7 s.
const KILL_WINDOW_MS: std::ops::Range<u64> = 400..5_000;
/// How long restoration may take after the rollback process exits.
const RESTORE_TIMEOUT: Duration = Duration::from_secs(30);

struct Kind {
    label: &'static str,
    file: &'static str,
    cloud: bool,
}

const KINDS: [Kind; 4] = [
    Kind {
        label: "podKill",
        file: "tests/fixtures/crash/pod-kill.yaml",
        cloud: false,
    },
    Kind {
        label: "nodeDrain",
        file: "tests/fixtures/crash/node-drain.yaml",
        cloud: false,
    },
    Kind {
        label: "zoneOutage",
        file: "tests/fixtures/crash/zone-outage.yaml",
        cloud: false,
    },
    Kind {
        label: "azPartition",
        file: "tests/fixtures/crash/az-partition.yaml",
        cloud: true,
    },
];

/// What one kill found and what rollback left.
struct Trial {
    kill_after: Duration,
    /// The run was still going when it was killed.
    mid_run: bool,
    /// Undo records were pending at the kill (a fault had been journaled, not yet undone).
    pending_at_kill: usize,
    /// Time from the rollback's start to a fully restored system.
    restored_in: Result<Duration, String>,
}

impl World {
    /// Starts a run, kills it with SIGKILL after `kill_after`, rolls back with a fresh process.
    async fn trial(&self, kind: &Kind, index: usize, kill_after: Duration) -> Trial {
        let namespace = format!("crash-{}-{index}", kind.label.to_lowercase());
        self.namespace(&namespace).await;
        let reports = self.dir.path().join("reports");
        let reports = reports.to_str().unwrap();
        let seed = index.to_string();
        let hostile = HostileSpec::preset(SEED ^ ((kind.label.len() as u64) << 8) ^ index as u64);
        self.sandbox.set_hostile(Some(hostile));
        let mut child = self
            .command(
                &["run", kind.file, "--report-dir", reports, "--seed", &seed],
                &namespace,
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let finished_early = tokio::time::timeout(kill_after, child.wait()).await.is_ok();
        let _ = child.start_kill();
        let status = child.wait().await.expect("the child is reaped");
        if finished_early {
            let output = child.wait_with_output().await.ok();
            eprintln!(
                "{} #{index}: the run ended before the kill: {:?}",
                kind.label,
                output.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            );
        }
        let entries = read_entries(&self.journal()).unwrap_or_default();
        let pending_at_kill = pending(&entries).len();
        // Killed while going: it journaled its start (trial `index` is the index-th run of this
        // journal) and not its end.
        let started = entries
            .iter()
            .filter(|e| matches!(e, JournalEntry::RunStarted { .. }))
            .count();
        let finished = entries
            .iter()
            .filter(|e| matches!(e, JournalEntry::RunFinished { .. }))
            .count();
        let mid_run =
            status.signal() == Some(libc::SIGKILL) && started == index + 1 && finished < started;

        let rollback_start = Instant::now();
        let rollback = self.output(&["rollback"], &namespace).await;
        let mut restored_in = if rollback.status.code() == Some(0) {
            self.restored(RESTORE_TIMEOUT)
                .await
                .map(|()| rollback_start.elapsed())
        } else {
            Err(format!("rollback failed: {}", both(&rollback)))
        };
        // Rolling back again finds nothing to do.
        let again = self.output(&["rollback"], &namespace).await;
        if restored_in.is_ok()
            && (again.status.code() != Some(0)
                || !String::from_utf8_lossy(&again.stdout).contains("nothing pending"))
        {
            restored_in = Err(format!("a second rollback did work: {}", both(&again)));
        }
        self.sandbox.set_hostile(None);
        // The cluster's copy of the journal agrees: nothing pending there either.
        let mirror = ConfigMapJournal::new(self.kube.clone(), &namespace);
        match mirror.entries().await {
            Ok(entries) if pending(&entries).is_empty() => {}
            Ok(entries) => {
                restored_in = Err(format!(
                    "{} undo record(s) pending in the cluster's journal",
                    pending(&entries).len()
                ))
            }
            Err(err) => restored_in = Err(format!("cluster journal: {err}")),
        }
        Trial {
            kill_after,
            mid_run,
            pending_at_kill,
            restored_in,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_killed_at_any_instant_is_fully_restored_by_rollback() {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut per_kind = Vec::new();
    let mut failures = Vec::new();
    let (mut mid_run, mut with_pending) = (0, 0);
    for kind in &KINDS {
        let Some(world) = start_world(kind.cloud).await else {
            eprintln!(
                "crash harness: {} skipped (moto_server missing)",
                kind.label
            );
            continue;
        };
        world
            .restored(Duration::from_secs(30))
            .await
            .expect("the world starts whole");
        let mut ok = 0;
        for index in 0..KILLS {
            let kill_after = Duration::from_millis(rng.random_range(KILL_WINDOW_MS));
            let trial = world.trial(kind, index, kill_after).await;
            mid_run += usize::from(trial.mid_run);
            with_pending += usize::from(trial.pending_at_kill > 0);
            match &trial.restored_in {
                Ok(took) => {
                    ok += 1;
                    eprintln!(
                        "{} #{index}: killed at {:?} ({} pending undo), restored {took:.1?} after the rollback began",
                        kind.label, trial.kill_after, trial.pending_at_kill
                    );
                }
                Err(damage) => failures.push(format!(
                    "{} #{index} killed at {:?} ({} pending): {damage}",
                    kind.label, trial.kill_after, trial.pending_at_kill
                )),
            }
        }
        per_kind.push(format!("{} {ok}/{KILLS}", kind.label));
        let World { sandbox, cloud, .. } = world;
        if let Some(cloud) = cloud {
            cloud.link.stop().await;
        }
        sandbox.shutdown().await;
    }
    let total = per_kind.len() * KILLS;
    let restored = total - failures.len();
    println!(
        "crash harness: {restored}/{total} restored ({}); {mid_run} killed mid-run, {with_pending} with undo pending; {:.1?}",
        per_kind.join(", "),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "not restored:\n{}",
        failures.join("\n")
    );
    assert!(
        mid_run * 4 >= total * 3,
        "most kills must land while the run is going: {mid_run}/{total}"
    );
    assert!(
        with_pending >= total / 4,
        "some kills must land while a fault is in force: {with_pending}/{total}"
    );
}

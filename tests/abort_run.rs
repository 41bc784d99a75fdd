//! Early ends of a run against the sandbox linked to moto, with the real binary:
//! - SIGTERM during an azPartition rolls the ACLs back before the process exits (exit 3);
//! - a second signal skips the waits, still rolls back and prints the journal's path;
//! - an `abortWhen` breach stops injection at the next evaluation and rolls back.

mod support;

#[path = "support/world.rs"]
mod world;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use steadfast::journal::{pending, read_entries};
use tokio::io::AsyncReadExt;

use world::{TOPOLOGY, World, acl_of, start_world, start_world_with};

/// The engine's abort-condition period (`check_every` of `steadfast run`).
const CHECK_EVERY: f64 = 1.0;

fn signal(child: &tokio::process::Child, signal: i32) {
    let pid = child.id().expect("the child runs") as i32;
    // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped.
    let sent = unsafe { libc::kill(pid, signal) };
    assert_eq!(sent, 0, "kill({pid}, {signal})");
}

/// Waits (bounded) until the zone's subnet sits on a steadfast ACL with an undo journaled.
async fn partitioned(world: &World) {
    let cloud = world.cloud.as_ref().expect("linked to moto");
    let subnet = &cloud.link.resources.subnets["us-east-1a"];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let acl = acl_of(&cloud.ec2, subnet).await;
        let journaled = !pending(&read_entries(&world.journal()).unwrap_or_default()).is_empty();
        if journaled && acl != cloud.original[subnet] {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the partition never started (subnet {subnet} on {acl})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The only report written under `dir`.
fn report(dir: &Path) -> Value {
    let runs: Vec<_> = std::fs::read_dir(dir)
        .expect("a report directory")
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    serde_json::from_str(&std::fs::read_to_string(runs[0].join("report.json")).unwrap()).unwrap()
}

fn events<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    report["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == kind)
        .collect()
}

async fn spawn_run(world: &World, file: &str, namespace: &str) -> tokio::process::Child {
    let reports = world.dir.path().join("reports");
    world
        .command(
            &["run", file, "--report-dir", reports.to_str().unwrap()],
            namespace,
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// Waits (bounded) for the child and returns its exit code, stdout and stderr.
async fn finish(
    mut child: tokio::process::Child,
    limit: Duration,
) -> (Option<i32>, String, String) {
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (mut out, mut err) = (String::new(), String::new());
    let status = tokio::time::timeout(limit, async {
        let (_, _, status) = tokio::join!(
            stdout.read_to_string(&mut out),
            stderr.read_to_string(&mut err),
            child.wait()
        );
        status
    })
    .await
    .unwrap_or_else(|_| panic!("the run did not exit within {limit:?}"))
    .unwrap();
    (status.code(), out, err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_partition_rolls_back_before_exiting() {
    let Some(world) = start_world(true).await else {
        return;
    };
    world.restored(Duration::from_secs(30)).await.unwrap();
    world.namespace("sigterm").await;
    let child = spawn_run(&world, "tests/fixtures/abort/az-partition.yaml", "sigterm").await;
    partitioned(&world).await;
    let sent = Instant::now();
    signal(&child, libc::SIGTERM);
    let (code, stdout, stderr) = finish(child, Duration::from_secs(60)).await;
    let took = sent.elapsed();
    assert_eq!(
        code,
        Some(3),
        "aborted, everything rolled back\n{stdout}\n{stderr}"
    );
    // stderr is a pipe here: plain log lines, no progress line redrawn in place.
    assert!(
        !stderr.contains('\r') && !stderr.contains('\u{1b}'),
        "no terminal control characters: {stderr:?}"
    );

    // Rolled back by the run itself, before it exited: nothing is pending, the cloud is whole.
    let entries = read_entries(&world.journal()).unwrap();
    assert!(pending(&entries).is_empty(), "{entries:#?}");
    let cloud = world.cloud.as_ref().unwrap();
    for (subnet, acl) in &cloud.original {
        assert_eq!(&acl_of(&cloud.ec2, subnet).await, acl, "{subnet} is back");
    }
    let report = report(&world.dir.path().join("reports"));
    assert_eq!(
        report["verdict"]["outcome"], "aborted",
        "{:#}",
        report["verdict"]
    );
    assert_eq!(report["exitCode"], 3);
    let aborted = events(&report, "aborted");
    assert!(
        aborted[0]["detail"].as_str().unwrap().contains("signal"),
        "{aborted:?}"
    );
    assert_eq!(events(&report, "rolledBack").len(), 1);
    world.restored(Duration::from_secs(30)).await.unwrap();
    eprintln!("SIGTERM → exit 3 after {took:.1?}, ACLs restored");
    world.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_skips_the_waits_but_still_rolls_back_and_names_the_journal() {
    let Some(world) = start_world(true).await else {
        return;
    };
    world.restored(Duration::from_secs(30)).await.unwrap();
    world.namespace("hurry").await;
    let child = spawn_run(&world, "tests/fixtures/abort/az-partition.yaml", "hurry").await;
    partitioned(&world).await;
    signal(&child, libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(&child, libc::SIGINT);
    let sent = Instant::now();
    let (code, stdout, stderr) = finish(child, Duration::from_secs(60)).await;
    let took = sent.elapsed();
    assert_eq!(code, Some(3), "{stdout}\n{stderr}");
    // The fixture waits at least 5 s after rollback (steady state after); a hurried run skips it.
    assert!(
        took < Duration::from_secs(4),
        "exited {took:?} after the second signal"
    );
    let journal = world.journal();
    assert!(
        stderr.contains(&journal.display().to_string()),
        "the journal's path is printed: {stderr}"
    );
    assert!(pending(&read_entries(&journal).unwrap()).is_empty());
    let cloud = world.cloud.as_ref().unwrap();
    for (subnet, acl) in &cloud.original {
        assert_eq!(&acl_of(&cloud.ec2, subnet).await, acl, "{subnet} is back");
    }
    eprintln!("second signal → exit 3 after {took:.1?}");
    world.sandbox.shutdown().await;
}

/// The probe timeout of tests/fixtures/abort/abort-when.yaml.
const PROBE_TIMEOUT: f64 = 0.5;
/// How long one firing can keep the engine from its next check: the check runs between
/// firings, and a pod kill through the rate-limited client takes up to ~1.8 s here.
const FIRING_IN_FLIGHT: f64 = 2.0;

/// When the probe's own series first shows availability over the trailing `over` seconds below
/// `bound`, after `from`: the end of that bucket plus the probe timeout, by when every attempt
/// in it has an outcome the engine can see.
fn breach(report: &Value, from: f64, over: f64, bound: f64) -> Option<f64> {
    let series = report["probes"][0]["series"].as_array()?;
    let points: Vec<(f64, f64, f64)> = series
        .iter()
        .map(|p| {
            let attempts = p["attempts"].as_f64().unwrap_or(0.0);
            let ratio = p["successRatio"].as_f64().unwrap_or(1.0);
            (p["t"].as_f64().unwrap(), attempts, attempts * ratio)
        })
        .collect();
    let width = match points.as_slice() {
        [a, b, ..] => b.0 - a.0,
        _ => return None,
    };
    points
        .iter()
        .map(|(t, _, _)| *t)
        .find(|&t| {
            if t < from {
                return false;
            }
            let (attempts, ok) = points
                .iter()
                .filter(|(s, _, _)| *s + width > t + width - over && *s <= t)
                .fold((0.0, 0.0), |(a, o), (_, pa, po)| (a + pa, o + po));
            attempts > 0.0 && ok / attempts < bound
        })
        .map(|t| t + width + PROBE_TIMEOUT)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_when_breach_stops_injection_at_the_next_evaluation_and_rolls_back() {
    // Partitioned nodes turn Unknown (and leave the endpoints) only after 10 s, so the partition
    // costs a third of the requests for that long.
    let topology = TOPOLOGY.replace("nodeMonitorGracePeriod: 2s", "nodeMonitorGracePeriod: 10s");
    let Some(world) = start_world_with(&topology, true).await else {
        return;
    };
    world.restored(Duration::from_secs(30)).await.unwrap();
    world.namespace("abort").await;
    let child = spawn_run(&world, "tests/fixtures/abort/abort-when.yaml", "abort").await;
    let (code, stdout, stderr) = finish(child, Duration::from_secs(90)).await;
    let reports = world.dir.path().join("reports");
    // On failure, the probe's series and the timeline say what the engine saw.
    let diagnostics = if reports.exists() {
        let report = report(&reports);
        let series: Vec<String> = report["probes"][0]["series"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| format!("{}:{}:{}", p["t"], p["attempts"], p["successRatio"]))
            .collect();
        let timeline: Vec<String> = report["timeline"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| format!("{}:{}:{}", e["at"], e["event"], e["fault"]))
            .collect();
        format!("series: {series:?}\ntimeline: {timeline:?}")
    } else {
        String::new()
    };
    assert_eq!(code, Some(3), "{stdout}\n{stderr}\n{diagnostics}");
    let report = report(&reports);
    assert_eq!(report["verdict"]["outcome"], "aborted");

    let aborted = events(&report, "aborted");
    assert_eq!(aborted.len(), 1, "{aborted:?}");
    let reason = aborted[0]["detail"].as_str().unwrap();
    assert!(reason.contains("availability of `web`"), "{reason}");
    let abort_at = aborted[0]["at"].as_f64().unwrap();
    let injected = events(&report, "faultInjected");
    let partition_at = injected
        .iter()
        .find(|e| e["fault"] == "partition-a")
        .expect("the partition was injected")["at"]
        .as_f64()
        .unwrap();
    let kills = injected.iter().filter(|e| e["fault"] == "kill-web").count();
    assert!(
        injected
            .iter()
            .all(|e| e["at"].as_f64().unwrap() <= abort_at),
        "nothing is injected after the abort: {injected:#?}"
    );
    assert!(kills < 20, "the kills stopped early: {kills}");

    // The breach as the probe's own series shows it, and the abort at the next evaluation.
    let breached = breach(&report, partition_at, 2.0, 0.9).expect("the series shows the breach");
    let latency = abort_at - breached;
    assert!(
        latency <= CHECK_EVERY + FIRING_IN_FLIGHT,
        "aborted {latency:.2}s after the breach was visible at {breached:.2}s"
    );

    let rolled_back = events(&report, "rolledBack");
    assert_eq!(rolled_back.len(), 1, "the partition's undo was applied");
    assert!(rolled_back[0]["at"].as_f64().unwrap() >= abort_at);
    assert!(pending(&read_entries(&world.journal()).unwrap()).is_empty());
    world.restored(Duration::from_secs(30)).await.unwrap();
    eprintln!(
        "abortWhen: partition at {partition_at:.2}s, breach visible at {breached:.2}s, abort at {abort_at:.2}s ({latency:.2}s after the breach, {:.2}s after injection), {kills} kill(s) before it",
        abort_at - partition_at
    );
    world.sandbox.shutdown().await;
}

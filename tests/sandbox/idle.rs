//! Resource use of an idle sandbox with the shipped topology (a measurement, run by hand:
//! `cargo test --test sandbox idle -- --ignored --nocapture`).

use std::time::{Duration, Instant};

use steadfast::sandbox::{Sandbox, SandboxOptions, Topology};

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// User + system CPU time of this process, in clock ticks (1/100 s on Linux).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: takes 30 s, run by hand with --ignored --nocapture"]
async fn idle_sandbox_resource_use() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/sandbox/topology.yaml");
    let topology = Topology::load(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let before = rss_kib().unwrap_or(0);
    let sandbox = Sandbox::start(&topology, SandboxOptions::new(dir.path()))
        .await
        .unwrap();
    sandbox.wait_ready(Duration::from_secs(30)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss0, cpu0, t0) = (
        rss_kib().unwrap_or(0),
        cpu_ticks().unwrap_or(0),
        Instant::now(),
    );
    tokio::time::sleep(Duration::from_secs(30)).await;
    let (rss1, cpu1, elapsed) = (
        rss_kib().unwrap_or(0),
        cpu_ticks().unwrap_or(0),
        t0.elapsed(),
    );
    let cpu_pct = (cpu1 - cpu0) as f64 / 100.0 / elapsed.as_secs_f64() * 100.0;
    eprintln!(
        "idle sandbox: RSS before start {before} KiB, ready {rss0} KiB, after 30 s {rss1} KiB; CPU {cpu_pct:.2}% of one core over {elapsed:?}"
    );
    assert!(rss1 > 0 && cpu1 >= cpu0);
    sandbox.shutdown().await;
}

//! A Prometheus alert as a stop condition, against a real Prometheus on loopback: the alert's
//! rule watches a gauge this test serves; while it is quiet the run keeps its fault in force,
//! and within seconds of the alert firing the run stops, rolls back and exits 3.

mod support;

#[path = "support/world.rs"]
mod world;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use steadfast::journal::{JournalEntry, pending, read_entries};
use tokio::net::TcpListener;

use support::prometheus::{PrometheusOptions, PrometheusServer, serve_gauge};
use world::start_world;

const RULES: &str = r#"
groups:
  - name: steadfast-test
    rules:
      - alert: SteadfastTestBreakerOpen
        expr: steadfast_test_breaker_open > 0
        labels: {severity: page}
"#;

/// When the alert was first seen firing through the alerts API, polled every 100 ms.
async fn firing_since(url: &str, limit: Duration) -> chrono::DateTime<Utc> {
    let client = prometheus_http_query::Client::try_from(url).unwrap();
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(alerts) = client.alerts().await
            && alerts.iter().any(|a| {
                a.state().is_firing()
                    && a.labels().get("alertname").map(String::as_str)
                        == Some("SteadfastTestBreakerOpen")
            })
        {
            return Utc::now();
        }
        assert!(Instant::now() < deadline, "the alert never fired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_alert_aborts_the_run_within_seconds_and_rolls_back() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    let breaker = Arc::new(AtomicU64::new(0.0_f64.to_bits()));
    let server = tokio::spawn(serve_gauge(
        listener,
        "steadfast_test_breaker_open",
        breaker.clone(),
    ));
    let options = PrometheusOptions {
        scrape_targets: vec![target],
        scrape_interval: Duration::from_millis(500),
        rules: Some(RULES.to_owned()),
        ..PrometheusOptions::default()
    };
    let Some(prometheus) = PrometheusServer::start(options).await.unwrap() else {
        server.abort();
        return;
    };
    let Some(world) = start_world(false).await else {
        return;
    };
    world.restored(Duration::from_secs(30)).await.unwrap();
    world.namespace("alert").await;
    let reports = world.dir.path().join("reports");
    let mut child = world
        .command(
            &[
                "run",
                "tests/fixtures/abort/alert.yaml",
                "--report-dir",
                reports.to_str().unwrap(),
            ],
            "alert",
        )
        .env("STEADFAST_PROMETHEUS_URL", &prometheus.url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // The cordon is in force and stays so while the alert is quiet.
    let deadline = Instant::now() + Duration::from_secs(30);
    while pending(&read_entries(&world.journal()).unwrap()).is_empty() {
        assert!(Instant::now() < deadline, "the cordon never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !pending(&read_entries(&world.journal()).unwrap()).is_empty(),
        "a quiet alert does not abort"
    );

    breaker.store(1.0_f64.to_bits(), Ordering::SeqCst);
    let flipped = Utc::now();
    let fired = firing_since(&prometheus.url, Duration::from_secs(20)).await;
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the run ends")
        .unwrap();
    let stderr = {
        use tokio::io::AsyncReadExt;
        let mut text = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .await
            .unwrap();
        text
    };
    assert_eq!(status.code(), Some(3), "{stderr}");

    let entries = read_entries(&world.journal()).unwrap();
    assert!(pending(&entries).is_empty(), "{entries:#?}");
    let rolled_back = entries
        .iter()
        .find_map(|e| match e {
            JournalEntry::RolledBack { at, .. } => Some(*at),
            _ => None,
        })
        .expect("the cordon was rolled back");
    let after_firing = (rolled_back - fired).to_std().unwrap_or_default();
    let after_flip = (rolled_back - flipped).to_std().unwrap_or_default();
    assert!(
        after_firing <= Duration::from_millis(2_500),
        "rolled back {after_firing:?} after the alert fired"
    );
    assert!(
        rolled_back > flipped,
        "nothing was rolled back before the alert"
    );

    let run_dir = std::fs::read_dir(&reports)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["verdict"]["outcome"], "aborted");
    let reason = report["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "aborted")
        .map(|e| e["detail"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    assert!(reason.contains("SteadfastTestBreakerOpen"), "{reason}");
    world.restored(Duration::from_secs(30)).await.unwrap();
    eprintln!(
        "alert abort: fired {:.1?} after the gauge flipped; rolled back {after_firing:.1?} after firing ({after_flip:.1?} after the flip)",
        (fired - flipped).to_std().unwrap_or_default()
    );
    server.abort();
    world.sandbox.shutdown().await;
}

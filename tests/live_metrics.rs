//! Live run metrics and the Grafana dashboard against the real tools: a sandbox run pushes to a
//! real Pushgateway that a real Prometheus scrapes; `steadfast_fault_active` must rise and fall
//! with the fault's window, and every dashboard query must find data. The dashboard's queries
//! and the annotation must also parse with `promtool`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::prometheus::{PrometheusOptions, PrometheusServer, promtool_binary};
use support::pushgateway::{self, http_get};
use support::tools;

const DASHBOARD: &str = "charts/steadfast/dashboards/steadfast.json";
/// How often the run pushes in the test, and how often Prometheus scrapes.
const PUSH_EVERY: Duration = Duration::from_secs(1);
const SCRAPE_EVERY: Duration = Duration::from_millis(500);
/// Resolution of the range queries the edges are read from.
const STEP: f64 = 0.1;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every PromQL expression of the dashboard (panel targets and annotations), with the
/// experiment variable set to "all", each with where it comes from.
fn dashboard_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join(DASHBOARD)).expect("dashboard file");
    let dashboard: Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("panel targets") {
            queries.push((
                format!("panel {:?}", panel["title"].as_str().unwrap_or("?")),
                target["expr"].as_str().expect("target expr").to_owned(),
            ));
        }
    }
    for annotation in dashboard["annotations"]["list"]
        .as_array()
        .expect("annotations")
    {
        if let Some(expr) = annotation["expr"].as_str() {
            queries.push((
                format!(
                    "annotation {:?}",
                    annotation["name"].as_str().unwrap_or("?")
                ),
                expr.to_owned(),
            ));
        }
    }
    queries
        .into_iter()
        .map(|(origin, expr)| (origin, expr.replace("$experiment", ".*")))
        .collect()
}

#[test]
fn every_dashboard_query_parses_with_promtool() {
    let Some(promtool) = tools::require("promtool", promtool_binary()) else {
        return;
    };
    let queries = dashboard_queries();
    assert!(queries.len() >= 10, "{queries:?}");
    assert!(
        queries
            .iter()
            .any(|(origin, expr)| origin.starts_with("annotation")
                && expr.contains("steadfast_fault_active")),
        "fault windows are an annotation"
    );
    // Each expression as a recording rule: `promtool check rules` parses every one.
    let rules: Vec<Value> = queries
        .iter()
        .enumerate()
        .map(|(i, (_, expr))| json!({"record": format!("dashboard:query_{i}"), "expr": expr}))
        .collect();
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("dashboard-rules.yaml");
    std::fs::write(
        &file,
        json!({"groups": [{"name": "dashboard", "rules": rules}]}).to_string(),
    )
    .expect("write the rule file");
    let output = Command::new(promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("promtool runs");
    assert!(
        output.status.success(),
        "a dashboard query does not parse: {}{}\n{queries:#?}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A Prometheus API call; the `data.result` of a successful answer.
fn api(prometheus: &str, path: &str, params: &[(&str, String)]) -> Vec<Value> {
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    let address = prometheus.trim_start_matches("http://");
    let (status, body) =
        http_get(address, &format!("{path}?{}", query.join("&"))).expect("Prometheus answers");
    assert_eq!(status, 200, "{path} {params:?}: {body}");
    let answer: Value = serde_json::from_str(&body).expect("Prometheus JSON");
    answer["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// Runs the binary to completion within `limit`, its output in `dir`.
fn run_bounded(command: &mut Command, dir: &Path, limit: Duration) -> (i32, String) {
    let out = dir.join("run.out");
    let err = dir.join("run.err");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("steadfast starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the run") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the run took longer than {limit:?}: {}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = format!(
        "{}\n{}",
        std::fs::read_to_string(&out).unwrap_or_default(),
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    (status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_active_follows_the_fault_window_in_prometheus_and_every_dashboard_query_has_data() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let Some(gateway) = pushgateway::start(dir.path()) else {
        return;
    };
    let Some(prometheus) = PrometheusServer::start(PrometheusOptions {
        scrape_targets: vec![gateway.address.parse().expect("gateway address")],
        scrape_interval: SCRAPE_EVERY,
        ..PrometheusOptions::default()
    })
    .await
    .expect("Prometheus starts") else {
        return;
    };
    let reports = dir.path().join("reports");
    let (code, output) = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_steadfast"))
            .args(["demo", "--experiment", "tests/fixtures/live-metrics.yaml"])
            .arg("--report-dir")
            .arg(&reports)
            .arg("--pushgateway")
            .arg(format!("http://{}", gateway.address))
            .arg("--live-metrics-interval")
            .arg(format!("{}ms", PUSH_EVERY.as_millis()))
            .current_dir(repo())
            .env("NO_COLOR", "1")
            .env_remove("KUBECONFIG"),
        dir.path(),
        Duration::from_secs(300),
    );
    assert!(matches!(code, 0 | 1), "exit {code}: {output}");
    let run_dir = std::fs::read_dir(&reports)
        .expect("reports")
        .next()
        .expect("a run directory")
        .expect("entry")
        .path();
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("report.json")).expect("report.json"),
    )
    .expect("report JSON");

    // Wait until Prometheus has scraped the run's last push (phase finished) and its final
    // metrics.
    let deadline = Instant::now() + Duration::from_secs(30);
    let finished = "steadfast_run_phase{experiment=\"live-metrics\",phase=\"finished\"} == 1 and on() steadfast_experiment_passed{experiment=\"live-metrics\"}";
    while api(
        &prometheus.url,
        "/api/v1/query",
        &[("query", finished.to_owned())],
    )
    .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped the end of the run: {}",
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The fault window in wall-clock time. The report's times are seconds from the run's
    // origin; the log line of the first injection carries the wall clock of the same moment
    // as the report's first target (`at`), which fixes the origin to within a millisecond.
    let seconds = |v: &Value| v.as_f64().expect("seconds");
    let fault = &report["faults"][0];
    assert_eq!(fault["name"], "kill-web");
    let injected_at = seconds(&fault["targets"][0]["at"]);
    let logged = output
        .lines()
        .find(|line| line.contains("fault injected"))
        .and_then(|line| line.split_whitespace().next())
        .and_then(|stamp| chrono::DateTime::parse_from_rfc3339(stamp).ok())
        .unwrap_or_else(|| panic!("no timestamped `fault injected` log line:\n{output}"));
    let origin = logged.timestamp_micros() as f64 / 1e6 - injected_at;
    let window_start = origin + seconds(&fault["window"]["start"]);
    let window_end = origin + seconds(&fault["window"]["end"]);
    let started_at = window_start - 10.0;

    let end = unix_now();
    let series = api(
        &prometheus.url,
        "/api/v1/query_range",
        &[
            (
                "query",
                "steadfast_fault_active{experiment=\"live-metrics\",fault=\"kill-web\",kind=\"podKill\"}"
                    .to_owned(),
            ),
            ("start", format!("{started_at:.3}")),
            ("end", format!("{end:.3}")),
            ("step", STEP.to_string()),
        ],
    );
    assert_eq!(series.len(), 1, "{series:?}");
    let points: Vec<(f64, f64)> = series[0]["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|p| {
            (
                p[0].as_f64().expect("time"),
                p[1].as_str().and_then(|v| v.parse().ok()).expect("value"),
            )
        })
        .collect();
    let rose = points
        .iter()
        .find(|(_, v)| *v == 1.0)
        .map(|(t, _)| *t)
        .unwrap_or_else(|| panic!("steadfast_fault_active never 1: {points:?}"));
    let fell = points
        .iter()
        .find(|(t, v)| *t > rose && *v == 0.0)
        .map(|(t, _)| *t)
        .unwrap_or_else(|| panic!("steadfast_fault_active never back to 0: {points:?}"));
    assert!(
        points
            .iter()
            .filter(|(t, _)| *t >= fell)
            .all(|(_, v)| *v == 0.0),
        "0 for good once the window closed: {points:?}"
    );
    // Seen no earlier than the window (a little slack for the log line) and no later than one
    // push plus one scrape (plus one query step and the push's own time).
    let late = PUSH_EVERY.as_secs_f64() + SCRAPE_EVERY.as_secs_f64() + STEP + 0.25;
    eprintln!(
        "fault_active rose {:.2}s and fell {:.2}s after the window's edges",
        rose - window_start,
        fell - window_end
    );
    for (what, seen, edge) in [("rise", rose, window_start), ("fall", fell, window_end)] {
        assert!(
            seen >= edge - 0.25 && seen <= edge + late,
            "{what} seen at {seen:.2}, the window edge is at {edge:.2} (allowed up to {late:.2}s late)"
        );
    }

    // Every dashboard query finds data over the run: the verdict metrics of its final push
    // and the live ones of its run. The final push was scraped just now, so the range ends a
    // step after now for its last point not to fall before that scrape.
    let mut empty = Vec::new();
    for (origin, expr) in dashboard_queries() {
        let result = api(
            &prometheus.url,
            "/api/v1/query_range",
            &[
                ("query", expr.clone()),
                ("start", format!("{started_at:.3}")),
                ("end", format!("{:.3}", end + 1.0)),
                ("step", "1".to_owned()),
            ],
        );
        if result.is_empty() {
            empty.push(format!("{origin}: {expr}"));
        }
    }
    assert!(
        empty.is_empty(),
        "queries without data:\n{}",
        empty.join("\n")
    );
}

/// The value of the sample whose line starts with `series` on a metrics page.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(series))
        .and_then(|rest| rest.trim().parse().ok())
}

#[test]
fn metrics_listen_serves_fault_active_during_the_window_and_zero_after() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let address = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_steadfast"))
        .args(["demo", "--experiment", "tests/fixtures/live-metrics.yaml"])
        .arg("--report-dir")
        .arg(dir.path().join("reports"))
        .args(["--metrics-listen", &address])
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("run.err")).expect("stderr file"))
        .spawn()
        .expect("steadfast starts");
    let active =
        "steadfast_fault_active{experiment=\"live-metrics\",fault=\"kill-web\",kind=\"podKill\"}";
    let faults_phase = "steadfast_run_phase{experiment=\"live-metrics\",phase=\"faults\"}";
    let deadline = Instant::now() + Duration::from_secs(240);
    // 0 before, 1 inside the window, 0 once the fault phase is over.
    let mut seen = Vec::new();
    while Instant::now() < deadline && child.try_wait().expect("poll the run").is_none() {
        if let Ok((200, page)) = http_get(&address, "/metrics") {
            let state = (sample(&page, active), sample(&page, faults_phase));
            if seen.last() != Some(&state) {
                seen.push(state);
            }
            if seen.contains(&(Some(1.0), Some(1.0))) && state == (Some(0.0), Some(0.0)) {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let finished = child.wait_timeout_or_kill(Duration::from_secs(240));
    assert!(
        matches!(finished, Some(0 | 1)),
        "run exit {finished:?}: {}",
        std::fs::read_to_string(dir.path().join("run.err")).unwrap_or_default()
    );
    let window = seen
        .iter()
        .position(|s| *s == (Some(1.0), Some(1.0)))
        .unwrap_or_else(|| panic!("the fault was never active on /metrics: {seen:?}"));
    assert!(
        seen[..window].contains(&(Some(0.0), Some(1.0))),
        "0 in the fault phase before the window opens: {seen:?}"
    );
    assert_eq!(
        seen.last(),
        Some(&(Some(0.0), Some(0.0))),
        "0 once the window closed and the phase ended: {seen:?}"
    );
}

#[test]
fn metrics_listen_on_a_taken_address_is_refused_before_the_run() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = taken.local_addr().expect("address").to_string();
    let dir = tempfile::tempdir().expect("temporary directory");
    let (code, output) = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_steadfast"))
            .args(["demo", "--experiment", "tests/fixtures/live-metrics.yaml"])
            .arg("--report-dir")
            .arg(dir.path().join("reports"))
            .args(["--metrics-listen", &address])
            .current_dir(repo())
            .env("NO_COLOR", "1")
            .env_remove("KUBECONFIG"),
        dir.path(),
        Duration::from_secs(120),
    );
    assert_eq!(code, 2, "{output}");
    assert!(
        output.contains(&format!("--metrics-listen {address}: cannot listen")),
        "{output}"
    );
    assert!(
        !dir.path().join("reports").exists()
            || std::fs::read_dir(dir.path().join("reports"))
                .expect("reports")
                .next()
                .is_none(),
        "no run happened"
    );
}

/// Waiting for a child with a bound.
trait WaitBounded {
    fn wait_timeout_or_kill(&mut self, limit: Duration) -> Option<i32>;
}

impl WaitBounded for std::process::Child {
    fn wait_timeout_or_kill(&mut self, limit: Duration) -> Option<i32> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.try_wait().ok().flatten() {
                return status.code();
            }
            if started.elapsed() > limit {
                let _ = self.kill();
                let _ = self.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

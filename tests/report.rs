//! Reports built from a synthetic run: the JSON validates against the committed schema, JUnit
//! counts match the targets, Markdown shows the verdict, and secrets never appear.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use steadfast::engine::{Event, EventKind, FiringTiming, Phase, RunOutcome};
use steadfast::fault::{Effect, Healing, TargetEffect, TargetKind, TargetRef};
use steadfast::measure::{FailureKind, MeasurementStore, Outcome, Sample, StoreConfig};
use steadfast::report::{ProbeData, ReportInput, build_report, json, junit, markdown, model};
use steadfast::spec::parse_experiment;
use steadfast::verdict::{Evidence, RunWindows, TimeWindow, Verdict, evaluate};

#[path = "support/tools.rs"]
#[allow(dead_code)]
mod tools;

#[path = "support/pushgateway.rs"]
mod pushgateway;

const SPEC: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: Experiment
metadata: {name: report-test, labels: {suite: unit}}
spec:
  description: A synthetic run.
  duration: 20s
  steadyState:
    probes:
      - name: web
        http:
          url: "http://127.0.0.1:9/"
          headers: {authorization: "Bearer s3cr3t-token"}
          backendHeader: x-pod
  faults:
    - {name: kill, at: 5s, for: 10s, podKill: {target: {namespaces: [shop]}}}
  targets:
    - {name: avail, probe: web, availability: ">= 99%"}
    - {name: outage, probe: web, longestOutage: "<= 500ms"}
    - {name: p99, probe: web, window: run, latency: "p99 < 50ms"}
"#;

/// 40 s at 100/s over three pods, with a 1 s outage at 17 s.
fn store() -> MeasurementStore {
    let mut store = MeasurementStore::new(StoreConfig::default()).unwrap();
    let pods: Vec<Arc<str>> = ["web-a", "web-b", "web-c"]
        .iter()
        .map(|p| Arc::from(*p))
        .collect();
    for i in 0..4000u64 {
        let intended = Duration::from_millis(i * 10);
        let down = (17_000..18_000).contains(&(i * 10));
        store
            .record(&Sample {
                intended,
                latency: Duration::from_millis(3 + i % 7),
                outcome: if down {
                    Outcome::Failure(FailureKind::Connect)
                } else {
                    Outcome::Success
                },
                backend: (!down).then(|| pods[(i % 3) as usize].clone()),
            })
            .unwrap();
    }
    store
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn outcome(store: &MeasurementStore, spec: &steadfast::spec::ExperimentSpec) -> RunOutcome {
    let windows = RunWindows {
        before: Some(TimeWindow::new(secs(0), secs(10))),
        during: Some(TimeWindow::new(secs(10), secs(30))),
        after: Some(TimeWindow::new(secs(30), secs(40))),
        run: Some(TimeWindow::new(secs(0), secs(40))),
        faults: BTreeMap::from([("kill".to_owned(), TimeWindow::new(secs(15), secs(25)))]),
    };
    let mut evidence = Evidence::default();
    evidence.http.insert("web".into(), store);
    let results = evaluate(spec, &windows, &evidence);
    let target = TargetRef {
        kind: TargetKind::Pod,
        name: "web-a".into(),
        namespace: Some("shop".into()),
        node: Some("n1".into()),
        zone: Some("a".into()),
    };
    let mut events = vec![
        Event {
            at: secs(0),
            kind: EventKind::PhaseStarted {
                phase: Phase::SteadyBefore,
            },
        },
        Event {
            at: secs(25),
            kind: EventKind::RolledBack {
                fault: "kill".into(),
                undo: "u1".into(),
                outcome: steadfast::fault::RollbackOutcome::AlreadyRestored {
                    detail: "pod replaced by its ReplicaSet".into(),
                },
            },
        },
        Event {
            at: secs(15),
            kind: EventKind::FaultInjected {
                fault: "kill".into(),
                firing: 0,
                targets: vec![target.clone()],
                effects: vec![TargetEffect {
                    target,
                    effect: Effect::Applied,
                    at: std::time::SystemTime::now(),
                }],
                seed: 42,
                timing: FiringTiming {
                    scheduled: secs(15),
                    actions: vec![Duration::from_millis(15_040)],
                },
            },
        },
    ];
    events.sort_by_key(|e| e.at);
    RunOutcome {
        run_id: "run-1".into(),
        seed: 42,
        started_at: Utc::now(),
        finished_at: Utc::now(),
        verdict: Verdict::from_results(&results),
        windows,
        results,
        events,
        healing: BTreeMap::from([(
            "kill".to_owned(),
            Healing::Healed {
                after: Duration::from_millis(2500),
            },
        )]),
        healing_by_firing: BTreeMap::from([(
            ("kill".to_owned(), 0),
            Healing::Healed {
                after: Duration::from_millis(2500),
            },
        )]),
        effects: vec![steadfast::engine::FiringEffect {
            fault: "kill".into(),
            firing: 0,
            injected_at: Duration::from_secs(15),
            effect: steadfast::engine::EffectStatus::Confirmed {
                at: Duration::from_millis(15_050),
            },
            detection: steadfast::engine::Noticed::Detected {
                at: Duration::from_millis(15_400),
            },
        }],
        pending: Vec::new(),
    }
}

#[test]
fn the_report_validates_against_the_committed_schema_and_renders_every_format() {
    let (spec, _) = parse_experiment("t.yaml", SPEC).unwrap();
    let store = store();
    let outcome = outcome(&store, &spec);
    let mut probes = ProbeData::default();
    probes.http.insert("web".into(), &store);
    let report = build_report(&ReportInput {
        spec: &spec,
        file: Some("t.yaml".into()),
        cluster: None,
        outcome: &outcome,
        probes,
        api_calls: Vec::new(),
    });

    let text = json::render(&report);
    assert!(!text.contains("s3cr3t"), "secrets never reach the report");
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/schema.json"))
            .unwrap(),
    )
    .unwrap();
    let instance: serde_json::Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the committed schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(json::parse(&text).unwrap(), report, "the JSON reads back");

    // The 1 s outage fails `outage` and `avail` (17..18 s is inside `during`), p99 passes.
    let by_name = |n: &str| report.targets.iter().find(|t| t.name == n).unwrap();
    assert!(!by_name("outage").passed);
    assert!(
        (by_name("outage").value.unwrap() - 1.0).abs() < 0.02,
        "{:?}",
        by_name("outage")
    );
    assert!(!by_name("avail").passed);
    assert!(by_name("p99").passed);
    assert_eq!(report.verdict.outcome, model::Outcome::Failed);
    assert_eq!(report.exit_code, 1);
    let web = &report.probes[0];
    assert_eq!(web.backends.len(), 3);
    assert_eq!(web.windows[&model::WindowName::Run].attempts, 4000);
    assert_eq!(
        web.windows[&model::WindowName::Run].failures["connect"],
        100
    );
    assert!(
        web.series.len() >= 79,
        "half-second points: {}",
        web.series.len()
    );
    assert_eq!(report.faults[0].targets[0].name, "shop/web-a");
    assert_eq!(report.faults[0].healed_after_seconds, Some(2.5));
    let times = &report.faults[0].firing_times[0];
    assert_eq!(times.actions, vec![15.04]);
    assert_eq!(times.lag_ms.map(f64::round), Some(40.0));
    assert_eq!(times.spread_ms, Some(0.0));
    assert_eq!(times.healed_at, Some(17.54));
    assert_eq!(times.healed, Some(true));

    let xml = junit::render(&[&report]);
    assert!(
        xml.contains("tests=\"4\" failures=\"2\" errors=\"0\""),
        "{xml}"
    );
    assert!(
        xml.contains("<failure message=\"measured 1010.0ms, required &lt;= 500ms\""),
        "{xml}"
    );

    let md = markdown::render(&report);
    assert!(md.starts_with("## ❌ report-test — failed"), "{md}");
    assert!(
        md.contains("| outage | web | during | `<= 500ms` |"),
        "{md}"
    );
    assert!(
        md.contains("| lag 40 ms · spread 0 ms | confirmed at 15.1s | 0.4s after injection (at 15.4s) | healed in 2.5s |"),
        "{md}"
    );
}

#[test]
fn the_report_schema_is_committed_and_current() {
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/schema.json"))
            .unwrap();
    assert!(
        committed == steadfast::report::model::report_schema_text(),
        "reports/schema.json drifted: run `cargo run -q -- schema --report > reports/schema.json`"
    );
}

/// The synthetic run's report.
fn sample_report() -> steadfast::report::Report {
    let (spec, _) = parse_experiment("t.yaml", SPEC).unwrap();
    let store = store();
    let outcome = outcome(&store, &spec);
    let mut probes = ProbeData::default();
    probes.http.insert("web".into(), &store);
    build_report(&ReportInput {
        spec: &spec,
        file: Some("t.yaml".into()),
        cluster: None,
        outcome: &outcome,
        probes,
        api_calls: Vec::new(),
    })
}

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a tool with a deadline, killing it when it overruns.
fn run_bounded(command: &mut std::process::Command, limit: Duration) -> std::process::Output {
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("the tool starts");
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    std::process::Output {
        status,
        stdout: std::fs::read(out_path).unwrap(),
        stderr: std::fs::read(err_path).unwrap(),
    }
}

#[test]
fn junit_xml_reads_back_in_junitparser_with_the_right_counts() {
    let Some(python) = tools::require_venv_python("junitparser", &["junitparser"]) else {
        return;
    };
    let failed = sample_report();
    let mut aborted = failed.clone();
    aborted.experiment.name = "aborted-run".into();
    aborted.verdict.outcome = model::Outcome::Aborted;
    aborted.verdict.summary = "aborted and rolled back: <alert> & \"quotes\"".into();
    for target in &mut aborted.targets {
        target.passed = true;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    std::fs::write(&path, junit::render(&[&failed, &aborted])).unwrap();

    const SCRIPT: &str = r#"
import json, sys
from junitparser import JUnitXml, Failure, Error
out = []
for suite in JUnitXml.fromfile(sys.argv[1]):
    cases = list(suite)
    out.append({
        "name": suite.name, "tests": suite.tests, "failures": suite.failures,
        "errors": suite.errors, "cases": len(cases),
        "failed": sorted(c.name for c in cases if any(isinstance(r, Failure) for r in c.result)),
        "errored": [r.message for c in cases for r in c.result if isinstance(r, Error)],
    })
print(json.dumps(out))
"#;
    let output = run_bounded(
        std::process::Command::new(&python)
            .args(["-c", SCRIPT])
            .arg(&path),
        Duration::from_secs(60),
    );
    assert!(
        output.status.success(),
        "junitparser failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let suites: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut missed: Vec<String> = failed
        .targets
        .iter()
        .filter(|t| !t.passed)
        .map(|t| t.name.clone())
        .collect();
    missed.sort();
    assert_eq!(missed.len(), 2, "the synthetic run misses two targets");
    eprintln!("junitparser read: {suites}");
    let first = &suites[0];
    assert_eq!(first["name"], "report-test");
    assert_eq!(
        first["tests"],
        failed.targets.len() + 1,
        "a case per target + the run"
    );
    assert_eq!(first["cases"], failed.targets.len() + 1);
    assert_eq!(first["failures"], missed.len());
    assert_eq!(first["errors"], 0);
    assert_eq!(first["failed"], serde_json::json!(missed));
    let second = &suites[1];
    assert_eq!(second["failures"], 0);
    assert_eq!(second["errors"], 1);
    assert_eq!(
        second["errored"][0], "aborted and rolled back: <alert> & \"quotes\"",
        "escaped text reads back as written"
    );
}

#[test]
fn html_escapes_everything_the_cluster_or_spec_provides() {
    let mut report = sample_report();
    report.experiment.description = Some("<script>alert('d')</script>".into());
    report
        .experiment
        .labels
        .insert("team".into(), "\"><img src=x onerror=alert(1)>".into());
    report.probes[0].backends[0].backend = "<svg onload=alert(2)>".into();
    if let Some(point) = report.probes[0]
        .series
        .iter_mut()
        .find(|p| !p.backends.is_empty())
    {
        point
            .backends
            .insert("</svg><script>alert(3)</script>".into(), 5);
    }
    report.faults[0].targets[0].detail = Some("a & b < c".into());
    let page = steadfast::report::html::render(&report);
    for raw in ["<script", "<img", "<svg onload", "</svg><script"] {
        assert!(!page.contains(raw), "`{raw}` reached the page unescaped");
    }
    assert!(page.contains("&lt;script&gt;alert(&#39;d&#39;)&lt;/script&gt;"));
    assert!(page.contains("&lt;svg onload=alert(2)&gt;"));
    assert!(page.contains("a &amp; b &lt; c"));
    // Self-contained: nothing is fetched.
    for external in ["src=\"http", "href=\"http", "<link", "@import", "url("] {
        assert!(
            !page.contains(external),
            "`{external}` in a self-contained page"
        );
    }
}

fn chromium() -> Option<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM_BIN").map(std::path::PathBuf::from) {
        return path.is_file().then_some(path);
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.is_file())
}

/// Headless Chromium with a fresh profile and no network of its own.
fn chromium_command(binary: &Path, profile: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(binary);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn the_html_report_renders_its_charts_in_headless_chromium() {
    let Some(binary) = tools::require("chromium (or set CHROMIUM_BIN)", chromium()) else {
        return;
    };
    let report = sample_report();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, steadfast::report::html::render(&report)).unwrap();
    let blank = dir.path().join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html><body></body></html>").unwrap();
    let url = |p: &Path| format!("file://{}", p.display());

    let profile = tempfile::tempdir().unwrap();
    let output = run_bounded(
        chromium_command(&binary, profile.path())
            .arg("--dump-dom")
            .arg(url(&page)),
        Duration::from_secs(120),
    );
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && dom.contains("</html>"),
        "chromium --dump-dom failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The timeline, success ratio, latency and backend-share charts, parsed into SVG elements.
    for class in [
        "chart-timeline",
        "chart-ratio",
        "chart-latency",
        "chart-shares",
    ] {
        assert!(
            dom.contains(&format!("class=\"chart {class}\"")),
            "no {class} chart in the DOM"
        );
    }
    assert_eq!(dom.matches("<svg").count(), 4, "four charts");
    assert!(
        dom.matches("<path class=\"series\"").count() >= 3,
        "ratio, p50, p99 lines"
    );
    assert!(dom.contains("class=\"band-fault\""), "fault window shaded");
    assert!(dom.contains("class=\"mark-rollback\""), "rollback marked");
    let backends = report.probes[0].backends.len();
    assert_eq!(
        dom.matches("<g class=\"layer\"").count(),
        backends,
        "a layer per backend"
    );
    assert!(
        dom.contains("id=\"verdict\">failed</span>"),
        "verdict shown"
    );

    let shot = |target: &Path, png: &Path| {
        let profile = tempfile::tempdir().unwrap();
        let output = run_bounded(
            chromium_command(&binary, profile.path())
                .arg(format!("--screenshot={}", png.display()))
                .arg("--window-size=1100,1800")
                .arg(url(target)),
            Duration::from_secs(120),
        );
        assert!(
            output.status.success() && png.is_file(),
            "chromium --screenshot failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::read(png).unwrap()
    };
    let report_png = shot(&page, &dir.path().join("report.png"));
    let blank_png = shot(&blank, &dir.path().join("blank.png"));
    eprintln!(
        "chromium: {} svg charts, {} series paths, {} backend layers; screenshot {} bytes, blank page {} bytes",
        dom.matches("<svg").count(),
        dom.matches("<path class=\"series\"").count(),
        backends,
        report_png.len(),
        blank_png.len()
    );
    assert_eq!(png_size(&report_png), (1100, 1800));
    assert_eq!(png_size(&blank_png), (1100, 1800));
    assert!(
        report_png.len() > 10 * blank_png.len(),
        "the page is not blank: {} bytes against {} for an empty page",
        report_png.len(),
        blank_png.len()
    );
}

/// `name{labels} value` lines of a text exposition, for names starting with `prefix`.
fn samples(text: &str, prefix: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a value");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once("=\"").expect("label=\"value\"");
                    (k.to_owned(), v.trim_end_matches('"').to_owned())
                })
                .collect();
            (name.to_owned(), labels, value.parse().expect("a number"))
        })
        .collect()
}

fn value_of(
    samples: &[(String, BTreeMap<String, String>, f64)],
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .unwrap_or_else(|| panic!("no {name} {labels:?} in {samples:#?}"))
        .2
}

/// The report's own numbers must come back out of the metrics.
fn assert_metrics_match(
    report: &steadfast::report::Report,
    samples: &[(String, BTreeMap<String, String>, f64)],
) {
    let exp = ("experiment", "report-test");
    assert_eq!(
        value_of(samples, "steadfast_experiment_passed", &[exp]),
        0.0
    );
    assert_eq!(
        value_of(
            samples,
            "steadfast_experiment_verdict",
            &[exp, ("verdict", "failed")]
        ),
        1.0
    );
    assert_eq!(
        value_of(
            samples,
            "steadfast_experiment_verdict",
            &[exp, ("verdict", "passed")]
        ),
        0.0
    );
    assert_eq!(
        value_of(samples, "steadfast_experiment_pending_undo_records", &[exp]),
        report.rollback.pending.len() as f64,
        "pending undo records, for the alert on a run that left something unrestored"
    );
    let during = &report.probes[0].windows[&model::WindowName::During];
    let availability = value_of(
        samples,
        "steadfast_experiment_availability_ratio",
        &[exp, ("probe", "web"), ("window", "during")],
    );
    assert_eq!(Some(availability), during.availability);
    assert!(
        (availability - 0.95).abs() < 0.001,
        "100 of 2000 failed: {availability}"
    );
    let outage = value_of(
        samples,
        "steadfast_experiment_longest_outage_seconds",
        &[exp, ("probe", "web"), ("window", "during")],
    );
    assert!((outage - 1.0).abs() < 0.02, "{outage}");
    assert_eq!(
        value_of(
            samples,
            "steadfast_experiment_self_healing_seconds",
            &[exp, ("fault", "kill")]
        ),
        2.5
    );
    let finished = report.run.finished_at.timestamp_millis() as f64 / 1000.0;
    assert!(
        (value_of(
            samples,
            "steadfast_experiment_last_run_timestamp_seconds",
            &[exp]
        ) - finished)
            .abs()
            < 0.001
    );
    assert_eq!(
        value_of(
            samples,
            "steadfast_experiment_target_passed",
            &[exp, ("target", "outage")]
        ),
        0.0
    );
    assert_eq!(
        value_of(
            samples,
            "steadfast_experiment_target_passed",
            &[exp, ("target", "p99")]
        ),
        1.0
    );
}

#[test]
fn the_metrics_textfile_is_written_atomically_and_parses() {
    let report = sample_report();
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("report.json");
    std::fs::write(&json_path, json::render(&report)).unwrap();
    let collector = dir.path().join("textfiles");
    std::fs::create_dir(&collector).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_steadfast"))
        .arg("report")
        .arg(&json_path)
        .arg("--metrics-textfile")
        .arg(&collector)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let files: Vec<_> = std::fs::read_dir(&collector)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        files,
        ["steadfast-report-test.prom"],
        "one file, no temporary left behind"
    );
    let text = std::fs::read_to_string(collector.join("steadfast-report-test.prom")).unwrap();
    assert_metrics_match(&report, &samples(&text, "steadfast_experiment_"));

    if let Some(promtool) = tools::require_tool("promtool") {
        let output = run_bounded(
            std::process::Command::new(&promtool)
                .args(["check", "metrics"])
                .stdin(std::fs::File::open(collector.join("steadfast-report-test.prom")).unwrap()),
            Duration::from_secs(60),
        );
        assert!(
            output.status.success(),
            "promtool rejects the exposition: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn metrics_pushed_to_a_real_pushgateway_read_back_from_its_metrics_page() {
    let dir = tempfile::tempdir().unwrap();
    let Some(gateway) = pushgateway::start(dir.path()) else {
        return;
    };
    let report = sample_report();
    let json_path = dir.path().join("report.json");
    std::fs::write(&json_path, json::render(&report)).unwrap();
    let push = |url: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_steadfast"))
            .arg("report")
            .arg(&json_path)
            .args(["--pushgateway", url])
            .output()
            .unwrap()
    };
    let output = push(&format!("http://{}", gateway.address));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("pushed to the Pushgateway (job=steadfast, experiment=report-test)"),
        "{stdout}"
    );

    let (status, page) = pushgateway::http_get(&gateway.address, "/metrics").unwrap();
    assert_eq!(status, 200);
    let pushed = samples(&page, "steadfast_experiment_");
    assert!(
        pushed
            .iter()
            .all(|(_, l, _)| l.get("job").map(String::as_str) == Some("steadfast")),
        "grouped under job=steadfast"
    );
    assert_metrics_match(&report, &pushed);
    let push_time = value_of(
        &samples(&page, "push_time_seconds"),
        "push_time_seconds",
        &[("job", "steadfast"), ("experiment", "report-test")],
    );
    assert!(push_time > 0.0);

    // An unreachable gateway is an error (exit 2), not silence.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = push(&format!("http://127.0.0.1:{closed}"));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot push to http://127.0.0.1:{closed}/metrics/job/steadfast/experiment/report-test"
        )),
        "{stderr}"
    );
}

/// A real run on the sandbox (`demo` runs `run` on it) pushes its metrics and writes its
/// textfile, and both agree with the report it wrote.
#[test]
fn a_sandbox_run_pushes_its_metrics_and_writes_its_textfile() {
    let dir = tempfile::tempdir().unwrap();
    let Some(gateway) = pushgateway::start(dir.path()) else {
        return;
    };
    let reports = dir.path().join("reports");
    let textfile = dir.path().join("run.prom");
    let output = run_bounded(
        std::process::Command::new(env!("CARGO_BIN_EXE_steadfast"))
            .args(["demo", "--report-dir"])
            .arg(&reports)
            .arg("--pushgateway")
            .arg(format!("http://{}", gateway.address))
            .arg("--metrics-textfile")
            .arg(&textfile)
            .current_dir(manifest())
            .env("NO_COLOR", "1")
            .env_remove("KUBECONFIG"),
        Duration::from_secs(300),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("metrics: pushed to the Pushgateway"),
        "{stdout}"
    );
    let run_dir = std::fs::read_dir(&reports)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let report =
        json::parse(&std::fs::read_to_string(run_dir.join("report.json")).unwrap()).unwrap();

    let (_, page) = pushgateway::http_get(&gateway.address, "/metrics").unwrap();
    let text = std::fs::read_to_string(&textfile).unwrap();
    for metrics in [page, text] {
        let samples = samples(&metrics, "steadfast_experiment_");
        let exp = ("experiment", "demo-web-pod-kill");
        assert_eq!(
            value_of(&samples, "steadfast_experiment_passed", &[exp]),
            f64::from(u8::from(report.verdict.outcome == model::Outcome::Passed))
        );
        assert_eq!(
            Some(value_of(
                &samples,
                "steadfast_experiment_availability_ratio",
                &[exp, ("probe", "web"), ("window", "during")],
            )),
            report.probes[0].windows[&model::WindowName::During].availability
        );
        let finished = report.run.finished_at.timestamp_millis() as f64 / 1000.0;
        assert!(
            (value_of(
                &samples,
                "steadfast_experiment_last_run_timestamp_seconds",
                &[exp]
            ) - finished)
                .abs()
                < 0.001
        );
        let recovery = report
            .targets
            .iter()
            .find(|t| t.measure.as_str() == "recovery")
            .unwrap();
        assert_eq!(
            Some(value_of(
                &samples,
                "steadfast_experiment_recovery_seconds",
                &[exp, ("probe", "web")],
            )),
            recovery.value
        );
    }
}

#[test]
fn a_verdict_reached_under_a_misbehaving_control_plane_says_so_in_every_format() {
    use steadfast::report::model::{Api, EndpointCalls};
    let (spec, _) = parse_experiment("t.yaml", SPEC).unwrap();
    let store = store();
    let outcome = outcome(&store, &spec);
    let mut probes = ProbeData::default();
    probes.http.insert("web".into(), &store);
    let calls = |api: Api, endpoint: &str, errors, retries| EndpointCalls {
        api,
        endpoint: endpoint.into(),
        errors,
        retries,
    };
    let report = build_report(&ReportInput {
        spec: &spec,
        file: Some("t.yaml".into()),
        cluster: None,
        outcome: &outcome,
        probes,
        api_calls: vec![
            calls(Api::Kubernetes, "delete pods", 2, 0),
            calls(Api::Kubernetes, "list pods", 5, 5),
            calls(Api::Aws, "ec2:CreateNetworkAcl", 1, 1),
            calls(Api::Aws, "ec2:DescribeSubnets", 0, 0),
        ],
    });

    let section = report
        .control_plane
        .as_ref()
        .expect("a control plane section");
    assert!(section.misbehaved);
    assert_eq!((section.errors, section.retries), (8, 6));
    assert_eq!(section.endpoints.len(), 3, "{section:?}");
    assert!(
        report
            .verdict
            .summary
            .ends_with("reached while the control plane misbehaved (8 API error(s), 6 retries on aws and kubernetes)"),
        "{}",
        report.verdict.summary
    );
    let text = json::render(&report);
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(manifest().join("reports/schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the committed schema compiles");
    let instance: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(validator.is_valid(&instance), "{text}");
    assert_eq!(json::parse(&text).unwrap(), report, "the JSON reads back");
    let md = steadfast::report::markdown::render(&report);
    assert!(md.contains("control plane misbehaved"), "{md}");
    assert!(md.contains("| kubernetes | list pods | 5 | 5 |"), "{md}");
    assert!(
        md.contains("| aws | ec2:CreateNetworkAcl | 1 | 1 |"),
        "{md}"
    );
    let html = steadfast::report::html::render(&report);
    assert!(
        html.contains("aws ec2:CreateNetworkAcl: 1 error(s), 1 retry"),
        "the HTML header lists the endpoints"
    );
    assert!(
        sample_report().control_plane.is_none(),
        "clean calls leave no section"
    );
}

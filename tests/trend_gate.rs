//! The trend gate and the resilience score through `steadfast gate` and `steadfast report` on
//! crafted report histories: a regression inside every absolute bound fails only its rule, a
//! bad rule is a one-line exit 2, the history renders as a table and a chart, and a score bound
//! tells a run that met its targets from one that did not.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

const EXPERIMENT: &str = "checkout-pod-kill";

/// A report of one run: availability and recovery, each with its bound and value.
fn report(finished: DateTime<Utc>, availability: f64, recovery: f64) -> Value {
    let avail_ok = availability >= 99.0;
    let recovery_ok = recovery <= 30.0;
    let passed = avail_ok && recovery_ok;
    json!({
        "reportVersion": 1,
        "tool": {"name": "steadfast", "version": "0.1.0"},
        "run": {
            "id": format!("{EXPERIMENT}-{}", finished.timestamp()),
            "seed": 7,
            "startedAt": (finished - Duration::seconds(60)).to_rfc3339(),
            "finishedAt": finished.to_rfc3339(),
            "durationSeconds": 60.0,
        },
        "experiment": {"name": EXPERIMENT, "labels": {"suite": "release"}, "specSha256": "00"},
        "verdict": {
            "outcome": if passed { "passed" } else { "failed" },
            "summary": "crafted",
        },
        "exitCode": if passed { 0 } else { 1 },
        "windows": {},
        "timeline": [],
        "faults": [],
        "probes": [],
        "targets": [
            {"name": "avail", "probe": "web", "measure": "availability", "window": "during",
             "required": ">= 99%", "measured": format!("{availability}%"), "value": availability,
             "passed": avail_ok, "detail": "crafted"},
            {"name": "recovery", "probe": "web", "measure": "recovery", "window": "after",
             "required": "<= 30s", "measured": format!("{recovery}s"), "value": recovery,
             "passed": recovery_ok, "detail": "crafted"},
        ],
        "rollback": {"complete": true, "applied": 1},
    })
}

struct History {
    dir: tempfile::TempDir,
}

impl History {
    fn new() -> Self {
        History {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn reports(&self) -> PathBuf {
        self.dir.path().join("reports")
    }

    /// Writes a run as `reports/<experiment>/<n>/report.json`; returns its file.
    fn add(&self, n: usize, report: &Value) -> PathBuf {
        let dir = self.reports().join(EXPERIMENT).join(format!("{n:03}"));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("report.json");
        std::fs::write(&file, report.to_string()).unwrap();
        file
    }

    /// Ten passed runs, an hour apart, recovering in 9.5s to 10.5s (median 10s).
    fn seed(&self) {
        for i in 0..10 {
            let finished = Utc::now() - Duration::hours(12 - i as i64);
            self.add(i, &report(finished, 99.9, 9.5 + (i % 5) as f64 * 0.25));
        }
    }

    fn policy(&self, text: &str) -> PathBuf {
        let path = self.dir.path().join("gate.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn steadfast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_steadfast"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs")
}

fn gate(policy: &Path, reports: &Path) -> Output {
    steadfast(&[
        "gate",
        "--policy",
        policy.to_str().unwrap(),
        reports.to_str().unwrap(),
    ])
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const WITH_REGRESSION: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: GatePolicy
metadata: {name: trend}
spec:
  require: [{experiment: checkout-pod-kill}]
  regressions:
    - experiment: checkout-pod-kill
      target: recovery
      against: last 10 passed runs
      statistic: median
      worseByMoreThan: 25%
"#;

const WITHOUT_REGRESSION: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: GatePolicy
metadata: {name: trend}
spec:
  require: [{experiment: checkout-pod-kill}]
"#;

#[test]
fn forty_percent_slower_recovery_inside_the_bound_fails_the_regression_rule_only() {
    let history = History::new();
    history.seed();
    // 14s: 40% slower than the 10s median, still well inside `<= 30s`.
    history.add(10, &report(Utc::now() - Duration::minutes(5), 99.9, 14.0));

    let output = gate(&history.policy(WITH_REGRESSION), &history.reports());
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    let failed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with(EXPERIMENT) && l.contains(" FAIL "))
        .collect();
    assert_eq!(failed.len(), 1, "only the regression fails:\n{stdout}");
    let line = failed[0];
    assert!(line.contains("regression recovery"), "{line}");
    assert!(line.contains("baseline 10s"), "{line}");
    assert!(line.contains("median of last 10 passed run(s)"), "{line}");
    assert!(line.contains("current 14s"), "{line}");
    assert!(line.contains("change +40.0%"), "{line}");
    // Every absolute target still passes.
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("target recovery") && l.contains(" pass ")),
        "{stdout}"
    );

    let output = gate(&history.policy(WITHOUT_REGRESSION), &history.reports());
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");

    // Within the tolerance (12s is +20%), the rule holds.
    let calm = History::new();
    calm.seed();
    calm.add(10, &report(Utc::now() - Duration::minutes(5), 99.9, 12.0));
    let output = gate(&calm.policy(WITH_REGRESSION), &calm.reports());
    let (stdout, _) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("change +20.0%"), "{stdout}");
}

#[test]
fn a_bad_regression_rule_exits_2_with_one_line_naming_the_field() {
    let history = History::new();
    history.seed();
    for (field, bad) in [
        ("against", "against: last ten runs"),
        ("statistic", "statistic: average"),
        ("worseByMoreThan", "worseByMoreThan: a lot"),
    ] {
        let mut policy = WITH_REGRESSION.to_owned();
        let original = match field {
            "against" => "against: last 10 passed runs",
            "statistic" => "statistic: median",
            _ => "worseByMoreThan: 25%",
        };
        policy = policy.replace(original, bad);
        let output = gate(&history.policy(&policy), &history.reports());
        let (stdout, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(2), "{field}: {stdout}{stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(
            lines[0].contains(&format!("gate.yaml: spec.regressions[0].{field}: "))
                && lines[0].contains("hint:"),
            "{stderr}"
        );
    }
    let unknown = WITH_REGRESSION.replace("statistic: median", "statistik: median");
    let output = gate(&history.policy(&unknown), &history.reports());
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("spec.regressions[0]"), "{stderr}");
}

#[test]
fn report_history_prints_the_trend_table_and_charts_it_in_html() {
    let history = History::new();
    history.seed();
    let newest = history.add(10, &report(Utc::now() - Duration::minutes(5), 98.5, 14.0));
    let location = history.reports().join(EXPERIMENT);

    let output = steadfast(&["report", "--history", location.to_str().unwrap()]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 13, "header, 11 runs, count:\n{stdout}");
    assert!(
        lines[0].starts_with("STARTED") && lines[0].contains("SCORE"),
        "{stdout}"
    );
    assert!(lines[0].ends_with("RECOVERY"), "{stdout}");
    assert!(
        lines[1].contains("passed") && lines[1].contains("100.0"),
        "{stdout}"
    );
    // The newest, oldest-first table's last run: availability missed, score below 100.
    assert!(
        lines[11].contains("failed") && lines[11].contains("14s"),
        "{stdout}"
    );
    assert_eq!(lines[12], "11 run(s)");

    let html = history.dir.path().join("report.html");
    let output = steadfast(&[
        "report",
        newest.to_str().unwrap(),
        "--format",
        "html",
        "--history",
        location.to_str().unwrap(),
        "-o",
        html.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output).1);
    let page = std::fs::read_to_string(&html).unwrap();
    let chart = &page[page.find("id=\"history-chart\"").expect("a history chart")..];
    let chart = &chart[..chart.find("</svg>").unwrap()];
    assert_eq!(chart.matches("<circle").count(), 11, "a point per run");
    // Without --history, no chart.
    let output = steadfast(&["report", newest.to_str().unwrap(), "--format", "html"]);
    assert!(!String::from_utf8_lossy(&output.stdout).contains("history-chart"));
}

const SCORE_POLICY: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: GatePolicy
metadata: {name: score}
spec:
  require: [{experiment: checkout-pod-kill}]
  requireAllTargets: false
  score: ">= 90"
"#;

#[test]
fn a_score_bound_passes_a_run_that_met_every_target_and_fails_one_that_missed() {
    let met = History::new();
    met.add(0, &report(Utc::now() - Duration::minutes(5), 99.9, 10.0));
    let output = gate(&met.policy(SCORE_POLICY), &met.reports());
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("resilience score 100.0, gate requires >= 90"),
        "{stdout}"
    );
    assert!(
        stdout.contains("suite resilience score: 100.0 / 100"),
        "{stdout}"
    );

    // Availability 97% against >= 99%: twice the error budget over, no credit; recovery met:
    // 100 × 2 / 5 = 40.
    let missed = History::new();
    missed.add(0, &report(Utc::now() - Duration::minutes(5), 97.0, 10.0));
    let output = gate(&missed.policy(SCORE_POLICY), &missed.reports());
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    let score_line = stdout
        .lines()
        .find(|l| l.starts_with(EXPERIMENT) && l.contains(" score "))
        .expect("a score check");
    assert!(
        score_line.contains("FAIL") && score_line.contains("resilience score 40.0"),
        "{stdout}"
    );
    assert!(stdout.contains("(suite)"), "{stdout}");

    let bad = SCORE_POLICY.replace(r#"score: ">= 90""#, r#"score: "90 or more""#);
    let output = gate(&missed.policy(&bad), &missed.reports());
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("spec.score"), "{stderr}");
}

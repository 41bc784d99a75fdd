//! `steadfast gate` on crafted report sets: the documented exit codes (0 pass, 1 fail, 2 bad
//! policy or input), the table, and the JUnit file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

#[path = "support/tools.rs"]
#[allow(dead_code)]
mod tools;

/// A target as a report shows it: name, measure, passed, value.
type Target<'a> = (&'a str, &'a str, bool, f64);

fn report(
    name: &str,
    suite: &str,
    finished: DateTime<Utc>,
    outcome: &str,
    targets: &[Target],
) -> Value {
    let targets: Vec<Value> = targets
        .iter()
        .map(|(target, measure, passed, value)| {
            json!({
                "name": target,
                "probe": "web",
                "measure": measure,
                "window": "during",
                "required": if *measure == "availability" { ">= 99%" } else { "<= 800ms" },
                "measured": format!("{value}"),
                "value": value,
                "passed": passed,
                "detail": "crafted",
            })
        })
        .collect();
    let exit = match outcome {
        "passed" => 0,
        "failed" | "not steady" => 1,
        "aborted" => 3,
        _ => 4,
    };
    json!({
        "reportVersion": 1,
        "tool": {"name": "steadfast", "version": "0.1.0"},
        "run": {
            "id": format!("{name}-{}", finished.timestamp()),
            "seed": 7,
            "startedAt": (finished - Duration::seconds(90)).to_rfc3339(),
            "finishedAt": finished.to_rfc3339(),
            "durationSeconds": 90.0,
        },
        "experiment": {"name": name, "labels": {"suite": suite}, "specSha256": "00"},
        "verdict": {"outcome": outcome, "summary": format!("crafted {outcome}")},
        "exitCode": exit,
        "windows": {},
        "timeline": [],
        "faults": [],
        "probes": [],
        "targets": targets,
        "rollback": {"complete": outcome != "rollback incomplete", "applied": 1},
    })
}

const POLICY: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: GatePolicy
metadata: {name: release}
spec:
  maxAge: 7d
  require:
    - labels: {suite: release-gate}
      atLeast: 3
    - experiment: checkout
  thresholds:
    - {experiment: search, target: search-p99, atMost: 900ms}
"#;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a report as `reports/<dir>/report.json`.
    fn add(&self, dir: &str, report: &Value) {
        let dir = self.path("reports").join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("report.json"), report.to_string()).unwrap();
    }

    fn policy(&self, text: &str) -> PathBuf {
        let path = self.path("gate.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn gate(&self, policy: &Path, extra: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_steadfast"))
            .arg("gate")
            .arg("--policy")
            .arg(policy)
            .args(extra)
            .arg(self.path("reports"))
            .env("NO_COLOR", "1")
            .output()
            .expect("the binary runs")
    }
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn hours_ago(h: i64) -> DateTime<Utc> {
    Utc::now() - Duration::hours(h)
}

/// Three passing runs of the suite, finished an hour ago.
fn passing_suite(f: &Fixture) {
    f.add(
        "checkout",
        &report(
            "checkout",
            "release-gate",
            hours_ago(1),
            "passed",
            &[("checkout-avail", "availability", true, 99.9)],
        ),
    );
    f.add(
        "search",
        &report(
            "search",
            "release-gate",
            hours_ago(1),
            "passed",
            &[("search-p99", "latency", true, 0.6)],
        ),
    );
    f.add(
        "cart",
        &report(
            "cart",
            "release-gate",
            hours_ago(1),
            "passed",
            &[("cart-heal", "selfHealing", true, 40.0)],
        ),
    );
}

#[test]
fn a_complete_fresh_passing_suite_passes_with_exit_0_and_junit() {
    let f = Fixture::new();
    passing_suite(&f);
    let junit = f.path("gate.xml");
    let policy = f.policy(POLICY);
    let output = f.gate(&policy, &["--junit", junit.to_str().unwrap()]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("gate release: PASS"), "{stdout}");
    // 1 label check + 3 experiments × (present, age, run, 1 target).
    assert!(
        stdout.contains("(13 checks: 13 passed, 0 waived, 0 failed; 3 report(s) read)"),
        "{stdout}"
    );
    let xml = std::fs::read_to_string(junit).unwrap();
    assert!(xml.contains("tests=\"13\" failures=\"0\""), "{xml}");
}

#[test]
fn gate_output_json_carries_every_check_of_the_table_and_the_decision() {
    let f = Fixture::new();
    passing_suite(&f);
    f.add(
        "cart",
        &report(
            "cart",
            "release-gate",
            hours_ago(1),
            "failed",
            &[("cart-heal", "selfHealing", false, 140.0)],
        ),
    );
    let policy = f.policy(POLICY);
    let table = f.gate(&policy, &[]);
    let output = f.gate(&policy, &["-o", "json"]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    let decision: Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    assert_eq!(decision["policy"], "release");
    assert_eq!(decision["passed"], false);
    assert_eq!(decision["reportsRead"], 3);
    let checks = decision["checks"].as_array().unwrap();
    // One JSON check per table row (the table adds a header, the suite's score and a closing
    // line).
    let (table_out, _) = text(&table);
    assert_eq!(checks.len(), table_out.lines().count() - 3, "{table_out}");
    let suite = decision["suiteScore"].as_f64().expect("the suite's score");
    assert!(table_out.contains(&format!("suite resilience score: {suite:.1} / 100")));
    assert_eq!(checks.len(), 13);
    assert_eq!(decision["failedChecks"], 1);
    assert_eq!(decision["passedChecks"], 12);
    let failed: Vec<&Value> = checks.iter().filter(|c| c["status"] == "fail").collect();
    assert_eq!(failed.len(), 1, "{stdout}");
    assert_eq!(failed[0]["subject"], "cart");
    assert_eq!(failed[0]["check"], "target cart-heal");
    assert!(
        failed[0]["detail"]
            .as_str()
            .unwrap()
            .contains("measured 140"),
        "{stdout}"
    );
}

#[test]
fn a_failed_target_fails_the_gate_with_exit_1_unless_a_known_failure_accepts_it() {
    let f = Fixture::new();
    passing_suite(&f);
    f.add(
        "cart",
        &report(
            "cart",
            "release-gate",
            hours_ago(1),
            "failed",
            &[("cart-heal", "selfHealing", false, 140.0)],
        ),
    );
    let output = f.gate(&f.policy(POLICY), &[]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("gate release: FAIL"), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("target cart-heal"))
        .unwrap();
    assert!(
        line.contains("FAIL") && line.contains("measured 140"),
        "{line}"
    );

    let until = (Utc::now() + Duration::days(30)).format("%Y-%m-%d");
    let waived = format!(
        "{POLICY}  knownFailures:\n    - {{experiment: cart, target: cart-heal, reason: CART-142, expires: {until}}}\n"
    );
    let output = f.gate(
        &f.policy(&waived),
        &["--junit", f.path("w.xml").to_str().unwrap()],
    );
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.contains("target cart-heal"))
        .unwrap();
    assert!(
        line.contains("waived") && line.contains("CART-142"),
        "{line}"
    );
    let xml = std::fs::read_to_string(f.path("w.xml")).unwrap();
    assert!(
        xml.contains("failures=\"0\" errors=\"0\" skipped=\"1\""),
        "{xml}"
    );
    junitparser_counts(&f.path("w.xml"), 13, 0, 1);

    let expired = waived.replace(&until.to_string(), "2020-01-31");
    let output = f.gate(&f.policy(&expired), &[]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("expired 2020-01-31"), "{stdout}");
    let output = f.gate(
        &f.policy(&expired),
        &["--junit", f.path("e.xml").to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(1));
    junitparser_counts(&f.path("e.xml"), 13, 1, 0);
}

#[test]
fn a_stale_or_missing_run_fails_the_gate() {
    let f = Fixture::new();
    passing_suite(&f);
    f.add(
        "search",
        &report(
            "search",
            "release-gate",
            hours_ago(24 * 8),
            "passed",
            &[("search-p99", "latency", true, 0.6)],
        ),
    );
    let output = f.gate(&f.policy(POLICY), &[]);
    let (stdout, _) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("search") && l.contains(" age "))
        .unwrap();
    assert!(
        line.contains("FAIL") && line.contains("at most 7days"),
        "{line}"
    );

    let f = Fixture::new();
    f.add(
        "search",
        &report(
            "search",
            "release-gate",
            hours_ago(1),
            "passed",
            &[("search-p99", "latency", true, 0.6)],
        ),
    );
    let output = f.gate(&f.policy(POLICY), &[]);
    let (stdout, _) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("1 experiment(s) with these labels (at least 3)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("no report of `checkout` among 1 report(s) read"),
        "{stdout}"
    );
}

#[test]
fn thresholds_replace_the_experiments_own_bound_and_the_newest_run_counts() {
    let f = Fixture::new();
    passing_suite(&f);
    // Missed the experiment's 800ms but within the gate's 900ms; an older run failed outright.
    f.add(
        "search-old",
        &report("search", "release-gate", hours_ago(5), "aborted", &[]),
    );
    f.add(
        "search",
        &report(
            "search",
            "release-gate",
            hours_ago(1),
            "failed",
            &[("search-p99", "latency", false, 0.85)],
        ),
    );
    let output = f.gate(&f.policy(POLICY), &[]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("newest of 2"), "{stdout}");
    assert!(
        stdout.contains("measured 850ms, gate requires <= 900ms"),
        "{stdout}"
    );

    let stricter = POLICY.replace("atMost: 900ms", "atMost: 500ms");
    let output = f.gate(&f.policy(&stricter), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output).0);
}

#[test]
fn an_incomplete_rollback_is_never_waived() {
    let f = Fixture::new();
    passing_suite(&f);
    f.add(
        "cart",
        &report(
            "cart",
            "release-gate",
            hours_ago(1),
            "rollback incomplete",
            &[],
        ),
    );
    let policy = format!(
        "{POLICY}  knownFailures:\n    - {{experiment: cart, reason: flaky, expires: 2999-01-01}}\n"
    );
    let output = f.gate(&f.policy(&policy), &[]);
    let (stdout, _) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("never waived"), "{stdout}");
}

#[test]
fn a_bad_policy_or_input_exits_2_with_one_line_naming_file_field_and_fix() {
    let f = Fixture::new();
    passing_suite(&f);
    let cases = [
        (
            POLICY.replace("maxAge: 7d", "maxAge: a week"),
            "spec.maxAge: `a week` is not a positive duration (hint: write a duration like `7d`",
        ),
        (
            POLICY.replace("atLeast: 3", "atleast: 3"),
            "unknown field `atleast`",
        ),
        (
            POLICY.replace("atMost: 900ms", "atMost: 99%"),
            "spec.thresholds[0].atMost: is a percentage, but target `search-p99` of `search` measures latency (hint: write a duration",
        ),
        (
            POLICY.replace("kind: GatePolicy", "kind: Experiment"),
            "kind: `Experiment` is not a gate policy",
        ),
    ];
    for (policy, expected) in cases {
        let path = f.policy(&policy);
        let output = f.gate(&path, &[]);
        let (stdout, stderr) = text(&output);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{expected}\n{stdout}\n{stderr}"
        );
        let line = stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_default();
        assert!(
            line.contains(&path.display().to_string()),
            "names the file: {stderr}"
        );
        assert!(
            line.contains(expected),
            "expected `{expected}` in: {stderr}"
        );
        assert!(line.contains("hint:"), "{stderr}");
    }

    // A file that is not a report, and a path that does not exist.
    std::fs::write(f.path("reports/cart/report.json"), "{\"hello\": 1}").unwrap();
    let output = f.gate(&f.policy(POLICY), &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).1.contains("no reportVersion"),
        "{}",
        text(&output).1
    );
    let output = Command::new(env!("CARGO_BIN_EXE_steadfast"))
        .args(["gate", "--policy"])
        .arg(f.path("gate.yaml"))
        .arg(f.path("nowhere"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn the_shipped_release_gate_policy_judges_the_shipped_suite() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let policy = root.join("experiments/release-gate/gate.yaml");
    let f = Fixture::new();
    // The suite's own names and target names, all passing.
    f.add(
        "a",
        &report(
            "gate-checkout-pod-kill",
            "release-gate",
            hours_ago(2),
            "passed",
            &[
                ("checkout-availability-during", "availability", true, 99.7),
                ("checkout-recovery-during", "recovery", true, 4.0),
            ],
        ),
    );
    f.add(
        "b",
        &report(
            "gate-search-latency",
            "release-gate",
            hours_ago(2),
            "failed",
            &[
                ("search-p99", "latency", false, 0.82),
                ("search-p50", "latency", true, 0.05),
            ],
        ),
    );
    f.add(
        "c",
        &report(
            "gate-cart-zone-outage",
            "release-gate",
            hours_ago(2),
            "passed",
            &[("cart-availability-during", "availability", true, 99.5)],
        ),
    );
    let output = f.gate(&policy, &[]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("note: known failure matched nothing: gate-cart-zone-outage"),
        "{stdout}"
    );
}

/// Reads a JUnit file with PyPI's junitparser and checks its cases, failures and skipped counts
/// (skips loudly without junitparser, fails when tools are required).
fn junitparser_counts(path: &Path, tests: usize, failures: usize, skipped: usize) {
    let Some(python) = tools::require_venv_python("junitparser", &["junitparser"]) else {
        return;
    };
    const SCRIPT: &str = r#"
import sys
from junitparser import JUnitXml, Failure, Skipped
cases = [c for suite in JUnitXml.fromfile(sys.argv[1]) for c in suite]
print(len(cases), sum(any(isinstance(r, Failure) for r in c.result) for c in cases),
      sum(any(isinstance(r, Skipped) for r in c.result) for c in cases))
"#;
    let output = Command::new(python)
        .args(["-c", SCRIPT])
        .arg(path)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("{tests} {failures} {skipped}"),
        "junitparser's count of cases, failures and skipped"
    );
}

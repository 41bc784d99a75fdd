//! The decision for people (an aligned table) and for CI (JUnit XML, a test case per check, or
//! JSON with the same rows).

use std::fmt::Write as _;

use super::evaluate::{Decision, Status};
use crate::report::escape::markup as escape;

/// The table and a closing line with the decision.
pub fn table(decision: &Decision) -> String {
    let headers = ["EXPERIMENT", "CHECK", "RESULT", "DETAIL"];
    let rows: Vec<[String; 4]> = decision
        .checks
        .iter()
        .map(|c| {
            [
                c.subject.clone(),
                c.check.clone(),
                c.status.word().to_owned(),
                c.detail.replace('\n', " "),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (i, cell) in row.iter().take(3).enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: [&str; 4]| {
        let _ = writeln!(
            out,
            "{:w0$}  {:w1$}  {:w2$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    };
    line(&mut out, headers);
    for row in &rows {
        line(&mut out, [&row[0], &row[1], &row[2], &row[3]]);
    }
    for unused in &decision.unused_known_failures {
        let _ = writeln!(out, "note: known failure matched nothing: {unused}");
    }
    if let Some(score) = decision.suite_score {
        let _ = writeln!(out, "suite resilience score: {score:.1} / 100");
    }
    let _ = writeln!(
        out,
        "gate {}: {} ({} checks: {} passed, {} waived, {} failed; {} report(s) read)",
        decision.policy,
        if decision.passed() { "PASS" } else { "FAIL" },
        decision.checks.len(),
        decision.count(Status::Pass),
        decision.count(Status::Waived),
        decision.count(Status::Fail),
        decision.reports_read
    );
    out
}

/// The table's rows and closing line as JSON (`gate -o json`), for scripts that would otherwise
/// parse the table. Statuses are lower-case: `pass`, `fail`, `waived`.
pub fn json(decision: &Decision) -> serde_json::Value {
    let status = |s: Status| match s {
        Status::Pass => "pass",
        Status::Fail => "fail",
        Status::Waived => "waived",
    };
    let checks: Vec<serde_json::Value> = decision
        .checks
        .iter()
        .map(|c| {
            serde_json::json!({
                "subject": c.subject,
                "check": c.check,
                "status": status(c.status),
                "detail": c.detail,
            })
        })
        .collect();
    serde_json::json!({
        "policy": decision.policy,
        "passed": decision.passed(),
        "checks": checks,
        "passedChecks": decision.count(Status::Pass),
        "waivedChecks": decision.count(Status::Waived),
        "failedChecks": decision.count(Status::Fail),
        "unusedKnownFailures": decision.unused_known_failures,
        "reportsRead": decision.reports_read,
        "suiteScore": decision.suite_score,
    })
}

/// JUnit XML: one suite for the gate, a test case per check; waived checks are skipped.
pub fn junit(decision: &Decision) -> String {
    let failures = decision.count(Status::Fail);
    let skipped = decision.count(Status::Waived);
    let total = decision.checks.len();
    let name = format!("gate {}", decision.policy);
    let name = escape(&name);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"steadfast gate\" tests=\"{total}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">\n  <testsuite name=\"{name}\" tests=\"{total}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">\n"
    );
    for check in &decision.checks {
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\">",
            escape(&check.subject),
            escape(&check.check)
        );
        match check.status {
            Status::Pass => {}
            Status::Fail => {
                let _ = write!(
                    out,
                    "<failure message=\"{}\" type=\"gate\"/>",
                    escape(&check.detail)
                );
            }
            Status::Waived => {
                let _ = write!(out, "<skipped message=\"{}\"/>", escape(&check.detail));
            }
        }
        out.push_str("</testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

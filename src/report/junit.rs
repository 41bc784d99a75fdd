//! `junit.xml`: a test suite per experiment, a test case per target, so any CI system shows
//! which availability promise broke and by how much.

use std::fmt::Write;

use super::escape::markup as escape;
use super::model::{Outcome, Report};

/// Renders one or more reports as one JUnit document.
pub fn render(reports: &[&Report]) -> String {
    let mut cases_total = 0;
    let mut failures_total = 0;
    let mut errors_total = 0;
    let mut suites = String::new();
    for report in reports {
        let (suite, cases, failures, errors) = suite(report);
        cases_total += cases;
        failures_total += failures;
        errors_total += errors;
        suites.push_str(&suite);
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"steadfast\" tests=\"{cases_total}\" failures=\"{failures_total}\" errors=\"{errors_total}\">\n{suites}</testsuites>\n"
    )
}

fn suite(report: &Report) -> (String, usize, usize, usize) {
    let mut cases = String::new();
    let mut failures = 0;
    let mut errors = 0;
    let name = escape(&report.experiment.name);
    for target in &report.targets {
        let _ = writeln!(
            cases,
            "    <testcase classname=\"{name}\" name=\"{}\" time=\"0\">",
            escape(&target.name)
        );
        if !target.passed {
            failures += 1;
            let measured = target.measured.as_deref().unwrap_or("no data");
            let _ = writeln!(
                cases,
                "      <failure message=\"measured {}, required {}\" type=\"{}\">{}</failure>",
                escape(measured),
                escape(&target.required),
                escape(target.measure.as_str()),
                escape(&target.detail)
            );
        }
        cases.push_str("    </testcase>\n");
    }
    // The run itself: an error when it could not reach a verdict on its targets.
    let run_failed = matches!(
        report.verdict.outcome,
        Outcome::Aborted | Outcome::RollbackIncomplete | Outcome::NotSteady
    );
    let _ = writeln!(
        cases,
        "    <testcase classname=\"{name}\" name=\"run completed and rolled back\" time=\"{:.3}\">",
        report.run.duration_seconds
    );
    if run_failed {
        errors += 1;
        let _ = writeln!(
            cases,
            "      <error message=\"{}\" type=\"{}\"/>",
            escape(&report.verdict.summary),
            escape(report.verdict.outcome.as_str())
        );
    }
    cases.push_str("    </testcase>\n");
    let total = report.targets.len() + 1;
    let suite = format!(
        "  <testsuite name=\"{name}\" tests=\"{total}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{:.3}\" timestamp=\"{}\">\n    <properties>\n      <property name=\"runId\" value=\"{}\"/>\n      <property name=\"seed\" value=\"{}\"/>\n      <property name=\"verdict\" value=\"{}\"/>\n    </properties>\n{cases}  </testsuite>\n",
        report.run.duration_seconds,
        report.run.started_at.format("%Y-%m-%dT%H:%M:%S"),
        escape(&report.run.id),
        report.run.seed,
        escape(report.verdict.outcome.as_str()),
    );
    (suite, total, failures, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_characters_are_escaped() {
        assert_eq!(escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
    }
}

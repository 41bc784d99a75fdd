//! `report.json`: the model as pretty JSON, the source every other format can be rebuilt from.

use super::model::Report;

/// Renders the report.
pub fn render(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(report).unwrap_or_default();
    text.push('\n');
    text
}

/// Reads a report back.
///
/// # Errors
/// When the text is not a report of a version this build reads.
pub fn parse(text: &str) -> Result<Report, String> {
    let version = serde_json::from_str::<serde_json::Value>(text)
        .map_err(|err| format!("not JSON: {err}"))?
        .get("reportVersion")
        .and_then(serde_json::Value::as_u64);
    match version {
        Some(v) if v == u64::from(super::model::REPORT_VERSION) => {
            serde_json::from_str(text).map_err(|err| format!("not a steadfast report: {err}"))
        }
        Some(v) => Err(format!(
            "report version {v} is not supported (this build reads {})",
            super::model::REPORT_VERSION
        )),
        None => Err("no reportVersion: not a steadfast report".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::report::model::{EventKind, Outcome};

    const EXAMPLE: &str = include_str!("../../reports/examples/report.json");

    #[test]
    fn the_stored_example_reads_back_and_writes_out_byte_for_byte() {
        let report = parse(EXAMPLE).expect("the example parses");
        assert_eq!(report.verdict.outcome, Outcome::Passed);
        assert!(
            report
                .timeline
                .iter()
                .any(|e| e.event.known() == Some(EventKind::RolledBack))
        );
        assert!(
            render(&report) == EXAMPLE,
            "the example changed on a round trip"
        );
    }

    #[test]
    fn words_this_version_does_not_know_are_kept_as_written() {
        let mut value: Value = serde_json::from_str(EXAMPLE).unwrap();
        value["timeline"][0]["event"] = json!("faultHeld");
        value["faults"][0]["kind"] = json!("unknown");
        value["probes"][0]["kind"] = json!("cmd");
        value["targets"][0]["measure"] = json!("longest_outage");
        let text = serde_json::to_string(&value).unwrap();
        let report = parse(&text).expect("a report with other words parses");
        assert_eq!(report.timeline[0].event.known(), None);
        assert_eq!(report.targets[0].measure.as_str(), "longest_outage");
        let back: Value = serde_json::from_str(&render(&report)).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn a_verdict_outside_the_closed_set_is_refused() {
        let mut value: Value = serde_json::from_str(EXAMPLE).unwrap();
        value["verdict"]["outcome"] = json!("passd");
        let err = parse(&value.to_string()).unwrap_err();
        assert!(err.contains("passd"), "{err}");
    }
}

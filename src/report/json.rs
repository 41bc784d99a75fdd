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

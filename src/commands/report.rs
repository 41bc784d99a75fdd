//! `steadfast report`: re-render a saved report, e.g. JUnit for a CI system that ran the
//! experiment elsewhere, or publish its metrics; with `--history`, show an experiment's trend.

use std::io::Write;

use anyhow::Context;

use crate::cli::{ReportArgs, ReportFormat};
use crate::exit::ExitStatus;
use crate::report::history::{self, HistoryRun};
use crate::report::{html, json, junit, markdown, prometheus};

/// Renders the report in the asked format and publishes its metrics where asked.
///
/// # Errors
/// When the file cannot be read or written, is not a report, or its metrics cannot be published.
pub async fn run(args: &ReportArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let report = match &args.file {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("{}: cannot read", file.display()))?;
            Some(json::parse(&text).map_err(|err| anyhow::anyhow!("{}: {err}", file.display()))?)
        }
        None => None,
    };
    let history: Vec<HistoryRun> = match &args.history {
        Some(location) => {
            let reports = super::gate::read_all(
                std::slice::from_ref(location),
                args.report_region.as_deref(),
            )
            .await
            .map_err(|err| anyhow::anyhow!("--history {err}"))?;
            let reports: Vec<crate::report::Report> =
                reports.into_iter().map(|s| s.report).collect();
            let experiment = report.as_ref().map(|r| r.experiment.name.as_str());
            history::runs(&reports, experiment)
        }
        None => Vec::new(),
    };
    let Some(report) = report else {
        out.write_all(history::table(&history).as_bytes())?;
        return Ok(ExitStatus::Success);
    };
    if let Some(format) = args.format {
        let rendered = match format {
            ReportFormat::Json => json::render(&report),
            ReportFormat::Junit => junit::render(&[&report]),
            ReportFormat::Md => markdown::render(&report),
            ReportFormat::Html => html::render_with_history(&report, &history),
            ReportFormat::Prometheus => prometheus::render(&report),
        };
        match &args.output {
            Some(path) => std::fs::write(path, rendered)
                .with_context(|| format!("{}: cannot write", path.display()))?,
            None => out.write_all(rendered.as_bytes())?,
        }
    } else if args.history.is_some() {
        out.write_all(history::table(&history).as_bytes())?;
    }
    let destinations = super::publish::Destinations {
        pushgateway: args.pushgateway.as_deref(),
        textfile: args.metrics_textfile.as_deref(),
        upload_failures: None,
    };
    // With stdout carrying a rendering, where the metrics went is said on stderr instead.
    let mut notes = Vec::new();
    let published = super::publish::publish(&report, destinations, &mut notes).await;
    if args.format.is_some() && args.output.is_none() {
        std::io::stderr().write_all(&notes)?;
    } else {
        out.write_all(&notes)?;
    }
    if let Err(errors) = published {
        anyhow::bail!("{}", errors.join("\n"));
    }
    Ok(ExitStatus::Success)
}

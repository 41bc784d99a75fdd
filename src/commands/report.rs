//! `steadfast report`: re-render a saved report, e.g. JUnit for a CI system that ran the
//! experiment elsewhere.

use std::io::Write;

use anyhow::Context;

use crate::cli::{ReportArgs, ReportFormat};
use crate::exit::ExitStatus;
use crate::report::{json, junit, markdown};

/// Renders the report in the asked format.
///
/// # Errors
/// When the file cannot be read or written, or is not a report.
pub fn run(args: &ReportArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("{}: cannot read", args.file.display()))?;
    let report =
        json::parse(&text).map_err(|err| anyhow::anyhow!("{}: {err}", args.file.display()))?;
    let rendered = match args.format {
        ReportFormat::Json => json::render(&report),
        ReportFormat::Junit => junit::render(&[&report]),
        ReportFormat::Md => markdown::render(&report),
    };
    match &args.output {
        Some(path) => std::fs::write(path, rendered)
            .with_context(|| format!("{}: cannot write", path.display()))?,
        None => out.write_all(rendered.as_bytes())?,
    }
    Ok(ExitStatus::Success)
}

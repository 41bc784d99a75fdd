//! `steadfast gate`: read a policy and run reports, print the decision, exit 0 (pass), 1 (fail)
//! or 2 (bad usage, bad policy, unreadable report).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::{GateArgs, OutputFormat};
use crate::exit::ExitStatus;
use crate::gate::{GatePolicy, SourcedReport, evaluate, output};
use crate::report::json;

/// How deep directories are searched for `report.json`.
const MAX_DEPTH: usize = 8;

/// Runs the gate.
///
/// # Errors
/// I/O errors writing the output; everything else maps to an exit status.
pub async fn run(args: &GateArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let file = args.policy.display().to_string();
    let text = match std::fs::read_to_string(&args.policy) {
        Ok(text) => text,
        Err(err) => {
            eprintln!(
                "error: {file}: cannot read the policy: {err} (hint: pass an existing GatePolicy file with --policy)"
            );
            return Ok(ExitStatus::Invalid);
        }
    };
    let policy = match GatePolicy::parse(&file, &text) {
        Ok(policy) => policy,
        Err(errors) => {
            for error in errors {
                eprintln!("error: {error}");
            }
            return Ok(ExitStatus::Invalid);
        }
    };
    let reports = match read_all(&args.reports, args.report_region.as_deref()).await {
        Ok(reports) => reports,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitStatus::Invalid);
        }
    };
    let decision = match evaluate(&policy, &reports, chrono::Utc::now()) {
        Ok(decision) => decision,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitStatus::Invalid);
        }
    };
    match args.output {
        OutputFormat::Text => out.write_all(output::table(&decision).as_bytes())?,
        OutputFormat::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&output::json(&decision))?
        )?,
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, output::junit(&decision))
            .with_context(|| format!("{}: cannot write the JUnit file", path.display()))?;
    }
    Ok(if decision.passed() {
        ExitStatus::Success
    } else {
        ExitStatus::TargetsMissed
    })
}

/// Reads every report the arguments name: files, directories (recursively) and s3:// locations,
/// which are listed and read like directories.
///
/// # Errors
/// One line naming the location that cannot be read and the fix.
pub(crate) async fn read_all(
    locations: &[PathBuf],
    region: Option<&str>,
) -> Result<Vec<SourcedReport>, String> {
    use crate::report::location::ReportLocation;
    use crate::report::store::{Encryption, read_reports};
    let mut reports = Vec::new();
    for path in locations {
        match ReportLocation::from_path(path).map_err(|err| err.to_string())? {
            location @ ReportLocation::S3 { .. } => {
                let opened =
                    crate::infra::report_store::open(&location, region, Encryption::default())
                        .await?;
                let stored = read_reports(opened.store.as_ref(), &opened.prefix)
                    .await
                    .map_err(|err| format!("{location}: {err}"))?;
                reports.extend(stored.into_iter().map(|s| SourcedReport {
                    path: s.source,
                    report: s.report,
                }));
            }
            ReportLocation::Dir(dir) => {
                let mut files = Vec::new();
                collect(&dir, 0, &mut files)?;
                for path in files {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|err| format!("{}: cannot read: {err}", path.display()))?;
                    let report = json::parse(&text).map_err(|err| {
                        format!(
                            "{}: {err} (hint: pass report.json files written by `steadfast run`, or their directories)",
                            path.display()
                        )
                    })?;
                    reports.push(SourcedReport {
                        path: path.display().to_string(),
                        report,
                    });
                }
            }
        }
    }
    Ok(reports)
}

/// Adds `path` if it is a file, or every `report.json` under it if it is a directory.
fn collect(path: &Path, depth: usize, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|err| {
        format!(
            "{}: {err} (hint: pass report.json files or directories that hold them)",
            path.display()
        )
    })?;
    if meta.is_file() {
        files.push(path.to_owned());
        return Ok(());
    }
    if depth >= MAX_DEPTH {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|err| format!("{}: cannot list: {err}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect(&entry, depth + 1, files)?;
        } else if entry.file_name().is_some_and(|n| n == "report.json") {
            files.push(entry);
        }
    }
    Ok(())
}

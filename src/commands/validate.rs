//! `steadfast validate`: every problem of every file, placed and explained, before anything
//! touches a cluster.

use std::io::{IsTerminal, Write};

use serde::Serialize;

use crate::cli::{GlobalArgs, OutputFormat, ValidateArgs};
use crate::exit::ExitStatus;
use crate::logging::use_color;
use crate::spec::{Diagnostic, collect_experiment_files, load_file};

/// The `-o json` document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report<'a> {
    valid: bool,
    files: usize,
    errors: usize,
    warnings: usize,
    diagnostics: &'a [Diagnostic],
}

/// Validates the named files and directories.
///
/// # Errors
/// When output cannot be written.
pub fn run(
    args: &ValidateArgs,
    global: &GlobalArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let files = match collect_experiment_files(&args.paths) {
        Ok(files) => files,
        Err(err) => return finish(args, global, out, 0, &[], Some(err.to_string())),
    };
    let mut diagnostics = Vec::new();
    for file in &files {
        match load_file(file) {
            Ok(loaded) => diagnostics.extend(loaded.warnings),
            Err(found) => diagnostics.extend(found),
        }
    }
    finish(args, global, out, files.len(), &diagnostics, None)
}

fn finish(
    args: &ValidateArgs,
    global: &GlobalArgs,
    out: &mut dyn Write,
    files: usize,
    diagnostics: &[Diagnostic],
    fatal: Option<String>,
) -> anyhow::Result<ExitStatus> {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count() + usize::from(fatal.is_some());
    let warnings = diagnostics.len() - diagnostics.iter().filter(|d| d.is_error()).count();
    match args.output {
        OutputFormat::Json => {
            let report = Report {
                valid: errors == 0,
                files,
                errors,
                warnings,
                diagnostics,
            };
            let mut value = serde_json::to_value(&report)?;
            if let (Some(message), Some(map)) = (&fatal, value.as_object_mut()) {
                map.insert("error".into(), message.as_str().into());
            }
            serde_json::to_writer_pretty(&mut *out, &value)?;
            writeln!(out)?;
        }
        OutputFormat::Text => {
            let color = use_color(global.color, std::io::stdout().is_terminal());
            if let Some(message) = &fatal {
                writeln!(
                    out,
                    "{}",
                    paint(&format!("error: {message}"), color, "1;31")
                )?;
            }
            for diagnostic in diagnostics {
                let code = if diagnostic.is_error() {
                    "1;31"
                } else {
                    "1;33"
                };
                let text = diagnostic.to_string();
                let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
                writeln!(out, "{}", paint(first, color, code))?;
                if !rest.is_empty() {
                    writeln!(out, "{}", paint(rest, color, "36"))?;
                }
            }
            if fatal.is_none() {
                let verdict = if errors == 0 { "valid" } else { "invalid" };
                writeln!(
                    out,
                    "{files} file(s) checked: {errors} error(s), {warnings} warning(s): {verdict}"
                )?;
            }
        }
    }
    Ok(if errors == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Invalid
    })
}

fn paint(text: &str, color: bool, code: &str) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

//! `steadfast schema`: the JSON Schema editors and CI use to check experiment files.

use std::io::Write;

use crate::cli::SchemaArgs;
use crate::exit::ExitStatus;
use crate::report::model::report_schema_text;
use crate::spec::schema::experiment_schema_text;

/// Prints a schema exactly as committed: `experiments/schema.json`, or with `--report`
/// `reports/schema.json`.
///
/// # Errors
/// When stdout cannot be written.
pub fn run(args: &SchemaArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let text = if args.report {
        report_schema_text()
    } else {
        experiment_schema_text()
    };
    out.write_all(text.as_bytes())?;
    Ok(ExitStatus::Success)
}

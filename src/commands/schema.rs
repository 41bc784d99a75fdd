//! `steadfast schema`: the JSON Schema editors and CI use to check experiment files.

use std::io::Write;

use crate::exit::ExitStatus;
use crate::spec::schema::experiment_schema_text;

/// Prints the schema exactly as committed in `experiments/schema.json`.
///
/// # Errors
/// When stdout cannot be written.
pub fn run(out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    out.write_all(experiment_schema_text().as_bytes())?;
    Ok(ExitStatus::Success)
}

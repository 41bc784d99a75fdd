//! Writing a run's report directory: `reports/<timestamp>-<name>/{report.json, junit.xml,
//! summary.md}`.

use std::path::{Path, PathBuf};

use super::model::Report;
use super::{json, junit, markdown};

/// Where the files went.
#[derive(Debug, Clone)]
pub struct ReportFiles {
    /// The directory.
    pub dir: PathBuf,
    /// `report.json`.
    pub json: PathBuf,
}

/// The directory name for a report: sortable by time, readable by name.
pub fn directory_name(report: &Report) -> String {
    format!(
        "{}-{}",
        report.run.started_at.format("%Y%m%dT%H%M%SZ"),
        report.experiment.name
    )
}

/// Writes every format into a new directory under `root`.
///
/// # Errors
/// When the directory or a file cannot be written.
pub fn write_all(root: &Path, report: &Report) -> std::io::Result<ReportFiles> {
    let dir = root.join(directory_name(report));
    std::fs::create_dir_all(&dir)?;
    let json_path = dir.join("report.json");
    std::fs::write(&json_path, json::render(report))?;
    std::fs::write(dir.join("junit.xml"), junit::render(&[report]))?;
    std::fs::write(dir.join("summary.md"), markdown::render(report))?;
    Ok(ReportFiles {
        dir,
        json: json_path,
    })
}

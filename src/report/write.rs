//! Writing a run's report directory: `reports/<timestamp>-<name>/{report.json, junit.xml,
//! summary.md, report.html}`.

use std::path::{Path, PathBuf};

use super::model::Report;
use super::{html, json, junit, markdown};

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
    std::fs::write(dir.join("report.html"), html::render(report))?;
    Ok(ReportFiles {
        dir,
        json: json_path,
    })
}

/// Writes the report's metrics for node_exporter's textfile collector: to `path`, or to
/// `steadfast-<experiment>.prom` inside it when it is a directory (so experiments sharing one
/// collector directory do not overwrite each other). The file is replaced atomically, so the
/// collector never reads half of it.
///
/// # Errors
/// When the file cannot be written or renamed into place.
/// `upload_failures`, when the run uploaded its report, adds `steadfast_report_upload_failures`.
pub fn write_textfile(
    path: &Path,
    report: &Report,
    upload_failures: Option<u64>,
) -> std::io::Result<PathBuf> {
    let target = if path.is_dir() {
        path.join(format!("steadfast-{}.prom", report.experiment.name))
    } else {
        path.to_owned()
    };
    let mut temporary = target.clone().into_os_string();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let mut text = super::prometheus::render(report);
    if let Some(count) = upload_failures {
        text.push_str(&super::prometheus::upload_failures(report, count));
    }
    std::fs::write(&temporary, text)?;
    if let Err(err) = std::fs::rename(&temporary, &target) {
        let _ = std::fs::remove_file(&temporary);
        return Err(err);
    }
    Ok(target)
}

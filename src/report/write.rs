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
    let dir = new_directory(root, &directory_name(report))?;
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

/// Creates `root/name`, or `root/name-2`, `-3`, ... when another run that started in the same
/// second already holds it: a report is never written over another one.
fn new_directory(root: &Path, name: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(root)?;
    for n in 1..=100u32 {
        let dir = match n {
            1 => root.join(name),
            n => root.join(format!("{name}-{n}")),
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!("{} already holds 100 reports named {name}", root.display()),
    ))
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

#[cfg(test)]
mod tests {
    use super::new_directory;

    #[test]
    fn runs_in_the_same_second_get_their_own_directories() {
        let root = tempfile::tempdir().unwrap();
        let first = new_directory(root.path(), "20261205T102834Z-web").unwrap();
        let second = new_directory(root.path(), "20261205T102834Z-web").unwrap();
        assert_ne!(first, second);
        assert!(second.ends_with("20261205T102834Z-web-2"), "{second:?}");
        assert!(first.is_dir() && second.is_dir());
    }
}

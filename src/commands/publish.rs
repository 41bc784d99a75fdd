//! Publishing a report's metrics, shared by `run` and `report`: a Pushgateway push and a
//! node_exporter textfile, each optional.

use std::io::Write;
use std::path::Path;

use crate::infra::pushgateway;
use crate::report::Report;
use crate::report::write::write_textfile;

/// Where the metrics go.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Destinations<'a> {
    /// Pushgateway base URL.
    pub pushgateway: Option<&'a str>,
    /// Textfile (or directory for one).
    pub textfile: Option<&'a Path>,
    /// Report objects a run could not upload; `Some` adds `steadfast_report_upload_failures`.
    pub upload_failures: Option<u64>,
}

/// Publishes to every destination, telling `out` where the metrics went.
///
/// # Errors
/// One line per destination that failed; the others are still attempted.
pub(crate) async fn publish(
    report: &Report,
    to: Destinations<'_>,
    out: &mut dyn Write,
) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    if let Some(path) = to.textfile {
        match write_textfile(path, report, to.upload_failures) {
            Ok(written) => {
                let _ = writeln!(out, "metrics: {}", written.display());
            }
            Err(err) => errors.push(format!(
                "{}: cannot write the metrics textfile: {err}",
                path.display()
            )),
        }
    }
    if let Some(url) = to.pushgateway.filter(|u| !u.trim().is_empty()) {
        let mut text = crate::report::prometheus::render(report);
        if let Some(count) = to.upload_failures {
            text.push_str(&crate::report::prometheus::upload_failures(report, count));
        }
        match pushgateway::push(url.trim(), &report.experiment.name, text).await {
            Ok(()) => {
                // Not the URL itself: it may carry credentials.
                let _ = writeln!(
                    out,
                    "metrics: pushed to the Pushgateway (job={}, experiment={})",
                    pushgateway::JOB,
                    report.experiment.name
                );
            }
            Err(err) => errors.push(err.to_string().replace('\n', "; ")),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

//! `steadfast probe`: only the steady-state probes of an experiment, through the same wiring as
//! `run`, for a while; then what they measured and whether the steady state held. Nothing is
//! injected and nothing is written to the cluster, so it answers "is this steady enough to
//! start an experiment?" and "is my probe right?" before a run.

use std::io::Write;
use std::time::Duration;

use tracing::{info, warn};

use crate::cli::{OutputFormat, ProbeArgs};
use crate::engine::Probes;
use crate::exit::ExitStatus;
use crate::infra::wiring;
use crate::report::model::Span;
use crate::report::probe_reports;
use crate::report::steady::{SteadyStateReport, WINDOW, render_text};
use crate::spec::load_file;
use crate::verdict::TimeWindow;

/// Probes for `--for`, prints the measurements, and exits 0 when the steady state held, 1 when
/// it did not, 2 for a bad file or a probe that cannot be built.
///
/// # Errors
/// When the cluster or AWS cannot be reached, a probe cannot be built, or output fails.
pub async fn run(args: &ProbeArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let loaded = match load_file(&args.file) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            for d in &diagnostics {
                eprintln!("{d}");
            }
            return Ok(ExitStatus::Invalid);
        }
    };
    for d in &loaded.warnings {
        eprintln!("{d}");
    }
    let duration: Duration = args.duration.into();
    if duration.is_zero() {
        eprintln!("error: --for 0s probes nothing\nhint: give a window such as --for 30s");
        return Ok(ExitStatus::Invalid);
    }
    let spec = loaded.spec;
    let cluster = super::cluster_of(&args.cluster);
    let connected = wiring::connect(&spec, &cluster).await?;
    let origin = std::time::Instant::now();
    let probes = wiring::probes(&spec, &connected, origin).await?;
    probes.start().await?;
    let start = origin.elapsed();
    info!(experiment = %spec.metadata.name, seconds = duration.as_secs_f64(), "probing");
    tokio::select! {
        () = tokio::time::sleep(duration) => {}
        _ = tokio::signal::ctrl_c() => warn!("interrupted: judging what was measured so far"),
    }
    let end = origin.elapsed();
    // Stopping waits for requests in flight, so attempts due before `end` are all counted.
    probes.stop().await;
    let window = TimeWindow::new(start, end);
    let check = probes.steady(window);
    let report = SteadyStateReport {
        experiment: spec.metadata.name.clone(),
        window: Span::from(window),
        steady: check.holds,
        reasons: check.reasons,
        probes: probe_reports(
            &spec,
            &probes.report_data(),
            &[(WINDOW, window)],
            Some(window),
        ),
    };
    match args.output {
        OutputFormat::Text => write!(out, "{}", render_text(&report))?,
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?,
    }
    Ok(if report.steady {
        ExitStatus::Success
    } else {
        ExitStatus::TargetsMissed
    })
}

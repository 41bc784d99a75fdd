//! `steadfast schedule`: the long-running mode. Loads the scheduled experiments of a
//! directory, serves `/healthz` and `/metrics`, fires each experiment as a child `steadfast run`
//! at its cron time, and on SIGTERM/SIGINT stops firing, lets the running experiment roll back
//! and exits.

use std::ffi::OsString;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cli::{OverlapPolicy, ScheduleArgs};
use crate::exit::ExitStatus;
use crate::schedule::{
    ChildLauncher, Overlap, ScheduleMetrics, Scheduler, SchedulerOptions, SystemClock, load_catalog,
};

/// How long the HTTP endpoint may take to close after the scheduler stopped.
const SERVER_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the scheduler until a signal.
///
/// # Errors
/// When the executable cannot be found; invalid experiments and an
/// unusable listen address map to exit status 2.
pub async fn run(args: &ScheduleArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    // A closed stdout must not hide a run that did not roll back.
    let out = &mut super::LoggedOut::new(out);
    let default_jitter = args.jitter.map_or(Duration::ZERO, Into::into);
    let catalog = match load_catalog(&args.experiments, default_jitter) {
        Ok(catalog) => catalog,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitStatus::Invalid);
        }
    };
    for file in &catalog.unscheduled {
        info!(file = %file.display(), "no spec.schedule: not scheduled");
    }
    let exe = std::env::current_exe().context("cannot find the steadfast executable")?;
    let launcher = ChildLauncher {
        exe,
        common: common_args(args),
        run_only: vec!["--report-dir".into(), args.report_dir.clone().into()],
    };
    let listener = match crate::schedule::http::bind(args.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitStatus::Invalid);
        }
    };
    let addr = listener.local_addr()?;
    writeln!(
        out,
        "scheduling {} experiment(s); /healthz and /metrics on http://{addr}",
        catalog.experiments.len()
    )?;
    out.flush()?;

    let metrics = ScheduleMetrics::default();
    let server_stop = CancellationToken::new();
    let server = tokio::spawn(crate::schedule::http::serve(
        listener,
        metrics.clone(),
        server_stop.clone(),
    ));
    let shutdown = CancellationToken::new();
    let signals = tokio::spawn(watch_signals(shutdown.clone()));
    let scheduler = Scheduler::new(
        catalog.experiments,
        Arc::new(SystemClock),
        Arc::new(launcher),
        metrics,
        SchedulerOptions {
            overlap: match args.overlap {
                OverlapPolicy::Skip => Overlap::Skip,
                OverlapPolicy::Queue => Overlap::Queue,
            },
            queue_limit: args.queue_limit,
            seed: args.seed.unwrap_or_else(rand::random),
            fire_on_start: args.fire_on_start,
        },
    );
    let exit = scheduler.run(shutdown.clone()).await;
    shutdown.cancel();
    signals.abort();
    let _ = signals.await;
    server_stop.cancel();
    match tokio::time::timeout(SERVER_STOP_TIMEOUT, server).await {
        Ok(Ok(Err(e))) => warn!(error = %e, "the HTTP endpoint failed"),
        Ok(Err(e)) if e.is_panic() => warn!(error = %e, "the HTTP endpoint panicked"),
        Err(_) => warn!("the HTTP endpoint did not stop in time"),
        _ => {}
    }
    writeln!(out, "scheduler stopped after {} run(s)", exit.runs)?;
    if exit.rollback_pending {
        eprintln!(
            "error: a run did not roll back and `steadfast rollback` did not finish it\nhint: run `steadfast rollback` and check the cluster"
        );
        return Ok(ExitStatus::RollbackIncomplete);
    }
    Ok(ExitStatus::Success)
}

/// Flags every child gets: the cluster and the shared journal.
fn common_args(args: &ScheduleArgs) -> Vec<OsString> {
    let mut common: Vec<OsString> = Vec::new();
    if let Some(kubeconfig) = &args.cluster.kubeconfig {
        common.extend(["--kubeconfig".into(), kubeconfig.clone().into()]);
    }
    if let Some(context) = &args.cluster.context {
        common.extend(["--context".into(), context.into()]);
    }
    if let Some(journal) = &args.journal {
        common.extend(["--journal".into(), journal.clone().into()]);
    }
    common
}

/// Cancels `shutdown` on the first SIGTERM or SIGINT; later signals are logged, the running
/// experiment's rollback is still awaited.
async fn watch_signals(shutdown: CancellationToken) {
    let mut first = true;
    loop {
        if !signal().await {
            return;
        }
        if first {
            warn!("signal received: no more fires; the running experiment rolls back");
            shutdown.cancel();
            first = false;
        } else {
            warn!("already shutting down: waiting for the running experiment's rollback");
        }
    }
}

/// Waits for SIGTERM or SIGINT; false when no handler can be installed.
async fn signal() -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return false;
        };
        tokio::select! {
            _ = term.recv() => true,
            _ = int.recv() => true,
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.is_ok()
    }
}

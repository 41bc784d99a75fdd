//! `steadfast run` and `steadfast demo`: an experiment from file to verdict and report.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::cli::{DemoArgs, OutputFormat, RunArgs};
use crate::commands::live::{Both, LiveMetrics, spawn_pusher};
use crate::commands::progress::TerminalProgress;
use crate::engine::{
    Engine, EngineOptions, HaltSwitch, Interrupts, RunLock, RunObserver, Silent, StartError,
};
use crate::exit::ExitStatus;
use crate::infra::cluster::{ConfigMapHalt, ConfigMapJournal, LeaseLock, state_namespace};
use crate::infra::kube::{pod_security, preflight};
use crate::infra::local_state;
use crate::infra::wiring::{self, ClusterArgs, CompositeUndoer};
use crate::journal::{
    FindError, JournalMirror, LiveLock, LockRule, Recovery, RetryPolicy, default_journal_path,
    recover,
};
use crate::report::model::ClusterInfo;
use crate::report::{ReportInput, build_report, write_all};
use crate::spec::{Diagnostic, ExperimentSpec, load_file};

/// Runs an experiment against the configured cluster.
///
/// Output and report failures are logged and never change the exit status, which is the
/// verdict's (4 whenever a rollback is incomplete).
///
/// # Errors
/// Setup failures before anything was changed; everything else maps to an exit status.
pub async fn run(args: &RunArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let cluster = super::cluster_of(&args.cluster);
    match args.output {
        OutputFormat::Text => {
            execute(
                &args.file,
                &cluster,
                args,
                &mut super::LoggedOut::new(out),
                None,
            )
            .await
        }
        // stdout carries only the report, so `run -o json | jq` works; the summary and the
        // status lines go to stderr.
        OutputFormat::Json => {
            let mut stderr = std::io::stderr();
            let mut data = super::LoggedOut::new(out);
            let mut summary = super::LoggedOut::new(&mut stderr);
            execute(&args.file, &cluster, args, &mut summary, Some(&mut data)).await
        }
    }
}

fn print_diagnostics(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        eprintln!("{d}");
    }
}

/// Waits for SIGINT/SIGTERM: the first stops injecting, the second skips the waits. Both leave
/// the rollback to run; the second names the journal, so whoever is in a hurry knows where
/// `steadfast rollback` would find anything left.
fn watch_signals(
    interrupts: &Interrupts,
    done: CancellationToken,
    journal: PathBuf,
) -> tokio::task::JoinHandle<()> {
    let interrupts = interrupts.clone();
    tokio::spawn(async move {
        let mut count = 0;
        loop {
            tokio::select! {
                () = done.cancelled() => return,
                () = signal() => {}
            }
            count += 1;
            if count == 1 {
                warn!(
                    "interrupted: no more faults, rolling back (interrupt again to skip the waits)"
                );
                interrupts.stop.cancel();
            } else {
                warn!("interrupted again: skipping waits; undo records are still applied");
                eprintln!(
                    "interrupted again: rolling back without waiting for recovery; journal: {}\nhint: if this process is killed now, `steadfast rollback --journal {}` applies what is left",
                    journal.display(),
                    journal.display()
                );
                interrupts.hurry.cancel();
                return;
            }
        }
    })
}

async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn holder() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("POD_NAME"))
        .unwrap_or_else(|_| "steadfast".to_owned());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".to_owned());
    format!("{user}@{host} (pid {})", std::process::id())
}

/// Name, start time and a random suffix: two runs of one experiment that start in the same
/// millisecond (parallel CI jobs, two CronJobs) must still get their own journal, report keys
/// and undo records.
fn run_id(spec: &ExperimentSpec) -> String {
    format!(
        "{}-{}-{:04x}",
        spec.metadata.name,
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        rand::random::<u16>()
    )
}

async fn execute(
    file: &Path,
    cluster: &ClusterArgs,
    args: &RunArgs,
    out: &mut dyn Write,
    json: Option<&mut dyn Write>,
) -> anyhow::Result<ExitStatus> {
    let loaded = match load_file(file) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            print_diagnostics(&diagnostics);
            return Ok(ExitStatus::Invalid);
        }
    };
    print_diagnostics(&loaded.warnings);
    let spec = loaded.spec;
    let journal_path = args.journal.clone().unwrap_or_else(default_journal_path);

    let connected = wiring::connect(&spec, cluster).await?;
    let abort_checks = wiring::abort_checks(&spec)?;
    let kube = connected.cluster.as_ref().map(|c| c.kube.raw().clone());
    let undoer = CompositeUndoer::new(
        connected.cluster.as_ref().map(|c| c.kube.clone()),
        connected.aws_options.clone(),
    );
    let namespace = state_namespace();
    if kube.is_some() {
        let needed = preflight::needed(&spec, &namespace);
        match preflight::check_with(&cluster.kube_options(), &needed).await {
            Ok(()) => {}
            Err(err @ preflight::PreflightError::Missing(..)) => {
                eprintln!("{err}");
                return Ok(ExitStatus::Invalid);
            }
            Err(preflight::PreflightError::Review(err)) => {
                info!(error = %err, "cannot check permissions before the run; going on without");
            }
        }
    }
    if let Some(cluster) = connected.cluster.as_ref() {
        match pod_security::check(&cluster.kube, &spec).await {
            Ok(()) => {}
            Err(err @ pod_security::PodSecurityError::Refused { .. }) => {
                eprintln!("{err}");
                return Ok(ExitStatus::Invalid);
            }
            Err(pod_security::PodSecurityError::Api(err)) => {
                return Err(
                    anyhow::anyhow!(err).context("read the target namespaces' Pod Security labels")
                );
            }
        }
    }
    let mirror = kube
        .clone()
        .filter(|_| !args.no_cluster_journal)
        .map(|kube| Box::new(ConfigMapJournal::new(kube, &namespace)) as Box<dyn JournalMirror>);
    if kube.is_none() {
        warn!(
            "no cluster: the run lock ({}), halt switch ({}) and journal ({}) are local to this machine this time",
            local_state::lock_path(&journal_path).display(),
            local_state::halt_path(&journal_path).display(),
            journal_path.display()
        );
    }
    let found = match recover::find(&journal_path, mirror, true).await {
        Ok(found) => found,
        Err(FindError::Read(err)) => {
            eprintln!(
                "error: cannot read the journal: {err:#}\nhint: a run must be able to journal its undo; pass --no-cluster-journal to keep it on local disk only"
            );
            return Ok(ExitStatus::Invalid);
        }
        Err(FindError::Open(err)) => return Err(err.into()),
    };
    let undo_retry = RetryPolicy::within(args.undo_deadline.into());
    let left = found.pending();
    if !left.records.is_empty() && !args.recover_first {
        let mut wheres = Vec::new();
        if left.local > 0 {
            wheres.push(format!("{} in {}", left.local, journal_path.display()));
        }
        if let (true, Some(place)) = (left.cluster > 0, found.journal().mirror_place()) {
            wheres.push(format!("{} in {place}", left.cluster));
        }
        eprintln!(
            "error: undo records of an earlier run are pending ({})\nhint: run `steadfast rollback{}` first, or pass --recover-first",
            wheres.join(", "),
            if left.cluster > left.local {
                " --from-cluster"
            } else {
                ""
            }
        );
        return Ok(ExitStatus::Invalid);
    }
    // Records in the cluster's copy may be a live run's on another machine: never undo them
    // under its feet. Without a cluster every record is this machine's own.
    let live = kube.clone().map(|kube| LeaseLock::new(kube, &namespace));
    let mut lines = super::recovery::ReportLines::new(&mut *out, |left| {
        info!(
            records = left.records.len(),
            "recovering: applying the undo an earlier run left pending"
        );
        None
    });
    let recovery = found
        .recover(
            &undoer,
            undo_retry,
            live.as_ref().map(|lock| lock as &dyn LiveLock),
            LockRule::AnyRecords,
            &mut lines,
        )
        .await;
    lines.finish()?;
    match recovery {
        Ok(Recovery::Nothing | Recovery::Applied { complete: true, .. }) => {}
        Ok(Recovery::Applied {
            complete: false, ..
        }) => return Ok(ExitStatus::RollbackIncomplete),
        Ok(Recovery::Refused(held)) => {
            eprintln!(
                "error: another run holds the lock: {} (until {}); the pending undo records may be its own\nhint: wait for it to finish, or `steadfast halt` to make it stop and roll back",
                held.holder, held.expires
            );
            return Ok(ExitStatus::Invalid);
        }
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(ExitStatus::Invalid);
        }
    }
    let journal = found.into_journal();

    let seed = args.seed.or(spec.spec.seed).unwrap_or_else(rand::random);
    let origin = tokio::time::Instant::now();
    let faults = wiring::faults(&spec, &connected, seed)?;
    let probes = wiring::probes(&spec, &connected, origin.into_std()).await?;
    let (lock, halt): (Box<dyn RunLock>, Box<dyn HaltSwitch>) = match &kube {
        Some(kube) => (
            Box::new(LeaseLock::new(kube.clone(), &namespace)),
            Box::new(ConfigMapHalt::new(kube.clone(), &namespace)),
        ),
        None => (
            Box::new(local_state::FileLock::new(local_state::lock_path(
                &journal_path,
            ))),
            Box::new(local_state::FileHalt::new(local_state::halt_path(
                &journal_path,
            ))),
        ),
    };
    let progress = TerminalProgress::for_stderr();
    let progress: &dyn RunObserver = match &progress {
        Some(progress) => progress,
        None => &Silent,
    };
    let live = Arc::new(LiveMetrics::new(&spec));
    let stop_live = CancellationToken::new();
    let server = match args.metrics_listen {
        Some(addr) => match super::live_http::bind(addr).await {
            Ok(listener) => Some(super::live_http::spawn(
                listener,
                live.clone(),
                stop_live.clone(),
            )),
            Err(err) => {
                eprintln!("error: {err}");
                return Ok(ExitStatus::Invalid);
            }
        },
        None => None,
    };
    let pusher = args
        .pushgateway
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|url| {
            spawn_pusher(
                live.clone(),
                url.to_owned(),
                args.live_metrics_interval.into(),
                stop_live.clone(),
            )
        });
    let observer = Both(progress, live.as_ref());
    let observer: &dyn RunObserver = &observer;
    let engine = Engine {
        spec: &spec,
        probes: &probes,
        faults,
        undoer: &undoer,
        journal: &journal,
        lock: lock.as_ref(),
        halt: halt.as_ref(),
        abort_checks,
        observer,
        options: EngineOptions {
            run_id: run_id(&spec),
            holder: holder(),
            seed,
            origin,
            lock_ttl: Duration::from_secs(60),
            check_every: Duration::from_secs(1),
            recovery_stable: spec
                .spec
                .steady_state
                .after
                .get()
                .min(Duration::from_secs(5)),
            undo_retry,
        },
    };
    let interrupts = Interrupts::default();
    let done = CancellationToken::new();
    let signals = watch_signals(&interrupts, done.clone(), journal_path.clone());
    info!(experiment = %spec.metadata.name, seed, "starting");
    let result = engine.run(&interrupts).await;
    done.cancel();
    let _ = signals.await;
    stop_live.cancel();
    for task in [pusher, server].into_iter().flatten() {
        let _ = task.await;
    }
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(StartError::Locked(err)) => {
            eprintln!(
                "error: {err}\nhint: wait for that run to finish; a crashed run's lock lapses after 60s"
            );
            return Ok(ExitStatus::Invalid);
        }
        Err(StartError::Halted(reason)) => {
            eprintln!(
                "error: chaos is halted on this cluster: {reason}\nhint: `steadfast resume` lifts the halt"
            );
            return Ok(ExitStatus::Aborted);
        }
        Err(StartError::Journal(err)) => {
            eprintln!(
                "error: cannot journal the start of the run, nothing was changed: {err}\nhint: a run must be able to journal its undo; check write access to {} and to the ConfigMap steadfast-journal of namespace {namespace}, or pass --no-cluster-journal",
                journal_path.display()
            );
            return Ok(ExitStatus::Invalid);
        }
        Err(err) => return Err(err.into()),
    };

    let report = build_report(&ReportInput {
        spec: &spec,
        file: Some(file.display().to_string()),
        cluster: Some(ClusterInfo {
            context: cluster.context.clone(),
            server: connected.cluster.as_ref().map(|c| c.server.clone()),
            region: connected.aws_options.region.clone(),
        }),
        outcome: &outcome,
        probes: probes.report_data(),
        api_calls: api_calls(&connected),
    });
    // The rollback is over and decided the verdict: from here nothing changes the exit code.
    // A report that cannot be written is an error on stderr, the summary still goes to stdout.
    writeln!(out, "{}", crate::report::markdown::render(&report))?;
    if let Some(json) = json {
        write!(json, "{}", crate::report::json::render(&report))?;
    }
    let upload_failures = save_report(args, &report, out).await?;
    let destinations = super::publish::Destinations {
        pushgateway: args.pushgateway.as_deref(),
        textfile: args.metrics_textfile.as_deref(),
        upload_failures,
    };
    // The verdict stands whatever happens to its metrics: a failed push is reported, not
    // turned into a different exit code.
    if let Err(errors) = super::publish::publish(&report, destinations, out).await {
        for error in errors {
            warn!("metrics not published: {error}");
        }
    }
    if !outcome.pending.is_empty() {
        writeln!(
            out,
            "journal with pending undo records: {}",
            journal_path.display()
        )?;
    } else if interrupts.hurry.is_cancelled() {
        writeln!(out, "journal: {}", journal_path.display())?;
    }
    Ok(outcome.verdict.exit_status())
}

/// Errors and retries per endpoint of every client of the run: the Kubernetes one (faults,
/// watches, undo) and the AWS ones (faults, zone map, undo share the options' counts).
fn api_calls(connected: &wiring::Connected) -> Vec<crate::report::model::EndpointCalls> {
    let mut calls = connected
        .cluster
        .as_ref()
        .map(|c| c.kube.retry_counts().endpoint_calls())
        .unwrap_or_default();
    calls.extend(connected.aws_options.calls.endpoint_calls());
    calls
}

/// Starts the sandbox and runs the demo experiment against it.
///
/// # Errors
/// When the sandbox cannot start; the run itself maps to an exit status.
#[cfg(feature = "sandbox")]
pub async fn demo(args: &DemoArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    use crate::cli::SandboxUpArgs;
    let running = crate::commands::sandbox::start(&SandboxUpArgs {
        topology: args.topology.clone(),
        dir: None,
        aws_endpoint: None,
        enforce_rbac: false,
        service_account: Vec::new(),
        hostile: None,
    })
    .await?;
    writeln!(
        out,
        "sandbox ready: {} ({} nodes)",
        running.sandbox.api_url(),
        running.sandbox.node_names().len()
    )?;
    let journal: PathBuf = running.dir.join("journal.jsonl");
    let run_args = RunArgs {
        file: args.experiment.clone(),
        report_dir: args.report_dir.clone(),
        journal: Some(journal),
        seed: None,
        recover_first: false,
        no_cluster_journal: false,
        undo_deadline: crate::journal::DEFAULT_UNDO_DEADLINE.into(),
        pushgateway: args.pushgateway.clone(),
        metrics_textfile: args.metrics_textfile.clone(),
        live_metrics_interval: args.live_metrics_interval,
        metrics_listen: args.metrics_listen,
        report_sse: crate::cli::ReportSse::Aes256,
        report_region: None,
        output: crate::cli::OutputFormat::Text,
        cluster: crate::cli::ClusterFlags {
            kubeconfig: Some(running.sandbox.kubeconfig_path().to_owned()),
            context: None,
        },
    };
    let cluster = super::cluster_of(&run_args.cluster);
    let status = execute(
        &run_args.file,
        &cluster,
        &run_args,
        &mut super::LoggedOut::new(out),
        None,
    )
    .await;
    running.sandbox.shutdown().await;
    status
}

/// Writes the report where `--report-dir` says: a directory as before, or a bucket through the
/// report store. Returns how many objects could not be written; never an error for that, since
/// the exit code is the verdict's.
///
/// # Errors
/// Only writing to `out` fails.
async fn save_report(
    args: &RunArgs,
    report: &crate::report::Report,
    out: &mut dyn Write,
) -> anyhow::Result<Option<u64>> {
    use crate::report::location::ReportLocation;
    let location = match ReportLocation::from_path(&args.report_dir) {
        Ok(location) => location,
        Err(err) => {
            error!(
                "--report-dir {err}; the report was not saved, the exit code is still the verdict's"
            );
            return Ok(Some(1));
        }
    };
    if let ReportLocation::Dir(dir) = &location {
        match write_all(dir, report) {
            Ok(files) => writeln!(out, "report: {}", files.dir.display())?,
            Err(err) => error!(
                "cannot write the report under {}: {err}; the exit code is still the verdict's",
                dir.display()
            ),
        }
        return Ok(None);
    }
    let encryption = match args.report_sse {
        crate::cli::ReportSse::Aes256 => crate::report::store::Encryption::Aes256,
        crate::cli::ReportSse::AwsKms => crate::report::store::Encryption::Kms,
    };
    let opened = match crate::infra::report_store::open(
        &location,
        args.report_region.as_deref(),
        encryption,
    )
    .await
    {
        Ok(opened) => opened,
        Err(err) => {
            error!("report not uploaded: {err}; the exit code is still the verdict's");
            return Ok(Some(1));
        }
    };
    let upload = crate::report::store::upload(opened.store.as_ref(), &opened.prefix, report).await;
    for failure in &upload.failures {
        error!("report upload failed: {failure}; the exit code is still the verdict's");
    }
    if upload.failures.is_empty() {
        writeln!(out, "report: {}/", upload.location)?;
    }
    Ok(Some(upload.failures.len() as u64))
}

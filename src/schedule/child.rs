//! Each run in its own process: `steadfast run FILE` started from the current executable.
//!
//! A crash, a panic or a leak in one run cannot take the scheduler down, and the run's own
//! signal handling (first SIGTERM: stop injecting and roll back) is reused unchanged: stopping a
//! run is forwarding SIGTERM to it. The child gets its own process group so a Ctrl-C in a
//! terminal reaches it once, through the scheduler, instead of twice (a second signal would
//! make it skip its waits).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use super::catalog::ScheduledExperiment;
use super::daemon::{Launcher, RunOutcome};

/// How long a run may take to roll back after SIGTERM before it is killed.
pub const ROLLBACK_GRACE: Duration = Duration::from_secs(300);
/// How long `steadfast rollback` may take.
pub const RECOVER_LIMIT: Duration = Duration::from_secs(600);

/// Starts `run` and `rollback` as child processes of `exe`.
#[derive(Debug, Clone)]
pub struct ChildLauncher {
    /// The steadfast executable.
    pub exe: PathBuf,
    /// Arguments every child gets after its subcommand: cluster flags and the journal.
    pub common: Vec<OsString>,
    /// Arguments only `run` gets (`--report-dir`).
    pub run_only: Vec<OsString>,
}

impl ChildLauncher {
    fn command(&self, subcommand: &str, extra: &[OsString], file: Option<&PathBuf>) -> Command {
        let mut command = Command::new(&self.exe);
        command.arg(subcommand);
        if let Some(file) = file {
            command.arg(file);
        }
        command
            .args(&self.common)
            .args(extra)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        #[cfg(unix)]
        command.process_group(0);
        command
    }
}

fn outcome(status: std::io::Result<ExitStatus>) -> RunOutcome {
    match status {
        Ok(status) => match status.code() {
            Some(code) => RunOutcome::Exited(code),
            None => {
                #[cfg(unix)]
                {
                    use std::os::unix::process::ExitStatusExt;
                    RunOutcome::Killed(status.signal())
                }
                #[cfg(not(unix))]
                {
                    RunOutcome::Killed(None)
                }
            }
        },
        Err(e) => RunOutcome::FailedToStart(format!("waiting for the run failed: {e}")),
    }
}

/// Asks the child to stop and roll back, as Kubernetes asks a pod.
fn terminate(child: &Child) {
    #[cfg(unix)]
    if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
        // SAFETY: kill(2) with a pid this process spawned and still owns (not yet reaped, so
        // the pid cannot have been reused) and a valid signal number.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        if sent != 0 {
            warn!(pid, error = %std::io::Error::last_os_error(), "cannot send SIGTERM to the run");
        }
    }
}

/// Waits for `child`; on `stop` or past `limit` asks it to roll back, and kills it if it has not
/// exited `ROLLBACK_GRACE` later.
async fn supervise(mut child: Child, stop: CancellationToken, limit: Duration) -> RunOutcome {
    tokio::select! {
        status = child.wait() => return outcome(status),
        () = stop.cancelled() => {}
        () = tokio::time::sleep(limit) => {
            warn!(?limit, "the run is past its time limit: asking it to roll back");
        }
    }
    terminate(&child);
    match tokio::time::timeout(ROLLBACK_GRACE, child.wait()).await {
        Ok(status) => outcome(status),
        Err(_) => {
            error!(grace = ?ROLLBACK_GRACE, "the run did not finish rolling back in time: killing it");
            let _ = child.start_kill();
            let _ = child.wait().await;
            RunOutcome::Killed(None)
        }
    }
}

#[async_trait]
impl Launcher for ChildLauncher {
    async fn run(&self, experiment: &ScheduledExperiment, stop: CancellationToken) -> RunOutcome {
        let mut command = self.command("run", &self.run_only, Some(&experiment.file));
        match command.spawn() {
            Ok(child) => supervise(child, stop, experiment.run_limit).await,
            Err(e) => RunOutcome::FailedToStart(format!("{}: {e}", self.exe.display())),
        }
    }

    async fn recover(&self) -> RunOutcome {
        let mut command = self.command("rollback", &[], None);
        match command.spawn() {
            // Recovery is not interrupted by shutdown: leaving faults in place is worse.
            Ok(child) => supervise(child, CancellationToken::new(), RECOVER_LIMIT).await,
            Err(e) => RunOutcome::FailedToStart(format!("{}: {e}", self.exe.display())),
        }
    }
}

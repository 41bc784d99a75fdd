//! The firing loop: each experiment at its next cron time, never two at once.
//!
//! The loop knows time and runs only through two traits, [`Clock`] and [`Launcher`], so tests
//! drive days of schedule through tokio's paused clock with a fake launcher, and the command
//! plugs in the wall clock and child processes.
//!
//! Rules:
//! - One run at a time. A fire while a run is in progress is skipped (counted and logged) or,
//!   with [`Overlap::Queue`], queued up to a bound and started when the run ends.
//! - A fire is delayed by a random jitter, uniform in `[0, jitter)` and seeded, so many clusters
//!   sharing a schedule do not hit shared dependencies at the same second.
//! - After a late wake-up (a suspended machine) an experiment fires once, not once per missed
//!   time, and its next time is computed from now.
//! - A run that did not roll back (exit 4, killed by a signal, or that could not report) is
//!   followed by [`Launcher::recover`] before anything else starts; while recovery keeps
//!   failing, fires are skipped with reason `rollback_pending`.
//! - Shutdown stops firing, asks the running experiment to roll back, waits for it, recovers
//!   if it did not, and returns.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use super::catalog::ScheduledExperiment;
use super::metrics::{RunResultLabel, ScheduleMetrics};
use crate::plan::seeded::SeededRng;

/// Where the loop reads the time and how it waits.
#[async_trait]
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
    /// Returns at `at` or earlier (the loop re-reads the time and sleeps again if early).
    async fn sleep_until(&self, at: DateTime<Utc>);
}

/// The wall clock. Sleeps at most a minute at a time so a clock step (NTP, a resumed laptop) is
/// noticed within a minute.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// Longest single sleep of [`SystemClock`].
const MAX_SLEEP: Duration = Duration::from_secs(60);

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, at: DateTime<Utc>) {
        let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        tokio::time::sleep(wait.min(MAX_SLEEP)).await;
    }
}

/// A clock that starts at a given date and advances with tokio's time, so a paused tokio clock
/// moves the schedule through days in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    wall: DateTime<Utc>,
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `wall` now.
    pub fn starting_at(wall: DateTime<Utc>) -> Self {
        Self {
            wall,
            origin: tokio::time::Instant::now(),
        }
    }
}

#[async_trait]
impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now() - self.origin;
        self.wall + chrono::TimeDelta::from_std(elapsed).unwrap_or(chrono::TimeDelta::MAX)
    }

    async fn sleep_until(&self, at: DateTime<Utc>) {
        let offset = (at - self.wall).to_std().unwrap_or(Duration::ZERO);
        tokio::time::sleep_until(self.origin + offset).await;
    }
}

/// How one run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// The run exited with this code (see `steadfast::exit`).
    Exited(i32),
    /// The run was killed by a signal (number when known): it may not have rolled back.
    Killed(Option<i32>),
    /// The run could not be started.
    FailedToStart(String),
}

impl RunOutcome {
    /// Whether something may be left broken, so `steadfast rollback` must run.
    pub fn needs_recovery(&self) -> bool {
        matches!(self, RunOutcome::Exited(4) | RunOutcome::Killed(_))
    }

    /// The metric labels of this outcome.
    pub fn label(&self) -> RunResultLabel {
        let (result, exit_code) = match self {
            RunOutcome::Exited(code) => (
                match code {
                    0 => "success",
                    1 => "targets_missed",
                    2 => "invalid",
                    3 => "aborted",
                    4 => "rollback_incomplete",
                    _ => "error",
                },
                code.to_string(),
            ),
            RunOutcome::Killed(_) => ("killed", String::new()),
            RunOutcome::FailedToStart(_) => ("failed_to_start", String::new()),
        };
        RunResultLabel { result, exit_code }
    }
}

/// Starts runs and recoveries.
#[async_trait]
pub trait Launcher: Send + Sync + 'static {
    /// Runs `experiment` to its end. When `stop` fires the run must stop injecting, roll back
    /// and return.
    async fn run(&self, experiment: &ScheduledExperiment, stop: CancellationToken) -> RunOutcome;
    /// Applies every pending undo record (`steadfast rollback`).
    async fn recover(&self) -> RunOutcome;
}

/// What to do with a fire while a run is in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// Drop it (counted as skipped with reason `overlap`).
    Skip,
    /// Start it when the run ends; beyond the queue bound it is dropped (`queue_full`).
    Queue,
}

/// How the loop behaves.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Overlapping fires.
    pub overlap: Overlap,
    /// Most fires waiting with [`Overlap::Queue`].
    pub queue_limit: usize,
    /// Seed of the jitter.
    pub seed: u64,
    /// Fire every experiment once at start, then follow the schedule.
    pub fire_on_start: bool,
}

/// How the loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerExit {
    /// Runs started.
    pub runs: u64,
    /// A run's rollback was incomplete and `recover` did not finish it either.
    pub rollback_pending: bool,
}

/// A fire's delay: uniform in `[0, max)`, in whole nanoseconds, drawn from the seeded
/// generator so a seed gives the same delays in every release.
fn jitter(rng: &mut SeededRng, max: Duration) -> chrono::TimeDelta {
    if max.is_zero() {
        return chrono::TimeDelta::zero();
    }
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    let picked = Duration::from_nanos(rng.below(nanos));
    chrono::TimeDelta::from_std(picked).unwrap_or(chrono::TimeDelta::zero())
}

/// One experiment's place in the schedule.
struct Slot {
    experiment: Arc<ScheduledExperiment>,
    /// The cron time of the next fire.
    base: Option<DateTime<Utc>>,
    /// `base` plus its jitter: when it actually fires.
    due: Option<DateTime<Utc>>,
}

/// The firing loop.
pub struct Scheduler<C, L> {
    slots: Vec<Slot>,
    clock: Arc<C>,
    launcher: Arc<L>,
    metrics: ScheduleMetrics,
    options: SchedulerOptions,
    rng: SeededRng,
    queue: VecDeque<usize>,
    running: JoinSet<(usize, RunOutcome)>,
    stop: CancellationToken,
    current: Option<usize>,
    rollback_pending: bool,
    runs: u64,
}

impl<C: Clock + 'static, L: Launcher> Scheduler<C, L> {
    /// A scheduler for `experiments`.
    pub fn new(
        experiments: Vec<ScheduledExperiment>,
        clock: Arc<C>,
        launcher: Arc<L>,
        metrics: ScheduleMetrics,
        options: SchedulerOptions,
    ) -> Self {
        let rng = SeededRng::new(options.seed);
        Self {
            slots: experiments
                .into_iter()
                .map(|experiment| Slot {
                    experiment: Arc::new(experiment),
                    base: None,
                    due: None,
                })
                .collect(),
            clock,
            launcher,
            metrics,
            options,
            rng,
            queue: VecDeque::new(),
            running: JoinSet::new(),
            stop: CancellationToken::new(),
            current: None,
            rollback_pending: false,
            runs: 0,
        }
    }

    /// Sets slot `i`'s next fire to the first cron time after `after`.
    fn schedule_after(&mut self, i: usize, after: DateTime<Utc>) {
        let base = self.slots[i].experiment.next_after(after);
        let jitter = jitter(&mut self.rng, self.slots[i].experiment.jitter);
        let slot = &mut self.slots[i];
        slot.base = base;
        slot.due = base.map(|b| b + jitter);
        self.metrics.set_next_fire(&slot.experiment.name, slot.due);
    }

    /// Fires until `shutdown`, then rolls back a running experiment and returns.
    pub async fn run(mut self, shutdown: CancellationToken) -> SchedulerExit {
        let now = self.clock.now();
        for i in 0..self.slots.len() {
            self.schedule_after(i, now);
            info!(
                experiment = %self.slots[i].experiment.name,
                cron = %self.slots[i].experiment.cron.source(),
                zone = %self.slots[i].experiment.zone,
                next = ?self.slots[i].due,
                "scheduled"
            );
        }
        if self.options.fire_on_start {
            for i in 0..self.slots.len() {
                self.fire(i).await;
            }
        }
        loop {
            let next = self.slots.iter().filter_map(|s| s.due).min();
            let clock = self.clock.clone();
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(joined) = self.running.join_next(), if !self.running.is_empty() => {
                    self.finished(joined).await;
                    // A queued fire may be skipped (rollback pending): try the next one then.
                    while self.running.is_empty() {
                        let Some(i) = self.queue.pop_front() else { break };
                        self.metrics.set_queued(self.queue.len());
                        self.start(i).await;
                    }
                }
                () = async move {
                    match next {
                        Some(at) => clock.sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {
                    let now = self.clock.now();
                    for i in 0..self.slots.len() {
                        if self.slots[i].due.is_some_and(|due| due <= now) {
                            let after = self.slots[i].base.map_or(now, |b| b.max(now));
                            self.schedule_after(i, after);
                            self.fire(i).await;
                        }
                    }
                }
            }
        }
        self.shut_down().await
    }

    async fn fire(&mut self, i: usize) {
        let name = self.slots[i].experiment.name.clone();
        if self.running.is_empty() {
            self.start(i).await;
            return;
        }
        match self.options.overlap {
            Overlap::Queue if self.queue.len() < self.options.queue_limit => {
                self.queue.push_back(i);
                self.metrics.set_queued(self.queue.len());
                info!(experiment = %name, queued = self.queue.len(), "a run is in progress: fire queued");
            }
            Overlap::Queue => {
                self.metrics.fire_skipped(&name, "queue_full");
                warn!(experiment = %name, limit = self.options.queue_limit, "a run is in progress and the queue is full: fire skipped");
            }
            Overlap::Skip => {
                self.metrics.fire_skipped(&name, "overlap");
                warn!(experiment = %name, "a run is in progress: fire skipped");
            }
        }
    }

    async fn start(&mut self, i: usize) {
        let experiment = self.slots[i].experiment.clone();
        if self.rollback_pending && !self.recover().await {
            self.metrics
                .fire_skipped(&experiment.name, "rollback_pending");
            error!(experiment = %experiment.name, "undo records of an earlier run are still pending: fire skipped");
            return;
        }
        self.stop = CancellationToken::new();
        let stop = self.stop.clone();
        let launcher = self.launcher.clone();
        self.metrics.run_started(&experiment.name);
        self.current = Some(i);
        self.runs += 1;
        info!(experiment = %experiment.name, file = %experiment.file.display(), "run started");
        let span = info_span!("run", experiment = %experiment.name);
        self.running.spawn(
            async move {
                let outcome = launcher.run(&experiment, stop).await;
                (i, outcome)
            }
            .instrument(span),
        );
    }

    async fn finished(&mut self, joined: Result<(usize, RunOutcome), tokio::task::JoinError>) {
        let (name, outcome) = match joined {
            Ok((i, outcome)) => (self.slots[i].experiment.name.clone(), outcome),
            Err(e) => {
                // The task holding the run panicked: the run's state is unknown.
                error!(error = %e, "the task running an experiment failed");
                let name = self
                    .current
                    .map_or_else(String::new, |i| self.slots[i].experiment.name.clone());
                (name, RunOutcome::Killed(None))
            }
        };
        self.metrics.run_finished(&name, outcome.label());
        match &outcome {
            RunOutcome::Exited(code @ (0 | 1 | 3)) => {
                info!(experiment = %name, exit_code = code, result = outcome.label().result, "run finished");
            }
            RunOutcome::FailedToStart(why) => {
                error!(experiment = %name, error = %why, "run could not start");
            }
            other => {
                warn!(experiment = %name, outcome = ?other, result = other.label().result, "run finished badly");
            }
        }
        if outcome.needs_recovery() {
            self.rollback_pending = true;
            self.recover().await;
        }
    }

    /// Runs the launcher's recovery; true when nothing is pending any more.
    async fn recover(&mut self) -> bool {
        warn!("rolling back what the last run left pending");
        let outcome = self.launcher.recover().await;
        let complete = outcome == RunOutcome::Exited(0);
        self.metrics
            .recovery(if complete { "complete" } else { "incomplete" });
        if complete {
            info!("rollback complete");
            self.rollback_pending = false;
        } else {
            error!(outcome = ?outcome, "rollback did not complete");
        }
        complete
    }

    async fn shut_down(mut self) -> SchedulerExit {
        self.queue.clear();
        self.metrics.set_queued(0);
        if !self.running.is_empty() {
            info!("shutting down: asking the running experiment to roll back");
            self.stop.cancel();
            while let Some(joined) = self.running.join_next().await {
                self.finished(joined).await;
            }
        }
        info!(runs = self.runs, "scheduler stopped");
        SchedulerExit {
            runs: self.runs,
            rollback_pending: self.rollback_pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned values: a change here moves every seeded schedule's fires.
    #[test]
    fn jitter_for_a_known_seed_never_changes() {
        let mut rng = SeededRng::new(42);
        let nanos: Vec<i64> = (0..3)
            .map(|_| {
                jitter(&mut rng, Duration::from_secs(600))
                    .num_nanoseconds()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            nanos,
            vec![276_931_541_756, 256_739_323_905, 359_995_586_207]
        );
        assert_eq!(jitter(&mut rng, Duration::ZERO), chrono::TimeDelta::zero());
    }
}

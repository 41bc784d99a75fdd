//! One run, start to verdict.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, instrument, warn};

use super::effects::{self, FiringEffect};
use super::observer::{RunObserver, Status};
use super::ports::{AbortCheck, HaltSwitch, LockError, Probes, RunLock};
use super::schedule::plan_firings;
use super::timeline::{Event, EventKind, FiringTiming, Phase};
use crate::fault::{Fault, FaultPlan, Healing, Injection, UndoRecord, Undoer};
use crate::journal::{Journal, JournalEntry, RetryPolicy, UndoApplier};
use crate::spec::ExperimentSpec;
use crate::verdict::judge::TargetResult;
use crate::verdict::{RunWindows, TimeWindow, Verdict, evaluate};

/// Knobs of a run that are not in the experiment file.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Identifies the run in the journal, the lock and the report.
    pub run_id: String,
    /// Who runs it (user@host or the pod), shown to a run that finds the lock held.
    pub holder: String,
    /// The seed every random choice derives from.
    pub seed: u64,
    /// The instant all offsets count from; the probes use the same one.
    pub origin: Instant,
    /// How long the run lock lasts unless renewed.
    pub lock_ttl: Duration,
    /// How often abort conditions, the halt switch and the lock are checked.
    pub check_every: Duration,
    /// How long the steady state must hold again before recovery counts as done.
    pub recovery_stable: Duration,
    /// How an undo record is retried before it is left pending for `steadfast rollback`.
    pub undo_retry: RetryPolicy,
}

/// Cancellation from outside: the first signal stops injecting and rolls back; the second skips
/// the waits that remain (rollback still happens).
#[derive(Debug, Clone, Default)]
pub struct Interrupts {
    /// First signal.
    pub stop: CancellationToken,
    /// Second signal.
    pub hurry: CancellationToken,
}

/// Everything a run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The run's id.
    pub run_id: String,
    /// The seed used.
    pub seed: u64,
    /// Wall-clock start.
    pub started_at: DateTime<Utc>,
    /// Wall-clock end.
    pub finished_at: DateTime<Utc>,
    /// The verdict.
    pub verdict: Verdict,
    /// The windows as they happened.
    pub windows: RunWindows,
    /// Each target, judged (plus the implicit steady-state checks).
    pub results: Vec<TargetResult>,
    /// The timeline.
    pub events: Vec<Event>,
    /// Per fault, self-healing evidence.
    pub healing: BTreeMap<String, Healing>,
    /// Per fault and firing, self-healing evidence.
    pub healing_by_firing: BTreeMap<(String, u32), Healing>,
    /// Per firing, whether its change showed and when the system noticed it.
    pub effects: Vec<FiringEffect>,
    /// Undo records that could not be applied.
    pub pending: Vec<UndoRecord>,
}

/// Why a run could not start at all (nothing was changed).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Another run holds the lock.
    #[error(transparent)]
    Locked(#[from] LockError),
    /// The halt switch is on.
    #[error("chaos is halted on this cluster: {0}")]
    Halted(String),
    /// The journal could not be written.
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// A probe could not start.
    #[error("probes: {0}")]
    Probes(anyhow::Error),
}

/// The engine, wired to its adapters.
pub struct Engine<'a> {
    /// The experiment.
    pub spec: &'a ExperimentSpec,
    /// The probes.
    pub probes: &'a dyn Probes,
    /// One fault per `spec.faults` entry, in the same order.
    pub faults: Vec<Arc<dyn Fault>>,
    /// Applies undo records.
    pub undoer: &'a dyn Undoer,
    /// The write-ahead journal (local file, optionally mirrored in the cluster).
    pub journal: &'a Journal,
    /// The cluster's run lock.
    pub lock: &'a dyn RunLock,
    /// The cluster's halt switch.
    pub halt: &'a dyn HaltSwitch,
    /// External stop conditions (Prometheus alerts).
    pub abort_checks: Vec<Box<dyn AbortCheck>>,
    /// Shown the run's progress (a terminal line, or nothing).
    pub observer: &'a dyn RunObserver,
    /// Run knobs.
    pub options: EngineOptions,
}

/// How long before its instant a firing is planned, journaled and watched, so that at the
/// instant it only acts: resolving targets on a large cluster takes seconds.
pub const PREPARE_AHEAD: Duration = Duration::from_secs(5);

/// A firing ready to act.
struct Prepared {
    index: usize,
    firing: u32,
    fault: Arc<dyn Fault>,
    plan: FaultPlan,
}

/// The next firing of the timeline, ahead of its instant.
enum Next {
    /// Not planned yet.
    Unprepared,
    /// Planned, journaled and watched.
    Prepared(Box<Prepared>),
    /// Could not be planned; it acts on nothing.
    Missed,
}

/// What one firing left for the timeline.
#[derive(Debug, Default)]
struct Fired {
    /// Ids of its undo records, rolled back at the end of its window.
    ids: Vec<String>,
    /// When it first acted, as an offset from the origin; `None` when it did not.
    acted: Option<Duration>,
}

struct State {
    events: Vec<Event>,
    undo: Vec<(UndoRecord, bool)>,
    healing_tasks: JoinSet<(String, u32, Healing)>,
    /// Each firing whose self-healing is watched, and when its watch gives up.
    healing_deadlines: Vec<(String, u32, Instant)>,
    effect_tasks: JoinSet<FiringEffect>,
    /// Firings that changed nothing because they could not plan or act.
    missed: Vec<FiringEffect>,
    aborted: Option<String>,
    last_renew: Instant,
    /// Availability aborts guard injection; before the first fault the steady-state check
    /// speaks instead.
    injecting: bool,
    /// The current phase, for the observer.
    phase: Phase,
}

/// The trailing window of the live availability shown while a run goes.
const STATUS_WINDOW: Duration = Duration::from_secs(5);

impl Engine<'_> {
    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.options.origin)
    }

    fn event(&self, state: &mut State, kind: EventKind) {
        if let EventKind::PhaseStarted { phase } = &kind {
            state.phase = *phase;
        }
        let event = Event {
            at: self.now(),
            kind,
        };
        self.observer.event(&event);
        state.events.push(event);
    }

    /// Tells the observer where the run stands: phase, time left, live availability.
    fn report_status(&self, state: &State, left: Duration) {
        let now = self.now();
        let window = TimeWindow::new(now.saturating_sub(STATUS_WINDOW), now);
        let availability = self
            .spec
            .spec
            .steady_state
            .probes
            .iter()
            .filter(|p| p.http.is_some())
            .map(|p| (p.name.clone(), self.probes.availability(&p.name, window)))
            .collect();
        self.observer.status(&Status {
            phase: state.phase,
            left,
            availability,
            waiting_for: None,
        });
    }

    /// Runs the experiment to its verdict.
    ///
    /// # Errors
    /// Only when the run cannot start; once a fault may have acted, every problem becomes part
    /// of the outcome and rollback always runs.
    #[instrument(skip_all, fields(experiment = %self.spec.metadata.name, run = %self.options.run_id))]
    pub async fn run(&self, interrupts: &Interrupts) -> Result<RunOutcome, StartError> {
        let started_at = Utc::now();
        if let Some(reason) = self.halt.halted().await.map_err(StartError::Probes)? {
            return Err(StartError::Halted(reason));
        }
        self.lock
            .acquire(&self.options.holder, self.options.lock_ttl)
            .await?;
        let outcome = self.run_locked(interrupts, started_at).await;
        if let Err(err) = self.lock.release().await {
            warn!(%err, "could not release the run lock; it lapses on its own");
        }
        outcome
    }

    async fn run_locked(
        &self,
        interrupts: &Interrupts,
        started_at: DateTime<Utc>,
    ) -> Result<RunOutcome, StartError> {
        self.journal
            .append(&JournalEntry::RunStarted {
                run_id: self.options.run_id.clone(),
                experiment: self.spec.metadata.name.clone(),
                holder: self.options.holder.clone(),
                at: Utc::now(),
            })
            .await?;
        let mut state = State {
            events: Vec::new(),
            undo: Vec::new(),
            healing_tasks: JoinSet::new(),
            healing_deadlines: Vec::new(),
            effect_tasks: JoinSet::new(),
            missed: Vec::new(),
            aborted: None,
            last_renew: Instant::now(),
            injecting: false,
            phase: Phase::SteadyBefore,
        };
        let steady = &self.spec.spec.steady_state;
        let mut windows = RunWindows::default();
        let run_start = self.now();

        self.probes.start().await.map_err(StartError::Probes)?;
        self.event(
            &mut state,
            EventKind::PhaseStarted {
                phase: Phase::SteadyBefore,
            },
        );
        let before_start = self.now();
        let upcoming = self.steady_before(interrupts, &mut state).await;
        let before = TimeWindow::new(before_start, self.now());
        windows.before = Some(before);

        let mut not_steady = None;
        if state.aborted.is_none() {
            let check = self.probes.steady(before);
            if !check.holds {
                not_steady = Some(check.reasons.join("; "));
            }
        }

        if not_steady.is_none() && state.aborted.is_none() {
            self.event(
                &mut state,
                EventKind::PhaseStarted {
                    phase: Phase::Faults,
                },
            );
            self.timeline(interrupts, &mut state, &mut windows, upcoming)
                .await;
        }

        self.event(
            &mut state,
            EventKind::PhaseStarted {
                phase: Phase::Rollback,
            },
        );
        self.rollback_all(&mut state).await;

        let mut after_check = None;
        if not_steady.is_none() && !interrupts.hurry.is_cancelled() {
            self.event(
                &mut state,
                EventKind::PhaseStarted {
                    phase: Phase::Recovery,
                },
            );
            self.await_recovery(interrupts).await;
            if !interrupts.hurry.is_cancelled() {
                self.event(
                    &mut state,
                    EventKind::PhaseStarted {
                        phase: Phase::SteadyAfter,
                    },
                );
                let after_start = self.now();
                self.sleep_unless(steady.after.get(), &interrupts.hurry)
                    .await;
                let after = TimeWindow::new(after_start, self.now());
                windows.after = Some(after);
                after_check = Some(self.probes.steady(after));
            }
        }
        self.probes.stop().await;
        windows.run = Some(TimeWindow::new(run_start, self.now()));
        self.event(
            &mut state,
            EventKind::PhaseStarted {
                phase: Phase::Finished,
            },
        );

        let healing_by_firing = self.collect_healing(&mut state, interrupts).await;
        let healing = merge_healing(&healing_by_firing);
        let missed = std::mem::take(&mut state.missed);
        let effects = effects::collect(&mut state.effect_tasks, missed, interrupts).await;
        let mut evidence = self.probes.evidence();
        evidence.detection = effects::detection_evidence(&effects);
        evidence.healing = healing
            .iter()
            .filter_map(|(fault, h)| match h {
                Healing::NotApplicable => None,
                Healing::Healed { after } => Some((fault.clone(), Some(*after))),
                Healing::NotHealed => Some((fault.clone(), None)),
            })
            .collect();
        let mut results = evaluate(self.spec, &windows, &evidence);
        if let Some(check) = &after_check {
            results.push(steady_result(check, windows.after));
        }
        results.extend(blocked_results(self.spec, &state.events));
        results.extend(effects::no_effect_results(self.spec, &effects));
        drop(evidence);

        let pending: Vec<UndoRecord> = state
            .undo
            .iter()
            .filter(|(_, done)| !done)
            .map(|(r, _)| r.clone())
            .collect();
        let verdict = if !pending.is_empty() {
            Verdict::RollbackIncomplete {
                pending: pending.iter().map(|r| r.id.clone()).collect(),
            }
        } else if let Some(reason) = state.aborted.clone() {
            Verdict::Aborted { reason }
        } else if let Some(reason) = not_steady {
            Verdict::NotSteady { reason }
        } else {
            Verdict::from_results(&results)
        };
        if pending.is_empty() {
            // Everything is undone already; a missing end only shows the run as unfinished.
            if let Err(err) = self
                .journal
                .append(&JournalEntry::RunFinished {
                    run_id: self.options.run_id.clone(),
                    at: Utc::now(),
                })
                .await
            {
                warn!(%err, "could not journal the end of the run");
            }
        }
        self.observer.finished();
        info!(verdict = verdict.label(), "run finished");
        Ok(RunOutcome {
            run_id: self.options.run_id.clone(),
            seed: self.options.seed,
            started_at,
            finished_at: Utc::now(),
            verdict,
            windows,
            results,
            events: state.events,
            healing,
            healing_by_firing,
            effects,
            pending,
        })
    }

    /// Sleeps `length`, checking abort conditions all along; returns early on abort or signal.
    async fn wait(&self, length: Duration, interrupts: &Interrupts, state: &mut State) {
        let deadline = Instant::now() + length;
        while state.aborted.is_none() {
            let tick = (Instant::now() + self.options.check_every).min(deadline);
            // Biased: a signal wins over a wait that is already over (a zero-length wait
            // between firings that are late).
            tokio::select! {
                biased;
                () = interrupts.stop.cancelled() => {
                    self.abort(state, "interrupted by a signal".to_owned());
                    return;
                }
                () = tokio::time::sleep_until(tick) => {}
            }
            self.check_aborts(state).await;
            self.report_status(state, deadline.saturating_duration_since(Instant::now()));
            if Instant::now() >= deadline {
                return;
            }
        }
    }

    async fn sleep_unless(&self, length: Duration, token: &CancellationToken) {
        tokio::select! {
            () = tokio::time::sleep(length) => {}
            () = token.cancelled() => {}
        }
    }

    fn abort(&self, state: &mut State, reason: String) {
        if state.aborted.is_none() {
            warn!(%reason, "aborting: no more faults, rolling back");
            self.event(
                state,
                EventKind::Aborted {
                    reason: reason.clone(),
                },
            );
            state.aborted = Some(reason);
        }
    }

    async fn check_aborts(&self, state: &mut State) {
        let now = self.now();
        let conditions = if state.injecting {
            self.spec.spec.safety.abort_when.as_slice()
        } else {
            &[]
        };
        for condition in conditions {
            let (Some(probe), Some(bound)) = (&condition.probe, condition.availability) else {
                continue;
            };
            let over = condition.over.map_or(Duration::from_secs(10), |d| d.get());
            if now < over {
                continue;
            }
            let window = TimeWindow::new(now - over, now);
            if let Some(ratio) = self.probes.availability(probe, window)
                && bound.holds(crate::spec::Percent::new(ratio * 100.0))
            {
                self.abort(
                    state,
                    format!(
                        "availability of `{probe}` was {:.2}% over the last {}, {bound}",
                        ratio * 100.0,
                        crate::spec::DurationSpec(over)
                    ),
                );
                return;
            }
        }
        match self.halt.halted().await {
            Ok(Some(reason)) => {
                self.abort(state, format!("chaos was halted: {reason}"));
                return;
            }
            Ok(None) => {}
            Err(err) => warn!(%err, "could not read the halt switch"),
        }
        for check in &self.abort_checks {
            match check.check().await {
                Ok(Some(reason)) => {
                    self.abort(state, reason);
                    return;
                }
                Ok(None) => {}
                Err(err) => warn!(%err, "an abort condition could not be checked"),
            }
        }
        if state.last_renew.elapsed() >= self.options.lock_ttl / 3 {
            match self.lock.renew().await {
                Ok(()) => state.last_renew = Instant::now(),
                Err(err) => self.abort(state, format!("lost the run lock: {err}")),
            }
        }
    }

    /// Waits out the steady state before, planning the first firing during it when that is due
    /// sooner than [`PREPARE_AHEAD`] after the faults begin (planning only reads).
    async fn steady_before(&self, interrupts: &Interrupts, state: &mut State) -> Next {
        let length = self.spec.spec.steady_state.before.get();
        let end = self.now() + length;
        let first = plan_firings(&self.spec.spec.faults).into_iter().next();
        let lead = first
            .as_ref()
            .map_or(Duration::ZERO, |f| PREPARE_AHEAD.saturating_sub(f.at))
            .min(length);
        self.wait(length - lead, interrupts, state).await;
        let mut upcoming = Next::Unprepared;
        if let Some(first) = first.filter(|_| !lead.is_zero() && state.aborted.is_none()) {
            upcoming = match self.prepare(state, first.fault, first.firing).await {
                Some(prepared) => Next::Prepared(Box::new(prepared)),
                None => Next::Missed,
            };
        }
        let rest = end.saturating_sub(self.now());
        self.wait(rest, interrupts, state).await;
        upcoming
    }

    /// Fires every fault on schedule, rolling lasting ones back at the end of their window.
    async fn timeline(
        &self,
        interrupts: &Interrupts,
        state: &mut State,
        windows: &mut RunWindows,
        mut upcoming: Next,
    ) {
        let phase_start = self.now();
        state.injecting = true;
        let mut pending_rollbacks: Vec<(Duration, Vec<String>)> = Vec::new();
        for fault in &self.spec.spec.faults {
            let start = phase_start + fault.at.get();
            windows.faults.insert(
                fault.name.clone(),
                TimeWindow::new(start, start + fault.for_.get()),
            );
        }
        let firings = plan_firings(&self.spec.spec.faults);
        // The phase lasts until every fault's window has passed, instant faults included: their
        // `for` is the time given to self-healing and measured as "during", not cut short at
        // the last firing.
        let windows_end = self
            .spec
            .spec
            .faults
            .iter()
            .map(|fault| phase_start + fault.at.get() + fault.for_.get())
            .max();
        let mut next = 0;
        loop {
            let next_fire = firings.get(next).map(|f| phase_start + f.at);
            let next_prepare = next_fire
                .filter(|_| matches!(upcoming, Next::Unprepared))
                .map(|at| at.saturating_sub(PREPARE_AHEAD));
            let next_rollback = pending_rollbacks
                .iter()
                .map(|(at, _)| phase_start + *at)
                .min();
            let Some(due) = [next_prepare, next_fire, next_rollback]
                .into_iter()
                .flatten()
                .min()
            else {
                if let Some(end) = windows_end.filter(|end| *end > self.now()) {
                    let wait = end.saturating_sub(self.now());
                    self.wait(wait, interrupts, state).await;
                }
                break;
            };
            let wait = due.saturating_sub(self.now());
            self.wait(wait, interrupts, state).await;
            if state.aborted.is_some() {
                break;
            }
            let now = self.now();
            let (due_rollbacks, later): (Vec<_>, Vec<_>) = pending_rollbacks
                .into_iter()
                .partition(|(at, _)| phase_start + *at <= now);
            pending_rollbacks = later;
            for (_, ids) in due_rollbacks {
                self.rollback_ids(state, &ids).await;
            }
            if matches!(upcoming, Next::Unprepared)
                && let Some(firing) = firings
                    .get(next)
                    .filter(|f| phase_start + f.at <= self.now() + PREPARE_AHEAD)
            {
                upcoming = match self.prepare(state, firing.fault, firing.firing).await {
                    Some(prepared) => Next::Prepared(Box::new(prepared)),
                    None => Next::Missed,
                };
                // Back to the top: an abort, a signal or a due rollback goes first.
                continue;
            }
            // One firing per turn, even when several are due: a firing that takes longer than
            // its `every` would otherwise chain into the next without an abort check, a signal
            // or a lock renewal in between.
            if let Some(firing) = firings
                .get(next)
                .filter(|f| phase_start + f.at <= self.now())
            {
                next += 1;
                let scheduled = phase_start + firing.at;
                let Fired { ids, acted } = match std::mem::replace(&mut upcoming, Next::Unprepared)
                {
                    Next::Prepared(prepared) => self.act(state, *prepared, scheduled).await,
                    Next::Unprepared => {
                        match self.prepare(state, firing.fault, firing.firing).await {
                            Some(prepared) => self.act(state, prepared, scheduled).await,
                            None => Fired::default(),
                        }
                    }
                    Next::Missed => Fired::default(),
                };
                if let Some(at) = firing.rollback_at {
                    // A lasting fault holds for its whole `for` from its first action: retries
                    // against a throttling control plane delay its start, not shorten it.
                    let held = at.saturating_sub(firing.at);
                    let acted = acted.map_or(at, |t| t.saturating_sub(phase_start) + held);
                    let rollback_at = at.max(acted);
                    let name = &self.spec.spec.faults[firing.fault].name;
                    if let Some(window) = windows.faults.get_mut(name) {
                        window.end = window.end.max(phase_start + rollback_at);
                    }
                    pending_rollbacks.push((rollback_at, ids));
                }
            }
        }
        let end = self.now();
        state.injecting = false;
        windows.during = Some(TimeWindow::new(phase_start, end));
        // A fault cut short by an abort ends when the run stopped injecting.
        for window in windows.faults.values_mut() {
            *window = TimeWindow::new(window.start.min(end), window.end.min(end));
        }
    }

    /// Plans one firing and readies its watches, ahead of its instant (reads only): at the
    /// instant it only journals its undo and acts. `None` when it could not plan (recorded as
    /// missed).
    #[instrument(skip_all, fields(fault = %self.spec.spec.faults[index].name, firing))]
    async fn prepare(&self, state: &mut State, index: usize, firing: u32) -> Option<Prepared> {
        let spec = &self.spec.spec.faults[index];
        let fault = self.faults.get(index).cloned()?;
        let plan = match fault.plan(&self.options.run_id, firing).await {
            Ok(plan) => plan,
            Err(err) => {
                state.missed.push(FiringEffect::missed(
                    &spec.name,
                    firing,
                    self.now(),
                    format!("nothing was planned: {err}"),
                ));
                self.event(
                    state,
                    EventKind::FaultSkipped {
                        fault: spec.name.clone(),
                        firing,
                        reason: err.to_string(),
                    },
                );
                return None;
            }
        };
        fault.prepare(&plan).await;
        Some(Prepared {
            index,
            firing,
            fault,
            plan,
        })
    }

    /// Journals a prepared firing's undo, then injects it; due at `scheduled`.
    #[instrument(skip_all, fields(fault = %self.spec.spec.faults[prepared.index].name, firing = prepared.firing))]
    async fn act(&self, state: &mut State, prepared: Prepared, scheduled: Duration) -> Fired {
        let Prepared {
            index,
            firing,
            fault,
            plan,
        } = prepared;
        let spec = &self.spec.spec.faults[index];
        // The undo must be durable before anything changes.
        for record in &plan.undo {
            let written = self
                .journal
                .append(&JournalEntry::Undo(record.clone()))
                .await;
            // Kept even when the write failed: it may be in the local file, and applying a
            // record whose change never happened finds it already restored and journals that.
            state.undo.push((record.clone(), false));
            if let Err(err) = written {
                self.abort(
                    state,
                    format!("cannot write the journal, refusing to inject: {err}"),
                );
                return Fired::default();
            }
        }
        let ids: Vec<String> = plan.undo.iter().map(|r| r.id.clone()).collect();
        let mut acted = None;
        let injected_at = self.now();
        match fault.inject(&plan).await {
            Ok(injection) => {
                info!(targets = plan.targets.len(), "fault injected");
                let timing = FiringTiming {
                    scheduled,
                    actions: self.offsets(injection.effects.iter().map(|e| e.at)),
                };
                acted = timing.actions.iter().min().copied();
                self.record_injection(state, &plan, &injection, firing, timing);
                let timeout = self.spec.spec.steady_state.recovery_timeout.get() + spec.for_.get();
                effects::spawn(
                    &mut state.effect_tasks,
                    effects::Watch {
                        fault: fault.clone(),
                        plan: plan.clone(),
                        injection: injection.clone(),
                        firing,
                        injected_at,
                        origin: self.options.origin,
                        effect_timeout: spec.effect_timeout.get(),
                        detection_timeout: timeout,
                    },
                );
                let name = spec.name.clone();
                state
                    .healing_deadlines
                    .push((name.clone(), firing, Instant::now() + timeout));
                state.healing_tasks.spawn(async move {
                    let healing = fault.await_healing(&plan, &injection, timeout).await;
                    (name, firing, healing)
                });
            }
            Err(err) => {
                // Something may have changed before the error: the undo records stay pending
                // and are applied with the rest.
                state.missed.push(FiringEffect::missed(
                    &spec.name,
                    firing,
                    injected_at,
                    format!("the fault could not act: {err}"),
                ));
                self.event(
                    state,
                    EventKind::FaultSkipped {
                        fault: spec.name.clone(),
                        firing,
                        reason: err.to_string(),
                    },
                );
            }
        }
        Fired { ids, acted }
    }

    /// Wall-clock instants as offsets from the origin.
    fn offsets(&self, times: impl Iterator<Item = SystemTime>) -> Vec<Duration> {
        let (now, wall) = (self.now(), SystemTime::now());
        times
            .map(|at| now.saturating_sub(wall.duration_since(at).unwrap_or_default()))
            .collect()
    }

    fn record_injection(
        &self,
        state: &mut State,
        plan: &FaultPlan,
        injection: &Injection,
        firing: u32,
        timing: FiringTiming,
    ) {
        self.event(
            state,
            EventKind::FaultInjected {
                fault: plan.fault.clone(),
                firing,
                targets: plan.targets.clone(),
                effects: injection.effects.clone(),
                seed: plan.seed,
                timing,
            },
        );
    }

    async fn rollback_ids(&self, state: &mut State, ids: &[String]) {
        for id in ids.iter().rev() {
            self.undo_one(state, id).await;
        }
    }

    async fn rollback_all(&self, state: &mut State) {
        let ids: Vec<String> = state
            .undo
            .iter()
            .filter(|(_, done)| !done)
            .map(|(r, _)| r.id.clone())
            .collect();
        self.rollback_ids(state, &ids).await;
    }

    async fn undo_one(&self, state: &mut State, id: &str) {
        let Some(position) = state.undo.iter().position(|(r, done)| r.id == id && !done) else {
            return;
        };
        let record = state.undo[position].0.clone();
        let applier = UndoApplier::new(self.undoer, self.journal, self.options.undo_retry);
        let report = applier.apply(&record).await;
        let kind = match report.result {
            Ok(outcome) => {
                state.undo[position].1 = true;
                EventKind::RolledBack {
                    fault: record.fault.clone(),
                    undo: record.id.clone(),
                    outcome,
                }
            }
            Err(error) => EventKind::RollbackFailed {
                fault: record.fault.clone(),
                undo: record.id.clone(),
                error,
            },
        };
        self.event(state, kind);
    }

    /// Each firing's self-healing evidence, as its watches end. A wait past the last phase is
    /// said, in the log and on the progress line: which firings, for at most how long.
    async fn collect_healing(
        &self,
        state: &mut State,
        interrupts: &Interrupts,
    ) -> BTreeMap<(String, u32), Healing> {
        let mut healing: BTreeMap<(String, u32), Healing> = BTreeMap::new();
        let mut next_log = Instant::now();
        loop {
            if !state.healing_tasks.is_empty() {
                self.say_healing_wait(state, &healing, &mut next_log);
            }
            let next = tokio::select! {
                next = state.healing_tasks.join_next() => next,
                () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                () = interrupts.hurry.cancelled() => {
                    state.healing_tasks.abort_all();
                    None
                }
            };
            let Some(joined) = next else { break };
            match joined {
                Ok((fault, firing, result)) => {
                    healing.insert((fault, firing), result);
                }
                Err(err) if err.is_panic() => warn!(%err, "a self-healing watch panicked"),
                Err(_) => {}
            }
        }
        healing
    }

    /// Tells what self-healing the run still waits for, on the progress line at every call
    /// and in the log every few seconds.
    fn say_healing_wait(
        &self,
        state: &State,
        done: &BTreeMap<(String, u32), Healing>,
        next_log: &mut Instant,
    ) {
        let waiting: Vec<&(String, u32, Instant)> = state
            .healing_deadlines
            .iter()
            .filter(|(fault, firing, _)| !done.contains_key(&(fault.clone(), *firing)))
            .collect();
        let Some(deadline) = waiting.iter().map(|(_, _, at)| *at).max() else {
            return;
        };
        let mut faults: Vec<&str> = waiting.iter().map(|(f, _, _)| f.as_str()).collect();
        faults.dedup();
        let what = format!("self-healing of {}", faults.join(", "));
        let left = deadline.saturating_duration_since(Instant::now());
        if Instant::now() >= *next_log {
            info!(
                "waiting for {what} ({} firing(s), at most {}s)",
                waiting.len(),
                left.as_secs_f64().ceil()
            );
            *next_log = Instant::now() + Duration::from_secs(5);
        }
        self.observer.status(&Status {
            phase: Phase::Finished,
            left,
            availability: Vec::new(),
            waiting_for: Some(what),
        });
    }

    /// Waits until the steady state holds over a trailing window again, or the recovery timeout.
    async fn await_recovery(&self, interrupts: &Interrupts) {
        let timeout = self.spec.spec.steady_state.recovery_timeout.get();
        let deadline = Instant::now() + timeout;
        let stable = self.options.recovery_stable;
        let since = self.now();
        loop {
            let now = self.now();
            if now >= since + stable && self.probes.steady(TimeWindow::new(now - stable, now)).holds
            {
                return;
            }
            if Instant::now() >= deadline {
                warn!(timeout = %crate::spec::DurationSpec(timeout), "the steady state did not return within the recovery timeout");
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(self.options.check_every) => {}
                () = interrupts.hurry.cancelled() => return,
            }
        }
    }
}

/// Per fault, the worst of its firings: not healed if one did not heal, else the slowest.
fn merge_healing(by_firing: &BTreeMap<(String, u32), Healing>) -> BTreeMap<String, Healing> {
    let mut healing: BTreeMap<String, Healing> = BTreeMap::new();
    for ((fault, _), result) in by_firing {
        let merged = match (healing.get(fault), *result) {
            (None, r) | (Some(Healing::NotApplicable), r) => r,
            (Some(Healing::NotHealed), _) | (_, Healing::NotHealed) => Healing::NotHealed,
            (Some(Healing::Healed { after: a }), Healing::Healed { after: b }) => {
                Healing::Healed { after: (*a).max(b) }
            }
            (Some(existing), Healing::NotApplicable) => *existing,
        };
        healing.insert(fault.clone(), merged);
    }
    healing
}

/// A failed result per fault whose `onBlocked: fail` was breached: a PodDisruptionBudget refused
/// an eviction the experiment required.
pub(crate) fn blocked_results(spec: &ExperimentSpec, events: &[Event]) -> Vec<TargetResult> {
    use crate::fault::Effect;
    use crate::spec::fault::BlockedPolicy;
    spec.spec
        .faults
        .iter()
        .filter(|f| {
            let policy = f
                .pod_evict
                .as_ref()
                .map(|e| e.on_blocked)
                .or(f.node_drain.as_ref().map(|d| d.on_blocked));
            policy == Some(BlockedPolicy::Fail)
        })
        .filter_map(|fault| {
            let blocked: Vec<String> = events
                .iter()
                .filter_map(|e| match &e.kind {
                    EventKind::FaultInjected {
                        fault: name,
                        effects,
                        ..
                    } if name == &fault.name => Some(effects),
                    _ => None,
                })
                .flatten()
                .filter_map(|effect| match &effect.effect {
                    Effect::BlockedByBudget { budget } => Some(format!(
                        "{} (budget {budget})",
                        effect.target.display_name()
                    )),
                    _ => None,
                })
                .collect();
            (!blocked.is_empty()).then(|| TargetResult {
                name: format!("{}-not-blocked", fault.name),
                probe: "*".to_owned(),
                measure: crate::spec::Measure::Satisfied,
                window: crate::spec::Window::During,
                fault: Some(fault.name.clone()),
                required: "no eviction refused (onBlocked: fail)".to_owned(),
                measured: Some(format!("{} refused", blocked.len())),
                value: Some(blocked.len() as f64),
                passed: false,
                detail: format!("blocked by a PodDisruptionBudget: {}", blocked.join(", ")),
                span: None,
            })
        })
        .collect()
}

fn steady_result(check: &super::ports::SteadyCheck, span: Option<TimeWindow>) -> TargetResult {
    TargetResult {
        name: "steady-state-after".to_owned(),
        probe: "*".to_owned(),
        measure: crate::spec::Measure::Satisfied,
        window: crate::spec::Window::After,
        fault: None,
        required: "every probe's steady expectation".to_owned(),
        measured: Some(if check.holds {
            "held".to_owned()
        } else {
            "did not hold".to_owned()
        }),
        value: Some(if check.holds { 100.0 } else { 0.0 }),
        passed: check.holds,
        detail: if check.holds {
            "the steady state returned".to_owned()
        } else {
            check.reasons.join("; ")
        },
        span,
    }
}

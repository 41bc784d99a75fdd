//! The lifecycle with fakes on a paused clock: ordering, journaling before injection, aborts,
//! signals, the lock, and rollback failures.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tokio::time::Instant;

use super::ports::{HaltSwitch, LockError, Probes, RunLock, SteadyCheck};
use super::run::{Engine, EngineOptions, Interrupts, StartError};
use super::timeline::{EventKind, Phase};
use crate::fault::{
    Effect, Fault, FaultError, FaultPlan, Healing, Injection, RollbackOutcome, TargetEffect,
    TargetKind, TargetRef, UndoAction, UndoRecord, Undoer,
};
use crate::journal::{
    FileJournal, Journal, JournalEntry, JournalMirror, MirrorError, RetryPolicy, pending,
    read_entries,
};
use crate::spec::{ExperimentSpec, FaultKind, parse_experiment};
use crate::verdict::{Evidence, HttpEvidence, TimeWindow, Verdict};

const SPEC: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: Experiment
metadata: {name: engine-test}
spec:
  duration: 30s
  steadyState:
    before: 5s
    after: 5s
    recoveryTimeout: 20s
    probes: [{name: web, http: {url: "http://127.0.0.1/"}}]
  faults:
    - {name: cordon, at: 5s, for: 10s, nodeCordon: {target: {mode: one}}}
  targets:
    - {name: avail, probe: web, availability: ">= 90%"}
  safety:
    abortWhen:
      - {probe: web, availability: "< 50%", over: 2s}
"#;

fn spec() -> ExperimentSpec {
    parse_experiment("t.yaml", SPEC).unwrap().0
}

/// Availability as a function of run time.
struct FakeProbes {
    origin: Instant,
    down: Mutex<Option<(Duration, Duration)>>,
    started: Mutex<bool>,
}

impl FakeProbes {
    fn new(origin: Instant) -> Self {
        Self {
            origin,
            down: Mutex::new(None),
            started: Mutex::new(false),
        }
    }

    fn ratio(&self, window: TimeWindow) -> f64 {
        match *self.down.lock().unwrap() {
            Some((from, to)) if window.start < to && window.end > from => 0.0,
            _ => 1.0,
        }
    }
}

impl HttpEvidence for FakeProbes {
    fn availability(&self, window: TimeWindow) -> Option<f64> {
        Some(self.ratio(window))
    }
    fn latency_percentile(&self, _: TimeWindow, _: f64) -> Option<Duration> {
        Some(Duration::from_millis(5))
    }
    fn longest_outage(&self, _: TimeWindow) -> Option<TimeWindow> {
        None
    }
    fn time_to_recover(&self, _: Duration, _: Duration, _: f64, _: Duration) -> Option<Duration> {
        Some(Duration::ZERO)
    }
    fn balance_deviation(&self, _: TimeWindow) -> Option<f64> {
        None
    }
}

#[async_trait]
impl Probes for FakeProbes {
    async fn start(&self) -> anyhow::Result<()> {
        *self.started.lock().unwrap() = true;
        Ok(())
    }
    fn steady(&self, window: TimeWindow) -> SteadyCheck {
        let _ = self.origin;
        if self.ratio(window) >= 0.99 {
            SteadyCheck::ok()
        } else {
            SteadyCheck {
                holds: false,
                reasons: vec!["web below 99%".into()],
            }
        }
    }
    fn availability(&self, _: &str, window: TimeWindow) -> Option<f64> {
        Some(self.ratio(window))
    }
    async fn stop(&self) {}
    fn evidence(&self) -> Evidence<'_> {
        let mut evidence = Evidence::default();
        evidence.http.insert("web".into(), self);
        evidence
    }
}

/// A cordon that checks its undo is journaled before it acts.
struct FakeFault {
    journal_path: std::path::PathBuf,
    injected: Mutex<Vec<u32>>,
    /// How long each injection takes.
    delay: Duration,
    /// How long each plan takes (resolving targets on a large cluster).
    plan_delay: Duration,
}

#[async_trait]
impl Fault for FakeFault {
    fn name(&self) -> &str {
        "cordon"
    }
    fn kind(&self) -> FaultKind {
        FaultKind::NodeCordon
    }
    async fn plan(&self, run_id: &str, firing: u32) -> Result<FaultPlan, FaultError> {
        tokio::time::sleep(self.plan_delay).await;
        let target = TargetRef {
            kind: TargetKind::Node,
            name: "node-1".into(),
            namespace: None,
            node: None,
            zone: None,
        };
        Ok(FaultPlan {
            fault: "cordon".into(),
            kind: FaultKind::NodeCordon,
            targets: vec![target],
            undo: vec![UndoRecord {
                id: format!("{run_id}/cordon/{firing}/0"),
                run_id: run_id.into(),
                fault: "cordon".into(),
                action: UndoAction::Uncordon {
                    node: "node-1".into(),
                },
                created_at: Utc::now(),
            }],
            irreversible: Vec::new(),
            seed: 1,
            candidates: 3,
        })
    }
    async fn inject(&self, plan: &FaultPlan) -> Result<Injection, FaultError> {
        let journaled = pending(&read_entries(&self.journal_path).unwrap());
        assert!(
            journaled.iter().any(|r| r.id == plan.undo[0].id),
            "undo must be journaled before inject"
        );
        tokio::time::sleep(self.delay).await;
        self.injected.lock().unwrap().push(0);
        Ok(Injection {
            effects: vec![TargetEffect {
                target: plan.targets[0].clone(),
                effect: Effect::Applied,
                at: std::time::SystemTime::now(),
            }],
        })
    }
    async fn await_healing(&self, _: &FaultPlan, _: &Injection, _: Duration) -> Healing {
        Healing::Healed {
            after: Duration::from_secs(2),
        }
    }
}

#[derive(Default)]
struct FakeUndoer {
    /// How many attempts fail before one succeeds (`u32::MAX`: all).
    failures: u32,
    attempts: Mutex<u32>,
    undone: Mutex<Vec<String>>,
}

#[async_trait]
impl Undoer for FakeUndoer {
    fn handles(&self, _: &UndoAction) -> bool {
        true
    }
    async fn undo(&self, record: &UndoRecord) -> Result<RollbackOutcome, FaultError> {
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap();
            *attempts += 1;
            *attempts
        };
        if attempt <= self.failures {
            return Err(FaultError::Api {
                action: "uncordon".into(),
                message: "connection refused".into(),
            });
        }
        self.undone.lock().unwrap().push(record.id.clone());
        Ok(RollbackOutcome::Restored {
            detail: "uncordoned".into(),
        })
    }
}

#[derive(Default)]
struct FakeLock {
    holder: Mutex<Option<String>>,
}

#[async_trait]
impl RunLock for FakeLock {
    async fn acquire(&self, holder: &str, _: Duration) -> Result<(), LockError> {
        let mut current = self.holder.lock().unwrap();
        if let Some(other) = current.as_ref() {
            return Err(LockError::Held {
                holder: other.clone(),
                expires: "later".into(),
            });
        }
        *current = Some(holder.to_owned());
        Ok(())
    }
    async fn renew(&self) -> Result<(), LockError> {
        Ok(())
    }
    async fn release(&self) -> Result<(), LockError> {
        *self.holder.lock().unwrap() = None;
        Ok(())
    }
}

struct NoHalt;

#[async_trait]
impl HaltSwitch for NoHalt {
    async fn halted(&self) -> anyhow::Result<Option<String>> {
        Ok(None)
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    journal: Journal,
    probes: FakeProbes,
    fault: Arc<FakeFault>,
    undoer: FakeUndoer,
    lock: FakeLock,
    spec: ExperimentSpec,
    origin: Instant,
}

impl Rig {
    fn new(fail_undo: bool) -> Self {
        Self::build(if fail_undo { u32::MAX } else { 0 }, None)
    }

    fn build(undo_failures: u32, mirror: Option<Box<dyn JournalMirror>>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let origin = Instant::now();
        let file = FileJournal::open(&path).unwrap();
        Self {
            journal: match mirror {
                Some(mirror) => Journal::mirrored(file, mirror),
                None => Journal::local(file),
            },
            probes: FakeProbes::new(origin),
            fault: Arc::new(FakeFault {
                journal_path: path,
                injected: Mutex::new(Vec::new()),
                delay: Duration::ZERO,
                plan_delay: Duration::ZERO,
            }),
            undoer: FakeUndoer {
                failures: undo_failures,
                ..FakeUndoer::default()
            },
            lock: FakeLock::default(),
            spec: spec(),
            origin,
            _dir: dir,
        }
    }

    fn engine(&self) -> Engine<'_> {
        Engine {
            spec: &self.spec,
            probes: &self.probes,
            faults: vec![self.fault.clone()],
            undoer: &self.undoer,
            journal: &self.journal,
            lock: &self.lock,
            halt: &NoHalt,
            abort_checks: Vec::new(),
            observer: &super::Silent,
            options: EngineOptions {
                run_id: "run-1".into(),
                holder: "tester@host".into(),
                seed: 7,
                origin: self.origin,
                lock_ttl: Duration::from_secs(60),
                check_every: Duration::from_millis(500),
                recovery_stable: Duration::from_secs(2),
                undo_retry: RetryPolicy::default(),
            },
        }
    }
}

fn injected_at(events: &[super::Event]) -> Vec<Duration> {
    events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::FaultInjected { .. }))
        .map(|e| e.at)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_clean_run_injects_on_schedule_rolls_back_and_passes() {
    let rig = Rig::new(false);
    let outcome = rig.engine().run(&Interrupts::default()).await.unwrap();
    assert_eq!(outcome.verdict, Verdict::Passed, "{:?}", outcome.results);
    let injected = injected_at(&outcome.events);
    assert_eq!(injected.len(), 1);
    // before (5s) + at (5s)
    assert!(
        (injected[0].as_secs_f64() - 10.0).abs() < 0.6,
        "{injected:?}"
    );
    let rolled: Vec<Duration> = outcome
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::RolledBack { .. }))
        .map(|e| e.at)
        .collect();
    assert_eq!(rolled.len(), 1);
    assert!(
        (rolled[0].as_secs_f64() - 20.0).abs() < 0.6,
        "rolled back at the end of `for`: {rolled:?}"
    );
    assert_eq!(
        rig.undoer.undone.lock().unwrap().as_slice(),
        ["run-1/cordon/0/0"]
    );
    assert!(pending(&read_entries(rig.journal.path()).unwrap()).is_empty());
    assert!(
        outcome
            .results
            .iter()
            .any(|r| r.name == "steady-state-after" && r.passed)
    );
    assert_eq!(
        outcome.healing.get("cordon"),
        Some(&Healing::Healed {
            after: Duration::from_secs(2)
        })
    );
    assert!(
        rig.lock.holder.lock().unwrap().is_none(),
        "the lock is released"
    );
}

#[tokio::test(start_paused = true)]
async fn no_fault_is_injected_when_the_steady_state_does_not_hold() {
    let rig = Rig::new(false);
    *rig.probes.down.lock().unwrap() = Some((Duration::ZERO, Duration::from_secs(3)));
    let outcome = rig.engine().run(&Interrupts::default()).await.unwrap();
    assert!(
        matches!(outcome.verdict, Verdict::NotSteady { .. }),
        "{:?}",
        outcome.verdict
    );
    assert!(rig.fault.injected.lock().unwrap().is_empty());
    assert_eq!(
        outcome.verdict.exit_status(),
        crate::exit::ExitStatus::TargetsMissed
    );
}

#[tokio::test(start_paused = true)]
async fn an_abort_condition_stops_injection_within_one_check_and_rolls_back() {
    let rig = Rig::new(false);
    // Availability collapses at 12s, while the cordon (10s..20s) is in place.
    *rig.probes.down.lock().unwrap() = Some((Duration::from_secs(12), Duration::from_secs(1000)));
    let outcome = rig.engine().run(&Interrupts::default()).await.unwrap();
    let Verdict::Aborted { reason } = &outcome.verdict else {
        panic!("{:?}", outcome.verdict)
    };
    assert!(reason.contains("availability of `web`"), "{reason}");
    let aborted_at = outcome
        .events
        .iter()
        .find(|e| matches!(e.kind, EventKind::Aborted { .. }))
        .unwrap()
        .at;
    // `over: 2s` is first fully inside the outage at 14s; one check interval of slack.
    assert!(
        aborted_at >= Duration::from_secs(12) && aborted_at <= Duration::from_millis(14_600),
        "{aborted_at:?}"
    );
    let rolled = outcome
        .events
        .iter()
        .find(|e| matches!(e.kind, EventKind::RolledBack { .. }))
        .unwrap()
        .at;
    assert!(
        rolled >= aborted_at && rolled < aborted_at + Duration::from_secs(1),
        "rolled back right away"
    );
    assert_eq!(
        outcome.verdict.exit_status(),
        crate::exit::ExitStatus::Aborted
    );
}

#[tokio::test(start_paused = true)]
async fn a_signal_during_the_fault_rolls_back_before_returning() {
    let rig = Rig::new(false);
    let interrupts = Interrupts::default();
    let stop = interrupts.stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(12)).await;
        stop.cancel();
    });
    let outcome = rig.engine().run(&interrupts).await.unwrap();
    assert!(
        matches!(&outcome.verdict, Verdict::Aborted { reason } if reason.contains("signal")),
        "{:?}",
        outcome.verdict
    );
    assert_eq!(rig.undoer.undone.lock().unwrap().len(), 1);
    assert!(pending(&read_entries(rig.journal.path()).unwrap()).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_second_run_is_refused_with_the_holders_identity() {
    let rig = Rig::new(false);
    rig.lock
        .acquire("alice@laptop", Duration::from_secs(60))
        .await
        .unwrap();
    let err = rig.engine().run(&Interrupts::default()).await.unwrap_err();
    assert!(matches!(&err, StartError::Locked(_)));
    assert!(err.to_string().contains("alice@laptop"), "{err}");
    assert!(rig.fault.injected.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failing_undo_leaves_the_record_pending_and_says_so() {
    let rig = Rig::new(true);
    let outcome = rig.engine().run(&Interrupts::default()).await.unwrap();
    let Verdict::RollbackIncomplete { pending: left } = &outcome.verdict else {
        panic!("{:?}", outcome.verdict)
    };
    assert_eq!(left, &vec!["run-1/cordon/0/0".to_owned()]);
    assert_eq!(
        pending(&read_entries(rig.journal.path()).unwrap()).len(),
        1,
        "still pending in the journal"
    );
    assert_eq!(
        outcome.verdict.exit_status(),
        crate::exit::ExitStatus::RollbackIncomplete
    );
}

#[tokio::test(start_paused = true)]
async fn an_undo_refused_by_a_briefly_unreachable_endpoint_is_retried_until_applied() {
    let rig = Rig::build(4, None);
    let outcome = rig.engine().run(&Interrupts::default()).await.unwrap();
    assert!(
        !matches!(outcome.verdict, Verdict::RollbackIncomplete { .. }),
        "{:?}",
        outcome.verdict
    );
    assert_eq!(*rig.undoer.attempts.lock().unwrap(), 5);
    assert_eq!(*rig.undoer.undone.lock().unwrap(), ["run-1/cordon/0/0"]);
    assert!(pending(&read_entries(rig.journal.path()).unwrap()).is_empty());
}

#[test]
fn a_budget_refusal_fails_the_run_only_when_the_spec_says_so() {
    let text = SPEC.replace(
        "nodeCordon: {target: {mode: one}}",
        "podEvict: {onBlocked: fail, target: {namespaces: [shop]}}",
    );
    let spec = parse_experiment("t.yaml", &text).unwrap().0;
    let target = TargetRef {
        kind: TargetKind::Pod,
        name: "web-1".into(),
        namespace: Some("shop".into()),
        node: None,
        zone: None,
    };
    let events = vec![super::Event {
        at: Duration::from_secs(10),
        kind: EventKind::FaultInjected {
            fault: "cordon".into(),
            firing: 0,
            targets: vec![target.clone()],
            effects: vec![TargetEffect {
                target,
                effect: Effect::BlockedByBudget {
                    budget: "web-pdb".into(),
                },
                at: std::time::SystemTime::now(),
            }],
            seed: 1,
            timing: Default::default(),
        },
    }];
    let results = super::run::blocked_results(&spec, &events);
    assert_eq!(results.len(), 1);
    assert!(!results[0].passed);
    assert!(
        results[0].detail.contains("shop/web-1 (budget web-pdb)"),
        "{}",
        results[0].detail
    );

    let finding = parse_experiment(
        "t.yaml",
        &text.replace("onBlocked: fail", "onBlocked: finding"),
    )
    .unwrap()
    .0;
    assert!(super::run::blocked_results(&finding, &events).is_empty());
}

/// A mirror with room for the run's start and nothing more.
struct FullMirror;

#[async_trait::async_trait]
impl JournalMirror for FullMirror {
    fn place(&self) -> String {
        "ConfigMap test/steadfast-journal".into()
    }

    async fn append(&self, entry: &JournalEntry) -> Result<(), MirrorError> {
        match entry {
            JournalEntry::Undo(_) => Err(MirrorError::Full {
                place: self.place(),
                needed: 2_000_000,
                limit: 1_000_000,
            }),
            _ => Ok(()),
        }
    }

    async fn entries(&self) -> Result<Vec<JournalEntry>, MirrorError> {
        Ok(Vec::new())
    }
}

#[tokio::test(start_paused = true)]
async fn a_full_cluster_journal_refuses_injection_rather_than_lose_the_undo() {
    let rig = Rig::build(0, Some(Box::new(FullMirror)));
    let outcome = rig.engine().run(&Interrupts::default()).await.unwrap();
    assert!(
        rig.fault.injected.lock().unwrap().is_empty(),
        "nothing was injected"
    );
    let Verdict::Aborted { reason } = &outcome.verdict else {
        panic!("{:?}", outcome.verdict)
    };
    assert!(reason.contains("refusing to inject"), "{reason}");
    assert!(reason.contains("is full"), "{reason}");
    // The record that reached the local file is settled, so it blocks no later run.
    assert!(pending(&read_entries(rig.journal.path()).unwrap()).is_empty());
}

#[tokio::test(start_paused = true)]
async fn late_firings_of_a_slow_fault_still_check_aborts_between_each() {
    let mut rig = Rig::new(false);
    rig.spec = parse_experiment(
        "t.yaml",
        &SPEC.replace(
            "nodeCordon: {target: {mode: one}}",
            "every: 1s, podKill: {target: {namespaces: [shop]}}",
        ),
    )
    .unwrap()
    .0;
    // Each firing takes 2 s, twice its period: every firing after the first is already late.
    Arc::get_mut(&mut rig.fault).unwrap().delay = Duration::from_secs(2);
    *rig.probes.down.lock().unwrap() = Some((Duration::from_secs(12), Duration::from_secs(1000)));
    let outcome = rig.engine().run(&Interrupts::default()).await.unwrap();
    assert!(
        matches!(&outcome.verdict, Verdict::Aborted { reason } if reason.contains("availability")),
        "{:?}",
        outcome.verdict
    );
    let aborted_at = outcome
        .events
        .iter()
        .find(|e| matches!(e.kind, EventKind::Aborted { .. }))
        .unwrap()
        .at;
    let injected = injected_at(&outcome.events);
    assert!(
        injected.iter().all(|at| *at <= aborted_at),
        "nothing injected after the abort at {aborted_at:?}: {injected:?}"
    );
    // The breach is visible from 14 s (`over: 2s`); the firing in flight then ends by 16 s.
    assert!(aborted_at <= Duration::from_secs(16), "{aborted_at:?}");
    assert!(injected.len() < 10, "{} of 10 firings", injected.len());
}

#[tokio::test(start_paused = true)]
async fn an_instant_fault_keeps_its_window_open_for_self_healing() {
    let mut rig = Rig::new(false);
    // One pod kill at 5 s with `for: 10s` and no `every`: the phase must last the whole window.
    rig.spec = parse_experiment(
        "t.yaml",
        &SPEC.replace(
            "nodeCordon: {target: {mode: one}}",
            "podKill: {target: {namespaces: [shop]}}",
        ),
    )
    .unwrap()
    .0;
    let outcome = rig.engine().run(&Interrupts::default()).await.unwrap();
    assert_eq!(injected_at(&outcome.events).len(), 1);
    let during = outcome.windows.during.expect("a during window");
    let length = during.end.saturating_sub(during.start);
    assert!(
        (length.as_secs_f64() - 15.0).abs() < 0.6,
        "during lasts `at` + `for` = 15 s, not until the firing: {during:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_lasting_fault_that_acts_late_still_holds_for_its_whole_for() {
    let mut rig = Rig::new(false);
    // The cordon is due at 10 s but its injection takes 3 s (retries against a throttling API).
    Arc::get_mut(&mut rig.fault).unwrap().delay = Duration::from_secs(3);
    let outcome = rig.engine().run(&Interrupts::default()).await.unwrap();
    let rolled = outcome
        .events
        .iter()
        .find(|e| matches!(e.kind, EventKind::RolledBack { .. }))
        .expect("a rollback")
        .at;
    assert!(
        (rolled.as_secs_f64() - 23.0).abs() < 0.6,
        "held 10 s from when it acted at 13 s, not cut to 7 s: {rolled:?}"
    );
    let window = outcome.windows.faults["cordon"];
    assert!(
        (window.end.as_secs_f64() - 23.0).abs() < 0.6,
        "the fault's window ends with its rollback: {window:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_firing_planned_ahead_acts_at_its_instant_however_long_planning_takes() {
    let mut rig = Rig::new(false);
    // Resolving the targets takes 3 s (thousands of pods), less than the time planned ahead.
    Arc::get_mut(&mut rig.fault).unwrap().plan_delay = Duration::from_secs(3);
    let outcome = rig.engine().run(&Interrupts::default()).await.unwrap();
    let timing = outcome
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::FaultInjected { timing, .. } => Some(timing.clone()),
            _ => None,
        })
        .expect("an injection");
    let lag = timing.lag().expect("the firing acted");
    assert!(
        lag < Duration::from_millis(100),
        "planned ahead, the firing acts at its instant: lag {lag:?}"
    );
}

/// Records what the engine shows.
#[derive(Default)]
struct Recorder {
    phases: Mutex<Vec<Phase>>,
    statuses: Mutex<Vec<super::Status>>,
    finished: Mutex<bool>,
}

impl super::RunObserver for Recorder {
    fn event(&self, event: &super::Event) {
        if let EventKind::PhaseStarted { phase } = event.kind {
            self.phases.lock().unwrap().push(phase);
        }
    }
    fn status(&self, status: &super::Status) {
        self.statuses.lock().unwrap().push(status.clone());
    }
    fn finished(&self) {
        *self.finished.lock().unwrap() = true;
    }
}

#[tokio::test(start_paused = true)]
async fn the_observer_sees_every_phase_a_countdown_and_live_availability() {
    let rig = Rig::new(false);
    let recorder = Recorder::default();
    let mut engine = rig.engine();
    engine.observer = &recorder;
    let outcome = engine.run(&Interrupts::default()).await.unwrap();
    assert_eq!(outcome.verdict, Verdict::Passed, "{:?}", outcome.results);
    assert_eq!(
        recorder.phases.lock().unwrap().as_slice(),
        [
            Phase::SteadyBefore,
            Phase::Faults,
            Phase::Rollback,
            Phase::Recovery,
            Phase::SteadyAfter,
            Phase::Finished
        ]
    );
    let statuses = recorder.statuses.lock().unwrap();
    let before: Vec<&super::Status> = statuses
        .iter()
        .filter(|s| s.phase == Phase::SteadyBefore)
        .collect();
    assert!(before.len() >= 5, "about one status per check: {before:?}");
    assert!(
        before.windows(2).all(|w| w[1].left <= w[0].left),
        "the countdown only goes down"
    );
    // Live availability, by probe name, while the faults run.
    let faults: Vec<Option<f64>> = statuses
        .iter()
        .filter(|s| s.phase == Phase::Faults)
        .map(|s| {
            s.availability
                .iter()
                .find(|(p, _)| p == "web")
                .and_then(|a| a.1)
        })
        .collect();
    assert!(
        !faults.is_empty() && faults.iter().all(|a| *a == Some(1.0)),
        "{faults:?}"
    );
    assert!(*recorder.finished.lock().unwrap());
}

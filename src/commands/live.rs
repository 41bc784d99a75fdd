//! Live metrics of a run in progress, pushed to the Pushgateway every few seconds: which fault
//! window is in force, which phase the run is in, and the trailing availability of each HTTP
//! probe. Dashboards draw fault windows as annotations over the service's own graphs from
//! them, while the run is still going. Fed by the engine's [`RunObserver`], so the engine
//! knows nothing of Prometheus.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::engine::observer::{RunObserver, Status};
use crate::engine::{Event, EventKind, Phase};
use crate::infra::pushgateway;
use crate::report::prometheus::label_value;
use crate::spec::ExperimentSpec;

/// Every phase, in order, with its label value.
const PHASES: [(Phase, &str); 6] = [
    (Phase::SteadyBefore, "steady_before"),
    (Phase::Faults, "faults"),
    (Phase::Rollback, "rollback"),
    (Phase::Recovery, "recovery"),
    (Phase::SteadyAfter, "steady_after"),
    (Phase::Finished, "finished"),
];

/// A fault's window, from the spec, relative to the start of the fault phase.
#[derive(Debug, Clone)]
struct FaultWindow {
    name: String,
    kind: String,
    start: Duration,
    end: Duration,
}

#[derive(Debug, Default)]
struct State {
    phase: Option<Phase>,
    faults_started: Option<Instant>,
    availability: Vec<(String, Option<f64>)>,
}

/// The live state of one run, rendered as Prometheus text on demand.
#[derive(Debug)]
pub struct LiveMetrics {
    experiment: String,
    faults: Vec<FaultWindow>,
    state: Mutex<State>,
    /// Woken on a phase change, so the pusher pushes it at once instead of at its next tick.
    changed: Notify,
}

impl LiveMetrics {
    /// Live metrics for a run of `spec`.
    pub fn new(spec: &ExperimentSpec) -> Self {
        LiveMetrics {
            experiment: spec.metadata.name.clone(),
            faults: spec
                .spec
                .faults
                .iter()
                .map(|f| FaultWindow {
                    name: f.name.clone(),
                    kind: f.kind().map_or("unknown", |k| k.key()).to_owned(),
                    start: f.at.get(),
                    end: f.at.get() + f.for_.get(),
                })
                .collect(),
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        }
    }

    /// The next moment after `now` a fault window opens or closes, while the fault phase lasts:
    /// the pusher pushes then, so a window's edges reach the gateway without waiting a tick.
    pub fn next_edge(&self, now: Instant) -> Option<Instant> {
        let (phase, started) = self.with_state(|s| (s.phase, s.faults_started));
        let started = started.filter(|_| phase == Some(Phase::Faults))?;
        self.faults
            .iter()
            .flat_map(|f| [started + f.start, started + f.end])
            .filter(|edge| *edge > now)
            .min()
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The metrics as they stand at `now`. A fault is active while the run is in its fault
    /// phase and `now` lies in the fault's window; an abort ends the phase and so every window.
    pub fn render_at(&self, now: Instant) -> String {
        let (phase, faults_started, availability) =
            self.with_state(|s| (s.phase, s.faults_started, s.availability.clone()));
        let experiment = label_value(&self.experiment);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP steadfast_fault_active 1 while the fault's window is in force, else 0.\n# TYPE steadfast_fault_active gauge"
        );
        for fault in &self.faults {
            let elapsed = faults_started
                .filter(|_| phase == Some(Phase::Faults))
                .map(|start| now.saturating_duration_since(start));
            let active = elapsed.is_some_and(|e| e >= fault.start && e < fault.end);
            let _ = writeln!(
                out,
                "steadfast_fault_active{{experiment=\"{experiment}\",fault=\"{}\",kind=\"{}\"}} {}",
                label_value(&fault.name),
                label_value(&fault.kind),
                u8::from(active)
            );
        }
        let _ = writeln!(
            out,
            "# HELP steadfast_run_phase 1 for the phase the run is in, 0 for the others.\n# TYPE steadfast_run_phase gauge"
        );
        for (candidate, label) in PHASES {
            let _ = writeln!(
                out,
                "steadfast_run_phase{{experiment=\"{experiment}\",phase=\"{label}\"}} {}",
                u8::from(phase == Some(candidate))
            );
        }
        let _ = writeln!(
            out,
            "# HELP steadfast_live_availability_ratio Availability of each HTTP probe over the last few seconds of the run.\n# TYPE steadfast_live_availability_ratio gauge"
        );
        for (probe, ratio) in availability {
            if let Some(ratio) = ratio {
                let _ = writeln!(
                    out,
                    "steadfast_live_availability_ratio{{experiment=\"{experiment}\",probe=\"{}\"}} {ratio}",
                    label_value(&probe)
                );
            }
        }
        out
    }
}

impl RunObserver for LiveMetrics {
    fn event(&self, event: &Event) {
        if let EventKind::PhaseStarted { phase } = &event.kind {
            self.with_state(|s| {
                s.phase = Some(*phase);
                if *phase == Phase::Faults {
                    s.faults_started = Some(Instant::now());
                }
            });
            self.changed.notify_one();
        }
    }

    fn status(&self, status: &Status) {
        self.with_state(|s| {
            s.phase = Some(status.phase);
            s.availability.clone_from(&status.availability);
        });
    }

    fn finished(&self) {
        self.with_state(|s| {
            s.phase = Some(Phase::Finished);
            s.availability.clear();
        });
        self.changed.notify_one();
    }
}

/// Hands every call to two observers: the progress line and the live metrics.
pub struct Both<'a>(pub &'a dyn RunObserver, pub &'a dyn RunObserver);

impl RunObserver for Both<'_> {
    fn event(&self, event: &Event) {
        self.0.event(event);
        self.1.event(event);
    }
    fn status(&self, status: &Status) {
        self.0.status(status);
        self.1.status(status);
    }
    fn finished(&self) {
        self.0.finished();
        self.1.finished();
    }
}

/// Pushes `live` to the Pushgateway at `url` every `every`, on every phase change and at every
/// fault window's edge, until `stop`; then once more so the gateway keeps the final state
/// (every fault 0, phase `finished`). A failed push is logged once per kind of error and the
/// run goes on: live metrics never decide a verdict.
pub fn spawn_pusher(
    live: Arc<LiveMetrics>,
    url: String,
    every: Duration,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_error: Option<String> = None;
        let mut ticker = tokio::time::interval(every.max(Duration::from_millis(100)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Just past the edge, so the render sees the window already open or closed.
            let edge = live
                .next_edge(Instant::now())
                .map(|edge| tokio::time::Instant::from_std(edge + EDGE_MARGIN));
            let stopping = tokio::select! {
                () = stop.cancelled() => true,
                _ = ticker.tick() => false,
                () = live.changed.notified() => false,
                () = sleep_until_some(edge) => false,
            };
            let text = live.render_at(Instant::now());
            match pushgateway::push_live(&url, &live.experiment, text).await {
                Ok(()) => last_error = None,
                Err(err) => {
                    let err = err.to_string().replace('\n', "; ");
                    if last_error.as_ref() != Some(&err) {
                        warn!("live metrics not pushed: {err}");
                    }
                    last_error = Some(err);
                }
            }
            if stopping {
                return;
            }
        }
    })
}

/// How long after a window's edge its push is rendered.
const EDGE_MARGIN: Duration = Duration::from_millis(5);

async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_experiment;

    const SPEC: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: Experiment
metadata: {name: live}
spec:
  duration: 10s
  steadyState:
    probes:
      - name: web
        http: {url: "http://127.0.0.1:9/"}
  faults:
    - {name: kill, at: 2s, for: 3s, podKill: {target: {namespaces: [shop]}}}
  targets:
    - {probe: web, availability: ">= 99%"}
"#;

    fn live() -> LiveMetrics {
        let (spec, _) = parse_experiment("live.yaml", SPEC).unwrap();
        LiveMetrics::new(&spec)
    }

    fn phase(phase: Phase) -> Event {
        Event {
            at: Duration::ZERO,
            kind: EventKind::PhaseStarted { phase },
        }
    }

    const ACTIVE: &str =
        "steadfast_fault_active{experiment=\"live\",fault=\"kill\",kind=\"podKill\"} 1";
    const INACTIVE: &str =
        "steadfast_fault_active{experiment=\"live\",fault=\"kill\",kind=\"podKill\"} 0";

    #[test]
    fn a_fault_is_active_only_inside_its_window_of_the_fault_phase() {
        let live = live();
        live.event(&phase(Phase::SteadyBefore));
        assert!(live.render_at(Instant::now()).contains(INACTIVE));
        live.event(&phase(Phase::Faults));
        let start = live.with_state(|s| s.faults_started).unwrap();
        assert!(
            live.render_at(start + Duration::from_secs(1))
                .contains(INACTIVE)
        );
        assert!(
            live.render_at(start + Duration::from_secs(2))
                .contains(ACTIVE)
        );
        assert!(
            live.render_at(start + Duration::from_millis(4900))
                .contains(ACTIVE)
        );
        assert!(
            live.render_at(start + Duration::from_secs(5))
                .contains(INACTIVE)
        );
        // An abort ends the fault phase early: the window closes with it.
        live.event(&phase(Phase::Rollback));
        assert!(
            live.render_at(start + Duration::from_secs(3))
                .contains(INACTIVE)
        );
    }

    #[test]
    fn the_phase_and_live_availability_follow_the_status() {
        let live = live();
        live.status(&Status {
            phase: Phase::Recovery,
            left: Duration::ZERO,
            availability: vec![("web".into(), Some(0.75)), ("api".into(), None)],
            waiting_for: None,
        });
        let text = live.render_at(Instant::now());
        assert!(text.contains("steadfast_run_phase{experiment=\"live\",phase=\"recovery\"} 1"));
        assert!(text.contains("steadfast_run_phase{experiment=\"live\",phase=\"faults\"} 0"));
        assert!(
            text.contains(
                "steadfast_live_availability_ratio{experiment=\"live\",probe=\"web\"} 0.75"
            )
        );
        assert!(!text.contains("probe=\"api\""), "no sample without data");
        live.finished();
        let text = live.render_at(Instant::now());
        assert!(text.contains("steadfast_run_phase{experiment=\"live\",phase=\"finished\"} 1"));
        assert!(!text.contains("steadfast_live_availability_ratio{"));
    }
}

//! The probes of one run, as the engine sees them: started together, measured into stores the
//! engine can query while they run, frozen into evidence once stopped.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::http::HttpProbe;
use super::prometheus::PrometheusProbe;
use super::sink::{SampleSink, SinkError};
use crate::engine::{Probes, SteadyCheck};
use crate::measure::{ConditionEvaluation, ConditionLog, MeasurementStore, Sample};
use crate::spec::ProbeKind;
use crate::verdict::{Evidence, TimeWindow};

/// Evaluates a condition once (a Kubernetes readiness count, an Auto Scaling capacity).
#[async_trait]
pub trait Condition: Send + Sync {
    /// One evaluation now.
    async fn evaluate(&self) -> (bool, Option<f64>, String);
}

/// A condition that reports every change itself (a Kubernetes watch), so a flap shorter than any
/// poll interval is still recorded, with the instant it was seen.
#[async_trait]
pub trait WatchedCondition: Send + Sync {
    /// Watches until `cancel` fires, handing every observed state to `recorder` as soon as it
    /// is seen. Retries its own connection; returns only when cancelled.
    async fn watch(&self, cancel: CancellationToken, recorder: ConditionRecorder);
}

/// The last state a watched condition reported.
type Observed = (bool, Option<f64>, String);

/// Files a watched condition's observations in its log: a change at once, with the instant it
/// was seen; the unchanged state again at every heartbeat, so the share of evaluations that held
/// still weighs time.
#[derive(Clone)]
pub struct ConditionRecorder {
    origin: std::time::Instant,
    log: Arc<Mutex<ConditionLog>>,
    last: Arc<Mutex<Option<Observed>>>,
}

impl ConditionRecorder {
    fn new(origin: std::time::Instant, log: Arc<Mutex<ConditionLog>>) -> Self {
        Self {
            origin,
            log,
            last: Arc::new(Mutex::new(None)),
        }
    }

    /// Records the state seen now when `held` or `value` differ from the last observation.
    pub fn observe(&self, held: bool, value: Option<f64>, detail: String) {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        // Taken under the lock, so a heartbeat never files a state before it was seen.
        let at = self.origin.elapsed();
        let changed = last
            .as_ref()
            .is_none_or(|(h, v, _)| *h != held || *v != value);
        if changed {
            self.log
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .record(ConditionEvaluation {
                    at,
                    held,
                    value,
                    detail: detail.clone(),
                });
        }
        *last = Some((held, value, detail));
    }

    /// Records the last observed state again, now; nothing before the first observation.
    fn heartbeat(&self) {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let at = self.origin.elapsed();
        if let Some((held, value, detail)) = last.as_ref() {
            self.log
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .record(ConditionEvaluation {
                    at,
                    held: *held,
                    value: *value,
                    detail: detail.clone(),
                });
        }
    }
}

/// What a condition probe runs.
pub enum ConditionSource {
    /// A PromQL instant query every `every`, over a trailing `window`.
    Prometheus {
        /// The probe.
        probe: Arc<PrometheusProbe>,
        /// How often.
        every: Duration,
    },
    /// Any other condition, evaluated every `every`.
    Poll {
        /// The condition.
        condition: Arc<dyn Condition>,
        /// How often.
        every: Duration,
    },
    /// A condition that reports its own changes, with its last state recorded again every
    /// `heartbeat`.
    Watch {
        /// The condition.
        condition: Arc<dyn WatchedCondition>,
        /// How often the unchanged state is recorded again.
        heartbeat: Duration,
    },
}

struct HttpEntry {
    name: String,
    probe: Arc<HttpProbe>,
    store: Arc<Mutex<Option<MeasurementStore>>>,
    /// `None` for per-endpoint probes, which are reported but never judged.
    steady_ratio: Option<f64>,
}

struct ConditionEntry {
    name: String,
    kind: ProbeKind,
    source: ConditionSource,
    log: Arc<Mutex<ConditionLog>>,
}

struct Frozen {
    http: BTreeMap<String, MeasurementStore>,
    conditions: BTreeMap<String, (ProbeKind, ConditionLog)>,
}

/// Every probe of a run.
pub struct ProbeSet {
    origin: std::time::Instant,
    http: Vec<HttpEntry>,
    conditions: Vec<ConditionEntry>,
    cancel: CancellationToken,
    tasks: tokio::sync::Mutex<JoinSet<()>>,
    frozen: OnceLock<Frozen>,
}

/// Records samples into a store under a short lock.
struct StoreSink(Arc<Mutex<Option<MeasurementStore>>>);

impl SampleSink for StoreSink {
    fn record(&self, sample: Sample) -> Result<(), SinkError> {
        match self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            Some(store) => store.record(&sample).map_err(|_| SinkError::Full),
            None => Err(SinkError::Closed),
        }
    }
}

impl ProbeSet {
    /// An empty set whose offsets count from `origin` (the engine's origin).
    pub fn new(origin: std::time::Instant) -> Self {
        Self {
            origin,
            http: Vec::new(),
            conditions: Vec::new(),
            cancel: CancellationToken::new(),
            tasks: tokio::sync::Mutex::new(JoinSet::new()),
            frozen: OnceLock::new(),
        }
    }

    /// Adds an HTTP probe and the availability below which it is not steady (0–1).
    pub fn add_http(
        &mut self,
        name: &str,
        probe: HttpProbe,
        store: MeasurementStore,
        steady_ratio: f64,
    ) {
        self.http.push(HttpEntry {
            name: name.to_owned(),
            probe: Arc::new(probe),
            store: Arc::new(Mutex::new(Some(store))),
            steady_ratio: Some(steady_ratio),
        });
    }

    /// Adds the probe of one endpoint behind a Service (`<probe>@<pod>`): measured and
    /// reported, but left out of the steady-state check, which judges the Service as clients
    /// see it. A backend failing while the Service holds is failover working.
    pub fn add_http_endpoint(&mut self, name: &str, probe: HttpProbe, store: MeasurementStore) {
        self.http.push(HttpEntry {
            name: name.to_owned(),
            probe: Arc::new(probe),
            store: Arc::new(Mutex::new(Some(store))),
            steady_ratio: None,
        });
    }

    /// Adds a condition probe of `kind` (`prometheus`, `kubernetes`, `autoscaling`).
    pub fn add_condition(&mut self, name: &str, kind: ProbeKind, source: ConditionSource) {
        self.conditions.push(ConditionEntry {
            name: name.to_owned(),
            kind,
            source,
            log: Arc::new(Mutex::new(ConditionLog::default())),
        });
    }

    /// An HTTP probe's availability in `window`, from its live store or, after `stop`, from
    /// the frozen one.
    fn http_availability(&self, entry: &HttpEntry, window: TimeWindow) -> Option<f64> {
        let live = entry
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|s| s.window(window).availability);
        match live {
            Some(availability) => availability,
            None => {
                self.frozen
                    .get()?
                    .http
                    .get(&entry.name)?
                    .window(window)
                    .availability
            }
        }
    }

    /// The measurements after [`Probes::stop`], for the report.
    pub fn report_data(&self) -> crate::report::ProbeData<'_> {
        let mut data = crate::report::ProbeData::default();
        if let Some(frozen) = self.frozen.get() {
            data.http = frozen.http.iter().map(|(k, v)| (k.clone(), v)).collect();
            data.conditions = frozen
                .conditions
                .iter()
                .map(|(k, (kind, log))| (k.clone(), (*kind, log)))
                .collect();
        }
        data
    }
}

#[async_trait]
impl Probes for ProbeSet {
    async fn start(&self) -> anyhow::Result<()> {
        let mut tasks = self.tasks.lock().await;
        for entry in &self.http {
            let probe = entry.probe.clone();
            let sink: Arc<dyn SampleSink> = Arc::new(StoreSink(entry.store.clone()));
            let cancel = self.cancel.child_token();
            let origin = self.origin;
            let name = entry.name.clone();
            tasks.spawn(async move {
                match probe.run(origin, cancel, sink).await {
                    Ok(stats) if stats.lost > 0 => {
                        warn!(probe = %name, lost = stats.lost, "samples were lost")
                    }
                    Ok(_) => {}
                    Err(err) => warn!(probe = %name, %err, "the probe stopped"),
                }
            });
        }
        for entry in &self.conditions {
            let log = entry.log.clone();
            let cancel = self.cancel.child_token();
            let origin = self.origin;
            if let ConditionSource::Watch {
                condition,
                heartbeat,
            } = &entry.source
            {
                let recorder = ConditionRecorder::new(origin, log);
                let (condition, watch_recorder) = (condition.clone(), recorder.clone());
                let watch_cancel = cancel.clone();
                tasks.spawn(async move { condition.watch(watch_cancel, watch_recorder).await });
                let every = (*heartbeat).max(Duration::from_millis(100));
                tasks.spawn(async move {
                    let mut ticker = tokio::time::interval(every);
                    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tokio::select! {
                            () = cancel.cancelled() => break,
                            _ = ticker.tick() => recorder.heartbeat(),
                        }
                    }
                });
                continue;
            }
            let (every, evaluate): (
                Duration,
                Box<
                    dyn Fn() -> futures::future::BoxFuture<'static, (bool, Option<f64>, String)>
                        + Send
                        + Sync,
                >,
            ) = match &entry.source {
                ConditionSource::Prometheus { probe, every } => {
                    let probe = probe.clone();
                    let window = *every;
                    (
                        *every,
                        Box::new(move || {
                            let probe = probe.clone();
                            Box::pin(async move {
                                match probe.instant(Utc::now(), window).await {
                                    Ok(e) => {
                                        let value = e
                                            .series
                                            .iter()
                                            .flat_map(|s| s.points.iter())
                                            .map(|p| p.value)
                                            .next();
                                        let detail = e.error.clone().unwrap_or_else(|| {
                                            if e.empty {
                                                "empty result".to_owned()
                                            } else {
                                                String::new()
                                            }
                                        });
                                        (e.passed, value, detail)
                                    }
                                    Err(err) => (false, None, err.to_string()),
                                }
                            })
                        }),
                    )
                }
                ConditionSource::Poll { condition, every } => {
                    let condition = condition.clone();
                    (
                        *every,
                        Box::new(move || {
                            let condition = condition.clone();
                            Box::pin(async move { condition.evaluate().await })
                        }),
                    )
                }
                ConditionSource::Watch { .. } => continue,
            };
            tasks.spawn(async move {
                let mut ticker = tokio::time::interval(every.max(Duration::from_millis(200)));
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        _ = ticker.tick() => {}
                    }
                    let at = origin.elapsed();
                    let Ok((held, value, detail)) =
                        tokio::time::timeout(every.max(Duration::from_secs(5)), evaluate()).await
                    else {
                        log.lock().unwrap_or_else(PoisonError::into_inner).record(
                            ConditionEvaluation {
                                at,
                                held: false,
                                value: None,
                                detail: "no answer in time".to_owned(),
                            },
                        );
                        continue;
                    };
                    log.lock().unwrap_or_else(PoisonError::into_inner).record(
                        ConditionEvaluation {
                            at,
                            held,
                            value,
                            detail,
                        },
                    );
                }
            });
        }
        Ok(())
    }

    fn steady(&self, window: TimeWindow) -> SteadyCheck {
        let mut reasons = Vec::new();
        for entry in &self.http {
            let Some(steady_ratio) = entry.steady_ratio else {
                continue;
            };
            match self.http_availability(entry, window) {
                Some(ratio) if ratio >= steady_ratio => {}
                Some(ratio) => reasons.push(format!(
                    "{}: availability {:.2}% is below {:.2}%",
                    entry.name,
                    ratio * 100.0,
                    steady_ratio * 100.0
                )),
                None => reasons.push(format!("{}: no request was made", entry.name)),
            }
        }
        for entry in &self.conditions {
            let live = entry.log.lock().unwrap_or_else(PoisonError::into_inner);
            // After `stop` the log lives in the frozen measurements.
            let log = match self.frozen.get() {
                Some(frozen) => frozen.conditions.get(&entry.name).map(|(_, log)| log),
                None => Some(&*live),
            };
            let evaluations = log.map_or(&[][..], |log| log.between(window.start, window.end));
            if let Some(failed) = evaluations.iter().rev().find(|e| !e.held) {
                reasons.push(format!(
                    "{}: {} ({})",
                    entry.name, "expectation did not hold", failed.detail
                ));
            }
        }
        SteadyCheck {
            holds: reasons.is_empty(),
            reasons,
        }
    }

    fn availability(&self, probe: &str, window: TimeWindow) -> Option<f64> {
        let entry = self.http.iter().find(|e| e.name == probe)?;
        entry
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()?
            .window(window)
            .availability
    }

    async fn stop(&self) {
        self.cancel.cancel();
        let mut tasks = self.tasks.lock().await;
        // Each probe drains its in-flight requests within its own timeout.
        let drain = async {
            while let Some(joined) = tasks.join_next().await {
                if let Err(err) = joined
                    && err.is_panic()
                {
                    warn!(%err, "a probe task panicked");
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(30), drain)
            .await
            .is_err()
        {
            tasks.abort_all();
        }
        let http = self
            .http
            .iter()
            .filter_map(|e| {
                e.store
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
                    .map(|s| (e.name.clone(), s))
            })
            .collect();
        let conditions = self
            .conditions
            .iter()
            .map(|e| {
                (
                    e.name.clone(),
                    (
                        e.kind,
                        std::mem::take(&mut *e.log.lock().unwrap_or_else(PoisonError::into_inner)),
                    ),
                )
            })
            .collect();
        let _ = self.frozen.set(Frozen { http, conditions });
    }

    fn evidence(&self) -> Evidence<'_> {
        let mut evidence = Evidence::default();
        if let Some(frozen) = self.frozen.get() {
            for (name, store) in &frozen.http {
                evidence.http.insert(name.clone(), store);
            }
            for (name, (_, log)) in &frozen.conditions {
                evidence.conditions.insert(name.clone(), log);
            }
        }
        evidence
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorder_files_changes_at_once_and_the_same_state_only_on_heartbeats() {
        let log = Arc::new(Mutex::new(ConditionLog::default()));
        let recorder = ConditionRecorder::new(std::time::Instant::now(), log.clone());
        recorder.heartbeat();
        recorder.observe(true, Some(6.0), "6 ready".into());
        recorder.observe(true, Some(6.0), "6 ready".into());
        recorder.observe(false, Some(5.0), "5 ready".into());
        recorder.observe(true, Some(6.0), "6 ready".into());
        recorder.heartbeat();
        let log = log.lock().unwrap();
        let seen: Vec<(bool, Option<f64>)> = log
            .evaluations()
            .iter()
            .map(|e| (e.held, e.value))
            .collect();
        assert_eq!(
            seen,
            vec![
                (true, Some(6.0)),
                (false, Some(5.0)),
                (true, Some(6.0)),
                (true, Some(6.0)),
            ]
        );
        assert_eq!(log.failed_spans().len(), 1);
    }
}

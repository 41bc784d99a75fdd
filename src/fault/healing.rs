//! Self-healing evidence: after a kill, an eviction or a drain, how long the workload took to
//! replace what it lost.
//!
//! [`HealingObserver::start`] runs before the fault acts: it reads the pods the plan will
//! disrupt (the chosen pods, or every evictable pod of the chosen nodes) and their owners, then
//! watches (a `kube::runtime` watcher, not polling) their namespaces. For every disrupted pod it
//! records when a replacement from the same owner was scheduled (`nodeName` set) and became
//! Ready; for Deployments it records the ready replicas at every change.
//! [`HealingObserver::finish_after`] hands it what the fault did: the pods it acted on, and
//! when each action was issued. Those are the disrupted pods, and their disruption counts from
//! that instant (else from the API's `deletionTimestamp`, else from when the watch saw it), never
//! from a later watch delivery. Each lost pod is paired with exactly one replacement, and the
//! workload counts as healed only once every replacement is Ready and its Deployment shows its
//! desired ready count again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::{BoxStream, SelectAll};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info_span, warn};

use crate::fault::kube_context::api;
use crate::fault::targets::{controller_of, is_daemon_or_mirror, is_running_and_ready};
use crate::fault::{Effect, FaultError, FaultPlan, Injection, TargetEffect, TargetKind};
use crate::infra::kube::KubeClient;

/// After the fault acted, how long to wait for disruptions that happen asynchronously (taint
/// evictions) before judging that nothing more will be disrupted.
pub const SETTLE: Duration = Duration::from_secs(10);
/// How often the log says where healing stands while it is awaited.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// Most readiness samples kept per Deployment, so memory stays bounded.
pub const MAX_SAMPLES: usize = 10_000;

/// What the observer saw; embedded in the run report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealingEvidence {
    /// The fault observed.
    pub fault: String,
    /// When observation started; every `...Ms` offset below counts from the pod's disruption,
    /// `atMs` in samples from this instant.
    pub started_at: DateTime<Utc>,
    /// One entry per pod the fault was expected to disrupt.
    pub pods: Vec<PodHealing>,
    /// Ready replicas over time of the Deployments owning those pods.
    pub workloads: Vec<WorkloadReadiness>,
    /// True when every disrupted pod with an owner has a Ready replacement and every followed
    /// Deployment shows its desired ready count again.
    pub healed: bool,
    /// From the first disruption until healed, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healed_after_ms: Option<u64>,
    /// When it was healed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healed_at: Option<DateTime<Utc>>,
    /// True when the timeout ended the observation before that.
    pub timed_out: bool,
}

/// One disrupted pod and its replacement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodHealing {
    /// Namespace.
    pub namespace: String,
    /// The original pod.
    pub pod: String,
    /// Its controller, `Kind/name`; pods without one are never replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Whether the pod was seen terminating or gone.
    pub disrupted: bool,
    /// The replacement pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    /// The node the replacement was scheduled to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_node: Option<String>,
    /// From the disruption until the replacement had a node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_after_ms: Option<u64>,
    /// From the disruption until the replacement was Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_after_ms: Option<u64>,
}

/// A Deployment's ready replicas over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadReadiness {
    /// Namespace.
    pub namespace: String,
    /// Deployment name.
    pub deployment: String,
    /// `spec.replicas` when last seen.
    pub desired: i32,
    /// Every change of `status.readyReplicas`.
    pub samples: Vec<ReadySample>,
}

/// One readiness sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadySample {
    /// Milliseconds since observation started.
    pub at_ms: u64,
    /// `status.readyReplicas`.
    pub ready_replicas: i32,
}

/// A pod the fault is expected to disrupt.
#[derive(Debug, Clone)]
struct Tracked {
    namespace: String,
    name: String,
    uid: String,
    owner_uid: Option<String>,
    owner: Option<String>,
    disrupted_at: Option<Instant>,
    replacement: Option<String>,
}

/// A pod that appeared after observation started.
#[derive(Debug, Clone)]
struct Newcomer {
    namespace: String,
    name: String,
    owner_uid: String,
    seen_at: Instant,
    node: Option<String>,
    scheduled_at: Option<Instant>,
    ready_at: Option<Instant>,
    assigned: bool,
}

/// The observer's bookkeeping, kept apart from the watch plumbing so it can be tested with
/// plain objects.
#[derive(Debug)]
struct Ledger {
    start: Instant,
    /// The wall-clock time of `start`, to place the API's and the fault's timestamps.
    started_at: DateTime<Utc>,
    tracked: Vec<Tracked>,
    known: BTreeSet<String>,
    newcomers: BTreeMap<String, Newcomer>,
    deployments: BTreeMap<(String, String), WorkloadReadiness>,
    /// (namespace, uid) of pods seen since the last relist began.
    listed: BTreeSet<(String, String)>,
}

fn ms(from: Instant, to: Instant) -> u64 {
    u64::try_from(to.saturating_duration_since(from).as_millis()).unwrap_or(u64::MAX)
}

impl Ledger {
    /// The monotonic instant of a wall-clock time, never before observation started.
    fn instant_of(&self, at: DateTime<Utc>) -> Instant {
        self.start + (at - self.started_at).to_std().unwrap_or(Duration::ZERO)
    }

    fn wall_of(&self, at: Instant) -> DateTime<Utc> {
        self.started_at
            + chrono::Duration::from_std(at.saturating_duration_since(self.start))
                .unwrap_or(chrono::TimeDelta::zero())
    }

    /// When the API says a pod's deletion was asked for: its `deletionTimestamp` less its
    /// grace period, but no later than `seen`.
    fn deletion_requested(&self, pod: &Pod, seen: Instant) -> Instant {
        let Some(stamp) = pod
            .metadata
            .deletion_timestamp
            .as_ref()
            .and_then(|t| DateTime::<Utc>::from_timestamp_millis(t.0.as_millisecond()))
        else {
            return seen;
        };
        let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(0);
        let requested = stamp - chrono::Duration::seconds(grace.max(0));
        self.instant_of(requested).min(seen)
    }

    /// What the fault did: the pods it acted on are the disrupted ones, from the instant each
    /// action was issued; tracked pods it named but did not disrupt (already gone, refused by
    /// a budget) are not followed.
    fn on_acted(&mut self, effects: &[TargetEffect]) {
        for effect in effects.iter().filter(|e| e.target.kind == TargetKind::Pod) {
            let Some(i) = self.tracked.iter().position(|t| {
                t.name == effect.target.name
                    && Some(t.namespace.as_str()) == effect.target.namespace.as_deref()
            }) else {
                continue;
            };
            if effect.effect == Effect::Applied {
                self.tracked[i].disrupted_at = Some(self.instant_of(effect.at.into()));
            } else {
                let dropped = self.tracked.remove(i);
                if let Some(n) = dropped
                    .replacement
                    .and_then(|uid| self.newcomers.get_mut(&uid))
                {
                    n.assigned = false;
                }
            }
        }
        self.assign();
    }

    fn on_init(&mut self, namespace: &str) {
        self.listed.retain(|(ns, _)| ns != namespace);
    }

    /// A (re)list can miss a deletion that happened before it: tracked pods it did not list
    /// are gone, so disrupted now at the latest; newcomers it did not list and never saw Ready
    /// replaced nothing.
    fn on_init_done(&mut self, namespace: &str, now: Instant) {
        for t in &mut self.tracked {
            if t.namespace == namespace
                && t.disrupted_at.is_none()
                && !self.listed.contains(&(t.namespace.clone(), t.uid.clone()))
            {
                t.disrupted_at = Some(now);
            }
        }
        let vanished: Vec<String> = self
            .newcomers
            .iter()
            .filter(|(uid, n)| {
                n.namespace == namespace
                    && !self.listed.contains(&(n.namespace.clone(), (*uid).clone()))
            })
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in vanished {
            self.drop_unready_newcomer(&uid);
        }
        self.assign();
    }

    /// A newcomer deleted before it was ever Ready replaced nothing: the pod it was credited
    /// to waits for the next one. One seen Ready keeps its credit (it served).
    fn drop_unready_newcomer(&mut self, uid: &str) {
        if self.newcomers.get(uid).is_none_or(|n| n.ready_at.is_some()) {
            return;
        }
        self.newcomers.remove(uid);
        self.known.insert(uid.to_owned());
        for t in &mut self.tracked {
            if t.replacement.as_deref() == Some(uid) {
                t.replacement = None;
            }
        }
    }

    fn on_pod(&mut self, pod: &Pod, deleted: bool, now: Instant) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        if !deleted && let Some(ns) = &pod.metadata.namespace {
            self.listed.insert((ns.clone(), uid.clone()));
        }
        if let Some(i) = self.tracked.iter().position(|t| t.uid == uid) {
            if (deleted || pod.metadata.deletion_timestamp.is_some())
                && self.tracked[i].disrupted_at.is_none()
            {
                self.tracked[i].disrupted_at = Some(self.deletion_requested(pod, now));
            }
        } else if deleted || pod.metadata.deletion_timestamp.is_some() {
            self.drop_unready_newcomer(&uid);
        } else if !self.known.contains(&uid) {
            let Some(owner_uid) = controller_of(pod).map(|o| o.uid.clone()) else {
                return;
            };
            if !self
                .tracked
                .iter()
                .any(|t| t.owner_uid.as_ref() == Some(&owner_uid))
            {
                return;
            }
            let entry = self.newcomers.entry(uid).or_insert_with(|| Newcomer {
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                name: pod.metadata.name.clone().unwrap_or_default(),
                owner_uid,
                seen_at: now,
                node: None,
                scheduled_at: None,
                ready_at: None,
                assigned: false,
            });
            let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
            if node.is_some() && entry.scheduled_at.is_none() {
                entry.scheduled_at = Some(now);
                entry.node = node;
            }
            if is_running_and_ready(pod) && entry.ready_at.is_none() {
                entry.ready_at = Some(now);
            }
        }
        self.assign();
    }

    /// Pairs disrupted originals with newcomers of the same owner, oldest first on both sides,
    /// one to one: a newcomer replaces at most one pod, and one Ready before the disruption
    /// replaces none.
    fn assign(&mut self) {
        let mut order: Vec<usize> = (0..self.tracked.len())
            .filter(|i| {
                self.tracked[*i].disrupted_at.is_some() && self.tracked[*i].replacement.is_none()
            })
            .collect();
        order.sort_by_key(|i| self.tracked[*i].disrupted_at);
        for i in order {
            let Some(owner) = self.tracked[i].owner_uid.clone() else {
                continue;
            };
            let Some(disrupted) = self.tracked[i].disrupted_at else {
                continue;
            };
            let candidate = self
                .newcomers
                .iter_mut()
                .filter(|(_, n)| {
                    !n.assigned
                        && n.owner_uid == owner
                        && n.ready_at.is_none_or(|ready| ready >= disrupted)
                })
                .min_by_key(|(_, n)| n.seen_at);
            if let Some((uid, newcomer)) = candidate {
                newcomer.assigned = true;
                self.tracked[i].replacement = Some(uid.clone());
            }
        }
    }

    fn on_deployment(&mut self, deployment: &Deployment, now: Instant) {
        let key = (
            deployment.metadata.namespace.clone().unwrap_or_default(),
            deployment.metadata.name.clone().unwrap_or_default(),
        );
        let start = self.start;
        if let Some(w) = self.deployments.get_mut(&key) {
            w.desired = deployment.spec.replicas.unwrap_or(1);
            let ready = deployment
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            if w.samples.last().is_none_or(|s| s.ready_replicas != ready)
                && w.samples.len() < MAX_SAMPLES
            {
                w.samples.push(ReadySample {
                    at_ms: ms(start, now),
                    ready_replicas: ready,
                });
            }
        }
    }

    /// When the workload was whole again: every disrupted pod with an owner has a Ready
    /// replacement, and from then on (or from the first change after) every followed
    /// Deployment shows at least its desired ready count. `None` while it is not.
    fn healed_at(&self) -> Option<Instant> {
        let mut at = self.first_disruption().unwrap_or(self.start);
        for t in self
            .tracked
            .iter()
            .filter(|t| t.disrupted_at.is_some() && t.owner_uid.is_some())
        {
            let ready = t
                .replacement
                .as_ref()
                .and_then(|uid| self.newcomers.get(uid))
                .and_then(|n| n.ready_at)?;
            at = at.max(ready);
        }
        // Each Deployment may move `at` later; a pass that moves nothing ends the search.
        for _ in 0..=self.deployments.len() {
            let mut moved = false;
            for w in self.deployments.values() {
                let whole_at = self.whole_from(w, at)?;
                if whole_at > at {
                    at = whole_at;
                    moved = true;
                }
            }
            if !moved {
                return Some(at);
            }
        }
        None
    }

    /// The first instant from `from` on at which `w` shows its desired ready count.
    fn whole_from(&self, w: &WorkloadReadiness, from: Instant) -> Option<Instant> {
        let at = |s: &ReadySample| self.start + Duration::from_millis(s.at_ms);
        let whole = |s: &ReadySample| s.ready_replicas >= w.desired;
        match w.samples.iter().rev().find(|s| at(s) <= from) {
            Some(s) if whole(s) => Some(from),
            _ => w.samples.iter().find(|s| at(s) > from && whole(s)).map(at),
        }
    }

    fn first_disruption(&self) -> Option<Instant> {
        self.tracked.iter().filter_map(|t| t.disrupted_at).min()
    }

    fn healed(&self) -> bool {
        self.healed_at().is_some()
    }

    /// Where healing stands, for the log while it is awaited: lost pods replaced and Ready, and
    /// each followed Deployment's ready count.
    fn progress(&self) -> String {
        let lost: Vec<&Tracked> = self
            .tracked
            .iter()
            .filter(|t| t.disrupted_at.is_some() && t.owner_uid.is_some())
            .collect();
        let replaced = lost
            .iter()
            .filter(|t| {
                t.replacement
                    .as_ref()
                    .and_then(|uid| self.newcomers.get(uid))
                    .is_some_and(|n| n.ready_at.is_some())
            })
            .count();
        let mut line = format!("{replaced} of {} lost pods replaced and Ready", lost.len());
        for w in self.deployments.values() {
            let ready = w.samples.last().map_or(0, |s| s.ready_replicas);
            line.push_str(&format!(
                "; {}/{} {ready} of {} ready",
                w.namespace, w.deployment, w.desired
            ));
        }
        line
    }

    fn all_disrupted(&self) -> bool {
        self.tracked.iter().all(|t| t.disrupted_at.is_some())
    }

    fn evidence(&self, fault: &str, started_at: DateTime<Utc>, timed_out: bool) -> HealingEvidence {
        let pods = self
            .tracked
            .iter()
            .map(|t| {
                let newcomer = t
                    .replacement
                    .as_ref()
                    .and_then(|uid| self.newcomers.get(uid));
                let since = |at: Option<Instant>| match (t.disrupted_at, at) {
                    (Some(d), Some(a)) => Some(ms(d, a)),
                    _ => None,
                };
                PodHealing {
                    namespace: t.namespace.clone(),
                    pod: t.name.clone(),
                    owner: t.owner.clone(),
                    disrupted: t.disrupted_at.is_some(),
                    replacement: newcomer.map(|n| n.name.clone()),
                    replacement_node: newcomer.and_then(|n| n.node.clone()),
                    scheduled_after_ms: since(newcomer.and_then(|n| n.scheduled_at)),
                    ready_after_ms: since(newcomer.and_then(|n| n.ready_at)),
                }
            })
            .collect();
        let healed_at = self.healed_at();
        HealingEvidence {
            fault: fault.to_owned(),
            started_at,
            pods,
            workloads: self.deployments.values().cloned().collect(),
            healed: healed_at.is_some(),
            healed_after_ms: healed_at
                .map(|at| ms(self.first_disruption().unwrap_or(self.start), at)),
            healed_at: healed_at.map(|at| self.wall_of(at)),
            timed_out,
        }
    }
}

enum Change {
    Pod(Pod, bool),
    /// A pod relist began in a namespace.
    Init(String),
    /// A pod relist of a namespace is complete: tracked pods it did not list are gone.
    InitDone(String),
    Deployment(Deployment),
    Ignored,
}

/// Watches one fault's disruption heal. Dropping it stops the watch.
#[derive(Debug)]
pub struct HealingObserver {
    injected: CancellationToken,
    /// What the fault did, handed over by [`Self::finish_after`].
    acted: Arc<Mutex<Option<Vec<TargetEffect>>>>,
    stop: CancellationToken,
    task: Option<JoinHandle<HealingEvidence>>,
    fault: String,
    started_at: DateTime<Utc>,
}

impl Drop for HealingObserver {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl HealingObserver {
    /// Reads what `plan` will disrupt and starts watching it, for at most `timeout`.
    ///
    /// # Errors
    /// API errors while reading the pods and their owners.
    pub async fn start(
        kube: &KubeClient,
        plan: &FaultPlan,
        timeout: Duration,
    ) -> Result<Self, FaultError> {
        let started_at = Utc::now();
        let start = Instant::now();
        let (tracked, known) = affected_pods(kube, plan).await?;
        let mut deployments = BTreeMap::new();
        let mut replica_sets = BTreeSet::new();
        // Per namespace, the label selectors of the lost pods' owners (`None`: no owner, or
        // one whose selector is not plain labels), to watch only the pods that can replace.
        let mut selectors: BTreeMap<String, BTreeSet<Option<String>>> = BTreeMap::new();
        for t in &tracked {
            match t
                .owner
                .as_deref()
                .and_then(|o| o.strip_prefix("ReplicaSet/"))
            {
                Some(rs) => {
                    replica_sets.insert((t.namespace.clone(), rs.to_owned()));
                }
                None => {
                    selectors
                        .entry(t.namespace.clone())
                        .or_default()
                        .insert(None);
                }
            }
        }
        for (ns, rs) in &replica_sets {
            let rs = kube.get_replica_set(ns, rs).await.map_err(api)?;
            selectors
                .entry(ns.clone())
                .or_default()
                .insert(rs.as_ref().and_then(label_selector_of));
            let owner = rs.and_then(|rs| {
                rs.metadata
                    .owner_references
                    .unwrap_or_default()
                    .into_iter()
                    .find(|o| o.controller == Some(true) && o.kind == "Deployment")
            });
            if let Some(owner) = owner {
                deployments.insert(
                    (ns.clone(), owner.name.clone()),
                    WorkloadReadiness {
                        namespace: ns.clone(),
                        deployment: owner.name,
                        desired: 0,
                        samples: Vec::new(),
                    },
                );
            }
        }
        let namespaces: BTreeSet<String> = tracked.iter().map(|t| t.namespace.clone()).collect();
        let deployment_namespaces: BTreeSet<String> =
            deployments.keys().map(|(ns, _)| ns.clone()).collect();
        let mut streams: SelectAll<BoxStream<'static, Change>> = SelectAll::new();
        for ns in &namespaces {
            let pods: Api<Pod> = Api::namespaced(kube.raw().clone(), ns);
            let mut config = watcher::Config::default();
            // One owner's selector scopes the watch to its pods; several, or none, cannot be
            // one watch (a relist of one would hide the others' pods), so the namespace is
            // watched whole.
            if let Some(only) = selectors.get(ns).filter(|s| s.len() == 1)
                && let Some(Some(selector)) = only.first()
            {
                config = config.labels(selector);
            }
            let ns = ns.clone();
            streams.push(
                watcher::watcher(pods, config)
                    .backoff(crate::infra::kube::watch_backoff::WatchBackoff::default())
                    .map(move |event| match event {
                        Ok(Event::Apply(p) | Event::InitApply(p)) => Change::Pod(p, false),
                        Ok(Event::Delete(p)) => Change::Pod(p, true),
                        Ok(Event::Init) => Change::Init(ns.clone()),
                        Ok(Event::InitDone) => Change::InitDone(ns.clone()),
                        Err(e) => {
                            debug!(error = %e, "pod watch error; the watcher retries");
                            Change::Ignored
                        }
                    })
                    .boxed(),
            );
        }
        for ns in &deployment_namespaces {
            let api: Api<Deployment> = Api::namespaced(kube.raw().clone(), ns);
            let names: Vec<&String> = deployments
                .keys()
                .filter(|(n, _)| n == ns)
                .map(|(_, name)| name)
                .collect();
            let mut config = watcher::Config::default();
            if let [only] = names.as_slice() {
                config = config.fields(&format!("metadata.name={only}"));
            }
            streams.push(
                watcher::watcher(api, config)
                    .backoff(crate::infra::kube::watch_backoff::WatchBackoff::default())
                    .map(|event| match event {
                        Ok(Event::Apply(d) | Event::InitApply(d)) => Change::Deployment(d),
                        _ => Change::Ignored,
                    })
                    .boxed(),
            );
        }
        let mut ledger = Ledger {
            start,
            started_at,
            tracked,
            known,
            newcomers: BTreeMap::new(),
            deployments,
            listed: BTreeSet::new(),
        };
        let injected = CancellationToken::new();
        let acted: Arc<Mutex<Option<Vec<TargetEffect>>>> = Arc::default();
        let stop = CancellationToken::new();
        let fault = plan.fault.clone();
        let task = {
            let injected = injected.clone();
            let acted = acted.clone();
            let stop = stop.clone();
            let fault = fault.clone();
            tokio::spawn(
                async move {
                    // Counted again from the action: the watch may start well ahead of it.
                    let mut deadline = start + timeout;
                    let mut settled_at: Option<Instant> = None;
                    let mut timed_out = false;
                    let mut next_progress = Instant::now() + PROGRESS_EVERY;
                    loop {
                        if injected.is_cancelled() {
                            let effects = acted.lock().unwrap_or_else(PoisonError::into_inner).take();
                            if let Some(effects) = effects {
                                ledger.on_acted(&effects);
                                deadline = deadline.max(Instant::now() + timeout);
                            }
                            let settle = *settled_at.get_or_insert_with(|| Instant::now() + SETTLE);
                            let waited = Instant::now() >= settle || ledger.all_disrupted();
                            if waited && ledger.healed() {
                                break;
                            }
                            if Instant::now() >= next_progress {
                                debug!("waiting for self-healing: {}", ledger.progress());
                                next_progress = Instant::now() + PROGRESS_EVERY;
                            }
                        }
                        let tick = tokio::time::sleep(Duration::from_millis(250));
                        tokio::select! {
                            () = stop.cancelled() => break,
                            () = tokio::time::sleep_until(deadline) => { timed_out = true; break; }
                            () = tick => {}
                            change = streams.next() => match change {
                                Some(Change::Pod(p, deleted)) => ledger.on_pod(&p, deleted, Instant::now()),
                                Some(Change::Deployment(d)) => ledger.on_deployment(&d, Instant::now()),
                                Some(Change::Init(ns)) => ledger.on_init(&ns),
                                Some(Change::InitDone(ns)) => ledger.on_init_done(&ns, Instant::now()),
                                Some(Change::Ignored) => {}
                                None => break,
                            },
                        }
                    }
                    if timed_out {
                        warn!("not healed within {}: {}", crate::spec::DurationSpec(timeout), ledger.progress());
                    }
                    ledger.evidence(&fault, started_at, timed_out)
                }
                .instrument(info_span!("healing", fault = %plan.fault)),
            )
        };
        Ok(Self {
            injected,
            acted,
            stop,
            task: Some(task),
            fault,
            started_at,
        })
    }

    /// Hands over what the fault did, so the pods it acted on are followed from the instant
    /// each action was issued, then [`Self::finish`]es.
    pub async fn finish_after(self, injection: &Injection) -> HealingEvidence {
        *self.acted.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(injection.effects.clone());
        self.finish().await
    }

    /// Marks the fault as acted and waits until every disrupted pod is replaced and Ready and
    /// its Deployment whole, or the observer's timeout.
    pub async fn finish(mut self) -> HealingEvidence {
        self.injected.cancel();
        let task = self.task.take();
        let empty = || HealingEvidence {
            fault: self.fault.clone(),
            started_at: self.started_at,
            pods: Vec::new(),
            workloads: Vec::new(),
            healed: false,
            healed_after_ms: None,
            healed_at: None,
            timed_out: true,
        };
        match task {
            // The task ends by its own deadline; awaiting it is bounded.
            Some(task) => task.await.unwrap_or_else(|_| empty()),
            None => empty(),
        }
    }
}

/// A ReplicaSet's selector as a label selector string, when it is plain labels (a selector
/// with expressions scopes nothing here, and the namespace is watched whole).
fn label_selector_of(rs: &k8s_openapi::api::apps::v1::ReplicaSet) -> Option<String> {
    let selector = &rs.spec.selector;
    if selector
        .match_expressions
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        return None;
    }
    let labels = selector.match_labels.as_ref().filter(|l| !l.is_empty())?;
    Some(
        labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// The nodes whose pods a plan disrupts: its node targets, and the nodes its instance targets
/// back (a terminated or stopped instance takes its node's pods down with it).
fn disrupted_nodes(plan: &FaultPlan) -> BTreeSet<&str> {
    plan.targets
        .iter()
        .filter_map(|t| match t.kind {
            TargetKind::Node => Some(t.name.as_str()),
            TargetKind::Instance => t.node.as_deref(),
            TargetKind::Pod | TargetKind::Subnet => None,
        })
        .collect()
}

/// The pods a plan will disrupt: its pod targets, or the evictable pods of the nodes it takes
/// down.
/// Also returns the uids of every pod seen, so replacements can be told from old pods.
async fn affected_pods(
    kube: &KubeClient,
    plan: &FaultPlan,
) -> Result<(Vec<Tracked>, BTreeSet<String>), FaultError> {
    let mut pods: Vec<Pod> = Vec::new();
    let mut known = BTreeSet::new();
    let pod_namespaces: BTreeSet<&str> = plan
        .targets
        .iter()
        .filter(|t| t.kind == TargetKind::Pod)
        .filter_map(|t| t.namespace.as_deref())
        .collect();
    for ns in pod_namespaces.iter().copied() {
        let listed = kube.list_pods(Some(ns), None, None).await.map_err(api)?;
        known.extend(listed.iter().filter_map(|p| p.metadata.uid.clone()));
        pods.extend(listed.into_iter().filter(|p| {
            plan.targets.iter().any(|t| {
                t.kind == TargetKind::Pod
                    && t.namespace.as_deref() == p.metadata.namespace.as_deref()
                    && Some(t.name.as_str()) == p.metadata.name.as_deref()
            })
        }));
    }
    for node in disrupted_nodes(plan) {
        let field = format!("spec.nodeName={node}");
        let listed = kube
            .list_pods(None, None, Some(&field))
            .await
            .map_err(api)?;
        known.extend(listed.iter().filter_map(|p| p.metadata.uid.clone()));
        pods.extend(listed.into_iter().filter(|p| !is_daemon_or_mirror(p)));
    }
    // Pods of the same owners elsewhere are old pods too, not replacements.
    let namespaces: BTreeSet<String> = pods
        .iter()
        .filter_map(|p| p.metadata.namespace.clone())
        .filter(|ns| !pod_namespaces.contains(ns.as_str()))
        .collect();
    for ns in namespaces {
        let listed = kube.list_pods(Some(&ns), None, None).await.map_err(api)?;
        known.extend(listed.iter().filter_map(|p| p.metadata.uid.clone()));
    }
    let tracked = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| {
            let owner = controller_of(p);
            Some(Tracked {
                namespace: p.metadata.namespace.clone()?,
                name: p.metadata.name.clone()?,
                uid: p.metadata.uid.clone()?,
                owner_uid: owner.map(|o| o.uid.clone()),
                owner: owner.map(|o| format!("{}/{}", o.kind, o.name)),
                disrupted_at: None,
                replacement: None,
            })
        })
        .collect();
    Ok((tracked, known))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn pod(yaml: &str) -> Pod {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn ledger() -> Ledger {
        Ledger {
            start: Instant::now(),
            started_at: Utc::now(),
            tracked: vec![Tracked {
                namespace: "shop".into(),
                name: "web-1".into(),
                uid: "old".into(),
                owner_uid: Some("rs".into()),
                owner: Some("ReplicaSet/web-abc".into()),
                disrupted_at: None,
                replacement: None,
            }],
            known: BTreeSet::from(["old".to_string(), "sibling".to_string()]),
            newcomers: BTreeMap::new(),
            deployments: BTreeMap::new(),
            listed: BTreeSet::new(),
        }
    }

    #[test]
    fn a_plain_labels_owner_scopes_the_watch_and_expressions_do_not() {
        let rs = |selector: &str| -> k8s_openapi::api::apps::v1::ReplicaSet {
            serde_yaml::from_str(&format!(
                "metadata: {{name: web-abc}}\nspec: {{selector: {selector}}}"
            ))
            .unwrap()
        };
        assert_eq!(
            label_selector_of(&rs("{matchLabels: {app: web, tier: front}}")).as_deref(),
            Some("app=web,tier=front")
        );
        assert_eq!(
            label_selector_of(&rs(
                "{matchLabels: {app: web}, matchExpressions: [{key: x, operator: Exists}]}"
            )),
            None
        );
        assert_eq!(label_selector_of(&rs("{}")), None);
    }

    #[test]
    fn an_instance_target_disrupts_the_pods_of_the_node_it_backs() {
        let target = |kind, name: &str, node: Option<&str>| crate::fault::TargetRef {
            kind,
            name: name.into(),
            namespace: None,
            node: node.map(String::from),
            zone: None,
        };
        let plan = FaultPlan {
            fault: "f".into(),
            kind: crate::spec::FaultKind::Ec2Terminate,
            targets: vec![
                target(TargetKind::Instance, "i-1", Some("node-a")),
                target(TargetKind::Instance, "i-2", None),
                target(TargetKind::Node, "node-b", None),
                target(TargetKind::Subnet, "subnet-1", None),
                target(TargetKind::Pod, "web-1", Some("node-c")),
            ],
            undo: Vec::new(),
            irreversible: Vec::new(),
            seed: 0,
            candidates: 5,
        };
        assert_eq!(
            disrupted_nodes(&plan),
            BTreeSet::from(["node-a", "node-b"]),
            "a pod target disrupts its pod, not its node"
        );
    }

    const OWNER: &str = "ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-abc, uid: rs, controller: true}]";

    #[test]
    fn a_replacement_is_timed_from_the_disruption_to_scheduled_and_ready() {
        let mut l = ledger();
        let t0 = Instant::now();
        let original = pod(&format!(
            "metadata: {{name: web-1, namespace: shop, uid: old, deletionTimestamp: '2026-01-01T00:00:00Z', {OWNER}}}"
        ));
        l.on_pod(&original, false, t0);
        assert!(!l.healed());
        let pending = pod(&format!(
            "metadata: {{name: web-2, namespace: shop, uid: new, {OWNER}}}"
        ));
        l.on_pod(&pending, false, t0 + Duration::from_millis(10));
        let bound = pod(&format!(
            "{{metadata: {{name: web-2, namespace: shop, uid: new, {OWNER}}}, spec: {{nodeName: n2, containers: []}}}}"
        ));
        l.on_pod(&bound, false, t0 + Duration::from_millis(40));
        let ready = pod(&format!(
            "{{metadata: {{name: web-2, namespace: shop, uid: new, {OWNER}}}, spec: {{nodeName: n2, containers: []}}, status: {{phase: Running, conditions: [{{type: Ready, status: 'True'}}]}}}}"
        ));
        l.on_pod(&ready, false, t0 + Duration::from_millis(900));
        assert!(l.healed());
        let e = l.evidence("kill", Utc::now(), false);
        let p = &e.pods[0];
        assert_eq!(p.replacement.as_deref(), Some("web-2"));
        assert_eq!(p.replacement_node.as_deref(), Some("n2"));
        assert_eq!(p.scheduled_after_ms, Some(40));
        assert_eq!(p.ready_after_ms, Some(900));
        let json = serde_json::to_value(&e).unwrap();
        assert!(json["pods"][0]["readyAfterMs"].is_u64(), "{json}");
    }

    #[test]
    fn old_siblings_and_strangers_are_not_replacements() {
        let mut l = ledger();
        let t0 = Instant::now();
        l.on_pod(
            &pod(&format!(
                "metadata: {{name: web-1, namespace: shop, uid: old, {OWNER}}}"
            )),
            true,
            t0,
        );
        l.on_pod(
            &pod(&format!(
                "metadata: {{name: web-0, namespace: shop, uid: sibling, {OWNER}}}"
            )),
            false,
            t0,
        );
        l.on_pod(
            &pod("metadata: {name: other, namespace: shop, uid: x, ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: api, uid: rs2, controller: true}]}"),
            false,
            t0,
        );
        assert!(l.tracked[0].disrupted_at.is_some());
        assert_eq!(l.tracked[0].replacement, None);
        assert!(!l.healed());
    }

    fn tracked(name: &str, uid: &str) -> Tracked {
        Tracked {
            namespace: "shop".into(),
            name: name.into(),
            uid: uid.into(),
            owner_uid: Some("rs".into()),
            owner: Some("ReplicaSet/web-abc".into()),
            disrupted_at: None,
            replacement: None,
        }
    }

    /// Two `web` pods of a Deployment of two, watched from `start`.
    fn two_pods() -> Ledger {
        let mut l = ledger();
        l.tracked = vec![tracked("web-1", "old1"), tracked("web-2", "old2")];
        l.known = BTreeSet::from(["old1".to_string(), "old2".to_string()]);
        l.deployments.insert(
            ("shop".into(), "web".into()),
            WorkloadReadiness {
                namespace: "shop".into(),
                deployment: "web".into(),
                desired: 2,
                samples: Vec::new(),
            },
        );
        l
    }

    fn killed(l: &Ledger, name: &str, after: Duration) -> TargetEffect {
        TargetEffect {
            target: crate::fault::TargetRef {
                kind: TargetKind::Pod,
                name: name.into(),
                namespace: Some("shop".into()),
                node: None,
                zone: None,
            },
            effect: Effect::Applied,
            at: SystemTime::from(l.started_at) + after,
        }
    }

    fn newcomer(l: &mut Ledger, uid: &str, ready: bool, at: Instant) {
        let status = if ready {
            ", status: {phase: Running, conditions: [{type: Ready, status: 'True'}]}"
        } else {
            ""
        };
        l.on_pod(
            &pod(&format!(
                "{{metadata: {{name: {uid}, namespace: shop, uid: {uid}, {OWNER}}}, spec: {{nodeName: n1, containers: []}}{status}}}"
            )),
            false,
            at,
        );
    }

    fn deployment(ready: i32) -> Deployment {
        serde_yaml::from_str(&format!(
            "{{metadata: {{name: web, namespace: shop}}, spec: {{replicas: 2, selector: {{}}, template: {{}}}}, status: {{readyReplicas: {ready}}}}}"
        ))
        .unwrap()
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn disruption_counts_from_the_action_not_from_the_watch_delivery() {
        let mut l = ledger();
        let t0 = l.start;
        let effect = killed(&l, "web-1", MS(100));
        // The watch delivers the deletion 300 ms after the delete was issued.
        l.on_pod(
            &pod(&format!(
                "metadata: {{name: web-1, namespace: shop, uid: old, {OWNER}}}"
            )),
            true,
            t0 + MS(400),
        );
        l.on_acted(&[effect]);
        newcomer(&mut l, "new", false, t0 + MS(150));
        newcomer(&mut l, "new", true, t0 + MS(1200));
        let e = l.evidence("kill", l.started_at, false);
        assert_eq!(e.pods[0].ready_after_ms, Some(1100), "{e:#?}");
        assert_eq!(e.healed_after_ms, Some(1100), "{e:#?}");
    }

    #[test]
    fn healed_only_once_the_deployment_shows_its_desired_ready_count() {
        let mut l = two_pods();
        let t0 = l.start;
        l.on_deployment(&deployment(2), t0);
        let effects = [killed(&l, "web-1", MS(10)), killed(&l, "web-2", MS(10))];
        l.on_acted(&effects);
        l.on_deployment(&deployment(0), t0 + MS(30));
        newcomer(&mut l, "a", true, t0 + MS(1000));
        newcomer(&mut l, "b", true, t0 + MS(1100));
        l.on_deployment(&deployment(1), t0 + MS(1150));
        assert!(
            !l.healed(),
            "both replacements are Ready, the Deployment is not whole"
        );
        l.on_deployment(&deployment(2), t0 + MS(1400));
        let e = l.evidence("kill", l.started_at, false);
        assert!(e.healed);
        assert_eq!(e.healed_after_ms, Some(1390), "{e:#?}");
        assert_eq!(
            e.healed_at.map(|at| (at - l.started_at).num_milliseconds()),
            Some(1400)
        );
    }

    #[test]
    fn a_replacement_is_credited_to_one_lost_pod_and_a_pod_ready_before_to_none() {
        let mut l = two_pods();
        let t0 = l.start;
        // Ready before the disruption: a pod the watch had not listed yet, not a replacement.
        newcomer(&mut l, "early", true, t0 + MS(5));
        let effects = [killed(&l, "web-1", MS(10)), killed(&l, "web-2", MS(10))];
        l.on_acted(&effects);
        newcomer(&mut l, "a", true, t0 + MS(1000));
        assert!(!l.healed(), "one replacement cannot heal two lost pods");
        let e = l.evidence("kill", l.started_at, false);
        let replacements: Vec<_> = e.pods.iter().map(|p| p.replacement.as_deref()).collect();
        assert!(replacements.contains(&Some("a")), "{replacements:?}");
        assert!(replacements.contains(&None), "{replacements:?}");
    }

    #[test]
    fn a_replacement_deleted_before_ready_hands_its_credit_to_the_next_one() {
        let mut l = ledger();
        let t0 = l.start;
        l.on_acted(&[killed(&l, "web-1", MS(10))]);
        newcomer(&mut l, "first", false, t0 + MS(20));
        assert_eq!(l.tracked[0].replacement.as_deref(), Some("first"));
        l.on_pod(
            &pod(&format!(
                "metadata: {{name: first, namespace: shop, uid: first, {OWNER}}}"
            )),
            true,
            t0 + MS(30),
        );
        newcomer(&mut l, "second", false, t0 + MS(40));
        newcomer(&mut l, "second", true, t0 + MS(500));
        let e = l.evidence("kill", l.started_at, false);
        assert_eq!(e.pods[0].replacement.as_deref(), Some("second"), "{e:#?}");
        assert_eq!(e.pods[0].ready_after_ms, Some(490));
        assert!(e.healed);
    }

    #[test]
    fn a_relist_re_delivering_every_pod_changes_nothing_and_its_absences_are_noticed() {
        let mut l = ledger();
        let t0 = l.start;
        l.on_init("shop");
        l.on_pod(
            &pod(&format!(
                "metadata: {{name: web-1, namespace: shop, uid: old, {OWNER}}}"
            )),
            false,
            t0,
        );
        l.on_init_done("shop", t0);
        l.on_acted(&[killed(&l, "web-1", MS(10))]);
        newcomer(&mut l, "doomed", false, t0 + MS(20));
        newcomer(&mut l, "kept", true, t0 + MS(300));
        // A gap: `doomed` was deleted and `web-1`'s deletion was missed; the relist lists
        // only `kept`, twice over, as a relist after another close would.
        for at in [MS(900), MS(1000)] {
            l.on_init("shop");
            newcomer(&mut l, "kept", true, t0 + at);
            l.on_init_done("shop", t0 + at);
        }
        let e = l.evidence("kill", l.started_at, false);
        assert_eq!(e.pods.len(), 1);
        assert!(e.pods[0].disrupted);
        assert_eq!(e.pods[0].replacement.as_deref(), Some("kept"), "{e:#?}");
        // Ready when first seen, not when re-delivered.
        assert_eq!(e.pods[0].ready_after_ms, Some(290));
        assert_eq!(l.newcomers.len(), 1, "the vanished newcomer is forgotten");
    }

    #[test]
    fn a_pod_the_fault_did_not_disrupt_is_not_followed() {
        let mut l = two_pods();
        let mut skipped = killed(&l, "web-2", MS(10));
        skipped.effect = Effect::Skipped {
            reason: "the pod was already gone".into(),
        };
        l.on_acted(&[killed(&l, "web-1", MS(10)), skipped]);
        let e = l.evidence("kill", l.started_at, false);
        assert_eq!(e.pods.len(), 1, "{e:#?}");
        assert_eq!(e.pods[0].pod, "web-1");
    }
}

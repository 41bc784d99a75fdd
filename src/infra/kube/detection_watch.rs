//! When the system noticed a fault: a watch (not polling) started before the fault acts, on the
//! EndpointSlices that route to the lost pods or on the Nodes the fault took down. The moment a
//! lost pod stops being a ready endpoint is when kube-proxy and load balancers stop sending it
//! traffic; the moment a node turns `Ready=False/Unknown` is when the node lifecycle controller
//! has noticed it (after `--node-monitor-grace-period`). Both are what an SRE tunes.
//!
//! The decision is pure ([`Tracker`]); the watch only feeds it what it sees.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, reflector};
use kube::{Api, Client};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::debug;

use super::{KubeClient, KubeError};
use crate::fault::Detection;
use crate::infra::nodes::node_facts;

/// How long the watch may take to list what it watches before the fault acts.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(15);

/// What noticing a fault looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watched {
    /// These pods of `namespace` stop being ready endpoints of any EndpointSlice.
    PodEndpoints {
        /// Their namespace.
        namespace: String,
        /// Pod names.
        pods: Vec<String>,
    },
    /// These nodes, and every node of these zones, turn `Ready=False/Unknown` or vanish.
    NodesNotReady {
        /// Node names.
        nodes: Vec<String>,
        /// Zones.
        zones: Vec<String>,
    },
}

/// The subjects a watch waits for, and when each was first seen noticed.
#[derive(Debug, Default)]
pub struct Tracker {
    subjects: Option<BTreeMap<String, Option<SystemTime>>>,
}

impl Tracker {
    /// Feeds the subjects that are still unnoticed (ready endpoints, Ready nodes) as seen `now`.
    /// The first call fixes the subjects: those present then; later ones were not lost.
    pub fn observe(&mut self, healthy: &BTreeSet<String>, now: SystemTime) {
        let subjects = self
            .subjects
            .get_or_insert_with(|| healthy.iter().map(|s| (s.clone(), None)).collect());
        for (subject, noticed) in subjects.iter_mut() {
            if noticed.is_none() && !healthy.contains(subject) {
                *noticed = Some(now);
            }
        }
    }

    /// Whether there is nothing (more) to wait for.
    pub fn settled(&self) -> bool {
        self.subjects
            .as_ref()
            .is_some_and(|s| s.values().all(Option::is_some))
    }

    /// The detection so far: the moment the last subject was noticed.
    pub fn detection(&self) -> Detection {
        match &self.subjects {
            None => Detection::NotDetected,
            Some(s) if s.is_empty() => Detection::NotApplicable,
            Some(s) => match s.values().copied().collect::<Option<Vec<_>>>() {
                Some(times) => times
                    .into_iter()
                    .max()
                    .map_or(Detection::NotApplicable, |at| Detection::Detected { at }),
                None => Detection::NotDetected,
            },
        }
    }
}

/// A running detection watch.
pub struct DetectionWatch {
    task: JoinHandle<Detection>,
}

impl DetectionWatch {
    /// Starts watching `watched` and returns once the watch has listed its objects, so a change
    /// made after this call is seen as one; the watch gives up after `timeout`.
    ///
    /// # Errors
    /// When the first list does not complete within [`SYNC_TIMEOUT`].
    pub async fn start(
        kube: &KubeClient,
        watched: Watched,
        timeout: Duration,
    ) -> Result<Self, KubeError> {
        let (synced_tx, synced_rx) = oneshot::channel();
        let client = kube.raw().clone();
        let task = tokio::spawn(async move {
            let mut tracker = Tracker::default();
            let run = watch(client, &watched, &mut tracker, synced_tx);
            if tokio::time::timeout(timeout, run).await.is_err() {
                debug!(?watched, "no detection within the timeout");
            }
            tracker.detection()
        });
        match tokio::time::timeout(SYNC_TIMEOUT, synced_rx).await {
            Ok(Ok(())) => Ok(Self { task }),
            _ => {
                task.abort();
                Err(KubeError::Timeout {
                    action: "watch for the fault's detection".into(),
                    after: SYNC_TIMEOUT,
                })
            }
        }
    }

    /// Waits for the detection (or the timeout given to [`DetectionWatch::start`]).
    pub async fn finish(self) -> Detection {
        self.task.await.unwrap_or(Detection::NotDetected)
    }
}

async fn watch(
    client: Client,
    watched: &Watched,
    tracker: &mut Tracker,
    synced: oneshot::Sender<()>,
) {
    match watched {
        Watched::PodEndpoints { namespace, pods } => {
            let api: Api<EndpointSlice> = Api::namespaced(client, namespace);
            let wanted: BTreeSet<&str> = pods.iter().map(String::as_str).collect();
            follow(api, tracker, synced, |slices| {
                ready_endpoints(slices)
                    .filter(|pod| wanted.contains(pod.as_str()))
                    .collect()
            })
            .await;
        }
        Watched::NodesNotReady { nodes, zones } => {
            let api: Api<Node> = Api::all(client);
            follow(api, tracker, synced, |all| {
                all.iter()
                    .map(|n| node_facts(n))
                    .filter(|f| {
                        nodes.contains(&f.name)
                            || f.zone.as_ref().is_some_and(|z| zones.contains(z))
                    })
                    .filter(|f| f.ready)
                    .map(|f| f.name)
                    .collect()
            })
            .await;
        }
    }
}

/// The pod of every ready endpoint: kube-proxy routes to it.
fn ready_endpoints(slices: &[Arc<EndpointSlice>]) -> impl Iterator<Item = String> + '_ {
    slices
        .iter()
        .flat_map(|s| s.endpoints.iter().flatten())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .filter_map(|e| {
            let target = e.target_ref.as_ref()?;
            if target.kind.as_deref() == Some("Pod") {
                target.name.clone()
            } else {
                None
            }
        })
}

/// Follows one watch through a reflector, feeding `healthy(store)` to the tracker after the
/// first list and after every change, until every subject was noticed.
async fn follow<K>(
    api: Api<K>,
    tracker: &mut Tracker,
    synced: oneshot::Sender<()>,
    healthy: impl Fn(&[Arc<K>]) -> BTreeSet<String>,
) where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let stream = watcher::watcher(api, watcher::Config::default())
        .backoff(crate::infra::kube::watch_backoff::WatchBackoff::default())
        .reflect(writer);
    let mut stream = std::pin::pin!(stream);
    let mut synced = Some(synced);
    while let Some(next) = stream.next().await {
        match next {
            Ok(Event::InitDone) => {
                tracker.observe(&healthy(&reader.state()), SystemTime::now());
                if let Some(tx) = synced.take() {
                    let _ = tx.send(());
                }
            }
            Ok(Event::Apply(_) | Event::Delete(_)) if synced.is_none() => {
                tracker.observe(&healthy(&reader.state()), SystemTime::now());
            }
            Ok(_) => {}
            Err(err) => debug!(error = %err, "detection watch error; the watcher retries"),
        }
        if tracker.settled() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn detection_is_when_the_last_subject_present_at_the_start_was_noticed() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let mut tracker = Tracker::default();
        tracker.observe(&set(&["web-1", "web-2"]), t0);
        assert_eq!(tracker.detection(), Detection::NotDetected);
        tracker.observe(&set(&["web-2", "web-9"]), t0 + Duration::from_secs(1));
        assert!(!tracker.settled());
        // A newcomer was never a subject; web-1 coming back does not undo its detection.
        tracker.observe(&set(&["web-1", "web-9"]), t0 + Duration::from_secs(3));
        assert!(tracker.settled());
        assert_eq!(
            tracker.detection(),
            Detection::Detected {
                at: t0 + Duration::from_secs(3)
            }
        );
    }

    #[test]
    fn nothing_healthy_at_the_start_is_nothing_to_detect() {
        let mut tracker = Tracker::default();
        tracker.observe(&set(&[]), SystemTime::now());
        assert!(tracker.settled());
        assert_eq!(tracker.detection(), Detection::NotApplicable);
    }
}

//! Readiness kept current by a watch, not by polling: a `kube::runtime` reflector holds the
//! watched objects (one Deployment or StatefulSet, nodes by selector, pods by selector) and every
//! change is counted the moment it arrives. A pod deleted between two polls, or a node that turns
//! NotReady for half a second, is seen and recorded with the instant it was seen.
//!
//! The counting is pure ([`count_workload`], [`count_nodes`], [`count_pods`]); the judgement
//! against the experiment's bound is [`crate::probe::kubernetes::judge`].

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, reflector};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::KubeClient;
use crate::fault::targets::is_running_and_ready;
use crate::infra::nodes::node_facts;
use crate::probe::kubernetes::{ReadyCount, judge, subject};
use crate::probe::set::{ConditionRecorder, WatchedCondition};
use crate::spec::probe::{KubernetesProbeSpec, NodeQuery, WorkloadKind};

/// How long the watch may keep failing before the condition counts as failed: the cached count
/// may be stale by then. Shorter breaks (a 410 Gone and relist, a reconnect) are not failures of
/// the watched system.
pub const STALE_AFTER: Duration = Duration::from_secs(10);

/// One count, or why there is none (the workload does not exist).
pub type Counted = Result<ReadyCount, String>;

/// Watches what a Kubernetes probe counts.
pub struct ReadinessWatch {
    client: Client,
    spec: KubernetesProbeSpec,
}

impl ReadinessWatch {
    /// A watch of `spec` through `kube` (one long-lived request per watch, so the rate limiter
    /// is spent on relists only).
    pub fn new(kube: &KubeClient, spec: KubernetesProbeSpec) -> Self {
        Self {
            client: kube.raw().clone(),
            spec,
        }
    }

    /// A watch through a plain client (tests).
    pub fn with_client(client: Client, spec: KubernetesProbeSpec) -> Self {
        Self { client, spec }
    }

    /// Watches until `cancel` fires, calling `on_change` with a fresh count after the initial
    /// list and after every change, and with an error line when the watch has been failing
    /// for [`STALE_AFTER`].
    pub async fn run(
        &self,
        cancel: CancellationToken,
        on_change: &(dyn Fn(Counted) + Send + Sync),
    ) {
        let client = self.client.clone();
        if let Some(w) = &self.spec.workload {
            let name = w.name.clone();
            let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
            let what = format!("{:?} {}/{}", w.kind, w.namespace, w.name);
            match w.kind {
                WorkloadKind::Deployment => {
                    let api: Api<Deployment> = Api::namespaced(client, &w.namespace);
                    follow(api, config, cancel, on_change, |objects| {
                        count_workload(objects.iter().map(|d| deployment_counts(d)), &what)
                    })
                    .await;
                }
                WorkloadKind::StatefulSet => {
                    let api: Api<StatefulSet> = Api::namespaced(client, &w.namespace);
                    follow(api, config, cancel, on_change, |objects| {
                        count_workload(objects.iter().map(|s| statefulset_counts(s)), &what)
                    })
                    .await;
                }
            }
        } else if let Some(query) = &self.spec.nodes {
            let api: Api<Node> = Api::all(client);
            let mut config = watcher::Config::default();
            if let Some(selector) = &query.selector {
                config = config.labels(selector);
            }
            follow(api, config, cancel, on_change, |nodes| {
                Ok(count_nodes(nodes.iter().map(|n| &**n), query))
            })
            .await;
        } else if let Some(query) = &self.spec.pods {
            let api: Api<Pod> = Api::namespaced(client, &query.namespace);
            let config = watcher::Config::default().labels(&query.selector);
            follow(api, config, cancel, on_change, |pods| {
                Ok(count_pods(pods.iter().map(|p| &**p)))
            })
            .await;
        } else {
            on_change(Err("the probe names no workload, nodes or pods".to_owned()));
        }
    }
}

#[async_trait]
impl WatchedCondition for ReadinessWatch {
    async fn watch(&self, cancel: CancellationToken, recorder: ConditionRecorder) {
        let spec = &self.spec;
        let on_change = move |counted: Counted| match counted {
            Ok(count) => {
                let (held, value, detail) = judge(spec, count);
                recorder.observe(held, value, detail);
            }
            Err(reason) => recorder.observe(false, None, format!("{}: {reason}", subject(spec))),
        };
        self.run(cancel, &on_change).await;
    }
}

/// Follows one watch through a reflector, counting its store after every change.
async fn follow<K>(
    api: Api<K>,
    config: watcher::Config,
    cancel: CancellationToken,
    on_change: &(dyn Fn(Counted) + Send + Sync),
    count: impl Fn(&[Arc<K>]) -> Counted,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let stream = watcher::watcher(api, config)
        .backoff(crate::infra::kube::watch_backoff::WatchBackoff::default())
        .reflect(writer);
    let mut stream = std::pin::pin!(stream);
    let mut synced = false;
    let mut failing_since: Option<Instant> = None;
    loop {
        let next = tokio::select! {
            () = cancel.cancelled() => return,
            next = stream.next() => next,
        };
        match next {
            None => return,
            // The reflector has applied the change before passing it on; during a (re)list it
            // swaps the whole store at InitDone, so the list's partial state is never counted.
            Some(Ok(Event::Apply(_) | Event::Delete(_))) if synced => {
                failing_since = None;
                on_change(count(&reader.state()));
            }
            Some(Ok(Event::InitDone)) => {
                synced = true;
                failing_since = None;
                on_change(count(&reader.state()));
            }
            Some(Ok(_)) => {}
            Some(Err(err)) => {
                debug!(error = %err, "readiness watch error; the watcher retries");
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= STALE_AFTER {
                    on_change(Err(format!(
                        "the watch has failed for {}s: {err}",
                        since.elapsed().as_secs()
                    )));
                }
            }
        }
    }
}

/// (ready, desired) of a Deployment.
fn deployment_counts(d: &Deployment) -> (u64, u64) {
    let ready = d.status.as_ref().and_then(|s| s.ready_replicas);
    let desired = d.spec.replicas;
    (
        non_negative(ready.unwrap_or(0)),
        non_negative(desired.unwrap_or(1)),
    )
}

/// (ready, desired) of a StatefulSet.
fn statefulset_counts(s: &StatefulSet) -> (u64, u64) {
    let ready = s.status.as_ref().and_then(|s| s.ready_replicas);
    let desired = s.spec.replicas;
    (
        non_negative(ready.unwrap_or(0)),
        non_negative(desired.unwrap_or(1)),
    )
}

fn non_negative(n: i32) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The watched workload's count; the watch selects it by name, so there is one or none.
pub fn count_workload(mut counts: impl Iterator<Item = (u64, u64)>, what: &str) -> Counted {
    match counts.next() {
        Some((ready, desired)) => Ok(ReadyCount {
            ready,
            desired: Some(desired),
        }),
        None => Err(format!("{what} not found")),
    }
}

/// Ready nodes matching the query's zone (the selector is applied by the watch).
pub fn count_nodes<'a>(nodes: impl Iterator<Item = &'a Node>, query: &NodeQuery) -> ReadyCount {
    let ready = nodes
        .map(node_facts)
        .filter(|n| {
            n.ready
                && query
                    .zone
                    .as_ref()
                    .is_none_or(|z| n.zone.as_ref() == Some(z))
        })
        .count();
    ReadyCount {
        ready: ready as u64,
        desired: None,
    }
}

/// Running, Ready pods that are not terminating (the selector is applied by the watch).
pub fn count_pods<'a>(pods: impl Iterator<Item = &'a Pod>) -> ReadyCount {
    ReadyCount {
        ready: pods.filter(|p| is_running_and_ready(p)).count() as u64,
        desired: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> Pod {
        serde_yaml::from_str(yaml).expect("a pod")
    }

    fn node(yaml: &str) -> Node {
        serde_yaml::from_str(yaml).expect("a node")
    }

    const READY: &str = "
metadata: {name: a}
status:
  phase: Running
  conditions: [{type: Ready, status: 'True'}]
";

    #[test]
    fn terminating_and_unready_pods_do_not_count() {
        let ready = pod(READY);
        let terminating = pod("
metadata: {name: b, deletionTimestamp: '2026-01-01T00:00:00Z'}
status:
  phase: Running
  conditions: [{type: Ready, status: 'True'}]
");
        let unready = pod("
metadata: {name: c}
status:
  phase: Running
  conditions: [{type: Ready, status: 'False'}]
");
        let pods = [ready, terminating, unready];
        assert_eq!(count_pods(pods.iter()).ready, 1);
    }

    #[test]
    fn nodes_count_when_ready_in_the_zone() {
        let in_zone = node(
            "
metadata: {name: a, labels: {topology.kubernetes.io/zone: us-east-1a}}
status: {conditions: [{type: Ready, status: 'True'}]}
",
        );
        let elsewhere = node(
            "
metadata: {name: b, labels: {topology.kubernetes.io/zone: us-east-1b}}
status: {conditions: [{type: Ready, status: 'True'}]}
",
        );
        let unknown = node(
            "
metadata: {name: c, labels: {topology.kubernetes.io/zone: us-east-1a}}
status: {conditions: [{type: Ready, status: Unknown}]}
",
        );
        let nodes = [in_zone, elsewhere, unknown];
        let query = NodeQuery {
            selector: None,
            zone: Some("us-east-1a".into()),
        };
        assert_eq!(count_nodes(nodes.iter(), &query).ready, 1);
        assert_eq!(count_nodes(nodes.iter(), &NodeQuery::default()).ready, 2);
    }

    #[test]
    fn a_missing_workload_is_not_a_count() {
        let missing = count_workload(std::iter::empty(), "Deployment shop/web");
        assert_eq!(missing, Err("Deployment shop/web not found".to_owned()));
        let found = count_workload([(5, 6)].into_iter(), "Deployment shop/web");
        assert_eq!(
            found,
            Ok(ReadyCount {
                ready: 5,
                desired: Some(6)
            })
        );
    }
}

//! The control plane and the kubelets, as one reconcile loop.
//!
//! Each pass runs, in order, the controllers kube-controller-manager and kube-scheduler run
//! concurrently (namespace, service account, node lifecycle and taint eviction, deployment, replica set,
//! scheduler, endpoint slices, disruption budgets, garbage collection), with every node's
//! kubelet heartbeat first and its pod work after the scheduler. A pass starts when the store changes or on a short tick (timers: start-up delays,
//! grace periods, heartbeats). Each step reads the store fresh and writes only differences, so
//! objects changed through the API in between are simply seen on the next pass.

mod daemonset;
mod deployment;
mod endpoints;
mod ephemeral;
mod gc;
mod kubelet;
mod nodes;
mod replicaset;
mod scheduler;
mod serviceaccounts;
pub(crate) mod util;

pub(crate) use kubelet::PORT_ANNOTATION;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span};

use super::cluster::Shared;

/// Shortest time between two passes, to bound CPU while many changes stream in.
const MIN_PASS_INTERVAL: Duration = Duration::from_millis(20);
/// Longest time between two passes (timers are checked at least this often).
const TICK: Duration = Duration::from_millis(200);
/// Garbage collection runs at most this often (it walks every object).
const GC_EVERY: Duration = Duration::from_secs(1);
/// Expired events are looked for this often (sooner when there are too many).
const EVENT_SWEEP_EVERY: Duration = Duration::from_secs(60);

/// State the controllers keep outside the API (like informer caches and kubelet runtimes).
#[derive(Default)]
pub(crate) struct ControlPlane {
    kubelet: kubelet::Kubelets,
    endpoints: endpoints::EndpointController,
    scheduler: scheduler::Scheduler,
    nodes: nodes::NodeLifecycle,
    last_gc: Option<std::time::Instant>,
    last_event_sweep: Option<std::time::Instant>,
    seen: std::collections::HashMap<&'static str, Vec<u64>>,
    nodes_seen: Vec<(String, bool, bool, bool)>,
}

impl ControlPlane {
    /// Whether any of `storages` changed since `controller` last ran (like an informer event).
    fn changed(
        &mut self,
        shared: &Arc<Shared>,
        controller: &'static str,
        storages: &[&str],
    ) -> bool {
        let now = shared.store.bucket_revisions(storages);
        if self.seen.get(controller) == Some(&now) {
            return false;
        }
        self.seen.insert(controller, now);
        true
    }

    fn pass(&mut self, shared: &Arc<Shared>) {
        gc::namespaces(shared);
        if self.changed(shared, "serviceaccount", &["namespaces", "serviceaccounts"]) {
            serviceaccounts::sync(shared);
        }
        self.kubelet.heartbeat(shared);
        self.nodes.sync(shared);
        if self.changed(shared, "deployment", &["deployments", "replicasets"]) {
            deployment::sync(shared);
        }
        if self.changed(shared, "replicaset", &["replicasets", "pods"]) {
            replicaset::sync(shared);
        }
        if self.changed(shared, "daemonset", &["daemonsets", "nodes", "pods"]) {
            daemonset::sync(shared);
        }
        if self.changed(shared, "scheduler", &["pods", "nodes"]) {
            self.scheduler.sync(shared);
        }
        let fingerprint = shared.node_fingerprint();
        let machines_changed = fingerprint != self.nodes_seen;
        self.nodes_seen = fingerprint;
        let api_changed = self.changed(shared, "kubelet", &["pods", "nodes"]);
        if api_changed || machines_changed || self.kubelet.has_timers() {
            self.kubelet.sync_pods(shared);
        }
        if self.changed(
            shared,
            "endpointslice",
            &["services", "pods", "endpointslices"],
        ) {
            self.endpoints.sync(shared);
        }
        if self.changed(
            shared,
            "disruption",
            &["poddisruptionbudgets", "pods", "replicasets"],
        ) {
            endpoints::disruption_budgets(shared);
        }
        if self.last_gc.is_none_or(|t| t.elapsed() >= GC_EVERY) {
            self.last_gc = Some(std::time::Instant::now());
            let owners_changed = self.changed(shared, "gc", gc::OWNED_STORAGES);
            if owners_changed {
                gc::owners(shared);
            }
            let sweep = self
                .last_event_sweep
                .is_none_or(|t| t.elapsed() >= EVENT_SWEEP_EVERY);
            if sweep {
                self.last_event_sweep = Some(std::time::Instant::now());
            }
            gc::events(shared, sweep);
        }
    }
}

/// Runs the reconcile loop until `cancel` fires, then stops every backend and load balancer.
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut plane = ControlPlane::default();
    async {
        loop {
            let changed = shared.store.notified();
            plane.pass(&shared);
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = changed => {}
                _ = tokio::time::sleep(TICK) => {}
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(MIN_PASS_INTERVAL) => {}
            }
        }
    }
    .instrument(info_span!("control_plane"))
    .await;
    // Dropping the runtimes kills backends and load balancers.
    drop(plane);
}

//! The control plane and the kubelets, as one reconcile loop.
//!
//! Each pass runs, in order, the controllers kube-controller-manager and kube-scheduler run
//! concurrently (namespace, node lifecycle and taint eviction, deployment, replica set,
//! scheduler, endpoint slices, disruption budgets, garbage collection), with every node's
//! kubelet heartbeat first and its pod work after the scheduler. A pass starts when the store changes or on a short tick (timers: start-up delays,
//! grace periods, heartbeats). Each step reads the store fresh and writes only differences, so
//! objects changed through the API in between are simply seen on the next pass.

mod deployment;
mod endpoints;
mod gc;
mod kubelet;
mod nodes;
mod replicaset;
mod scheduler;
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
const TICK: Duration = Duration::from_millis(100);

/// State the controllers keep outside the API (like informer caches and kubelet runtimes).
#[derive(Default)]
pub(crate) struct ControlPlane {
    kubelet: kubelet::Kubelets,
    endpoints: endpoints::EndpointController,
    scheduler: scheduler::Scheduler,
    nodes: nodes::NodeLifecycle,
}

impl ControlPlane {
    fn pass(&mut self, shared: &Arc<Shared>) {
        gc::namespaces(shared);
        self.kubelet.heartbeat(shared);
        self.nodes.sync(shared);
        deployment::sync(shared);
        replicaset::sync(shared);
        self.scheduler.sync(shared);
        self.kubelet.sync_pods(shared);
        self.endpoints.sync(shared);
        endpoints::disruption_budgets(shared);
        gc::owners(shared);
        gc::events(shared);
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

//! What every Kubernetes fault shares: the client, the safety rules, the run's seed, and the
//! listing that feeds target resolution; plus [`kube_fault`], which builds the right fault for a
//! spec so the engine never names a Kubernetes type.

use std::sync::Arc;

use chrono::Utc;
use k8s_openapi::api::core::v1::Pod;

use crate::fault::targets::{self, NodeCandidate, OwnPod, PodCandidate};
use crate::fault::{Fault, FaultError, UndoAction, UndoRecord};
use crate::infra::kube::{KubeClient, KubeError};
use crate::plan::select::firing_seed;
use crate::spec::fault::{BlockedPolicy, FaultSpec, NodeTargetSpec, PodTargetSpec};
use crate::spec::safety::SafetySpec;

use super::net_script::NetRule;
use super::node_cordon::NodeCordon;
use super::node_drain::NodeDrain;
use super::pod_evict::PodEvict;
use super::pod_kill::PodKill;
use super::pod_network::PodNetworkFault;
use super::zone_outage::ZoneOutage;

/// The shared context of the Kubernetes faults of one run.
#[derive(Debug, Clone)]
pub struct KubeFaultContext {
    /// The run's client (one rate limiter for everything).
    pub kube: KubeClient,
    /// The experiment's safety rules.
    pub safety: SafetySpec,
    /// The run's seed; each firing derives its own with [`firing_seed`].
    pub run_seed: u64,
    /// steadfast's own pod, never a target.
    pub own_pod: Option<OwnPod>,
}

impl KubeFaultContext {
    /// A context for a run; the own pod comes from `POD_NAMESPACE`/`POD_NAME`.
    pub fn new(kube: KubeClient, safety: SafetySpec, run_seed: u64) -> Self {
        Self {
            kube,
            safety,
            run_seed,
            own_pod: OwnPod::from_env(),
        }
    }

    /// The seed of one firing of `fault`.
    pub fn seed(&self, fault: &str, firing: u32) -> u64 {
        firing_seed(self.run_seed, fault, firing)
    }

    /// Lists and filters the pods a pod fault may choose.
    ///
    /// # Errors
    /// API errors and unparsable selectors.
    pub async fn pod_candidates(
        &self,
        spec: &PodTargetSpec,
    ) -> Result<Vec<PodCandidate>, FaultError> {
        let scope = self.namespace_scope(spec).await?;
        let label = spec.selector.as_deref();
        let field = spec.field_selector.as_deref();
        let mut pods: Vec<Pod> = Vec::new();
        match &scope {
            Some(namespaces) => {
                for ns in namespaces {
                    if targets::namespace_allowed(ns, &self.safety) {
                        pods.extend(
                            self.kube
                                .list_pods(Some(ns), label, field)
                                .await
                                .map_err(api)?,
                        );
                    }
                }
            }
            None => pods = self.kube.list_pods(None, label, field).await.map_err(api)?,
        }
        let needs_nodes = spec.node_selector.is_some() || spec.zone.is_some() || !pods.is_empty();
        let nodes = if needs_nodes {
            self.kube.list_nodes(None).await.map_err(api)?
        } else {
            Vec::new()
        };
        targets::pod_candidates(
            &pods,
            &nodes,
            scope.as_deref(),
            spec,
            &self.safety,
            self.own_pod.as_ref(),
        )
    }

    /// The namespaces a pod spec resolves to; `None` for all of them.
    async fn namespace_scope(
        &self,
        spec: &PodTargetSpec,
    ) -> Result<Option<Vec<String>>, FaultError> {
        let mut namespaces = spec.namespaces.clone();
        if let Some(selector) = &spec.namespace_selector {
            let listed = self
                .kube
                .list_namespaces(Some(selector))
                .await
                .map_err(api)?;
            namespaces.extend(listed.into_iter().filter_map(|n| n.metadata.name));
        } else if namespaces.is_empty() {
            if self.safety.allow_namespaces.is_empty() {
                return Ok(None);
            }
            namespaces = self.safety.allow_namespaces.clone();
        }
        namespaces.sort();
        namespaces.dedup();
        Ok(Some(namespaces))
    }

    /// Lists and filters the nodes a node fault may choose.
    ///
    /// # Errors
    /// API errors and unparsable selectors.
    pub async fn node_candidates(
        &self,
        spec: &NodeTargetSpec,
    ) -> Result<Vec<NodeCandidate>, FaultError> {
        let nodes = self
            .kube
            .list_nodes(spec.selector.as_deref())
            .await
            .map_err(api)?;
        targets::node_candidates(&nodes, spec, &self.safety)
    }
}

/// Maps an adapter error into the fault contract's.
pub fn api(error: KubeError) -> FaultError {
    match error {
        KubeError::Timeout { action, .. } => FaultError::Timeout(action),
        KubeError::Api {
            action, message, ..
        }
        | KubeError::Throttled { action, message }
        | KubeError::Transport { action, message } => FaultError::Api { action, message },
        KubeError::Config { message } => FaultError::Api {
            action: "configure the Kubernetes client".into(),
            message,
        },
    }
}

/// Numbers the undo records of one firing: `<run>/<fault>/<firing>/<n>`.
pub fn undo_records(
    run_id: &str,
    fault: &str,
    firing: u32,
    actions: Vec<UndoAction>,
) -> Vec<UndoRecord> {
    actions
        .into_iter()
        .enumerate()
        .map(|(n, action)| UndoRecord {
            id: format!("{run_id}/{fault}/{firing}/{n}"),
            run_id: run_id.to_owned(),
            fault: fault.to_owned(),
            action,
            created_at: Utc::now(),
        })
        .collect()
}

/// The fault a spec describes, when it is a Kubernetes fault; `None` for other kinds.
pub fn kube_fault(spec: &FaultSpec, context: &KubeFaultContext) -> Option<Arc<dyn Fault>> {
    let name = spec.name.clone();
    let ctx = context.clone();
    if let Some(s) = &spec.pod_kill {
        return Some(Arc::new(PodKill::new(name, s.clone(), ctx)));
    }
    if let Some(s) = &spec.pod_evict {
        return Some(Arc::new(PodEvict::new(name, s.clone(), ctx)));
    }
    if let Some(s) = &spec.node_drain {
        return Some(Arc::new(NodeDrain::new(name, s.clone(), ctx)));
    }
    if let Some(s) = &spec.node_cordon {
        return Some(Arc::new(NodeCordon::new(name, s.clone(), ctx)));
    }
    if let Some(s) = &spec.zone_outage {
        return Some(Arc::new(ZoneOutage::new(name, s.clone(), ctx)));
    }
    if let Some(s) = &spec.pod_network_latency {
        let rule = NetRule::Delay {
            delay: s.delay.get(),
            jitter: s.jitter.get(),
            correlation: s.correlation.map_or(0.0, |c| c.value()),
            to: Vec::new(),
        };
        return Some(Arc::new(
            PodNetworkFault::new(
                name,
                crate::spec::FaultKind::PodNetworkLatency,
                s.target.clone(),
                rule,
                spec.for_.get(),
                s.image.clone(),
                ctx,
            )
            .with_destinations(s.to.clone()),
        ));
    }
    if let Some(s) = &spec.pod_network_blackhole {
        let chain = match s.direction {
            crate::spec::fault::TrafficDirection::Ingress => super::net_script::Chain::Input,
            crate::spec::fault::TrafficDirection::Egress => super::net_script::Chain::Output,
        };
        return Some(Arc::new(
            PodNetworkFault::new(
                name,
                crate::spec::FaultKind::PodNetworkBlackhole,
                s.target.clone(),
                NetRule::Drop {
                    chain,
                    port: s.port,
                    to: Vec::new(),
                },
                spec.for_.get(),
                s.image.clone(),
                ctx,
            )
            .with_destinations(s.to.clone()),
        ));
    }
    if let Some(s) = &spec.pod_network_loss {
        let rule = NetRule::Loss {
            percent: s.percent.value(),
            to: Vec::new(),
        };
        return Some(Arc::new(
            PodNetworkFault::new(
                name,
                crate::spec::FaultKind::PodNetworkLoss,
                s.target.clone(),
                rule,
                spec.for_.get(),
                s.image.clone(),
                ctx,
            )
            .with_destinations(s.to.clone()),
        ));
    }
    None
}

/// What a PodDisruptionBudget blocking this fault means for the run (`podEvict`, `nodeDrain`);
/// the engine fails the run on [`BlockedPolicy::Fail`] when an effect is `BlockedByBudget`.
pub fn blocked_policy(spec: &FaultSpec) -> Option<BlockedPolicy> {
    spec.pod_evict
        .as_ref()
        .map(|s| s.on_blocked)
        .or_else(|| spec.node_drain.as_ref().map(|s| s.on_blocked))
}

//! `nodeDrain`: cordon nodes, then evict their pods as `kubectl drain --ignore-daemonsets`
//! does, honouring PodDisruptionBudgets.
//!
//! The `Uncordon` undo record is journaled (by the engine, from the plan) before the cordon.
//! DaemonSet pods (they tolerate the cordon and would come straight back) and static pods are
//! left alone, as are steadfast's own pod and pods in namespaces the safety rules protect.
//! Evictions a budget refuses are retried until the drain's `timeout`; what is still blocked
//! then is reported with the budget's name. Rollback uncordons.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use tokio::time::Instant;

use crate::fault::kube_confirm::confirm_kube;
use crate::fault::kube_context::{KubeFaultContext, api};
use crate::fault::node_cordon::{cordon_planned, node_targets, plan_nodes};
use crate::fault::pod_evict::evict_one;
use crate::fault::targets::{is_daemon_or_mirror, namespace_allowed};
use crate::fault::{
    Confirmation, Effect, Fault, FaultError, FaultPlan, Injection, TargetEffect, TargetKind,
    TargetRef,
};
use crate::spec::FaultKind;
use crate::spec::fault::NodeDrainSpec;

/// Pause between rounds of retrying evictions a budget refused.
pub const EVICTION_RETRY_INTERVAL: Duration = Duration::from_secs(2);

/// Cordons and drains the chosen nodes.
#[derive(Debug)]
pub struct NodeDrain {
    name: String,
    spec: NodeDrainSpec,
    context: KubeFaultContext,
}

impl NodeDrain {
    /// A `nodeDrain` fault named `name`.
    pub fn new(name: String, spec: NodeDrainSpec, context: KubeFaultContext) -> Self {
        Self {
            name,
            spec,
            context,
        }
    }

    /// The pods of `node` a drain evicts, and effects for those it leaves alone on purpose.
    async fn pods_to_evict(
        &self,
        node: &TargetRef,
    ) -> Result<(Vec<Pod>, Vec<TargetEffect>), FaultError> {
        let field = format!("spec.nodeName={}", node.name);
        let pods = self
            .context
            .kube
            .list_pods(None, None, Some(&field))
            .await
            .map_err(api)?;
        let mut evict = Vec::new();
        let mut left = Vec::new();
        for pod in pods {
            let namespace = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            // The API server applied the field selector; a pod elsewhere is never ours to touch.
            if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node.name.as_str())
                || is_daemon_or_mirror(&pod)
                || pod.metadata.deletion_timestamp.is_some()
            {
                continue;
            }
            let own = self
                .context
                .own_pod
                .as_ref()
                .is_some_and(|o| o.namespace == namespace && o.name == name);
            let reason = if own {
                Some("steadfast's own pod")
            } else if !namespace_allowed(&namespace, &self.context.safety) {
                Some("its namespace is protected by the safety rules")
            } else {
                None
            };
            match reason {
                Some(reason) => left.push(pod_effect(
                    &pod,
                    node,
                    Effect::Skipped {
                        reason: reason.into(),
                    },
                )),
                None => evict.push(pod),
            }
        }
        evict.sort_by(|a, b| {
            (&a.metadata.namespace, &a.metadata.name)
                .cmp(&(&b.metadata.namespace, &b.metadata.name))
        });
        Ok((evict, left))
    }

    /// Evicts `pods`, retrying refused ones until `deadline`.
    async fn evict_all(
        &self,
        node: &TargetRef,
        pods: Vec<Pod>,
        deadline: Instant,
    ) -> Vec<TargetEffect> {
        let kube = &self.context.kube;
        let mut done = Vec::new();
        let mut pending = pods;
        // Bounded by the deadline; the round count is a second bound against a zero interval.
        for _round in 0..10_000 {
            let mut blocked = Vec::new();
            for pod in pending {
                let namespace = pod.metadata.namespace.clone().unwrap_or_default();
                let name = pod.metadata.name.clone().unwrap_or_default();
                let labels: Option<&BTreeMap<String, String>> = pod.metadata.labels.as_ref();
                let effect = evict_one(kube, &namespace, &name, labels).await;
                match effect {
                    Effect::BlockedByBudget { .. } => blocked.push((pod, effect)),
                    other => done.push(pod_effect(&pod, node, other)),
                }
            }
            let out_of_time = Instant::now() + EVICTION_RETRY_INTERVAL > deadline;
            if blocked.is_empty() || out_of_time {
                done.extend(
                    blocked
                        .iter()
                        .map(|(pod, e)| pod_effect(pod, node, e.clone())),
                );
                return done;
            }
            pending = blocked.into_iter().map(|(pod, _)| pod).collect();
            tokio::time::sleep(EVICTION_RETRY_INTERVAL).await;
        }
        done
    }
}

fn pod_effect(pod: &Pod, node: &TargetRef, effect: Effect) -> TargetEffect {
    TargetEffect {
        target: TargetRef {
            kind: TargetKind::Pod,
            name: pod.metadata.name.clone().unwrap_or_default(),
            namespace: pod.metadata.namespace.clone(),
            node: Some(node.name.clone()),
            zone: node.zone.clone(),
        },
        effect,
        at: SystemTime::now(),
    }
}

/// The node's overall effect: blocked (naming every budget) if any eviction stayed refused,
/// failed if any failed, applied otherwise.
fn summarise(pods: &[TargetEffect]) -> Effect {
    let mut budgets: Vec<&str> = pods
        .iter()
        .filter_map(|e| match &e.effect {
            Effect::BlockedByBudget { budget } => Some(budget.as_str()),
            _ => None,
        })
        .collect();
    budgets.sort_unstable();
    budgets.dedup();
    if !budgets.is_empty() {
        return Effect::BlockedByBudget {
            budget: budgets.join(", "),
        };
    }
    let failed: Vec<String> = pods
        .iter()
        .filter_map(|e| match &e.effect {
            Effect::Failed { error } => Some(format!("{}: {error}", e.target.display_name())),
            _ => None,
        })
        .collect();
    if failed.is_empty() {
        Effect::Applied
    } else {
        Effect::Failed {
            error: failed.join("; "),
        }
    }
}

#[async_trait]
impl Fault for NodeDrain {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> FaultKind {
        FaultKind::NodeDrain
    }

    async fn plan(&self, run_id: &str, firing: u32) -> Result<FaultPlan, FaultError> {
        plan_nodes(
            &self.context,
            run_id,
            &self.name,
            FaultKind::NodeDrain,
            &self.spec.target,
            firing,
        )
        .await
    }

    async fn confirm(
        &self,
        _plan: &FaultPlan,
        injection: &Injection,
        timeout: Duration,
    ) -> Confirmation {
        confirm_kube(&self.context.kube, injection, None, timeout).await
    }

    async fn inject(&self, plan: &FaultPlan) -> Result<Injection, FaultError> {
        let deadline = Instant::now() + self.spec.timeout.get();
        let mut injection = Injection::default();
        for node in node_targets(plan) {
            let cordoned = cordon_planned(&self.context, plan, node).await;
            if let Effect::Failed { .. } = cordoned {
                injection.effects.push(TargetEffect {
                    target: node.clone(),
                    effect: cordoned,
                    at: SystemTime::now(),
                });
                continue;
            }
            let pod_effects = match self.pods_to_evict(node).await {
                Ok((evict, mut left)) => {
                    let mut effects = self.evict_all(node, evict, deadline).await;
                    effects.append(&mut left);
                    effects
                }
                Err(e) => {
                    injection.effects.push(TargetEffect {
                        target: node.clone(),
                        effect: Effect::Failed {
                            error: e.to_string(),
                        },
                        at: SystemTime::now(),
                    });
                    continue;
                }
            };
            injection.effects.push(TargetEffect {
                target: node.clone(),
                effect: summarise(&pod_effects),
                at: SystemTime::now(),
            });
            injection.effects.extend(pod_effects);
        }
        Ok(injection)
    }
}

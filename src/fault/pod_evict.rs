//! `podEvict`: evict pods through the Eviction API, as a node drain or an autoscaler would.
//!
//! Unlike a DELETE, an eviction honours PodDisruptionBudgets: the API server refuses it with
//! 429 when the budget has no disruption left. That refusal is a finding, not an error: the
//! effect is [`Effect::BlockedByBudget`] naming the budget, and the spec's `onBlocked` (read
//! with [`super::kube_context::blocked_policy`]) tells the engine whether it fails the run.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use crate::fault::kube_confirm::confirm_kube;
use crate::fault::kube_context::{KubeFaultContext, api};
use crate::fault::pod_kill::{on_each_pod, plan_pods};
use crate::fault::targets::kube_selector_matches;
use crate::fault::{Confirmation, Effect, Fault, FaultError, FaultPlan, Injection};
use crate::infra::kube::{KubeClient, Removal};
use crate::spec::FaultKind;
use crate::spec::fault::PodEvictSpec;

/// Evicts the chosen pods.
#[derive(Debug)]
pub struct PodEvict {
    name: String,
    spec: PodEvictSpec,
    context: KubeFaultContext,
}

impl PodEvict {
    /// A `podEvict` fault named `name`.
    pub fn new(name: String, spec: PodEvictSpec, context: KubeFaultContext) -> Self {
        Self {
            name,
            spec,
            context,
        }
    }
}

/// Names the PodDisruptionBudget that refused evicting a pod with `labels`: the budgets of the
/// namespace whose selector matches the pod, else the name in the server's message.
pub(crate) async fn blocking_budget(
    kube: &KubeClient,
    namespace: &str,
    labels: Option<&BTreeMap<String, String>>,
    message: &str,
) -> String {
    if let Some(labels) = labels
        && let Ok(budgets) = kube.list_budgets(namespace).await
    {
        let names: Vec<String> = budgets
            .iter()
            .filter(|b| {
                b.spec
                    .as_ref()
                    .and_then(|s| s.selector.as_ref())
                    .is_some_and(|sel| kube_selector_matches(sel, labels))
            })
            .filter_map(|b| b.metadata.name.clone())
            .collect();
        if !names.is_empty() {
            return names.join(", ");
        }
    }
    budget_in_message(message).unwrap_or_else(|| format!("unknown ({message})"))
}

/// The budget name in the API server's refusal ("The disruption budget web needs 5 healthy
/// pods and has 5 currently").
pub fn budget_in_message(message: &str) -> Option<String> {
    let rest = message.split("disruption budget ").nth(1)?;
    let name = rest.split_whitespace().next()?;
    (!name.is_empty()).then(|| name.trim_end_matches(['.', ',']).to_owned())
}

/// Evicts one pod and says what happened.
pub(crate) async fn evict_one(
    kube: &KubeClient,
    namespace: &str,
    name: &str,
    labels: Option<&BTreeMap<String, String>>,
) -> Effect {
    match kube.evict_pod(namespace, name).await {
        Ok(Removal::Started) => Effect::Applied,
        Ok(Removal::NotFound) => Effect::Skipped {
            reason: "the pod was already gone".into(),
        },
        Ok(Removal::Blocked { message }) => {
            let fetched;
            let labels = match labels {
                Some(l) => Some(l),
                None => {
                    fetched = kube
                        .get_pod(namespace, name)
                        .await
                        .ok()
                        .flatten()
                        .and_then(|p| p.metadata.labels);
                    fetched.as_ref()
                }
            };
            Effect::BlockedByBudget {
                budget: blocking_budget(kube, namespace, labels, &message).await,
            }
        }
        Err(e) => Effect::Failed {
            error: api(e).to_string(),
        },
    }
}

#[async_trait]
impl Fault for PodEvict {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> FaultKind {
        FaultKind::PodEvict
    }

    async fn plan(&self, _run_id: &str, firing: u32) -> Result<FaultPlan, FaultError> {
        plan_pods(
            &self.context,
            &self.name,
            FaultKind::PodEvict,
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
        let kube = self.context.kube.clone();
        let limiter = self.context.kube.limiter().clone();
        let effects = on_each_pod(plan, &limiter, move |target, namespace| {
            let kube = kube.clone();
            Box::pin(async move { evict_one(&kube, &namespace, &target.name, None).await })
        })
        .await;
        Ok(Injection { effects })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_read_from_the_servers_cause() {
        assert_eq!(
            budget_in_message(
                "Cannot evict pod as it would violate the pod's disruption budget. The disruption budget web needs 5 healthy pods and has 5 currently"
            )
            .as_deref(),
            Some("web")
        );
        assert_eq!(budget_in_message("Too many requests"), None);
    }
}

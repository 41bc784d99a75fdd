//! `podNetworkLatency`, `podNetworkLoss` and `podNetworkBlackhole`: `tc netem` or `iptables`
//! DROP rules in the chosen pods' network namespace, put there by an ephemeral container (`pods/ephemeralcontainers`) with
//! `NET_ADMIN`, the mechanism AWS FIS uses, with no resident privileged agent.
//!
//! The container runs `<apply>; sleep <window>; <remove>` ([`net_script`]), so the rule ends
//! with the window even when steadfast dies: the dead man's switch is in the pod. The undo
//! record, journaled before the container is added, removes the rule early with a second
//! ephemeral container running `<remove>`.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::fault::kube_context::{KubeFaultContext, api, undo_records};
use crate::fault::net_destinations;
use crate::fault::net_script::{self, NetRule};
use crate::fault::pod_kill::{plan_pods, pod_targets};
use crate::fault::{
    Effect, Fault, FaultError, FaultPlan, Injection, RollbackOutcome, TargetEffect, UndoAction,
    UndoRecord, Undoer,
};
use crate::infra::kube::KubeClient;
use crate::spec::FaultKind;
use crate::spec::fault::{DestinationSpec, PodTargetSpec};

/// The Linux capability `tc` and `iptables` need; Pod Security `baseline` and `restricted`
/// refuse it.
pub const CAPABILITY: &str = "NET_ADMIN";

/// A pod network fault: which pods, which rule, for how long, from which image.
#[derive(Debug)]
pub struct PodNetworkFault {
    name: String,
    kind: FaultKind,
    target: PodTargetSpec,
    rule: NetRule,
    window: Duration,
    image: String,
    to: Option<DestinationSpec>,
    context: KubeFaultContext,
}

impl PodNetworkFault {
    /// A fault named `name` putting `rule` on the chosen pods for `window`.
    pub fn new(
        name: String,
        kind: FaultKind,
        target: PodTargetSpec,
        rule: NetRule,
        window: Duration,
        image: String,
        context: KubeFaultContext,
    ) -> Self {
        Self {
            name,
            kind,
            target,
            rule,
            window,
            image,
            to: None,
            context,
        }
    }

    /// Restricts the rule to the destinations `to` names, resolved when planned.
    #[must_use]
    pub fn with_destinations(mut self, to: Option<DestinationSpec>) -> Self {
        self.to = to;
        self
    }

    /// Name of the ephemeral container of one firing: short (a DNS label) and unique per run,
    /// fault and firing, since ephemeral container names can never be reused in a pod.
    fn container_name(run_id: &str, fault: &str, firing: u32) -> String {
        // FNV-1a: stable across processes, unlike std's hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in format!("{run_id}/{fault}/{firing}").bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("steadfast-net-{h:016x}")
    }
}

/// The ephemeral container running `script`.
fn container(name: &str, image: &str, script: &str) -> Value {
    json!({
        "name": name,
        "image": image,
        "command": net_script::container_command(script),
        "securityContext": {"capabilities": {"add": [CAPABILITY]}},
    })
}

#[async_trait]
impl Fault for PodNetworkFault {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> FaultKind {
        self.kind
    }

    async fn plan(&self, run_id: &str, firing: u32) -> Result<FaultPlan, FaultError> {
        let mut plan =
            plan_pods(&self.context, &self.name, self.kind, &self.target, firing).await?;
        let container = Self::container_name(run_id, &self.name, firing);
        let dests = match &self.to {
            Some(to) => net_destinations::resolve(&self.context.kube, to).await?,
            None => Vec::new(),
        };
        let rule = self.rule.clone().with_to(dests.clone());
        let destinations: Vec<String> = dests.iter().map(net_script::Dest::render).collect();
        let command = net_script::container_command(&net_script::remove_command(&rule));
        let actions = pod_targets(&plan)
            .map(|(t, ns)| UndoAction::RemovePodNetworkRule {
                namespace: ns.to_owned(),
                pod: t.name.clone(),
                container: container.clone(),
                removal: format!("{container}-undo"),
                image: self.image.clone(),
                command: command.clone(),
                destinations: destinations.clone(),
            })
            .collect();
        plan.undo = undo_records(run_id, &self.name, firing, actions);
        Ok(plan)
    }

    async fn inject(&self, plan: &FaultPlan) -> Result<Injection, FaultError> {
        let mut effects = Vec::new();
        for record in &plan.undo {
            let UndoAction::RemovePodNetworkRule {
                namespace,
                pod,
                container: name,
                destinations,
                ..
            } = &record.action
            else {
                continue;
            };
            // The destinations as recorded before acting, so the rule is exactly what the undo
            // record removes.
            let dests = destinations
                .iter()
                .map(|d| d.parse::<net_script::Dest>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| FaultError::Refused(format!("recorded destination: {e}")))?;
            let script = net_script::window_script(&self.rule.clone().with_to(dests), self.window);
            let Some(target) = plan
                .targets
                .iter()
                .find(|t| &t.name == pod && t.namespace.as_ref() == Some(namespace))
            else {
                continue;
            };
            let at = std::time::SystemTime::now();
            let added = self
                .context
                .kube
                .add_ephemeral_container(namespace, pod, &container(name, &self.image, &script))
                .await;
            let effect = match added {
                Ok(_) => Effect::Applied,
                Err(e) if e.is_not_found() => Effect::Skipped {
                    reason: "the pod was already gone".into(),
                },
                Err(e) => Effect::Failed {
                    error: api(e).to_string(),
                },
            };
            effects.push(TargetEffect {
                target: target.clone(),
                effect,
                at,
            });
        }
        Ok(Injection { effects })
    }
}

/// Rolls back [`UndoAction::RemovePodNetworkRule`]: adds the removal container unless the pod
/// is gone, the removal already ran, or the rule's own container has finished its window.
#[derive(Debug, Clone)]
pub struct PodNetworkUndoer {
    kube: KubeClient,
}

impl PodNetworkUndoer {
    /// An undoer using `kube`.
    pub fn new(kube: KubeClient) -> Self {
        Self { kube }
    }
}

/// Whether `pod`'s ephemeral container `name` has terminated.
fn terminated(pod: &k8s_openapi::api::core::v1::Pod, name: &str) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.ephemeral_container_statuses.as_ref())
        .into_iter()
        .flatten()
        .any(|s| s.name == name && s.state.as_ref().is_some_and(|st| st.terminated.is_some()))
}

#[async_trait]
impl Undoer for PodNetworkUndoer {
    fn handles(&self, action: &UndoAction) -> bool {
        matches!(action, UndoAction::RemovePodNetworkRule { .. })
    }

    async fn undo(&self, record: &UndoRecord) -> Result<RollbackOutcome, FaultError> {
        let UndoAction::RemovePodNetworkRule {
            namespace,
            pod,
            container: holder,
            removal,
            image,
            command,
            ..
        } = &record.action
        else {
            return Err(FaultError::Refused(format!(
                "the pod network undoer cannot {}",
                record.action.describe()
            )));
        };
        let shown = format!("{namespace}/{pod}");
        let Some(current) = self.kube.get_pod(namespace, pod).await.map_err(api)? else {
            return Ok(RollbackOutcome::AlreadyRestored {
                detail: format!("pod {shown} no longer exists"),
            });
        };
        let names: Vec<&str> = current
            .spec
            .as_ref()
            .and_then(|s| s.ephemeral_containers.as_ref())
            .into_iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        if names.contains(&removal.as_str()) {
            return Ok(RollbackOutcome::AlreadyRestored {
                detail: format!("the removal container {removal} already ran in pod {shown}"),
            });
        }
        if !names.contains(&holder.as_str()) {
            return Ok(RollbackOutcome::AlreadyRestored {
                detail: format!("pod {shown} never got the network rule of {holder}"),
            });
        }
        if terminated(&current, holder) {
            return Ok(RollbackOutcome::AlreadyRestored {
                detail: format!("{holder} in pod {shown} ended its window and removed its rule"),
            });
        }
        let script = command.last().map(String::as_str).unwrap_or_default();
        match self
            .kube
            .add_ephemeral_container(namespace, pod, &container(removal, image, script))
            .await
        {
            Ok(_) => Ok(RollbackOutcome::Restored {
                detail: format!("removed the network rule of {holder} from pod {shown}"),
            }),
            Err(e) if e.is_not_found() => Ok(RollbackOutcome::AlreadyRestored {
                detail: format!("pod {shown} no longer exists"),
            }),
            Err(e) => Err(api(e)),
        }
    }
}

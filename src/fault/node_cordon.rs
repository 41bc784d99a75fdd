//! `nodeCordon`: mark nodes unschedulable, so no new pod lands on them, without evicting.
//!
//! The undo record is made only for nodes that were schedulable when planned, and only those
//! are cordoned: a node someone else cordoned stays theirs to uncordon.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::fault::kube_confirm::confirm_kube;
use crate::fault::kube_context::{KubeFaultContext, undo_records};
use crate::fault::kube_undo::{Change, cordon};
use crate::fault::targets::{choose_nodes, node_selection};
use crate::fault::{
    Confirmation, Effect, Fault, FaultError, FaultPlan, Injection, TargetEffect, TargetKind,
    TargetRef, UndoAction,
};
use crate::spec::FaultKind;
use crate::spec::fault::{NodeCordonSpec, NodeTargetSpec};

/// Cordons the chosen nodes.
#[derive(Debug)]
pub struct NodeCordon {
    name: String,
    spec: NodeCordonSpec,
    context: KubeFaultContext,
}

impl NodeCordon {
    /// A `nodeCordon` fault named `name`.
    pub fn new(name: String, spec: NodeCordonSpec, context: KubeFaultContext) -> Self {
        Self {
            name,
            spec,
            context,
        }
    }
}

/// Plans a node fault: candidates, seeded choice under the node caps, and an `Uncordon` record
/// for every chosen node that is schedulable now.
pub(crate) async fn plan_nodes(
    context: &KubeFaultContext,
    run_id: &str,
    fault: &str,
    kind: FaultKind,
    target: &NodeTargetSpec,
    firing: u32,
) -> Result<FaultPlan, FaultError> {
    let candidates = context.node_candidates(target).await?;
    let seed = context.seed(fault, firing);
    let chosen = choose_nodes(&candidates, &node_selection(target), &context.safety, seed)?;
    let actions = chosen
        .iter()
        .filter(|n| !n.unschedulable)
        .map(|n| UndoAction::Uncordon {
            node: n.name.clone(),
        })
        .collect();
    Ok(FaultPlan {
        fault: fault.to_owned(),
        kind,
        targets: chosen.iter().map(|c| c.target()).collect(),
        undo: undo_records(run_id, fault, firing, actions),
        irreversible: Vec::new(),
        seed,
        candidates: candidates.len(),
    })
}

/// Whether the plan journaled an `Uncordon` for `node`, i.e. steadfast may cordon it.
pub(crate) fn may_cordon(plan: &FaultPlan, node: &str) -> bool {
    plan.undo
        .iter()
        .any(|r| matches!(&r.action, UndoAction::Uncordon { node: n } if n == node))
}

/// Cordons `target` if the plan allows it; the effect says what happened.
pub(crate) async fn cordon_planned(
    context: &KubeFaultContext,
    plan: &FaultPlan,
    target: &TargetRef,
) -> Effect {
    if !may_cordon(plan, &target.name) {
        return Effect::Skipped {
            reason: "the node was already cordoned; it is left as it was".into(),
        };
    }
    match cordon(&context.kube, &target.name).await {
        Ok(Change::Made) => Effect::Applied,
        Ok(Change::AlreadyThere) => Effect::Skipped {
            reason: "the node was cordoned meanwhile".into(),
        },
        Err(e) => Effect::Failed {
            error: e.to_string(),
        },
    }
}

/// The node targets of a plan.
pub(crate) fn node_targets(plan: &FaultPlan) -> impl Iterator<Item = &TargetRef> {
    plan.targets.iter().filter(|t| t.kind == TargetKind::Node)
}

#[async_trait]
impl Fault for NodeCordon {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> FaultKind {
        FaultKind::NodeCordon
    }

    async fn plan(&self, run_id: &str, firing: u32) -> Result<FaultPlan, FaultError> {
        plan_nodes(
            &self.context,
            run_id,
            &self.name,
            FaultKind::NodeCordon,
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
        let mut injection = Injection::default();
        for target in node_targets(plan) {
            let effect = cordon_planned(&self.context, plan, target).await;
            injection.effects.push(TargetEffect {
                target: target.clone(),
                effect,
                at: SystemTime::now(),
            });
        }
        Ok(injection)
    }
}

//! `zoneOutage`: every node of a zone cordoned and tainted
//! `steadfast.dev/zone-outage=<run-id>:NoExecute`, so the zone takes no new pods and loses the
//! ones it has, as when a zone goes dark, on any cloud and without touching the network.
//!
//! The plan journals, per node, an `Uncordon` (only for nodes schedulable now) and a
//! `RemoveTaint` (only when the taint is not there yet); inject changes exactly what those
//! records cover, so rollback removes only what steadfast added: other taints, and nodes that
//! were cordoned already, stay as they were.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::fault::kube_confirm::confirm_kube;
use crate::fault::kube_context::{KubeFaultContext, api, undo_records};
use crate::fault::kube_undo::{Change, ZONE_OUTAGE_TAINT, add_taint};
use crate::fault::node_cordon::{cordon_planned, node_targets};
use crate::fault::targets::{choose_nodes, nodes_matching};
use crate::fault::{
    Confirmation, Effect, Fault, FaultError, FaultPlan, Injection, Taint, TargetEffect, UndoAction,
};
use crate::plan::Selection;
use crate::spec::FaultKind;
use crate::spec::fault::{SelectionMode, ZoneOutageSpec};

/// Takes a zone out.
#[derive(Debug)]
pub struct ZoneOutage {
    name: String,
    spec: ZoneOutageSpec,
    context: KubeFaultContext,
}

impl ZoneOutage {
    /// A `zoneOutage` fault named `name`.
    pub fn new(name: String, spec: ZoneOutageSpec, context: KubeFaultContext) -> Self {
        Self {
            name,
            spec,
            context,
        }
    }
}

/// The taint a run puts on the nodes of the zone.
pub fn outage_taint(run_id: &str) -> Taint {
    Taint {
        key: ZONE_OUTAGE_TAINT.into(),
        value: taint_value(run_id),
        effect: "NoExecute".into(),
    }
}

/// A taint value is a label value: at most 63 characters, alphanumeric at both ends. The run
/// id ends in its timestamp and random suffix, so its tail is what keeps runs apart.
fn taint_value(run_id: &str) -> String {
    let tail = &run_id[run_id.len().saturating_sub(63)..];
    tail.trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

#[async_trait]
impl Fault for ZoneOutage {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> FaultKind {
        FaultKind::ZoneOutage
    }

    async fn plan(&self, run_id: &str, firing: u32) -> Result<FaultPlan, FaultError> {
        let ctx = &self.context;
        let nodes = ctx
            .kube
            .list_nodes(self.spec.node_selector.as_deref())
            .await
            .map_err(api)?;
        // Candidates are every matching node of the cluster, so `maxPercent` weighs the zone
        // against the whole; the choice is the zone's nodes.
        let candidates = nodes_matching(
            &nodes,
            self.spec.node_selector.as_deref(),
            None,
            &ctx.safety,
        )?;
        let in_zone: Vec<String> = candidates
            .iter()
            .filter(|c| c.zone.as_deref() == Some(self.spec.zone.as_str()))
            .map(|c| c.name.clone())
            .collect();
        if in_zone.is_empty() {
            return Err(FaultError::NoTargets(format!(
                "no node in zone {} matches the target and the safety rules",
                self.spec.zone
            )));
        }
        let selection = Selection {
            mode: SelectionMode::Names,
            count: None,
            percent: None,
            names: in_zone,
        };
        let seed = ctx.seed(&self.name, firing);
        let chosen = choose_nodes(&candidates, &selection, &ctx.safety, seed)?;
        let taint = outage_taint(run_id);
        let mut actions = Vec::new();
        for node in &chosen {
            if !node.unschedulable {
                actions.push(UndoAction::Uncordon {
                    node: node.name.clone(),
                });
            }
            let tainted = nodes.iter().any(|n| {
                n.metadata.name.as_deref() == Some(node.name.as_str())
                    && n.spec
                        .as_ref()
                        .and_then(|s| s.taints.as_ref())
                        .is_some_and(|ts| {
                            ts.iter().any(|t| {
                                t.key == taint.key
                                    && t.effect == taint.effect
                                    && t.value.as_deref().unwrap_or("") == taint.value
                            })
                        })
            });
            if !tainted {
                actions.push(UndoAction::RemoveTaint {
                    node: node.name.clone(),
                    taint: taint.clone(),
                });
            }
        }
        Ok(FaultPlan {
            fault: self.name.clone(),
            kind: FaultKind::ZoneOutage,
            targets: chosen.iter().map(|c| c.target()).collect(),
            undo: undo_records(run_id, &self.name, firing, actions),
            irreversible: Vec::new(),
            seed,
            candidates: candidates.len(),
        })
    }

    async fn confirm(
        &self,
        _plan: &FaultPlan,
        injection: &Injection,
        timeout: Duration,
    ) -> Confirmation {
        confirm_kube(
            &self.context.kube,
            injection,
            Some(ZONE_OUTAGE_TAINT),
            timeout,
        )
        .await
    }

    async fn inject(&self, plan: &FaultPlan) -> Result<Injection, FaultError> {
        let mut injection = Injection::default();
        for node in node_targets(plan) {
            let mut changed = matches!(
                cordon_planned(&self.context, plan, node).await,
                Effect::Applied
            );
            let mut error = None;
            let taints = plan.undo.iter().filter_map(|r| match &r.action {
                UndoAction::RemoveTaint { node: n, taint } if n == &node.name => Some(taint),
                _ => None,
            });
            for taint in taints {
                match add_taint(&self.context.kube, &node.name, taint).await {
                    Ok(Change::Made) => changed = true,
                    Ok(Change::AlreadyThere) => {}
                    Err(e) => error = Some(e.to_string()),
                }
            }
            let effect = match (error, changed) {
                (Some(error), _) => Effect::Failed { error },
                (None, true) => Effect::Applied,
                (None, false) => Effect::Skipped {
                    reason: "the node was already cordoned and tainted".into(),
                },
            };
            injection.effects.push(TargetEffect {
                target: node.clone(),
                effect,
                at: SystemTime::now(),
            });
        }
        Ok(injection)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_long_run_id_becomes_a_valid_taint_value_that_keeps_its_tail() {
        let id = format!("{}-20261205T102834.766Z-0a1f", "x".repeat(60));
        let value = super::outage_taint(&id).value;
        assert!(value.len() <= 63, "{value}");
        assert!(value.ends_with("20261205T102834.766Z-0a1f"), "{value}");
        assert!(value.starts_with(|c: char| c.is_ascii_alphanumeric()));
        assert_eq!(super::outage_taint("run-1").value, "run-1");
    }
}

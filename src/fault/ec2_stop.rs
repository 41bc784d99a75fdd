//! `ec2Stop`: stop running instances; rollback starts them again.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use chrono::Utc;

use super::ec2_terminate::{confirm_instance_states, instance_target};
use super::{
    Confirmation, Effect, Fault, FaultError, FaultPlan, Injection, TargetEffect, UndoAction,
    UndoRecord,
};
use crate::infra::aws::AwsContext;
use crate::plan::Caps;
use crate::plan::select::firing_seed;
use crate::spec::FaultKind;
use crate::spec::fault::Ec2StopSpec;

/// The `ec2Stop` fault.
pub struct Ec2StopFault {
    name: String,
    spec: Ec2StopSpec,
    context: AwsContext,
    caps: Caps,
    run_seed: u64,
}

impl Ec2StopFault {
    /// The fault `name` as `spec` describes it, choosing within `caps` with the run's seed.
    pub fn new(
        name: impl Into<String>,
        spec: Ec2StopSpec,
        context: AwsContext,
        caps: Caps,
        run_seed: u64,
    ) -> Self {
        Self {
            name: name.into(),
            spec,
            context,
            caps,
            run_seed,
        }
    }
}

#[async_trait]
impl Fault for Ec2StopFault {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> FaultKind {
        FaultKind::Ec2Stop
    }

    async fn plan(&self, run_id: &str, firing: u32) -> Result<FaultPlan, FaultError> {
        let map = self.context.zone_map().await?;
        let seed = firing_seed(self.run_seed, &self.name, firing);
        let (chosen, candidates) = map
            .choose_instances(&self.spec.target, |i| i.state == "running", self.caps, seed)
            .map_err(crate::infra::aws::AwsError::from)?;
        let irreversible = chosen
            .iter()
            .filter_map(|i| {
                i.group.as_ref().map(|g| {
                    format!(
                        "instance {} is in Auto Scaling group {g}: the group's health check may replace (terminate) it while it is stopped",
                        i.instance_id
                    )
                })
            })
            .collect();
        Ok(FaultPlan {
            fault: self.name.clone(),
            kind: FaultKind::Ec2Stop,
            targets: chosen.iter().map(instance_target).collect(),
            undo: vec![UndoRecord {
                id: format!("{run_id}/{}/{firing}/0", self.name),
                run_id: run_id.to_owned(),
                fault: self.name.clone(),
                action: UndoAction::StartInstances {
                    region: self.context.clients.region.clone(),
                    instance_ids: chosen.iter().map(|i| i.instance_id.clone()).collect(),
                },
                created_at: Utc::now(),
            }],
            irreversible,
            seed,
            candidates,
        })
    }

    async fn confirm(
        &self,
        _plan: &FaultPlan,
        injection: &Injection,
        timeout: Duration,
    ) -> Confirmation {
        confirm_instance_states(&self.context, injection, &["stopping", "stopped"], timeout).await
    }

    async fn inject(&self, plan: &FaultPlan) -> Result<Injection, FaultError> {
        let ids: Vec<String> = plan.targets.iter().map(|t| t.name.clone()).collect();
        let changes = self.context.clients.ec2.stop_instances(&ids).await?;
        let at = SystemTime::now();
        let effects = plan
            .targets
            .iter()
            .map(|target| {
                let effect = match changes.iter().find(|(id, _)| id == &target.name) {
                    Some((_, state)) if state == "stopping" || state == "stopped" => {
                        Effect::Applied
                    }
                    Some((_, state)) => Effect::Skipped {
                        reason: format!("the instance is {state}"),
                    },
                    None => Effect::Failed {
                        error: "EC2 did not report the instance stopping".into(),
                    },
                };
                TargetEffect {
                    target: target.clone(),
                    effect,
                    at,
                }
            })
            .collect();
        Ok(Injection { effects })
    }
}

//! `ec2Terminate`: terminate instances and let their Auto Scaling groups replace them, then
//! check that they did.
//!
//! Group members go through `TerminateInstanceInAutoScalingGroup` without lowering the desired
//! capacity, so the group launches a replacement; instances outside any group are refused
//! unless the spec opts in with `allowStandalone`, since nothing would bring them back. The
//! step is irreversible either way, and the plan says so.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::aws_undo::polls_within;
use super::{
    Confirmation, Effect, Fault, FaultError, FaultPlan, Healing, Injection, TargetEffect,
    TargetKind, TargetRef,
};
use crate::infra::aws::{AwsContext, AwsError};
use crate::plan::Caps;
use crate::plan::select::firing_seed;
use crate::plan::zones::InstanceFacts;
use crate::spec::FaultKind;
use crate::spec::fault::Ec2TerminateSpec;

/// The target an instance is in plans and reports.
pub(crate) fn instance_target(instance: &InstanceFacts) -> TargetRef {
    TargetRef {
        kind: TargetKind::Instance,
        name: instance.instance_id.clone(),
        namespace: None,
        node: instance.node.clone(),
        zone: Some(instance.zone.clone()),
    }
}

/// Reads each changed instance back until EC2 reports it in one of `states` (the transition
/// and where it ends: `stopping`/`stopped`, `shutting-down`/`terminated`).
pub(crate) async fn confirm_instance_states(
    context: &AwsContext,
    injection: &Injection,
    states: &[&str],
    timeout: Duration,
) -> Confirmation {
    super::effect::confirm_each(injection, timeout, |target| async move {
        let found = context
            .clients
            .ec2
            .describe_instances(None, std::slice::from_ref(&target.name))
            .await
            .map_err(|e| e.to_string())?;
        Ok(match found.iter().find(|i| i.instance_id == target.name) {
            Some(i) if states.contains(&i.state.as_str()) => super::effect::Check::Done,
            Some(i) => super::effect::Check::Pending(format!("the instance is {}", i.state)),
            None => super::effect::Check::Pending("EC2 does not list the instance".into()),
        })
    })
    .await
}

/// One terminated instance and what replaced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Replacement {
    /// The instance steadfast terminated.
    pub terminated_instance: String,
    /// Its Auto Scaling group; `None` for a standalone instance, which nothing replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Its zone.
    pub zone: String,
    /// When it was terminated.
    pub terminated_at: DateTime<Utc>,
    /// The instance the group launched in its place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_instance: Option<String>,
    /// The replacement's zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_zone: Option<String>,
    /// When the replacement was first seen in service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_service_at: Option<DateTime<Utc>>,
    /// The Kubernetes node of the replacement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// When that node was first seen Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_ready_at: Option<DateTime<Utc>>,
    /// Seconds from termination until the replacement was whole: its node Ready when nodes
    /// are watched, else in service. Observed by polling, so late by up to one poll interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_after_seconds: Option<f64>,
}

/// A group's capacity when the check ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupCapacity {
    /// The group.
    pub name: String,
    /// Its desired capacity.
    pub desired_capacity: u32,
    /// Its members in service and healthy.
    pub in_service: u32,
}

/// The outcome of the self-healing check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelfHealingReport {
    /// False when the spec disabled the check (`replacementTimeout: 0s`).
    pub checked: bool,
    /// Every touched group is back at its desired capacity with the terminated instances out
    /// of service, and every replacement (and its node, when watched) is ready.
    pub healed: bool,
    /// How long the check waited.
    pub waited_seconds: f64,
    /// The touched groups.
    pub groups: Vec<GroupCapacity>,
    /// Per terminated instance.
    pub replacements: Vec<Replacement>,
}

#[derive(Debug, Clone)]
struct Terminated {
    instance_id: String,
    group: Option<String>,
    zone: String,
    at: SystemTime,
}

#[derive(Debug, Default)]
struct InjectState {
    terminated: Vec<Terminated>,
    members_before: BTreeMap<String, BTreeSet<String>>,
}

/// The `ec2Terminate` fault.
pub struct Ec2TerminateFault {
    name: String,
    spec: Ec2TerminateSpec,
    context: AwsContext,
    caps: Caps,
    run_seed: u64,
    state: Mutex<InjectState>,
}

impl Ec2TerminateFault {
    /// The fault `name` as `spec` describes it, choosing within `caps` with the run's seed.
    pub fn new(
        name: impl Into<String>,
        spec: Ec2TerminateSpec,
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
            state: Mutex::new(InjectState::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, InjectState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn terminate_one(&self, target: &TargetRef, group: Option<&String>) -> Effect {
        let result = match group {
            Some(_) => self
                .context
                .clients
                .autoscaling
                .terminate_and_replace(&target.name)
                .await
                .map(|_| ()),
            None if self.spec.allow_standalone => self
                .context
                .clients
                .ec2
                .terminate_instances(std::slice::from_ref(&target.name))
                .await
                .map(|_| ()),
            None => {
                return Effect::Skipped {
                    reason: "no longer in an Auto Scaling group and allowStandalone is false"
                        .into(),
                };
            }
        };
        match result {
            Ok(()) => Effect::Applied,
            Err(err) => Effect::Failed {
                error: err.to_string(),
            },
        }
    }

    /// Waits, at most `replacementTimeout`, until every group touched by `injection` is back
    /// at its desired capacity without the terminated instances and, when the context has a
    /// node source, the replacement instances' nodes are Ready. A timeout is not an error:
    /// the report says `healed: false`, which is the finding.
    ///
    /// # Errors
    /// When AWS or the node source cannot be read.
    pub async fn await_replacement(
        &self,
        injection: &Injection,
    ) -> Result<SelfHealingReport, FaultError> {
        let timeout = self.spec.replacement_timeout.get();
        let applied: BTreeSet<&str> = injection
            .effects
            .iter()
            .filter(|e| e.effect == Effect::Applied)
            .map(|e| e.target.name.as_str())
            .collect();
        let (terminated, members_before) = {
            let state = self.state();
            let terminated: Vec<Terminated> = state
                .terminated
                .iter()
                .filter(|t| applied.contains(t.instance_id.as_str()))
                .cloned()
                .collect();
            (terminated, state.members_before.clone())
        };
        let mut replacements: Vec<Replacement> = terminated
            .iter()
            .map(|t| Replacement {
                terminated_instance: t.instance_id.clone(),
                group: t.group.clone(),
                zone: t.zone.clone(),
                terminated_at: DateTime::<Utc>::from(t.at),
                replacement_instance: None,
                replacement_zone: None,
                in_service_at: None,
                node: None,
                node_ready_at: None,
                replaced_after_seconds: None,
            })
            .collect();
        if timeout.is_zero() {
            return Ok(SelfHealingReport {
                checked: false,
                healed: false,
                waited_seconds: 0.0,
                groups: Vec::new(),
                replacements,
            });
        }
        let group_names: Vec<String> = terminated
            .iter()
            .filter_map(|t| t.group.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let gone: BTreeSet<&str> = terminated.iter().map(|t| t.instance_id.as_str()).collect();
        let poll = self.context.poll_interval;
        let started = Instant::now();
        let mut groups = Vec::new();
        let mut healed = false;
        for _ in 0..polls_within(timeout, poll) {
            let now = Utc::now();
            let facts = self
                .context
                .clients
                .autoscaling
                .describe_groups(&group_names)
                .await?;
            let nodes = match &self.context.nodes {
                Some(source) => Some(source.list_nodes().await.map_err(AwsError::from)?),
                None => None,
            };
            let assigned: BTreeSet<String> = replacements
                .iter()
                .filter_map(|r| r.replacement_instance.clone())
                .collect();
            for group in &facts {
                let before = members_before.get(&group.name);
                let mut fresh: Vec<_> = group
                    .members
                    .iter()
                    .filter(|m| m.in_service())
                    .filter(|m| before.is_none_or(|b| !b.contains(&m.instance_id)))
                    .filter(|m| !assigned.contains(&m.instance_id))
                    .collect();
                for r in replacements
                    .iter_mut()
                    .filter(|r| r.group.as_ref() == Some(&group.name))
                    .filter(|r| r.replacement_instance.is_none())
                {
                    let pick = fresh
                        .iter()
                        .position(|m| m.zone == r.zone)
                        .or((!fresh.is_empty()).then_some(0));
                    if let Some(index) = pick {
                        let member = fresh.remove(index);
                        r.replacement_instance = Some(member.instance_id.clone());
                        r.replacement_zone = Some(member.zone.clone());
                        r.in_service_at = Some(now);
                    }
                }
            }
            if let Some(nodes) = &nodes {
                for r in replacements
                    .iter_mut()
                    .filter(|r| r.node_ready_at.is_none())
                {
                    let Some(instance) = &r.replacement_instance else {
                        continue;
                    };
                    if let Some(node) = nodes
                        .iter()
                        .find(|n| n.instance_id.as_deref() == Some(instance.as_str()))
                    {
                        r.node = Some(node.name.clone());
                        if node.ready {
                            r.node_ready_at = Some(now);
                        }
                    }
                }
            }
            groups = facts
                .iter()
                .map(|g| GroupCapacity {
                    name: g.name.clone(),
                    desired_capacity: g.desired_capacity,
                    in_service: u32::try_from(g.in_service()).unwrap_or(u32::MAX),
                })
                .collect();
            let groups_whole = group_names.iter().all(|name| {
                facts.iter().any(|g| {
                    &g.name == name
                        && g.in_service() >= g.desired_capacity as usize
                        && !g
                            .members
                            .iter()
                            .any(|m| m.in_service() && gone.contains(m.instance_id.as_str()))
                })
            });
            let replaced = replacements.iter().filter(|r| r.group.is_some()).all(|r| {
                r.replacement_instance.is_some() && (nodes.is_none() || r.node_ready_at.is_some())
            });
            if groups_whole && replaced {
                healed = true;
                break;
            }
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            tokio::time::sleep(poll.min(left)).await;
        }
        for r in &mut replacements {
            let whole = if self.context.nodes.is_some() {
                r.node_ready_at
            } else {
                r.in_service_at
            };
            r.replaced_after_seconds = whole.map(|at| {
                (at - r.terminated_at)
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .as_secs_f64()
            });
        }
        Ok(SelfHealingReport {
            checked: true,
            healed,
            waited_seconds: started.elapsed().as_secs_f64(),
            groups,
            replacements,
        })
    }
}

#[async_trait]
impl Fault for Ec2TerminateFault {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> FaultKind {
        FaultKind::Ec2Terminate
    }

    async fn plan(&self, _run_id: &str, firing: u32) -> Result<FaultPlan, FaultError> {
        let map = self.context.zone_map().await?;
        let seed = firing_seed(self.run_seed, &self.name, firing);
        let (chosen, candidates) = map
            .choose_instances(
                &self.spec.target,
                |i| matches!(i.state.as_str(), "pending" | "running" | "stopped"),
                self.caps,
                seed,
            )
            .map_err(AwsError::from)?;
        let standalone: Vec<&str> = chosen
            .iter()
            .filter(|i| i.group.is_none())
            .map(|i| i.instance_id.as_str())
            .collect();
        if !standalone.is_empty() && !self.spec.allow_standalone {
            return Err(FaultError::Refused(format!(
                "{} in no Auto Scaling group: nothing would replace it; set allowStandalone: true to terminate anyway",
                standalone.join(", ")
            )));
        }
        let irreversible = chosen
            .iter()
            .map(|i| match &i.group {
                Some(group) => format!(
                    "terminate instance {} (group {group} launches a replacement)",
                    i.instance_id
                ),
                None => format!(
                    "terminate standalone instance {}: nothing replaces it",
                    i.instance_id
                ),
            })
            .collect();
        Ok(FaultPlan {
            fault: self.name.clone(),
            kind: FaultKind::Ec2Terminate,
            targets: chosen.iter().map(instance_target).collect(),
            undo: Vec::new(),
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
        confirm_instance_states(
            &self.context,
            injection,
            &["shutting-down", "terminated"],
            timeout,
        )
        .await
    }

    async fn inject(&self, plan: &FaultPlan) -> Result<Injection, FaultError> {
        let ids: Vec<String> = plan.targets.iter().map(|t| t.name.clone()).collect();
        // Membership is read again: an instance may have left its group since the plan.
        let groups_of = self.context.clients.autoscaling.groups_of(&ids).await?;
        let names: Vec<String> = groups_of
            .values()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let before = self
            .context
            .clients
            .autoscaling
            .describe_groups(&names)
            .await?;
        self.state()
            .members_before
            .extend(before.into_iter().map(|g| {
                let members = g.members.into_iter().map(|m| m.instance_id).collect();
                (g.name, members)
            }));
        let mut effects = Vec::new();
        for target in &plan.targets {
            let group = groups_of.get(&target.name);
            let effect = self.terminate_one(target, group).await;
            let at = SystemTime::now();
            if effect == Effect::Applied {
                tracing::info!(instance = %target.name, group = ?group, "terminated");
                self.state().terminated.push(Terminated {
                    instance_id: target.name.clone(),
                    group: group.cloned(),
                    zone: target.zone.clone().unwrap_or_default(),
                    at,
                });
            }
            effects.push(TargetEffect {
                target: target.clone(),
                effect,
                at,
            });
        }
        Ok(Injection { effects })
    }

    /// The replacement check, bounded by the spec's `replacementTimeout` (the engine's timeout
    /// is an outer bound only).
    async fn await_healing(
        &self,
        _plan: &FaultPlan,
        injection: &Injection,
        _timeout: Duration,
    ) -> Healing {
        match self.await_replacement(injection).await {
            Ok(report) if !report.checked => Healing::NotApplicable,
            Ok(report) if report.healed => Healing::Healed {
                after: Duration::from_secs_f64(report.waited_seconds),
            },
            Ok(_) => Healing::NotHealed,
            Err(err) => {
                tracing::warn!(%err, "the self-healing check of {} failed", self.name);
                Healing::NotHealed
            }
        }
    }
}

//! `azPartition`: cut an availability zone off the network by moving its subnets to a new,
//! deny-all network ACL.
//!
//! The plan records each subnet's original ACL in the undo record (journaled before anything
//! changes); the new ACL also carries them as tags, `steadfast/original/<subnet-id>=<acl-id>`,
//! so the cloud itself knows how to heal even when the journal is lost
//! ([`super::aws_undo::sweep_network_acls`]).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use chrono::Utc;

use super::{
    Confirmation, Effect, Fault, FaultError, FaultPlan, Injection, SubnetAcl, TargetEffect,
    TargetKind, TargetRef, UndoAction, UndoRecord,
};
use crate::infra::aws::{
    AwsContext, MANAGED_BY_KEY, MANAGED_BY_VALUE, ORIGINAL_ACL_TAG_PREFIX, RUN_ID_TAG,
};
use crate::plan::zones::SubnetFacts;
use crate::spec::FaultKind;
use crate::spec::fault::AzPartitionSpec;

/// AWS allows 50 tags per resource; two are steadfast's own, the rest name original ACLs.
const MAX_SUBNETS: usize = 48;

/// The `azPartition` fault.
pub struct AzPartitionFault {
    name: String,
    spec: AzPartitionSpec,
    context: AwsContext,
}

impl AzPartitionFault {
    /// The fault `name` as `spec` describes it, acting through `context`.
    pub fn new(name: impl Into<String>, spec: AzPartitionSpec, context: AwsContext) -> Self {
        Self {
            name: name.into(),
            spec,
            context,
        }
    }

    async fn vpc_id(&self) -> Result<String, FaultError> {
        if let Some(vpc) = &self.context.vpc_id {
            return Ok(vpc.clone());
        }
        self.context.zone_map().await?.vpc_id.ok_or_else(|| {
            FaultError::Refused(
                "no VPC: set spec.aws.vpcId, or give a node source whose nodes run on EC2".into(),
            )
        })
    }

    fn excluded(&self, subnet: &SubnetFacts) -> bool {
        self.spec
            .exclude_subnet_tags
            .iter()
            .any(|(k, v)| subnet.tags.get(k) == Some(v))
    }
}

/// The tags of the deny-all ACL of `run_id` for these subnets.
pub fn partition_acl_tags(run_id: &str, original: &[SubnetAcl]) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::from([
        (MANAGED_BY_KEY.to_owned(), MANAGED_BY_VALUE.to_owned()),
        (RUN_ID_TAG.to_owned(), run_id.to_owned()),
    ]);
    for pair in original {
        tags.insert(
            format!("{ORIGINAL_ACL_TAG_PREFIX}{}", pair.subnet_id),
            pair.network_acl_id.clone(),
        );
    }
    tags
}

/// Whether an ACL with these tags is the deny-all ACL steadfast made for run `run_id`.
fn is_partition_acl(tags: &BTreeMap<String, String>, run_id: &str) -> bool {
    tags.get(MANAGED_BY_KEY).map(String::as_str) == Some(MANAGED_BY_VALUE)
        && tags.get(RUN_ID_TAG).map(String::as_str) == Some(run_id)
}

#[async_trait]
impl Fault for AzPartitionFault {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> FaultKind {
        FaultKind::AzPartition
    }

    async fn plan(&self, run_id: &str, firing: u32) -> Result<FaultPlan, FaultError> {
        let vpc_id = self.vpc_id().await?;
        let ec2 = &self.context.clients.ec2;
        let all = ec2.describe_subnets(Some(&vpc_id)).await?;
        let in_zone: Vec<&SubnetFacts> = all.iter().filter(|s| s.zone == self.spec.zone).collect();
        let subnets: Vec<&SubnetFacts> = in_zone
            .iter()
            .copied()
            .filter(|s| !self.excluded(s))
            .collect();
        if subnets.is_empty() {
            return Err(FaultError::NoTargets(format!(
                "VPC {vpc_id} has no subnet in {} ({} excluded by tag)",
                self.spec.zone,
                in_zone.len()
            )));
        }
        if subnets.len() > MAX_SUBNETS {
            return Err(FaultError::Refused(format!(
                "{} subnets in {}; one ACL can record at most {MAX_SUBNETS}",
                subnets.len(),
                self.spec.zone
            )));
        }
        let mut original = Vec::new();
        for subnet in &subnets {
            let Some((acl, _)) = ec2.subnet_acl(&subnet.subnet_id).await? else {
                return Err(FaultError::Api {
                    action: "ec2:DescribeNetworkAcls".into(),
                    message: format!("subnet {} has no network ACL", subnet.subnet_id),
                });
            };
            if acl.tags.get(MANAGED_BY_KEY).map(String::as_str) == Some(MANAGED_BY_VALUE) {
                return Err(FaultError::Refused(format!(
                    "subnet {} is already on steadfast's ACL {} (run {}); run `steadfast rollback` first",
                    subnet.subnet_id,
                    acl.network_acl_id,
                    acl.tags.get(RUN_ID_TAG).map_or("unknown", String::as_str)
                )));
            }
            original.push(SubnetAcl {
                subnet_id: subnet.subnet_id.clone(),
                network_acl_id: acl.network_acl_id,
            });
        }
        Ok(FaultPlan {
            fault: self.name.clone(),
            kind: FaultKind::AzPartition,
            targets: subnets
                .iter()
                .map(|s| TargetRef {
                    kind: TargetKind::Subnet,
                    name: s.subnet_id.clone(),
                    namespace: None,
                    node: None,
                    zone: Some(s.zone.clone()),
                })
                .collect(),
            undo: vec![UndoRecord {
                id: format!("{run_id}/{}/{firing}/0", self.name),
                run_id: run_id.to_owned(),
                fault: self.name.clone(),
                action: UndoAction::RestoreNetworkAcls {
                    region: self.context.clients.region.clone(),
                    vpc_id,
                    original,
                },
                created_at: Utc::now(),
            }],
            irreversible: Vec::new(),
            seed: 0,
            candidates: in_zone.len(),
        })
    }

    async fn confirm(
        &self,
        plan: &FaultPlan,
        injection: &Injection,
        timeout: Duration,
    ) -> Confirmation {
        let run_id = plan
            .undo
            .first()
            .map(|r| r.run_id.clone())
            .unwrap_or_default();
        let ec2 = &self.context.clients.ec2;
        super::effect::confirm_each(injection, timeout, |target| {
            let run_id = run_id.clone();
            async move {
                let found = ec2
                    .subnet_acl(&target.name)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(match found {
                    Some((acl, _)) if is_partition_acl(&acl.tags, &run_id) => {
                        super::effect::Check::Done
                    }
                    Some((acl, _)) => super::effect::Check::Pending(format!(
                        "associated with {}, not the deny-all ACL",
                        acl.network_acl_id
                    )),
                    None => super::effect::Check::Pending("the subnet has no ACL".into()),
                })
            }
        })
        .await
    }

    async fn inject(&self, plan: &FaultPlan) -> Result<Injection, FaultError> {
        let Some((run_id, vpc_id, original)) = plan.undo.iter().find_map(|r| match &r.action {
            UndoAction::RestoreNetworkAcls {
                vpc_id, original, ..
            } => Some((r.run_id.as_str(), vpc_id.as_str(), original)),
            _ => None,
        }) else {
            return Err(FaultError::Refused(
                "the plan carries no network ACL undo record".into(),
            ));
        };
        let ec2 = &self.context.clients.ec2;
        let acl_id = ec2
            .create_network_acl(vpc_id, &partition_acl_tags(run_id, original))
            .await?;
        tracing::info!(acl = %acl_id, zone = %self.spec.zone, "created the deny-all network ACL");
        let mut effects = Vec::new();
        for pair in original {
            let target = plan
                .targets
                .iter()
                .find(|t| t.name == pair.subnet_id)
                .cloned()
                .unwrap_or_else(|| TargetRef {
                    kind: TargetKind::Subnet,
                    name: pair.subnet_id.clone(),
                    namespace: None,
                    node: None,
                    zone: Some(self.spec.zone.clone()),
                });
            let effect = match ec2.subnet_acl(&pair.subnet_id).await {
                Ok(Some((_, association))) => match ec2
                    .replace_network_acl_association(&association.association_id, &acl_id)
                    .await
                {
                    Ok(_) => Effect::Applied,
                    Err(err) => Effect::Failed {
                        error: err.to_string(),
                    },
                },
                Ok(None) => Effect::Skipped {
                    reason: "the subnet is gone".into(),
                },
                Err(err) => Effect::Failed {
                    error: err.to_string(),
                },
            };
            effects.push(TargetEffect {
                target,
                effect,
                at: SystemTime::now(),
            });
        }
        Ok(Injection { effects })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_acl_tags_name_the_run_and_every_original() {
        let tags = partition_acl_tags(
            "run-1",
            &[
                SubnetAcl {
                    subnet_id: "subnet-a".into(),
                    network_acl_id: "acl-1".into(),
                },
                SubnetAcl {
                    subnet_id: "subnet-b".into(),
                    network_acl_id: "acl-2".into(),
                },
            ],
        );
        assert_eq!(tags["managed-by"], "steadfast");
        assert_eq!(tags["steadfast/run-id"], "run-1");
        assert_eq!(tags["steadfast/original/subnet-a"], "acl-1");
        assert_eq!(tags["steadfast/original/subnet-b"], "acl-2");
        assert_eq!(tags.len(), 4);
    }
}

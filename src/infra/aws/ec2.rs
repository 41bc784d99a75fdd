//! The EC2 adapter: instances, subnets and network ACLs, in the crate's own types.
//!
//! Every SDK call goes through `self.client`, so the policy test can find them all.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};

use super::error::AwsError;
use crate::plan::zones::{InstanceFacts, SubnetFacts};

/// Most pages one describe call follows; far above any VPC steadfast is pointed at.
const MAX_PAGES: usize = 200;

/// A network ACL and the subnets associated with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkAcl {
    /// The ACL id.
    pub network_acl_id: String,
    /// Its VPC.
    pub vpc_id: String,
    /// True for the VPC's default ACL.
    pub is_default: bool,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// The subnets on it.
    pub associations: Vec<AclAssociation>,
}

/// One subnet's association with an ACL. The id changes on every replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclAssociation {
    /// The association id.
    pub association_id: String,
    /// The subnet.
    pub subnet_id: String,
}

/// Which ACLs to describe; every field given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclFilter {
    /// In this VPC.
    pub vpc_id: Option<String>,
    /// Associated with this subnet.
    pub subnet_id: Option<String>,
    /// With these ids (an unknown id fails the call with `InvalidNetworkAclID.NotFound`).
    pub acl_ids: Vec<String>,
    /// Carrying these tags.
    pub tags: Vec<(String, String)>,
    /// Only default (or only non-default) ACLs.
    pub default: Option<bool>,
}

/// The EC2 calls steadfast makes.
#[derive(Debug, Clone)]
pub struct Ec2 {
    client: aws_sdk_ec2::Client,
}

fn filter(name: &str, values: impl IntoIterator<Item = String>) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.into_iter().collect()))
        .build()
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

impl Ec2 {
    /// Wraps a client.
    pub fn new(client: aws_sdk_ec2::Client) -> Self {
        Self { client }
    }

    /// Instances in `vpc_id` (all of the region when `None`), or exactly `instance_ids` when
    /// given. Terminated instances are included with their state; the zone model drops them.
    ///
    /// # Errors
    /// When the call fails.
    pub async fn describe_instances(
        &self,
        vpc_id: Option<&str>,
        instance_ids: &[String],
    ) -> Result<Vec<InstanceFacts>, AwsError> {
        let mut filters = Vec::new();
        if let Some(vpc) = vpc_id {
            filters.push(filter("vpc-id", [vpc.to_owned()]));
        }
        let mut facts = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .client
                .describe_instances()
                .set_filters((!filters.is_empty()).then(|| filters.clone()))
                .set_instance_ids((!instance_ids.is_empty()).then(|| instance_ids.to_vec()))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| AwsError::api("ec2:DescribeInstances", e))?;
            for instance in page.reservations().iter().flat_map(|r| r.instances()) {
                let Some(id) = instance.instance_id() else {
                    continue;
                };
                facts.push(InstanceFacts {
                    instance_id: id.to_owned(),
                    zone: instance
                        .placement()
                        .and_then(|p| p.availability_zone())
                        .unwrap_or_default()
                        .to_owned(),
                    subnet_id: instance.subnet_id().map(str::to_owned),
                    vpc_id: instance.vpc_id().map(str::to_owned),
                    state: instance
                        .state()
                        .and_then(|s| s.name())
                        .map(|n| n.as_str().to_owned())
                        .unwrap_or_default(),
                    tags: tag_map(instance.tags()),
                    group: None,
                    node: None,
                });
            }
            match page.next_token().filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next.to_owned()),
                None => break,
            }
        }
        facts.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        Ok(facts)
    }

    /// Subnets in `vpc_id` (all of the region when `None`).
    ///
    /// # Errors
    /// When the call fails.
    pub async fn describe_subnets(
        &self,
        vpc_id: Option<&str>,
    ) -> Result<Vec<SubnetFacts>, AwsError> {
        let filters = vpc_id.map(|vpc| vec![filter("vpc-id", [vpc.to_owned()])]);
        let mut facts = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .client
                .describe_subnets()
                .set_filters(filters.clone())
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| AwsError::api("ec2:DescribeSubnets", e))?;
            for subnet in page.subnets() {
                let (Some(id), Some(zone), Some(vpc)) = (
                    subnet.subnet_id(),
                    subnet.availability_zone(),
                    subnet.vpc_id(),
                ) else {
                    continue;
                };
                facts.push(SubnetFacts {
                    subnet_id: id.to_owned(),
                    zone: zone.to_owned(),
                    vpc_id: vpc.to_owned(),
                    tags: tag_map(subnet.tags()),
                });
            }
            match page.next_token().filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next.to_owned()),
                None => break,
            }
        }
        facts.sort_by(|a, b| a.subnet_id.cmp(&b.subnet_id));
        Ok(facts)
    }

    /// Network ACLs matching `acl_filter`.
    ///
    /// # Errors
    /// When the call fails.
    pub async fn describe_network_acls(
        &self,
        acl_filter: &AclFilter,
    ) -> Result<Vec<NetworkAcl>, AwsError> {
        let mut filters = Vec::new();
        if let Some(vpc) = &acl_filter.vpc_id {
            filters.push(filter("vpc-id", [vpc.clone()]));
        }
        if let Some(subnet) = &acl_filter.subnet_id {
            filters.push(filter("association.subnet-id", [subnet.clone()]));
        }
        for (key, value) in &acl_filter.tags {
            filters.push(filter(&format!("tag:{key}"), [value.clone()]));
        }
        if let Some(default) = acl_filter.default {
            filters.push(filter("default", [default.to_string()]));
        }
        let mut acls = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .client
                .describe_network_acls()
                .set_network_acl_ids(
                    (!acl_filter.acl_ids.is_empty()).then(|| acl_filter.acl_ids.clone()),
                )
                .set_filters((!filters.is_empty()).then(|| filters.clone()))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| AwsError::api("ec2:DescribeNetworkAcls", e))?;
            for acl in page.network_acls() {
                let Some(id) = acl.network_acl_id() else {
                    continue;
                };
                acls.push(NetworkAcl {
                    network_acl_id: id.to_owned(),
                    vpc_id: acl.vpc_id().unwrap_or_default().to_owned(),
                    is_default: acl.is_default().unwrap_or(false),
                    tags: tag_map(acl.tags()),
                    associations: acl
                        .associations()
                        .iter()
                        .filter_map(|a| {
                            Some(AclAssociation {
                                association_id: a.network_acl_association_id()?.to_owned(),
                                subnet_id: a.subnet_id()?.to_owned(),
                            })
                        })
                        .collect(),
                });
            }
            match page.next_token().filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next.to_owned()),
                None => break,
            }
        }
        acls.sort_by(|a, b| a.network_acl_id.cmp(&b.network_acl_id));
        Ok(acls)
    }

    /// The ACL a subnet is on now, with the current association id.
    ///
    /// # Errors
    /// When the call fails.
    pub async fn subnet_acl(
        &self,
        subnet_id: &str,
    ) -> Result<Option<(NetworkAcl, AclAssociation)>, AwsError> {
        let acls = self
            .describe_network_acls(&AclFilter {
                subnet_id: Some(subnet_id.to_owned()),
                ..AclFilter::default()
            })
            .await?;
        Ok(acls.into_iter().find_map(|acl| {
            let association = acl
                .associations
                .iter()
                .find(|a| a.subnet_id == subnet_id)
                .cloned()?;
            Some((acl, association))
        }))
    }

    /// Creates a network ACL in `vpc_id` carrying `tags` from the first instant (create-time
    /// tagging, which the IAM policy requires). A new ACL denies all traffic.
    ///
    /// # Errors
    /// When the call fails or answers without an id.
    pub async fn create_network_acl(
        &self,
        vpc_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, AwsError> {
        let spec = TagSpecification::builder()
            .resource_type(ResourceType::NetworkAcl)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .build();
        let out = self
            .client
            .create_network_acl()
            .vpc_id(vpc_id)
            .tag_specifications(spec)
            .send()
            .await
            .map_err(|e| AwsError::api("ec2:CreateNetworkAcl", e))?;
        out.network_acl()
            .and_then(|a| a.network_acl_id())
            .map(str::to_owned)
            .ok_or_else(|| AwsError::Api {
                action: "ec2:CreateNetworkAcl",
                code: None,
                message: "the answer carries no ACL id".into(),
                timed_out: false,
            })
    }

    /// Moves the subnet of `association_id` to `network_acl_id`; returns the new association id.
    ///
    /// # Errors
    /// When the call fails.
    pub async fn replace_network_acl_association(
        &self,
        association_id: &str,
        network_acl_id: &str,
    ) -> Result<String, AwsError> {
        let out = self
            .client
            .replace_network_acl_association()
            .association_id(association_id)
            .network_acl_id(network_acl_id)
            .send()
            .await
            .map_err(|e| AwsError::api("ec2:ReplaceNetworkAclAssociation", e))?;
        Ok(out.new_association_id().unwrap_or_default().to_owned())
    }

    /// Deletes a network ACL (it must have no subnets left).
    ///
    /// # Errors
    /// When the call fails; [`AwsError::is_not_found`] tells an ACL already gone.
    pub async fn delete_network_acl(&self, network_acl_id: &str) -> Result<(), AwsError> {
        self.client
            .delete_network_acl()
            .network_acl_id(network_acl_id)
            .send()
            .await
            .map_err(|e| AwsError::api("ec2:DeleteNetworkAcl", e))?;
        Ok(())
    }

    /// Terminates instances; returns each one's new state.
    ///
    /// # Errors
    /// When the call fails.
    pub async fn terminate_instances(
        &self,
        instance_ids: &[String],
    ) -> Result<Vec<(String, String)>, AwsError> {
        let out = self
            .client
            .terminate_instances()
            .set_instance_ids(Some(instance_ids.to_vec()))
            .send()
            .await
            .map_err(|e| AwsError::api("ec2:TerminateInstances", e))?;
        Ok(state_changes(out.terminating_instances()))
    }

    /// Stops instances; returns each one's new state.
    ///
    /// # Errors
    /// When the call fails.
    pub async fn stop_instances(
        &self,
        instance_ids: &[String],
    ) -> Result<Vec<(String, String)>, AwsError> {
        let out = self
            .client
            .stop_instances()
            .set_instance_ids(Some(instance_ids.to_vec()))
            .send()
            .await
            .map_err(|e| AwsError::api("ec2:StopInstances", e))?;
        Ok(state_changes(out.stopping_instances()))
    }

    /// Starts instances; returns each one's new state.
    ///
    /// # Errors
    /// When the call fails.
    pub async fn start_instances(
        &self,
        instance_ids: &[String],
    ) -> Result<Vec<(String, String)>, AwsError> {
        let out = self
            .client
            .start_instances()
            .set_instance_ids(Some(instance_ids.to_vec()))
            .send()
            .await
            .map_err(|e| AwsError::api("ec2:StartInstances", e))?;
        Ok(state_changes(out.starting_instances()))
    }
}

fn state_changes(changes: &[aws_sdk_ec2::types::InstanceStateChange]) -> Vec<(String, String)> {
    changes
        .iter()
        .filter_map(|c| {
            Some((
                c.instance_id()?.to_owned(),
                c.current_state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_owned())
                    .unwrap_or_default(),
            ))
        })
        .collect()
}

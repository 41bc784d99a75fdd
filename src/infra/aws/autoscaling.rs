//! The Auto Scaling adapter: groups, membership, and terminations the group replaces.
//!
//! Every SDK call goes through `self.client`, so the policy test can find them all.

use std::collections::BTreeMap;

use super::error::AwsError;
use crate::plan::zones::{GroupFacts, GroupMember};

/// Most pages one describe call follows.
const MAX_PAGES: usize = 100;
/// DescribeAutoScalingGroups accepts at most this many names per call.
const NAMES_PER_CALL: usize = 100;
/// DescribeAutoScalingInstances accepts at most this many ids per call.
const IDS_PER_CALL: usize = 50;

/// The Auto Scaling calls steadfast makes.
#[derive(Debug, Clone)]
pub struct AutoScaling {
    client: aws_sdk_autoscaling::Client,
}

impl AutoScaling {
    /// Wraps a client.
    pub fn new(client: aws_sdk_autoscaling::Client) -> Self {
        Self { client }
    }

    /// The named groups, or every group of the region when `names` is empty. Unknown names
    /// are simply absent from the answer.
    ///
    /// # Errors
    /// When the call fails.
    pub async fn describe_groups(&self, names: &[String]) -> Result<Vec<GroupFacts>, AwsError> {
        let batches: Vec<Option<Vec<String>>> = if names.is_empty() {
            vec![None]
        } else {
            names
                .chunks(NAMES_PER_CALL)
                .map(|c| Some(c.to_vec()))
                .collect()
        };
        let mut groups = Vec::new();
        for batch in batches {
            let mut token: Option<String> = None;
            for _ in 0..MAX_PAGES {
                let page = self
                    .client
                    .describe_auto_scaling_groups()
                    .set_auto_scaling_group_names(batch.clone())
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| AwsError::api("autoscaling:DescribeAutoScalingGroups", e))?;
                groups.extend(page.auto_scaling_groups().iter().filter_map(group_facts));
                match page.next_token().filter(|t| !t.is_empty()) {
                    Some(next) => token = Some(next.to_owned()),
                    None => break,
                }
            }
        }
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(groups)
    }

    /// The group of each of `instance_ids` that belongs to one; others are absent.
    ///
    /// # Errors
    /// When the call fails.
    pub async fn groups_of(
        &self,
        instance_ids: &[String],
    ) -> Result<BTreeMap<String, String>, AwsError> {
        let mut groups = BTreeMap::new();
        for batch in instance_ids.chunks(IDS_PER_CALL) {
            let out = self
                .client
                .describe_auto_scaling_instances()
                .set_instance_ids(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| AwsError::api("autoscaling:DescribeAutoScalingInstances", e))?;
            for instance in out.auto_scaling_instances() {
                if let (Some(id), Some(group)) =
                    (instance.instance_id(), instance.auto_scaling_group_name())
                {
                    groups.insert(id.to_owned(), group.to_owned());
                }
            }
        }
        Ok(groups)
    }

    /// Terminates a group's instance without lowering the desired capacity, so the group
    /// launches a replacement. Returns the activity's description.
    ///
    /// # Errors
    /// When the call fails.
    pub async fn terminate_and_replace(&self, instance_id: &str) -> Result<String, AwsError> {
        let out = self
            .client
            .terminate_instance_in_auto_scaling_group()
            .instance_id(instance_id)
            .should_decrement_desired_capacity(false)
            .send()
            .await
            .map_err(|e| AwsError::api("autoscaling:TerminateInstanceInAutoScalingGroup", e))?;
        Ok(out
            .activity()
            .and_then(|a| a.description())
            .unwrap_or_default()
            .to_owned())
    }
}

/// The Auto Scaling probe reads groups through the same describe call the zone model uses.
#[async_trait::async_trait]
impl crate::probe::autoscaling::GroupSource for AutoScaling {
    async fn groups(
        &self,
        names: &[String],
    ) -> Result<Vec<GroupFacts>, crate::probe::autoscaling::GroupSourceError> {
        self.describe_groups(names)
            .await
            .map_err(|e| crate::probe::autoscaling::GroupSourceError(Box::new(e)))
    }
}

fn group_facts(group: &aws_sdk_autoscaling::types::AutoScalingGroup) -> Option<GroupFacts> {
    let capacity = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
    Some(GroupFacts {
        name: group.auto_scaling_group_name()?.to_owned(),
        desired_capacity: capacity(group.desired_capacity()),
        min_size: capacity(group.min_size()),
        max_size: capacity(group.max_size()),
        zones: group.availability_zones().to_vec(),
        subnet_ids: group
            .vpc_zone_identifier()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        members: group
            .instances()
            .iter()
            .filter_map(|i| {
                Some(GroupMember {
                    instance_id: i.instance_id()?.to_owned(),
                    zone: i.availability_zone().unwrap_or_default().to_owned(),
                    lifecycle_state: i
                        .lifecycle_state()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                    healthy: i.health_status().is_some_and(|h| h == "Healthy"),
                })
            })
            .collect(),
        tags: group
            .tags()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                ))
            })
            .collect(),
    })
}

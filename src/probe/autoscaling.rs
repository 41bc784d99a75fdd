//! The Auto Scaling probe: every selected group has as many InService, healthy instances as it
//! desires. A shortfall is how a lost node first shows on the AWS side, before Kubernetes notices.
//!
//! The groups come from a [`GroupSource`] (the Auto Scaling adapter in `infra::aws`); the
//! judgement ([`judge`]) is pure.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::set::Condition;
use crate::plan::zones::GroupFacts;
use crate::spec::probe::AutoscalingProbeSpec;

/// Bound on one evaluation: the describe calls and their retries.
pub const EVALUATION_TIMEOUT: Duration = Duration::from_secs(20);

/// Why the groups could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot describe the Auto Scaling groups: {0}")]
pub struct GroupSourceError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Where the probe reads groups from.
#[async_trait]
pub trait GroupSource: Send + Sync {
    /// The named groups (unknown names are absent), or every group when `names` is empty.
    ///
    /// # Errors
    /// [`GroupSourceError`] when the groups cannot be read.
    async fn groups(&self, names: &[String]) -> Result<Vec<GroupFacts>, GroupSourceError>;
}

/// Judges the groups an [`AutoscalingProbeSpec`] selects: the named ones when `groups` is set,
/// those carrying every tag of `tags` (both: named groups that carry the tags).
///
/// Held when every named group exists, at least one group is selected, and each has at least
/// its desired capacity InService and healthy. The value is the InService total.
pub fn judge(spec: &AutoscalingProbeSpec, groups: &[GroupFacts]) -> (bool, Option<f64>, String) {
    let selected: Vec<&GroupFacts> = groups
        .iter()
        .filter(|g| spec.groups.is_empty() || spec.groups.contains(&g.name))
        .filter(|g| spec.tags.iter().all(|(k, v)| g.tags.get(k) == Some(v)))
        .collect();
    let missing: Vec<&str> = spec
        .groups
        .iter()
        .filter(|name| !selected.iter().any(|g| &g.name == *name))
        .map(String::as_str)
        .collect();
    let mut parts = Vec::new();
    let mut held = missing.is_empty() && !selected.is_empty();
    let mut in_service_total = 0;
    for group in &selected {
        let in_service = group.in_service() as u64;
        in_service_total += in_service;
        let desired = u64::from(group.desired_capacity);
        let mut part = format!("{} {in_service}/{desired} InService", group.name);
        if in_service < desired {
            held = false;
            let others: Vec<String> = group
                .members
                .iter()
                .filter(|m| !m.in_service())
                .map(|m| {
                    let health = if m.healthy { "Healthy" } else { "Unhealthy" };
                    format!("{} {}/{health}", m.instance_id, m.lifecycle_state)
                })
                .collect();
            part.push_str(&format!(" ({} short", desired - in_service));
            if !others.is_empty() {
                part.push_str(&format!(": {}", others.join(", ")));
            }
            part.push(')');
        }
        parts.push(part);
    }
    if !missing.is_empty() {
        parts.push(format!("not found: {}", missing.join(", ")));
    }
    if selected.is_empty() && missing.is_empty() {
        let tags: Vec<String> = spec.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.push(format!("no Auto Scaling group carries {}", tags.join(", ")));
    }
    (held, Some(in_service_total as f64), parts.join("; "))
}

/// The probe as a polled condition.
pub struct AutoscalingCondition {
    source: Arc<dyn GroupSource>,
    spec: AutoscalingProbeSpec,
}

impl AutoscalingCondition {
    /// A probe of `spec` reading from `source`.
    pub fn new(source: Arc<dyn GroupSource>, spec: AutoscalingProbeSpec) -> Self {
        Self { source, spec }
    }
}

#[async_trait]
impl Condition for AutoscalingCondition {
    async fn evaluate(&self) -> (bool, Option<f64>, String) {
        match tokio::time::timeout(EVALUATION_TIMEOUT, self.source.groups(&self.spec.groups)).await
        {
            Ok(Ok(groups)) => judge(&self.spec, &groups),
            Ok(Err(err)) => (false, None, err.to_string()),
            Err(_) => (
                false,
                None,
                format!(
                    "Auto Scaling did not answer within {}s",
                    EVALUATION_TIMEOUT.as_secs()
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::plan::zones::GroupMember;

    fn member(id: &str, state: &str, healthy: bool) -> GroupMember {
        GroupMember {
            instance_id: id.into(),
            zone: "us-east-1a".into(),
            lifecycle_state: state.into(),
            healthy,
        }
    }

    fn group(name: &str, desired: u32, members: Vec<GroupMember>, team: &str) -> GroupFacts {
        GroupFacts {
            name: name.into(),
            desired_capacity: desired,
            min_size: 0,
            max_size: 10,
            zones: vec![],
            subnet_ids: vec![],
            members,
            tags: BTreeMap::from([("team".to_owned(), team.to_owned())]),
        }
    }

    fn spec(yaml: &str) -> AutoscalingProbeSpec {
        serde_yaml::from_str(yaml).expect("a valid autoscaling probe")
    }

    #[test]
    fn full_groups_hold() {
        let groups = [group(
            "a",
            2,
            vec![
                member("i-1", "InService", true),
                member("i-2", "InService", true),
            ],
            "x",
        )];
        let (held, value, detail) = judge(&spec("groups: [a]"), &groups);
        assert!(held, "{detail}");
        assert_eq!(value, Some(2.0));
        assert_eq!(detail, "a 2/2 InService");
    }

    #[test]
    fn unhealthy_terminating_and_pending_members_are_short() {
        let groups = [group(
            "a",
            3,
            vec![
                member("i-1", "InService", true),
                member("i-2", "InService", false),
                member("i-3", "Terminating", true),
                member("i-4", "Pending", true),
            ],
            "x",
        )];
        let (held, value, detail) = judge(&spec("groups: [a]"), &groups);
        assert!(!held);
        assert_eq!(value, Some(1.0));
        assert_eq!(
            detail,
            "a 1/3 InService (2 short: i-2 InService/Unhealthy, i-3 Terminating/Healthy, i-4 Pending/Healthy)"
        );
    }

    #[test]
    fn missing_groups_and_empty_tag_matches_fail() {
        let groups = [group("a", 1, vec![member("i-1", "InService", true)], "x")];
        let (held, _, detail) = judge(&spec("groups: [a, b]"), &groups);
        assert!(!held);
        assert!(detail.ends_with("not found: b"), "{detail}");
        let (held, _, detail) = judge(&spec("tags: {team: y}"), &groups);
        assert!(!held);
        assert_eq!(detail, "no Auto Scaling group carries team=y");
        assert!(judge(&spec("tags: {team: x}"), &groups).0);
    }
}

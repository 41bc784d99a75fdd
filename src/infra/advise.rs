//! The AWS side of `advise`: the Auto Scaling groups behind the cluster's nodes, with the zones
//! each launches into. Read-only, and optional: when AWS does not answer, advise goes on
//! without node groups.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::advise::model::NodeGroup;
use crate::infra::aws::error::AwsError;
use crate::infra::aws::{AwsClients, AwsOptions};

/// Bound on each AWS call while advising: a missing or unreachable AWS should cost seconds.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Options for advise's reads: the environment's region and credentials, short timeouts and a
/// single attempt.
pub fn options() -> AwsOptions {
    AwsOptions {
        attempt_timeout: CALL_TIMEOUT,
        operation_timeout: CALL_TIMEOUT,
        load_timeout: CALL_TIMEOUT,
        max_attempts: 1,
        ..AwsOptions::default()
    }
}

/// The groups that own any of `instance_ids`, sorted by name.
///
/// # Errors
/// When AWS cannot be configured or a call fails.
pub async fn node_groups(
    options: &AwsOptions,
    instance_ids: &[String],
) -> Result<Vec<NodeGroup>, AwsError> {
    let clients = AwsClients::connect(options).await?;
    let owners = clients.autoscaling.groups_of(instance_ids).await?;
    let names: Vec<String> = owners
        .into_values()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let groups = clients.autoscaling.describe_groups(&names).await?;
    Ok(groups
        .into_iter()
        .map(|g| NodeGroup {
            name: g.name,
            zones: g.zones,
        })
        .collect())
}

//! Undoing the AWS faults: starting stopped instances and putting partitioned subnets back on
//! their network ACLs, from nothing but an undo record; plus the sweep that heals partitions
//! from the tags steadfast left on its ACLs when the journal itself is lost.
//!
//! Everything here re-reads live state first, so applying a record twice, or after the system
//! was healed by hand, changes nothing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{FaultError, RollbackOutcome, SubnetAcl, UndoAction, UndoRecord, Undoer};
use crate::infra::aws::context::DEFAULT_POLL_INTERVAL;
use crate::infra::aws::{
    AclFilter, AwsClients, AwsError, AwsOptions, Ec2, MANAGED_BY_KEY, MANAGED_BY_VALUE, NetworkAcl,
    ORIGINAL_ACL_TAG_PREFIX, RUN_ID_TAG,
};

/// How long an undo waits for a stopping instance to reach `stopped` before starting it.
pub const DEFAULT_STOP_WAIT: Duration = Duration::from_secs(300);

/// Applies the AWS undo records, connecting to each record's region on first use.
pub struct AwsUndoer {
    options: AwsOptions,
    clients: tokio::sync::Mutex<BTreeMap<String, AwsClients>>,
    poll_interval: Duration,
    stop_wait: Duration,
}

impl AwsUndoer {
    /// An undoer that connects with `options` (the region comes from each record).
    pub fn new(options: AwsOptions) -> Self {
        Self {
            options,
            clients: tokio::sync::Mutex::new(BTreeMap::new()),
            poll_interval: DEFAULT_POLL_INTERVAL,
            stop_wait: DEFAULT_STOP_WAIT,
        }
    }

    /// Reuses already connected clients for their region.
    pub fn with_clients(options: AwsOptions, clients: AwsClients) -> Self {
        let mut undoer = Self::new(options);
        undoer
            .clients
            .get_mut()
            .insert(clients.region.clone(), clients);
        undoer
    }

    /// Changes how often and how long it waits for stopping instances.
    pub fn with_waits(mut self, poll_interval: Duration, stop_wait: Duration) -> Self {
        self.poll_interval = poll_interval;
        self.stop_wait = stop_wait;
        self
    }

    async fn clients_for(&self, region: &str) -> Result<AwsClients, AwsError> {
        let mut cache = self.clients.lock().await;
        if let Some(clients) = cache.get(region) {
            return Ok(clients.clone());
        }
        let options = AwsOptions {
            region: Some(region.to_owned()),
            ..self.options.clone()
        };
        let clients = AwsClients::connect(&options).await?;
        cache.insert(region.to_owned(), clients.clone());
        Ok(clients)
    }
}

#[async_trait]
impl Undoer for AwsUndoer {
    fn handles(&self, action: &UndoAction) -> bool {
        matches!(
            action,
            UndoAction::StartInstances { .. } | UndoAction::RestoreNetworkAcls { .. }
        )
    }

    async fn undo(&self, record: &UndoRecord) -> Result<RollbackOutcome, FaultError> {
        match &record.action {
            UndoAction::StartInstances {
                region,
                instance_ids,
            } => {
                let clients = self.clients_for(region).await?;
                Ok(start_instances(
                    &clients.ec2,
                    instance_ids,
                    self.poll_interval,
                    self.stop_wait,
                )
                .await?)
            }
            UndoAction::RestoreNetworkAcls {
                region,
                vpc_id,
                original,
            } => {
                let clients = self.clients_for(region).await?;
                Ok(restore_network_acls(&clients.ec2, vpc_id, &record.run_id, original).await?)
            }
            other => Err(FaultError::Refused(format!(
                "the AWS undoer cannot {}",
                other.describe()
            ))),
        }
    }
}

/// Describes instances, skipping ids AWS no longer knows (long-terminated ones).
async fn describe_known(
    ec2: &Ec2,
    ids: &[String],
) -> Result<Vec<crate::plan::zones::InstanceFacts>, AwsError> {
    match ec2.describe_instances(None, ids).await {
        Err(err) if err.is_not_found() => {
            let mut known = Vec::new();
            for id in ids {
                match ec2.describe_instances(None, std::slice::from_ref(id)).await {
                    Ok(found) => known.extend(found),
                    Err(err) if err.is_not_found() => {}
                    Err(err) => return Err(err),
                }
            }
            Ok(known)
        }
        other => other,
    }
}

/// Starts the instances that are stopped, first waiting (bounded) for stopping ones to stop.
/// Running, pending and terminated instances are left as they are.
///
/// # Errors
/// When a call fails or an instance is still stopping after `stop_wait`.
pub async fn start_instances(
    ec2: &Ec2,
    instance_ids: &[String],
    poll_interval: Duration,
    stop_wait: Duration,
) -> Result<RollbackOutcome, AwsError> {
    let started = Instant::now();
    let max_polls = polls_within(stop_wait, poll_interval);
    let mut facts = describe_known(ec2, instance_ids).await?;
    for _ in 0..max_polls {
        if !facts.iter().any(|i| i.state == "stopping") {
            break;
        }
        let left = stop_wait.saturating_sub(started.elapsed());
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(poll_interval.min(left)).await;
        facts = describe_known(ec2, instance_ids).await?;
    }
    let still_stopping: Vec<&str> = facts
        .iter()
        .filter(|i| i.state == "stopping")
        .map(|i| i.instance_id.as_str())
        .collect();
    if !still_stopping.is_empty() {
        return Err(AwsError::WaitTimeout {
            what: format!("instances {} reaching stopped", still_stopping.join(", ")),
            after: stop_wait,
        });
    }
    let stopped: Vec<String> = facts
        .iter()
        .filter(|i| i.state == "stopped")
        .map(|i| i.instance_id.clone())
        .collect();
    let others: Vec<String> = facts
        .iter()
        .filter(|i| i.state != "stopped")
        .map(|i| format!("{} {}", i.instance_id, i.state))
        .collect();
    if stopped.is_empty() {
        return Ok(RollbackOutcome::AlreadyRestored {
            detail: format!("no instance is stopped ({})", others.join(", ")),
        });
    }
    ec2.start_instances(&stopped).await?;
    let mut detail = format!("started {}", stopped.join(", "));
    if !others.is_empty() {
        detail.push_str(&format!("; left {}", others.join(", ")));
    }
    Ok(RollbackOutcome::Restored { detail })
}

/// How many polls of `interval` fit in `total`, plus one for the last look.
pub(crate) fn polls_within(total: Duration, interval: Duration) -> u64 {
    let interval = interval.max(Duration::from_millis(10));
    (total.as_millis() / interval.as_millis()) as u64 + 2
}

fn is_steadfast(acl: &NetworkAcl) -> bool {
    acl.tags.get(MANAGED_BY_KEY).map(String::as_str) == Some(MANAGED_BY_VALUE)
}

/// The ACL a subnet should go back to: its original if that still exists, else the VPC's
/// default ACL (a deleted original leaves no better choice).
async fn restore_target(ec2: &Ec2, vpc_id: &str, original: &str) -> Result<String, AwsError> {
    if !original.is_empty() {
        let found = ec2
            .describe_network_acls(&AclFilter {
                acl_ids: vec![original.to_owned()],
                ..AclFilter::default()
            })
            .await;
        match found {
            Ok(acls) if !acls.is_empty() => return Ok(original.to_owned()),
            Ok(_) => {}
            Err(err) if err.is_not_found() => {}
            Err(err) => return Err(err),
        }
    }
    let defaults = ec2
        .describe_network_acls(&AclFilter {
            vpc_id: Some(vpc_id.to_owned()),
            default: Some(true),
            ..AclFilter::default()
        })
        .await?;
    defaults
        .into_iter()
        .next()
        .map(|a| a.network_acl_id)
        .ok_or_else(|| AwsError::Api {
            action: "ec2:DescribeNetworkAcls",
            code: None,
            message: format!("{original} is gone and VPC {vpc_id} has no default ACL"),
            timed_out: false,
        })
}

/// Deletes a steadfast ACL; an ACL already gone counts as deleted.
async fn delete_acl(ec2: &Ec2, acl_id: &str) -> Result<(), AwsError> {
    match ec2.delete_network_acl(acl_id).await {
        Err(err) if err.is_not_found() => Ok(()),
        other => other,
    }
}

/// Puts each subnet that sits on a steadfast ACL back on its original ACL (looking up the
/// *current* association, whose id changes on every replace), then deletes the run's
/// steadfast ACLs that no subnet uses any more. Subnets someone moved to another ACL of their
/// own are left alone.
///
/// # Errors
/// When a call fails; what was done before stays done, and a second call finishes the rest.
pub async fn restore_network_acls(
    ec2: &Ec2,
    vpc_id: &str,
    run_id: &str,
    original: &[SubnetAcl],
) -> Result<RollbackOutcome, AwsError> {
    let mut restored = Vec::new();
    let mut untouched = Vec::new();
    for SubnetAcl {
        subnet_id,
        network_acl_id,
    } in original
    {
        match ec2.subnet_acl(subnet_id).await? {
            None => untouched.push(format!("{subnet_id} is gone")),
            Some((current, _)) if &current.network_acl_id == network_acl_id => {
                untouched.push(format!("{subnet_id} is on {network_acl_id}"));
            }
            Some((current, _)) if !is_steadfast(&current) => untouched.push(format!(
                "{subnet_id} is on {}, not steadfast's; left alone",
                current.network_acl_id
            )),
            Some((_, association)) => {
                let target = restore_target(ec2, vpc_id, network_acl_id).await?;
                ec2.replace_network_acl_association(&association.association_id, &target)
                    .await?;
                restored.push(format!("{subnet_id} → {target}"));
            }
        }
    }
    let run_acls = ec2
        .describe_network_acls(&AclFilter {
            vpc_id: Some(vpc_id.to_owned()),
            tags: vec![
                (MANAGED_BY_KEY.to_owned(), MANAGED_BY_VALUE.to_owned()),
                (RUN_ID_TAG.to_owned(), run_id.to_owned()),
            ],
            ..AclFilter::default()
        })
        .await?;
    let mut deleted = Vec::new();
    for acl in run_acls.iter().filter(|a| a.associations.is_empty()) {
        delete_acl(ec2, &acl.network_acl_id).await?;
        deleted.push(acl.network_acl_id.clone());
    }
    if restored.is_empty() && deleted.is_empty() {
        return Ok(RollbackOutcome::AlreadyRestored {
            detail: untouched.join("; "),
        });
    }
    let mut detail = Vec::new();
    if !restored.is_empty() {
        detail.push(format!("restored {}", restored.join(", ")));
    }
    if !deleted.is_empty() {
        detail.push(format!("deleted {}", deleted.join(", ")));
    }
    Ok(RollbackOutcome::Restored {
        detail: detail.join("; "),
    })
}

/// What the sweep did with one steadfast ACL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SweptAcl {
    /// The steadfast ACL.
    pub network_acl_id: String,
    /// Its VPC.
    pub vpc_id: String,
    /// The run that created it, from its tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Each subnet moved off it and the ACL it went back to.
    pub restored: Vec<SubnetAcl>,
}

/// Heals every partition steadfast left in the region (or in `vpc_id`), using only the cloud:
/// each ACL tagged `managed-by=steadfast` names its subnets' original ACLs in
/// `steadfast/original/<subnet-id>` tags. Subnets go back to those (or to the VPC's default
/// ACL when the tag is missing or the original is gone), then the ACL is deleted. For
/// `steadfast rollback` when the journal is lost; running it twice is harmless.
///
/// # Errors
/// When a call fails; what was done before stays done.
pub async fn sweep_network_acls(
    ec2: &Ec2,
    vpc_id: Option<&str>,
) -> Result<Vec<SweptAcl>, AwsError> {
    let acls = ec2
        .describe_network_acls(&AclFilter {
            vpc_id: vpc_id.map(str::to_owned),
            tags: vec![(MANAGED_BY_KEY.to_owned(), MANAGED_BY_VALUE.to_owned())],
            ..AclFilter::default()
        })
        .await?;
    let mut swept = Vec::new();
    for acl in acls {
        let mut restored = Vec::new();
        for association in &acl.associations {
            let original = acl
                .tags
                .get(&format!(
                    "{ORIGINAL_ACL_TAG_PREFIX}{}",
                    association.subnet_id
                ))
                .cloned()
                .unwrap_or_default();
            let target = restore_target(ec2, &acl.vpc_id, &original).await?;
            ec2.replace_network_acl_association(&association.association_id, &target)
                .await?;
            restored.push(SubnetAcl {
                subnet_id: association.subnet_id.clone(),
                network_acl_id: target,
            });
        }
        delete_acl(ec2, &acl.network_acl_id).await?;
        tracing::info!(acl = %acl.network_acl_id, subnets = restored.len(), "swept a steadfast network ACL");
        swept.push(SweptAcl {
            network_acl_id: acl.network_acl_id.clone(),
            vpc_id: acl.vpc_id.clone(),
            run_id: acl.tags.get(RUN_ID_TAG).cloned(),
            restored,
        });
    }
    Ok(swept)
}

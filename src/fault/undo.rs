//! Undo records: everything needed to restore one change, serialisable for the journal and the
//! in-cluster mirror, and readable by a process that never saw the run.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One restorable change, written to the journal before the change is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UndoRecord {
    /// Unique within the journal: `<run>/<fault>/<firing>/<n>`.
    pub id: String,
    /// The run that made the change.
    pub run_id: String,
    /// The fault's name.
    pub fault: String,
    /// What to do to undo it.
    pub action: UndoAction,
    /// When the record was made.
    pub created_at: DateTime<Utc>,
}

/// A Kubernetes taint, as steadfast adds and removes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Taint {
    /// Taint key, e.g. `steadfast.dev/zone-outage`.
    pub key: String,
    /// Taint value (may be empty).
    #[serde(default)]
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// How to restore one change. Each variant carries all it needs; none refers to run memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum UndoAction {
    /// Set a node schedulable again, but only if steadfast made it unschedulable.
    Uncordon {
        /// The node.
        node: String,
    },
    /// Remove a taint steadfast added; others' taints stay.
    RemoveTaint {
        /// The node.
        node: String,
        /// The taint to remove.
        taint: Taint,
    },
    /// Start instances steadfast stopped.
    StartInstances {
        /// AWS region.
        region: String,
        /// The instances.
        instance_ids: Vec<String>,
    },
    /// Put subnets back on their original network ACLs (found through their *current*
    /// association, which changes on every replace) and delete the deny-all ACLs of the run.
    RestoreNetworkAcls {
        /// AWS region.
        region: String,
        /// The VPC.
        vpc_id: String,
        /// Subnet id → its original ACL id.
        original: Vec<SubnetAcl>,
    },
    /// Take a pod network rule away early by adding a second ephemeral container that runs the
    /// removal; without it the rule still ends with its container's window.
    RemovePodNetworkRule {
        /// The pod's namespace.
        namespace: String,
        /// The pod.
        pod: String,
        /// The ephemeral container holding the rule.
        container: String,
        /// Name of the removal container.
        removal: String,
        /// Its image.
        image: String,
        /// Its command (`sh -c '<remove>'`).
        command: Vec<String>,
        /// The destinations `to:` resolved to when planned (`10.96.0.10/32:80`, `:5432`);
        /// the rule matches only these. Empty: all traffic.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        destinations: Vec<String>,
    },
}

/// A subnet and the network ACL it had before the partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetAcl {
    /// The subnet.
    pub subnet_id: String,
    /// Its ACL before steadfast touched it.
    pub network_acl_id: String,
}

/// What applying an undo record found and did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum RollbackOutcome {
    /// The change was reverted.
    Restored {
        /// What was done, for the report.
        detail: String,
    },
    /// Nothing needed doing: already restored, or the object is gone.
    AlreadyRestored {
        /// What was found.
        detail: String,
    },
}

impl UndoAction {
    /// A one-line description for `plan` output and logs.
    pub fn describe(&self) -> String {
        match self {
            UndoAction::Uncordon { node } => format!("uncordon node {node}"),
            UndoAction::RemoveTaint { node, taint } => {
                format!(
                    "remove taint {}={}:{} from node {node}",
                    taint.key, taint.value, taint.effect
                )
            }
            UndoAction::StartInstances { instance_ids, .. } => {
                format!("start instances {}", instance_ids.join(", "))
            }
            UndoAction::RestoreNetworkAcls { original, .. } => {
                let subnets: Vec<&str> = original.iter().map(|s| s.subnet_id.as_str()).collect();
                format!(
                    "restore the network ACLs of subnets {} and delete steadfast's ACL",
                    subnets.join(", ")
                )
            }
            UndoAction::RemovePodNetworkRule {
                namespace,
                pod,
                container,
                ..
            } => format!(
                "remove the network rule of ephemeral container {container} from pod {namespace}/{pod}"
            ),
        }
    }
}

//! Faults: the changes an experiment makes to the system, each one planned, journaled and
//! undoable before it acts.
//!
//! The life of one firing: [`Fault::plan`] reads the system and returns the targets and the
//! [`UndoRecord`]s that would restore them; the engine writes those records to the journal and
//! syncs it; only then [`Fault::inject`] acts. Rollback needs nothing but an undo record and
//! clients ([`Undoer`]), so a fresh process holding only the journal can heal what a dead run
//! left behind.

pub mod aws_undo;
pub mod az_partition;
pub mod detected;
pub mod ec2_stop;
pub mod ec2_terminate;
pub mod effect;
pub mod healing;
pub mod kube_confirm;
pub mod kube_context;
pub mod kube_undo;
pub mod net_destinations;
pub mod net_script;
pub mod node_cordon;
pub mod node_drain;
pub mod observed;
pub mod pod_evict;
pub mod pod_kill;
pub mod pod_network;
pub mod targets;
pub mod undo;
pub mod zone_outage;

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use effect::{Confirmation, Detection};
pub use undo::{RollbackOutcome, SubnetAcl, Taint, UndoAction, UndoRecord};

use crate::spec::FaultKind;

/// What one target of a fault is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TargetKind {
    /// A Kubernetes pod.
    Pod,
    /// A Kubernetes node.
    Node,
    /// An EC2 instance.
    Instance,
    /// A VPC subnet.
    Subnet,
}

impl TargetKind {
    /// The word reports write for it.
    pub fn key(self) -> &'static str {
        match self {
            TargetKind::Pod => "pod",
            TargetKind::Node => "node",
            TargetKind::Instance => "instance",
            TargetKind::Subnet => "subnet",
        }
    }
}

/// One object a fault acts on, with the context a report needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    /// What it is.
    pub kind: TargetKind,
    /// Its name or id.
    pub name: String,
    /// Its namespace, for namespaced objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The node it runs on (pods) or backs (instances).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Its availability zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

impl TargetRef {
    /// `namespace/name` or `name`.
    pub fn display_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// A fault firing, resolved but not yet acted on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultPlan {
    /// The fault's name in the experiment.
    pub fault: String,
    /// Its kind.
    pub kind: FaultKind,
    /// What it will act on.
    pub targets: Vec<TargetRef>,
    /// How to undo it; journaled before `inject`.
    pub undo: Vec<UndoRecord>,
    /// Steps that cannot be undone (a terminated instance), for `plan` to warn about.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub irreversible: Vec<String>,
    /// The seed the random choice of targets used.
    pub seed: u64,
    /// How many targets matched before the choice, for percentages and reports.
    pub candidates: usize,
}

/// What happened to one target when the fault acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum Effect {
    /// The change was made.
    Applied,
    /// A PodDisruptionBudget refused the eviction.
    BlockedByBudget {
        /// The budget's name.
        budget: String,
    },
    /// Nothing was done, and why (e.g. the pod was already gone).
    Skipped {
        /// Why.
        reason: String,
    },
    /// The change failed.
    Failed {
        /// The error.
        error: String,
    },
}

/// One target's effect, timed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetEffect {
    /// The target.
    pub target: TargetRef,
    /// What happened.
    pub effect: Effect,
    /// When the action was issued (pod kills and evictions), or when it was done (the other
    /// faults): the instant a firing's disruption counts from.
    pub at: SystemTime,
}

/// The outcome of [`Fault::inject`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Injection {
    /// Per target, what happened.
    pub effects: Vec<TargetEffect>,
}

impl Injection {
    /// True when no target could be changed at all.
    pub fn nothing_applied(&self) -> bool {
        !self.effects.iter().any(|e| e.effect == Effect::Applied)
    }
}

/// Why a fault could not plan or act.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// More targets than the safety caps allow; nothing was done.
    #[error("blast radius: {0}")]
    OverCaps(String),
    /// No target matched the selection.
    #[error("no target matched: {0}")]
    NoTargets(String),
    /// The target would be irreversible and the spec did not allow it.
    #[error("refused: {0}")]
    Refused(String),
    /// An API call failed.
    #[error("{action}: {message}")]
    Api {
        /// What was attempted.
        action: String,
        /// The API's answer.
        message: String,
    },
    /// A call did not finish in time.
    #[error("{0} timed out")]
    Timeout(String),
}

/// One kind of fault, bound to the clients it needs.
#[async_trait]
pub trait Fault: Send + Sync {
    /// The fault's name in the experiment.
    fn name(&self) -> &str;

    /// Its kind.
    fn kind(&self) -> FaultKind;

    /// Resolves targets and the undo records, with reads only. `firing` counts repetitions of
    /// an `every` fault from 0 and feeds the seed so each firing chooses afresh but repeatably.
    async fn plan(&self, run_id: &str, firing: u32) -> Result<FaultPlan, FaultError>;

    /// Readies what must watch a firing from before it acts (replacements, detection), ahead
    /// of the firing's instant, so that at the instant the fault only acts. `inject` readies
    /// it itself when this was not called.
    async fn prepare(&self, _plan: &FaultPlan) {}

    /// Acts on a plan whose undo records are already durable.
    async fn inject(&self, plan: &FaultPlan) -> Result<Injection, FaultError>;

    /// Waits, at most `timeout`, until what this firing disrupted is whole again (replacement
    /// pods Ready, groups back at capacity), returning how long that took from the injection.
    /// Faults with nothing to heal keep the default.
    async fn await_healing(
        &self,
        _plan: &FaultPlan,
        _injection: &Injection,
        _timeout: Duration,
    ) -> Healing {
        Healing::NotApplicable
    }

    /// Reads back, at most `timeout`, what `inject` changed, so a fault that missed (an instance
    /// already stopped, a pod already gone) is told apart from a system that shrugged it off.
    /// Faults that cannot read their change back keep the default.
    async fn confirm(
        &self,
        _plan: &FaultPlan,
        _injection: &Injection,
        _timeout: Duration,
    ) -> Confirmation {
        Confirmation::Unchecked
    }

    /// Waits, at most `timeout`, for the moment the system noticed this firing (endpoints left
    /// their Services, nodes turned NotReady). Only faults wrapped in a watch know it.
    async fn await_detection(&self, _plan: &FaultPlan, _timeout: Duration) -> Detection {
        Detection::NotApplicable
    }
}

/// Self-healing evidence of one firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum Healing {
    /// The fault disrupts nothing that heals by itself (a cordon).
    NotApplicable,
    /// Everything was whole again after this long.
    Healed {
        /// Seconds from the injection.
        #[serde(with = "crate::verdict::evidence::secs")]
        after: Duration,
    },
    /// Not whole again within the timeout.
    NotHealed,
}

/// Executes undo records. Implementations re-read live state, so applying a record twice, or to
/// a system that healed itself, is harmless.
#[async_trait]
pub trait Undoer: Send + Sync {
    /// Whether this undoer knows how to apply `action`.
    fn handles(&self, action: &UndoAction) -> bool;

    /// Restores what `record` describes.
    async fn undo(&self, record: &UndoRecord) -> Result<RollbackOutcome, FaultError>;
}

//! Changing nodes and changing them back: cordon, taint, and the [`KubeUndoer`] that rolls both
//! back from nothing but an undo record.
//!
//! Every step re-reads the node. Taints are written as a whole list (the API has no "remove one
//! taint" operation), so each write carries the `resourceVersion` it was computed from: a
//! concurrent change makes the server answer 409 and the step recomputes from a fresh read,
//! instead of silently dropping someone else's taint.

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Node, Taint as KubeTaint};
use serde_json::{Value, json};

use crate::fault::kube_context::api;
use crate::fault::{FaultError, RollbackOutcome, Taint, UndoAction, UndoRecord, Undoer};
use crate::infra::kube::KubeClient;

/// Attempts at a resourceVersion-checked write before giving up on a node that keeps changing.
const CONFLICT_RETRIES: usize = 8;

/// The taint key of a zone outage; its value is the run id.
pub const ZONE_OUTAGE_TAINT: &str = "steadfast.dev/zone-outage";

/// What a change found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The node was changed.
    Made,
    /// The node already was as asked.
    AlreadyThere,
}

fn same_taint(kube: &KubeTaint, taint: &Taint) -> bool {
    kube.key == taint.key
        && kube.effect == taint.effect
        && kube.value.as_deref().unwrap_or("") == taint.value
}

fn taints_of(node: &Node) -> Vec<KubeTaint> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
}

fn is_unschedulable(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
}

fn gone(node: &str) -> FaultError {
    FaultError::Api {
        action: format!("read node {node}"),
        message: "the node does not exist".into(),
    }
}

/// Marks a node unschedulable.
///
/// # Errors
/// API errors; a node that does not exist.
pub async fn cordon(kube: &KubeClient, node: &str) -> Result<Change, FaultError> {
    let current = kube
        .get_node(node)
        .await
        .map_err(api)?
        .ok_or_else(|| gone(node))?;
    if is_unschedulable(&current) {
        return Ok(Change::AlreadyThere);
    }
    kube.merge_patch_node(node, &json!({"spec": {"unschedulable": true}}))
        .await
        .map_err(api)?;
    Ok(Change::Made)
}

/// Adds a taint unless an identical one is there.
///
/// # Errors
/// API errors; a node that does not exist or keeps changing.
pub async fn add_taint(kube: &KubeClient, node: &str, taint: &Taint) -> Result<Change, FaultError> {
    rewrite_taints(kube, node, |taints| {
        if taints.iter().any(|t| same_taint(t, taint)) {
            return None;
        }
        let mut next = taints.to_vec();
        next.push(KubeTaint {
            key: taint.key.clone(),
            value: (!taint.value.is_empty()).then(|| taint.value.clone()),
            effect: taint.effect.clone(),
            time_added: None,
        });
        Some(next)
    })
    .await?
    .ok_or_else(|| gone(node))
}

/// Rewrites a node's taints with `edit` (which returns `None` when nothing is to change),
/// retrying on conflicts. `Ok(None)` when the node does not exist.
async fn rewrite_taints(
    kube: &KubeClient,
    node: &str,
    edit: impl Fn(&[KubeTaint]) -> Option<Vec<KubeTaint>>,
) -> Result<Option<Change>, FaultError> {
    for _ in 0..CONFLICT_RETRIES {
        let Some(current) = kube.get_node(node).await.map_err(api)? else {
            return Ok(None);
        };
        let Some(next) = edit(&taints_of(&current)) else {
            return Ok(Some(Change::AlreadyThere));
        };
        let taints: Value = if next.is_empty() {
            Value::Null
        } else {
            serde_json::to_value(&next).map_err(|e| FaultError::Api {
                action: format!("encode the taints of node {node}"),
                message: e.to_string(),
            })?
        };
        let patch = json!({
            "metadata": {"resourceVersion": current.metadata.resource_version},
            "spec": {"taints": taints},
        });
        match kube.merge_patch_node(node, &patch).await {
            Ok(_) => return Ok(Some(Change::Made)),
            Err(e) if e.is_conflict() => continue,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(api(e)),
        }
    }
    Err(FaultError::Api {
        action: format!("update the taints of node {node}"),
        message: format!("the node changed under every one of {CONFLICT_RETRIES} attempts"),
    })
}

/// Rolls back node changes: [`UndoAction::Uncordon`] and [`UndoAction::RemoveTaint`].
#[derive(Debug, Clone)]
pub struct KubeUndoer {
    kube: KubeClient,
}

impl KubeUndoer {
    /// An undoer using `kube`.
    pub fn new(kube: KubeClient) -> Self {
        Self { kube }
    }

    async fn uncordon(&self, node: &str) -> Result<RollbackOutcome, FaultError> {
        let Some(current) = self.kube.get_node(node).await.map_err(api)? else {
            return Ok(RollbackOutcome::AlreadyRestored {
                detail: format!("node {node} no longer exists"),
            });
        };
        if !is_unschedulable(&current) {
            return Ok(RollbackOutcome::AlreadyRestored {
                detail: format!("node {node} is schedulable"),
            });
        }
        match self
            .kube
            .merge_patch_node(node, &json!({"spec": {"unschedulable": null}}))
            .await
        {
            Ok(_) => Ok(RollbackOutcome::Restored {
                detail: format!("uncordoned node {node}"),
            }),
            Err(e) if e.is_not_found() => Ok(RollbackOutcome::AlreadyRestored {
                detail: format!("node {node} no longer exists"),
            }),
            Err(e) => Err(api(e)),
        }
    }

    async fn remove_taint(&self, node: &str, taint: &Taint) -> Result<RollbackOutcome, FaultError> {
        let outcome = rewrite_taints(&self.kube, node, |taints| {
            taints.iter().any(|t| same_taint(t, taint)).then(|| {
                taints
                    .iter()
                    .filter(|t| !same_taint(t, taint))
                    .cloned()
                    .collect()
            })
        })
        .await?;
        let shown = format!("{}={}:{}", taint.key, taint.value, taint.effect);
        Ok(match outcome {
            None => RollbackOutcome::AlreadyRestored {
                detail: format!("node {node} no longer exists"),
            },
            Some(Change::AlreadyThere) => RollbackOutcome::AlreadyRestored {
                detail: format!("node {node} has no taint {shown}"),
            },
            Some(Change::Made) => RollbackOutcome::Restored {
                detail: format!("removed taint {shown} from node {node}"),
            },
        })
    }
}

#[async_trait]
impl Undoer for KubeUndoer {
    fn handles(&self, action: &UndoAction) -> bool {
        matches!(
            action,
            UndoAction::Uncordon { .. } | UndoAction::RemoveTaint { .. }
        )
    }

    async fn undo(&self, record: &UndoRecord) -> Result<RollbackOutcome, FaultError> {
        match &record.action {
            UndoAction::Uncordon { node } => self.uncordon(node).await,
            UndoAction::RemoveTaint { node, taint } => self.remove_taint(node, taint).await,
            other => Err(FaultError::Refused(format!(
                "the Kubernetes undoer cannot {}",
                other.describe()
            ))),
        }
    }
}

//! How the Kubernetes faults read their change back: a killed or evicted pod is gone or
//! terminating; a cordoned, drained or zoned-out node is unschedulable or carries the taint.

use std::time::Duration;

use super::effect::{Check, Confirmation, confirm_each};
use super::{Injection, TargetKind, TargetRef};
use crate::infra::kube::KubeClient;

/// Reads every changed target of `injection` back until it shows the change; `taint` is the
/// key a node may carry instead of being unschedulable.
pub async fn confirm_kube(
    kube: &KubeClient,
    injection: &Injection,
    taint: Option<&str>,
    timeout: Duration,
) -> Confirmation {
    confirm_each(injection, timeout, |target| check(kube, target, taint)).await
}

async fn check(kube: &KubeClient, target: TargetRef, taint: Option<&str>) -> Result<Check, String> {
    match target.kind {
        TargetKind::Pod => {
            let namespace = target.namespace.as_deref().unwrap_or("default");
            let pod = kube
                .get_pod(namespace, &target.name)
                .await
                .map_err(|e| e.to_string())?;
            Ok(match pod {
                None => Check::Done,
                Some(p) if p.metadata.deletion_timestamp.is_some() => Check::Done,
                Some(_) => Check::Pending("still running, not terminating".into()),
            })
        }
        TargetKind::Node => {
            let node = kube
                .get_node(&target.name)
                .await
                .map_err(|e| e.to_string())?;
            let Some(node) = node else {
                return Ok(Check::Pending("the node is gone".into()));
            };
            let spec = node.spec.unwrap_or_default();
            let tainted =
                taint.is_some_and(|key| spec.taints.iter().flatten().any(|t| t.key == key));
            Ok(if spec.unschedulable == Some(true) || tainted {
                Check::Done
            } else {
                Check::Pending("schedulable and not tainted".into())
            })
        }
        TargetKind::Instance | TargetKind::Subnet => Err("not a Kubernetes object".into()),
    }
}

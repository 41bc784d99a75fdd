//! Node lifecycle controller and taint-based eviction.
//!
//! A node whose Lease is older than the monitor grace period turns Ready=Unknown, its pods are
//! marked not ready, and it gets the `unreachable` taints; `spec.unschedulable` gets the
//! `unschedulable:NoSchedule` taint. Pods on a node with NoExecute taints they do not tolerate
//! are deleted at once, those tolerating for N seconds after N seconds.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::util::{age_secs, condition, s, set_condition, terminating, tolerates};
use crate::sandbox::cluster::Shared;
use crate::sandbox::ops::{self, DeleteOpts};
use crate::sandbox::resources::well_known;
use crate::sandbox::store::now_rfc3339;

const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const NOT_READY: &str = "node.kubernetes.io/not-ready";
const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// The node lifecycle controller (stateless between passes: everything lives in the API).
#[derive(Default)]
pub(crate) struct NodeLifecycle;

fn managed(key: &str) -> bool {
    [UNREACHABLE, NOT_READY, UNSCHEDULABLE].contains(&key)
}

fn desired_taints(node: &Value) -> Vec<Value> {
    let existing: Vec<Value> = node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out: Vec<Value> = existing
        .iter()
        .filter(|t| !managed(t["key"].as_str().unwrap_or_default()))
        .cloned()
        .collect();
    let mut add = |key: &str, effect: &str| {
        let kept = existing
            .iter()
            .find(|t| t["key"] == json!(key) && t["effect"] == json!(effect));
        out.push(match kept {
            Some(t) => t.clone(),
            None if effect == "NoExecute" => {
                json!({"key": key, "effect": effect, "timeAdded": now_rfc3339()})
            }
            None => json!({"key": key, "effect": effect}),
        });
    };
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        add(UNSCHEDULABLE, "NoSchedule");
    }
    match condition(node, "Ready") {
        Some("Unknown") => {
            add(UNREACHABLE, "NoSchedule");
            add(UNREACHABLE, "NoExecute");
        }
        Some("False") | None => {
            add(NOT_READY, "NoSchedule");
            add(NOT_READY, "NoExecute");
        }
        _ => {}
    }
    out
}

impl NodeLifecycle {
    /// One pass over every node, then taint-based eviction.
    pub fn sync(&mut self, shared: &Arc<Shared>) {
        let grace = shared.timing.node_monitor_grace_period.as_secs_f64();
        let (nodes, _) = shared.store.list("nodes", None);
        let (leases, _) = shared.store.list("leases", Some("kube-node-lease"));
        let renewed: HashMap<&str, &str> = leases
            .iter()
            .map(|l| (s(l, "/metadata/name"), s(l, "/spec/renewTime")))
            .collect();
        for node in &nodes {
            let name = s(node, "/metadata/name").to_string();
            let last = renewed
                .get(name.as_str())
                .copied()
                .unwrap_or_else(|| s(node, "/metadata/creationTimestamp"));
            let stale = age_secs(last) > grace;
            let ready = condition(node, "Ready");
            if stale && matches!(ready, Some("True") | Some("False")) {
                self.mark_unknown(shared, &name);
            }
            let Some(node) = shared.store.get("nodes", "", &name) else {
                continue;
            };
            let want = desired_taints(&node);
            let have = node.pointer("/spec/taints").cloned().unwrap_or(json!([]));
            if json!(want) != have {
                let _ = shared
                    .store
                    .update_with(well_known::nodes(), "", &name, |n| {
                        n["spec"]["taints"] = json!(want);
                        Ok(())
                    });
            }
        }
        evict_for_taints(shared);
    }

    fn mark_unknown(&mut self, shared: &Arc<Shared>, name: &str) {
        shared.store.transaction(|txn| {
            let Ok(node) = txn.update_with(well_known::nodes(), "", name, |n| {
                for ty in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
                    set_condition(
                        n,
                        ty,
                        "Unknown",
                        "NodeStatusUnknown",
                        "Kubelet stopped posting node status.",
                    );
                }
                Ok(())
            }) else {
                return;
            };
            ops::record_event(
                txn,
                &node,
                "Normal",
                "NodeNotReady",
                "NodeNotReady",
                &format!("Node {name} status is now: NodeNotReady"),
                "node-controller",
            );
            // MarkPodsNotReady: pods on an unreachable node leave their Services' endpoints.
            let pods: Vec<Value> = txn
                .list("pods", None)
                .into_iter()
                .filter(|p| s(p, "/spec/nodeName") == name)
                .collect();
            for p in pods {
                let (ns, pname) = crate::sandbox::store::ns_name(&p);
                let _ = txn.update_with(well_known::pods(), &ns, &pname, |o| {
                    set_condition(o, "Ready", "False", "NodeNotReady", "");
                    Ok(())
                });
            }
        });
    }
}

fn evict_for_taints(shared: &Arc<Shared>) {
    let (nodes, _) = shared.store.list("nodes", None);
    let tainted: HashMap<String, Vec<Value>> = nodes
        .iter()
        .filter_map(|n| {
            let ne: Vec<Value> = n
                .pointer("/spec/taints")
                .and_then(Value::as_array)?
                .iter()
                .filter(|t| t["effect"] == json!("NoExecute"))
                .cloned()
                .collect();
            (!ne.is_empty()).then(|| (s(n, "/metadata/name").to_string(), ne))
        })
        .collect();
    if tainted.is_empty() {
        return;
    }
    let (pods, _) = shared.store.list("pods", None);
    for pod in pods.iter().filter(|p| !terminating(p)) {
        let Some(taints) = tainted.get(s(pod, "/spec/nodeName")) else {
            continue;
        };
        let mut due = false;
        for t in taints {
            match tolerates(pod.pointer("/spec/tolerations"), t) {
                None => due = true,
                Some(None) => {}
                Some(Some(secs)) => {
                    let added = t["timeAdded"].as_str().unwrap_or_default();
                    if age_secs(added) >= secs as f64 {
                        due = true;
                    }
                }
            }
        }
        if due {
            let (ns, name) = crate::sandbox::store::ns_name(pod);
            shared.store.transaction(|txn| {
                if ops::delete(txn, well_known::pods(), &ns, &name, &DeleteOpts::default()).is_ok()
                {
                    ops::record_event(
                        txn,
                        pod,
                        "Normal",
                        "TaintManagerEviction",
                        "Delete",
                        &format!("Marking for deletion Pod {ns}/{name}"),
                        "taint-eviction-controller",
                    );
                }
            });
        }
    }
}

//! The scheduler: binds pending pods to Ready, schedulable nodes whose taints they tolerate,
//! spreading the pods of one owner across zones first and nodes second.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};

use super::util::{condition, controller_uid, s, set_condition, terminating, tolerates};
use crate::sandbox::cluster::Shared;
use crate::sandbox::ops;
use crate::sandbox::resources::well_known;

/// Pods a node accepts (`status.allocatable.pods` of a default kubelet).
const MAX_PODS: usize = 110;

/// Scheduler memory: pods already reported unschedulable (one event each, like the real one's
/// backoff keeps them from flooding).
#[derive(Default)]
pub(crate) struct Scheduler {
    reported: HashSet<String>,
}

struct Candidate {
    name: String,
    zone: String,
    taints: Vec<Value>,
    labels: Value,
}

fn fits(pod: &Value, node: &Candidate) -> bool {
    let tolerations = pod.pointer("/spec/tolerations");
    let tainted = node.taints.iter().any(|t| {
        matches!(t["effect"].as_str(), Some("NoSchedule" | "NoExecute"))
            && tolerates(tolerations, t).is_none()
    });
    let selector_ok = pod
        .pointer("/spec/nodeSelector")
        .and_then(Value::as_object)
        .is_none_or(|sel| sel.iter().all(|(k, v)| node.labels.get(k) == Some(v)));
    !tainted && selector_ok
}

impl Scheduler {
    /// Binds every pending pod it can.
    pub fn sync(&mut self, shared: &Arc<Shared>) {
        let (pods, _) = shared.store.list("pods", None);
        let pending: Vec<&Value> = pods
            .iter()
            .filter(|p| s(p, "/spec/nodeName").is_empty() && !terminating(p))
            .collect();
        if pending.is_empty() {
            self.reported.clear();
            return;
        }
        let (nodes, _) = shared.store.list("nodes", None);
        let candidates: Vec<Candidate> = nodes
            .iter()
            .filter(|n| condition(n, "Ready") == Some("True"))
            .filter(|n| n.pointer("/spec/unschedulable").and_then(Value::as_bool) != Some(true))
            .map(|n| Candidate {
                name: s(n, "/metadata/name").to_string(),
                zone: s(n, "/metadata/labels/topology.kubernetes.io~1zone").to_string(),
                taints: n
                    .pointer("/spec/taints")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                labels: n.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
            })
            .collect();
        let zone_of: HashMap<&str, &str> = candidates
            .iter()
            .map(|c| (c.name.as_str(), c.zone.as_str()))
            .collect();
        let mut per_node: HashMap<String, usize> = HashMap::new();
        let mut per_owner_node: HashMap<(String, String), usize> = HashMap::new();
        let mut per_owner_zone: HashMap<(String, String), usize> = HashMap::new();
        for p in pods
            .iter()
            .filter(|p| !s(p, "/spec/nodeName").is_empty() && !terminating(p))
        {
            let node = s(p, "/spec/nodeName").to_string();
            *per_node.entry(node.clone()).or_default() += 1;
            if let Some(owner) = controller_uid(p) {
                *per_owner_node
                    .entry((owner.to_string(), node.clone()))
                    .or_default() += 1;
                if let Some(zone) = zone_of.get(node.as_str()) {
                    *per_owner_zone
                        .entry((owner.to_string(), zone.to_string()))
                        .or_default() += 1;
                }
            }
        }
        for pod in pending {
            let owner = controller_uid(pod).unwrap_or_default().to_string();
            let best = candidates
                .iter()
                .filter(|c| per_node.get(&c.name).copied().unwrap_or(0) < MAX_PODS && fits(pod, c))
                .min_by_key(|c| {
                    (
                        per_owner_zone
                            .get(&(owner.clone(), c.zone.clone()))
                            .copied()
                            .unwrap_or(0),
                        per_owner_node
                            .get(&(owner.clone(), c.name.clone()))
                            .copied()
                            .unwrap_or(0),
                        per_node.get(&c.name).copied().unwrap_or(0),
                        rand::random::<u16>(),
                    )
                });
            let (ns, name) = crate::sandbox::store::ns_name(pod);
            let uid = s(pod, "/metadata/uid").to_string();
            match best {
                Some(c) => {
                    let node = c.name.clone();
                    let bound = shared.store.transaction(|txn| {
                        let r = txn.update_with(well_known::pods(), &ns, &name, |p| {
                            p["spec"]["nodeName"] = json!(node);
                            set_condition(p, "PodScheduled", "True", "", "");
                            Ok(())
                        });
                        if let Ok(p) = &r {
                            ops::record_event(
                                txn,
                                p,
                                "Normal",
                                "Scheduled",
                                "Binding",
                                &format!("Successfully assigned {ns}/{name} to {node}"),
                                "default-scheduler",
                            );
                        }
                        r.is_ok()
                    });
                    if bound {
                        self.reported.remove(&uid);
                        *per_node.entry(node.clone()).or_default() += 1;
                        *per_owner_node.entry((owner.clone(), node)).or_default() += 1;
                        *per_owner_zone
                            .entry((owner.clone(), c.zone.clone()))
                            .or_default() += 1;
                    }
                }
                None => {
                    if self.reported.insert(uid) {
                        let total = nodes.len();
                        let message = format!(
                            "0/{total} nodes are available: {} node(s) were unschedulable, had untolerated taints or were not ready.",
                            total
                        );
                        shared.store.transaction(|txn| {
                            let r = txn.update_with(well_known::pods(), &ns, &name, |p| {
                                set_condition(
                                    p,
                                    "PodScheduled",
                                    "False",
                                    "Unschedulable",
                                    &message,
                                );
                                Ok(())
                            });
                            if let Ok(p) = &r {
                                ops::record_event(
                                    txn,
                                    p,
                                    "Warning",
                                    "FailedScheduling",
                                    "Scheduling",
                                    &message,
                                    "default-scheduler",
                                );
                            }
                        });
                    }
                }
            }
        }
    }
}

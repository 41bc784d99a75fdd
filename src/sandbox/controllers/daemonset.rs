//! DaemonSet controller: one pod per eligible node, bound directly to it.
//!
//! Like the real controller it adds the tolerations every daemon pod gets (unschedulable,
//! not-ready, unreachable, pressure conditions), so cordoned and failing nodes keep their
//! daemons and `kubectl drain --ignore-daemonsets` leaves them in place.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};

use super::util::{controller_uid, i, pod_ready, s, terminating, tolerates};
use crate::sandbox::cluster::Shared;
use crate::sandbox::ops::{self, DeleteOpts};
use crate::sandbox::resources::{find, well_known};

/// Tolerations the DaemonSet controller adds to every daemon pod.
fn daemon_tolerations() -> Vec<Value> {
    let mut out = Vec::new();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        out.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute"}));
    }
    for key in [
        "node.kubernetes.io/disk-pressure",
        "node.kubernetes.io/memory-pressure",
        "node.kubernetes.io/pid-pressure",
        "node.kubernetes.io/unschedulable",
    ] {
        out.push(json!({"key": key, "operator": "Exists", "effect": "NoSchedule"}));
    }
    out
}

fn eligible(spec: &Value, node: &Value) -> bool {
    let selector_ok = spec
        .pointer("/nodeSelector")
        .and_then(Value::as_object)
        .is_none_or(|sel| {
            sel.iter()
                .all(|(k, v)| node.pointer("/metadata/labels").and_then(|l| l.get(k)) == Some(v))
        });
    let tolerations = spec.get("tolerations");
    let taints_ok = node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .is_none_or(|ts| {
            ts.iter().all(|t| {
                !matches!(t["effect"].as_str(), Some("NoSchedule" | "NoExecute"))
                    || tolerates(tolerations, t).is_some()
            })
        });
    selector_ok && taints_ok
}

/// One pass over every DaemonSet.
pub(crate) fn sync(shared: &Arc<Shared>) {
    let (sets, _) = shared.store.list("daemonsets", None);
    if sets.is_empty() {
        return;
    }
    let Some(def) = find("apps", "v1", "daemonsets") else {
        return;
    };
    let (nodes, _) = shared.store.list("nodes", None);
    let (pods, _) = shared.store.list("pods", None);
    let mut by_owner: HashMap<&str, Vec<&Value>> = HashMap::new();
    for p in pods.iter().filter(|p| !terminating(p)) {
        if let Some(uid) = controller_uid(p) {
            by_owner.entry(uid).or_default().push(p);
        }
    }
    let tolerations = daemon_tolerations();
    for ds in sets.iter().filter(|d| !terminating(d)) {
        let (ns, name) = crate::sandbox::store::ns_name(ds);
        let mut spec = ds["spec"]["template"]["spec"].clone();
        let mut tols = spec["tolerations"].as_array().cloned().unwrap_or_default();
        for t in &tolerations {
            if !tols
                .iter()
                .any(|x| x["key"] == t["key"] && x["effect"] == t["effect"])
            {
                tols.push(t.clone());
            }
        }
        spec["tolerations"] = json!(tols);
        let owned = by_owner
            .get(s(ds, "/metadata/uid"))
            .cloned()
            .unwrap_or_default();
        let wanted: HashSet<String> = nodes
            .iter()
            .filter(|n| eligible(&spec, n))
            .map(|n| s(n, "/metadata/name").to_string())
            .collect();
        let have: HashSet<String> = owned
            .iter()
            .map(|p| s(p, "/spec/nodeName").to_string())
            .collect();
        shared.store.transaction(|txn| {
            for node in wanted.iter().filter(|n| !have.contains(*n)) {
                let mut pod_spec = spec.clone();
                pod_spec["nodeName"] = json!(node);
                let mut pod = json!({
                    "metadata": {
                        "generateName": format!("{name}-"),
                        "labels": ds.pointer("/spec/template/metadata/labels").cloned().unwrap_or(json!({})),
                        "ownerReferences": [super::util::owner_ref(ds)],
                    },
                    "spec": pod_spec,
                });
                ops::admit_create(well_known::pods(), &mut pod, shared.timing.toleration.as_secs() as i64);
                if let Ok(p) = txn.create(well_known::pods(), &ns, pod) {
                    let pname = s(&p, "/metadata/name").to_string();
                    ops::record_event(txn, ds, "Normal", "SuccessfulCreate", "Create", &format!("Created pod: {pname}"), "daemonset-controller");
                }
            }
            for p in owned.iter().filter(|p| !wanted.contains(s(p, "/spec/nodeName"))) {
                let (pns, pname) = crate::sandbox::store::ns_name(p);
                let _ = ops::delete(txn, well_known::pods(), &pns, &pname, &DeleteOpts::default());
            }
            let ready = owned.iter().filter(|p| pod_ready(p)).count();
            let generation = i(ds, "/metadata/generation", 1);
            let _ = txn.update_with(def, &ns, &name, |o| {
                o["status"] = json!({
                    "desiredNumberScheduled": wanted.len(), "currentNumberScheduled": have.len(),
                    "updatedNumberScheduled": have.len(), "numberReady": ready, "numberAvailable": ready,
                    "numberMisscheduled": 0, "observedGeneration": generation,
                });
                Ok(())
            });
        });
    }
}

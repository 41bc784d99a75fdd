//! ReplicaSet controller: keeps `spec.replicas` active pods.
//!
//! Pods with a `deletionTimestamp` do not count as active, so a replacement is created as soon
//! as a deletion starts, not when the old pod is gone.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::util::{controller_uid, i, pod_ready, s, terminating};
use crate::sandbox::cluster::Shared;
use crate::sandbox::ops::{self, DeleteOpts};
use crate::sandbox::resources::well_known;

/// Pods one ReplicaSet creates per pass at most (kube-controller-manager's burst is 500).
const BURST: i64 = 500;

/// One pass over every ReplicaSet.
pub(crate) fn sync(shared: &Arc<Shared>) {
    let (sets, _) = shared.store.list("replicasets", None);
    if sets.is_empty() {
        return;
    }
    let (pods, _) = shared.store.list("pods", None);
    let mut by_owner: HashMap<&str, Vec<&Value>> = HashMap::new();
    for p in &pods {
        if let Some(uid) = controller_uid(p) {
            by_owner.entry(uid).or_default().push(p);
        }
    }
    let tolerations = shared.timing.toleration.as_secs() as i64;
    for rs in sets.iter().filter(|rs| !terminating(rs)) {
        let owned = by_owner
            .get(s(rs, "/metadata/uid"))
            .cloned()
            .unwrap_or_default();
        sync_one(shared, rs, &owned, tolerations);
    }
}

fn sync_one(shared: &Arc<Shared>, rs: &Value, owned: &[&Value], tolerations: i64) {
    let (ns, name) = crate::sandbox::store::ns_name(rs);
    let want = i(rs, "/spec/replicas", 1);
    let mut active: Vec<&Value> = owned
        .iter()
        .filter(|p| !terminating(p) && !matches!(s(p, "/status/phase"), "Succeeded" | "Failed"))
        .copied()
        .collect();
    let diff = want - active.len() as i64;
    if diff > 0 {
        let template = &rs["spec"]["template"];
        shared.store.transaction(|txn| {
            for _ in 0..diff.min(BURST) {
                let mut pod = json!({
                    "metadata": {
                        "generateName": format!("{name}-"),
                        "labels": template.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
                        "annotations": template.pointer("/metadata/annotations").cloned().unwrap_or(json!({})),
                        "ownerReferences": [super::util::owner_ref(rs)],
                    },
                    "spec": template["spec"].clone(),
                });
                ops::admit_create(well_known::pods(), &mut pod, tolerations);
                if let Ok(p) = txn.create(well_known::pods(), &ns, pod) {
                    let pname = s(&p, "/metadata/name").to_string();
                    ops::record_event(txn, rs, "Normal", "SuccessfulCreate", "Create", &format!("Created pod: {pname}"), "replicaset-controller");
                }
            }
        });
    } else if diff < 0 {
        // Delete unscheduled before scheduled, not ready before ready, newest first.
        active.sort_by_key(|p| {
            (
                s(p, "/spec/nodeName").is_empty(),
                !pod_ready(p),
                s(p, "/metadata/creationTimestamp").to_string(),
            )
        });
        active.reverse();
        shared.store.transaction(|txn| {
            for p in active.iter().take((-diff) as usize) {
                let (pns, pname) = crate::sandbox::store::ns_name(p);
                if ops::delete(
                    txn,
                    well_known::pods(),
                    &pns,
                    &pname,
                    &DeleteOpts::default(),
                )
                .is_ok()
                {
                    ops::record_event(
                        txn,
                        rs,
                        "Normal",
                        "SuccessfulDelete",
                        "Delete",
                        &format!("Deleted pod: {pname}"),
                        "replicaset-controller",
                    );
                }
            }
        });
    }
    let ready = active.iter().filter(|p| pod_ready(p)).count() as i64;
    let count = active.len() as i64;
    let generation = i(rs, "/metadata/generation", 1);
    let _ = shared
        .store
        .update_with(well_known::replicasets(), &ns, &name, |o| {
            o["status"] = json!({
                "replicas": count, "fullyLabeledReplicas": count, "readyReplicas": ready,
                "availableReplicas": ready, "observedGeneration": generation,
            });
            Ok(())
        });
}

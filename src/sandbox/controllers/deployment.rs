//! Deployment controller: one ReplicaSet per pod template (named by `pod-template-hash`),
//! rolling updates bounded by `maxSurge`/`maxUnavailable`, status and conditions.

use std::sync::Arc;

use serde_json::{Value, json};

use super::util::{controller_uid, i, s, set_condition, terminating};
use crate::sandbox::cluster::Shared;
use crate::sandbox::ops;
use crate::sandbox::resources::well_known;

/// Annotation holding a Deployment's (and each of its ReplicaSets') revision.
const REVISION: &str = "deployment.kubernetes.io/revision";
/// Earlier revisions of a ReplicaSet whose template came back (a rollback).
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";

/// A stable short hash of the pod template (FNV-1a, Kubernetes' "safe" alphabet).
///
/// Nulls and empty objects and lists are left out, as they are when upstream hashes the typed
/// template: a template that comes back from a typed client (`kubectl rollout undo` sends
/// `creationTimestamp: null` and `resources: {}`) hashes as the original did.
pub(crate) fn template_hash(template: &Value) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in without_empty(template).to_string().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut out = String::new();
    let mut x = u64::from(h);
    for _ in 0..10 {
        out.push(ALPHABET[(x % ALPHABET.len() as u64) as usize] as char);
        x = x / ALPHABET.len() as u64 + u64::from(h.rotate_left(7));
    }
    out
}

/// `v` without null fields and without empty objects and lists (recursively).
fn without_empty(v: &Value) -> Value {
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), without_empty(v)))
                .filter(|(_, v)| !empty(v))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_empty).collect()),
        other => other.clone(),
    }
}

fn revision_of(rs: &Value) -> Option<i64> {
    rs.pointer("/metadata/annotations")
        .and_then(|a| a.get(REVISION))
        .and_then(Value::as_str)
        .and_then(|r| r.parse().ok())
}

fn resolve(v: Option<&Value>, total: i64, up: bool, default: i64) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(default),
        Some(Value::String(p)) => p
            .strip_suffix('%')
            .and_then(|p| p.parse::<f64>().ok())
            .map(|p| {
                let x = p * total as f64 / 100.0;
                if up {
                    x.ceil() as i64
                } else {
                    x.floor() as i64
                }
            })
            .unwrap_or(default),
        _ => default,
    }
}

/// One pass over every Deployment.
pub(crate) fn sync(shared: &Arc<Shared>) {
    let (deployments, _) = shared.store.list("deployments", None);
    if deployments.is_empty() {
        return;
    }
    let (all_rs, _) = shared.store.list("replicasets", None);
    for d in deployments.iter().filter(|d| !terminating(d)) {
        sync_one(shared, d, &all_rs);
    }
}

fn sync_one(shared: &Arc<Shared>, d: &Value, all_rs: &[Arc<Value>]) {
    let ns = s(d, "/metadata/namespace").to_string();
    let name = s(d, "/metadata/name").to_string();
    let uid = s(d, "/metadata/uid");
    let replicas = i(d, "/spec/replicas", 1);
    let template = d["spec"]["template"].clone();
    let hash = template_hash(&template);
    let mut owned: Vec<&Value> = all_rs
        .iter()
        .map(|rs| rs.as_ref())
        .filter(|rs| s(rs, "/metadata/namespace") == ns && controller_uid(rs) == Some(uid))
        .collect();
    owned.sort_by_key(|rs| s(rs, "/metadata/creationTimestamp").to_string());
    let new_rs = owned
        .iter()
        .find(|rs| s(rs, "/metadata/labels/pod-template-hash") == hash)
        .copied();
    let olds: Vec<&Value> = owned
        .iter()
        .filter(|rs| s(rs, "/metadata/labels/pod-template-hash") != hash)
        .copied()
        .collect();
    let old_total: i64 = olds.iter().map(|rs| i(rs, "/spec/replicas", 0)).sum();
    let recreate = s(d, "/spec/strategy/type") == "Recreate";
    let surge = resolve(
        d.pointer("/spec/strategy/rollingUpdate/maxSurge"),
        replicas,
        true,
        1,
    );
    let mut unavailable = resolve(
        d.pointer("/spec/strategy/rollingUpdate/maxUnavailable"),
        replicas,
        false,
        0,
    );
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    let new_cur = new_rs.map(|rs| i(rs, "/spec/replicas", 0)).unwrap_or(0);
    let old_pods: i64 = olds.iter().map(|rs| i(rs, "/status/replicas", 0)).sum();
    let new_target = if old_total == 0 {
        replicas
    } else if recreate {
        if old_pods == 0 { replicas } else { 0 }
    } else {
        let room = replicas + surge - (old_total + new_cur);
        (new_cur + room.max(0))
            .min(replicas)
            .max(new_cur.min(replicas))
    };
    let rs_name = format!("{name}-{hash}");
    // As upstream: the ReplicaSet of the current template has the highest revision; one whose
    // template comes back (a rollback) takes the next revision.
    let max_old = olds
        .iter()
        .filter_map(|rs| revision_of(rs))
        .max()
        .unwrap_or(0);
    let revision = match new_rs {
        Some(rs) => match revision_of(rs) {
            Some(r) if r > max_old => r,
            old => {
                bump_revision(shared, rs, old, max_old + 1);
                max_old + 1
            }
        },
        None => max_old + 1,
    };
    match new_rs {
        None => {
            let mut tpl = template.clone();
            tpl["metadata"]["labels"]["pod-template-hash"] = json!(hash);
            let mut selector = d["spec"]["selector"].clone();
            selector["matchLabels"]["pod-template-hash"] = json!(hash);
            let mut labels = tpl["metadata"]["labels"].clone();
            labels["pod-template-hash"] = json!(hash);
            let rs = json!({
                "metadata": {
                    "name": rs_name, "labels": labels,
                    "annotations": {REVISION: revision.to_string(),
                                    "deployment.kubernetes.io/desired-replicas": replicas.to_string()},
                    "ownerReferences": [super::util::owner_ref(d)],
                },
                "spec": {"replicas": new_target, "selector": selector, "template": tpl},
            });
            shared.store.transaction(|txn| {
                let mut rs = rs;
                ops::admit_create(well_known::replicasets(), &mut rs, 300);
                if txn.create(well_known::replicasets(), &ns, rs).is_ok() {
                    ops::record_event(
                        txn,
                        d,
                        "Normal",
                        "ScalingReplicaSet",
                        "Scale",
                        &format!("Scaled up replica set {rs_name} from 0 to {new_target}"),
                        "deployment-controller",
                    );
                }
            });
        }
        Some(rs) if new_cur != new_target => scale(shared, d, rs, new_cur, new_target),
        Some(_) => {}
    }
    // Scale old ReplicaSets down as far as availability allows.
    if old_total > 0 {
        let available: i64 = owned
            .iter()
            .map(|rs| i(rs, "/status/availableReplicas", 0))
            .sum();
        let mut budget = if recreate {
            old_total
        } else {
            (available - (replicas - unavailable)).max(0)
        };
        for rs in &olds {
            let cur = i(rs, "/spec/replicas", 0);
            // Old pods that are not ready cost no availability: remove them first.
            let unready = cur - i(rs, "/status/availableReplicas", 0);
            let cut = (budget + unready.max(0)).min(cur);
            if cut > 0 {
                scale(shared, d, rs, cur, cur - cut);
                budget -= (cut - unready.max(0)).max(0);
            }
        }
    }
    let progress = Progress {
        hash: &hash,
        revision,
        replicas,
        unavailable,
    };
    update_status(shared, d, &ns, &name, &owned, &progress);
}

/// Gives the ReplicaSet of a template that came back the next revision, keeping the earlier
/// ones in `revision-history`.
fn bump_revision(shared: &Arc<Shared>, rs: &Value, old: Option<i64>, revision: i64) {
    let (ns, name) = crate::sandbox::store::ns_name(rs);
    let _ = shared
        .store
        .update_with(well_known::replicasets(), &ns, &name, |o| {
            let annotations = &mut o["metadata"]["annotations"];
            if let Some(old) = old {
                let history = annotations
                    .get(REVISION_HISTORY)
                    .and_then(Value::as_str)
                    .filter(|h| !h.is_empty())
                    .map_or(old.to_string(), |h| format!("{h},{old}"));
                annotations[REVISION_HISTORY] = json!(history);
            }
            annotations[REVISION] = json!(revision.to_string());
            Ok(())
        });
}

/// Where a Deployment's rollout stands, for its status.
struct Progress<'a> {
    /// Hash of the current template.
    hash: &'a str,
    /// Revision of the current template's ReplicaSet.
    revision: i64,
    /// Desired replicas.
    replicas: i64,
    /// Resolved `maxUnavailable`.
    unavailable: i64,
}

fn scale(shared: &Arc<Shared>, d: &Value, rs: &Value, from: i64, to: i64) {
    let (ns, name) = crate::sandbox::store::ns_name(rs);
    shared.store.transaction(|txn| {
        let desired = i(d, "/spec/replicas", 1);
        let ok = txn.update_with(well_known::replicasets(), &ns, &name, |o| {
            o["spec"]["replicas"] = json!(to);
            o["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] =
                json!(desired.to_string());
            Ok(())
        });
        if ok.is_ok() {
            let verb = if to > from { "up" } else { "down" };
            ops::record_event(
                txn,
                d,
                "Normal",
                "ScalingReplicaSet",
                "Scale",
                &format!("Scaled {verb} replica set {name} from {from} to {to}"),
                "deployment-controller",
            );
        }
    });
}

fn update_status(
    shared: &Arc<Shared>,
    d: &Value,
    ns: &str,
    name: &str,
    owned: &[&Value],
    progress: &Progress<'_>,
) {
    let Progress {
        hash,
        revision,
        replicas,
        unavailable,
    } = *progress;
    let sum = |ptr: &str| owned.iter().map(|rs| i(rs, ptr, 0)).sum::<i64>();
    let total = sum("/status/replicas");
    let ready = sum("/status/readyReplicas");
    let available = sum("/status/availableReplicas");
    let updated = owned
        .iter()
        .find(|rs| s(rs, "/metadata/labels/pod-template-hash") == hash)
        .map(|rs| i(rs, "/status/replicas", 0))
        .unwrap_or(0);
    let generation = i(d, "/metadata/generation", 1);
    let _ = shared
        .store
        .update_with(well_known::deployments(), ns, name, |o| {
            // The Deployment carries its current revision, which `kubectl rollout undo` keeps.
            o["metadata"]["annotations"][REVISION] = json!(revision.to_string());
            let st = &mut o["status"];
            if !st.is_object() {
                *st = json!({});
            }
            st["observedGeneration"] = json!(generation);
            st["replicas"] = json!(total);
            st["updatedReplicas"] = json!(updated);
            st["readyReplicas"] = json!(ready);
            st["availableReplicas"] = json!(available);
            st["unavailableReplicas"] = json!((total.max(replicas) - available).max(0));
            if st["readyReplicas"] == json!(0)
                && let Some(m) = st.as_object_mut()
            {
                m.remove("readyReplicas");
            }
            let is_available = available >= replicas - unavailable;
            set_condition(
                o,
                "Available",
                if is_available { "True" } else { "False" },
                if is_available {
                    "MinimumReplicasAvailable"
                } else {
                    "MinimumReplicasUnavailable"
                },
                if is_available {
                    "Deployment has minimum availability."
                } else {
                    "Deployment does not have minimum availability."
                },
            );
            let complete = updated == replicas && total == replicas && available == replicas;
            set_condition(
                o,
                "Progressing",
                "True",
                if complete {
                    "NewReplicaSetAvailable"
                } else {
                    "ReplicaSetUpdated"
                },
                &format!(
                    "ReplicaSet \"{name}-{hash}\" {}",
                    if complete {
                        "has successfully progressed."
                    } else {
                        "is progressing."
                    }
                ),
            );
            Ok(())
        });
}

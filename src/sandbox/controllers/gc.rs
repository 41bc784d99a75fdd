//! Garbage collection: namespace termination, dependents of deleted owners, pods bound to
//! nodes that no longer exist, and old events.

use std::sync::Arc;

use serde_json::Value;

use super::util::{age_secs, s, terminating};
use crate::sandbox::cluster::Shared;
use crate::sandbox::ops::{self, DeleteOpts};
use crate::sandbox::resources::{RESOURCES, by_storage, well_known};

/// Events older than this are removed (kube-apiserver's `--event-ttl` default).
const EVENT_TTL_SECS: f64 = 3600.0;
/// Events kept at most, oldest removed first, so a long run has bounded memory.
const MAX_EVENTS: usize = 5000;

fn storages() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for d in RESOURCES {
        if !out.contains(&d.storage) {
            out.push(d.storage);
        }
    }
    out
}

/// Empties terminating namespaces, then removes them.
pub(crate) fn namespaces(shared: &Arc<Shared>) {
    let (all, _) = shared.store.list("namespaces", None);
    for ns in all.iter().filter(|n| terminating(n)) {
        let name = s(ns, "/metadata/name").to_string();
        let mut remaining = 0usize;
        shared.store.transaction(|txn| {
            for storage in storages() {
                let def = by_storage(storage);
                if !def.namespaced {
                    continue;
                }
                for obj in txn.list(storage, Some(&name)) {
                    remaining += 1;
                    let oname = s(&obj, "/metadata/name").to_string();
                    if storage == "pods" {
                        if !terminating(&obj) {
                            let _ = ops::delete(txn, def, &name, &oname, &DeleteOpts::default());
                        }
                    } else {
                        let _ = txn.remove(def, &name, &oname, None);
                    }
                }
            }
            if remaining == 0 {
                let _ = txn.remove(well_known::namespaces(), "", &name, None);
            }
        });
    }
}

/// Deletes objects whose owners are all gone, and pods bound to missing nodes.
pub(crate) fn owners(shared: &Arc<Shared>) {
    shared.store.transaction(|txn| {
        let uids = txn.uids();
        let nodes: std::collections::HashSet<String> = txn
            .list("nodes", None)
            .iter()
            .map(|n| s(n, "/metadata/name").to_string())
            .collect();
        // Events carry no ownerReferences; skipping them keeps a pass cheap with many events.
        for storage in storages().into_iter().filter(|s| *s != "events") {
            let def = by_storage(storage);
            for obj in txn.list(storage, None) {
                let Some(refs) = obj
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                else {
                    continue;
                };
                if refs.is_empty()
                    || refs
                        .iter()
                        .any(|r| r["uid"].as_str().is_some_and(|u| uids.contains(u)))
                {
                    continue;
                }
                let (ns, name) = crate::sandbox::store::ns_name(&obj);
                if storage == "pods" {
                    if !terminating(&obj) {
                        let _ = ops::delete(txn, def, &ns, &name, &DeleteOpts::default());
                    }
                } else {
                    let _ = txn.remove(def, &ns, &name, None);
                }
            }
        }
        // PodGC: pods bound to a node object that no longer exists are removed at once.
        for pod in txn.list("pods", None) {
            let node = s(&pod, "/spec/nodeName");
            if !node.is_empty() && !nodes.contains(node) {
                let (ns, name) = crate::sandbox::store::ns_name(&pod);
                let _ = txn.remove(well_known::pods(), &ns, &name, None);
            }
        }
    });
}

/// Drops expired events and caps how many are kept.
pub(crate) fn events(shared: &Arc<Shared>) {
    let (mut all, _) = shared.store.list("events", None);
    if all.is_empty() {
        return;
    }
    all.sort_by_key(|e| s(e, "/metadata/creationTimestamp").to_string());
    let excess = all.len().saturating_sub(MAX_EVENTS);
    for (idx, e) in all.iter().enumerate() {
        if idx < excess || age_secs(s(e, "/metadata/creationTimestamp")) > EVENT_TTL_SECS {
            let (ns, name) = crate::sandbox::store::ns_name(e);
            let _ = shared.store.remove(well_known::events(), &ns, &name, None);
        } else {
            break;
        }
    }
}

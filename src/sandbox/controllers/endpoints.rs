//! EndpointSlice controller, the Service load balancers (our kube-proxy) and the disruption
//! controller's PodDisruptionBudget status.
//!
//! Pods share the loopback IP and differ by port, so endpoints are grouped into one slice per
//! port, as the real controller does when a named target port resolves differently per pod.
//! A terminating pod stays in its slice with `ready: false`, `terminating: true`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};

use super::kubelet::PORT_ANNOTATION;
use super::util::{i, pod_ready, s, terminating};
use crate::sandbox::cluster::{LbEndpoint, Shared};
use crate::sandbox::lb::LoadBalancer;
use crate::sandbox::ops;
use crate::sandbox::resources::well_known;
use crate::sandbox::selector::LabelSelector;

/// Annotation carrying the URL of a Service's local load balancer.
pub(crate) const URL_ANNOTATION: &str = "sandbox.steadfast.dev/url";
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Load balancers by `(namespace, service)`.
#[derive(Default)]
pub(crate) struct EndpointController {
    lbs: HashMap<(String, String), LoadBalancer>,
}

impl EndpointController {
    /// Reconciles slices and load balancers of every Service.
    pub fn sync(&mut self, shared: &Arc<Shared>) {
        let (services, _) = shared.store.list("services", None);
        let (pods, _) = shared.store.list("pods", None);
        let (slices, _) = shared.store.list("endpointslices", None);
        let mut seen = Vec::new();
        for svc in services.iter().filter(|s| !terminating(s)) {
            let (ns, name) = crate::sandbox::store::ns_name(svc);
            let Some(selector) = svc.pointer("/spec/selector").and_then(Value::as_object) else {
                continue;
            };
            let map: BTreeMap<String, String> = selector
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            if map.is_empty() {
                continue;
            }
            seen.push((ns.clone(), name.clone()));
            self.ensure_lb(shared, svc, &ns, &name);
            let sel = LabelSelector::from_map(&map);
            let members: Vec<&Value> = pods
                .iter()
                .filter(|p| s(p, "/metadata/namespace") == ns && sel.matches_object(p))
                .filter(|p| {
                    !s(
                        p,
                        &format!(
                            "/metadata/annotations/{}",
                            PORT_ANNOTATION.replace('/', "~1")
                        ),
                    )
                    .is_empty()
                })
                .filter(|p| s(p, "/status/phase") == "Running")
                .collect();
            let existing: Vec<&Value> = slices
                .iter()
                .filter(|sl| {
                    s(sl, "/metadata/namespace") == ns
                        && s(sl, "/metadata/labels/kubernetes.io~1service-name") == name
                })
                .collect();
            reconcile_slices(shared, svc, &members, &existing);
            let ready: Vec<LbEndpoint> = members
                .iter()
                .filter(|p| pod_ready(p) && !terminating(p))
                .filter_map(|p| {
                    let port: u16 = s(
                        p,
                        &format!(
                            "/metadata/annotations/{}",
                            PORT_ANNOTATION.replace('/', "~1")
                        ),
                    )
                    .parse()
                    .ok()?;
                    Some(LbEndpoint {
                        pod: s(p, "/metadata/name").to_string(),
                        addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                    })
                })
                .collect();
            let mut eps = shared.endpoints.write().unwrap_or_else(|e| e.into_inner());
            let key = (ns.clone(), name.clone());
            let changed = eps.get(&key).is_none_or(|cur| {
                cur.len() != ready.len() || cur.iter().zip(&ready).any(|(a, b)| a.addr != b.addr)
            });
            if changed {
                eps.insert(key, Arc::new(ready));
            }
        }
        // Services that are gone lose their load balancer and endpoints.
        self.lbs.retain(|k, _| seen.contains(k));
        shared
            .endpoints
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| seen.contains(k));
        shared
            .lb_addrs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| seen.contains(k));
    }

    fn ensure_lb(&mut self, shared: &Arc<Shared>, svc: &Value, ns: &str, name: &str) {
        let key = (ns.to_string(), name.to_string());
        if !self.lbs.contains_key(&key) {
            match LoadBalancer::start(shared.clone(), ns.to_string(), name.to_string()) {
                Ok(lb) => {
                    shared
                        .lb_addrs
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(key.clone(), lb.addr);
                    self.lbs.insert(key.clone(), lb);
                }
                Err(e) => {
                    tracing::warn!(namespace = ns, service = name, error = %e, "cannot start load balancer");
                    return;
                }
            }
        }
        let Some(lb) = self.lbs.get(&key) else { return };
        let url = format!("http://{}", lb.addr);
        if s(
            svc,
            &format!(
                "/metadata/annotations/{}",
                URL_ANNOTATION.replace('/', "~1")
            ),
        ) != url
        {
            let _ = shared
                .store
                .update_with(well_known::services(), ns, name, |o| {
                    o["metadata"]["annotations"][URL_ANNOTATION] = json!(url);
                    Ok(())
                });
        }
    }
}

fn reconcile_slices(shared: &Arc<Shared>, svc: &Value, members: &[&Value], existing: &[&Value]) {
    let (ns, name) = crate::sandbox::store::ns_name(svc);
    let mut by_port: BTreeMap<u16, Vec<Value>> = BTreeMap::new();
    for p in members {
        let Ok(port) = s(
            p,
            &format!(
                "/metadata/annotations/{}",
                PORT_ANNOTATION.replace('/', "~1")
            ),
        )
        .parse::<u16>() else {
            continue;
        };
        let deleting = terminating(p);
        let ready = pod_ready(p);
        let node = s(p, "/spec/nodeName");
        let zone = shared
            .node_runtime(node)
            .map(|rt| rt.zone)
            .unwrap_or_default();
        by_port.entry(port).or_default().push(json!({
            "addresses": ["127.0.0.1"],
            "conditions": {"ready": ready && !deleting, "serving": ready, "terminating": deleting},
            "nodeName": node, "zone": zone,
            "targetRef": {"kind": "Pod", "namespace": ns, "name": s(p, "/metadata/name"), "uid": s(p, "/metadata/uid")},
        }));
    }
    let svc_ports: Vec<Value> = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let slice_port = |sl: &Value| i(sl, "/ports/0/port", 0) as u16;
    for (port, endpoints) in &by_port {
        let ports: Vec<Value> = svc_ports
            .iter()
            .map(|sp| json!({"name": sp.get("name").cloned().unwrap_or(json!("")), "port": port, "protocol": "TCP"}))
            .collect();
        match existing.iter().find(|sl| slice_port(sl) == *port) {
            Some(sl) => {
                if sl["endpoints"] != json!(endpoints) || sl["ports"] != json!(ports) {
                    let sname = s(sl, "/metadata/name").to_string();
                    let _ =
                        shared
                            .store
                            .update_with(well_known::endpointslices(), &ns, &sname, |o| {
                                o["endpoints"] = json!(endpoints);
                                o["ports"] = json!(ports);
                                Ok(())
                            });
                }
            }
            None => {
                let slice = json!({
                    "metadata": {
                        "generateName": format!("{name}-"),
                        "labels": {SERVICE_NAME_LABEL: name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                        "ownerReferences": [super::util::owner_ref(svc)],
                    },
                    "addressType": "IPv4", "endpoints": endpoints, "ports": ports,
                });
                let _ = shared
                    .store
                    .create(well_known::endpointslices(), &ns, slice);
            }
        }
    }
    for sl in existing {
        if !by_port.contains_key(&slice_port(sl)) {
            let sname = s(sl, "/metadata/name").to_string();
            let _ = shared
                .store
                .remove(well_known::endpointslices(), &ns, &sname, None);
        }
    }
}

/// Writes `status` of every PodDisruptionBudget.
pub(crate) fn disruption_budgets(shared: &Arc<Shared>) {
    let (pdbs, _) = shared.store.list("poddisruptionbudgets", None);
    for pdb in pdbs {
        let (ns, name) = crate::sandbox::store::ns_name(&pdb);
        shared.store.transaction(|txn| {
            let b = ops::budget(txn, &pdb);
            let live: Vec<String> = txn
                .list("pods", Some(&ns))
                .iter()
                .filter(|p| !terminating(p))
                .map(|p| s(p, "/metadata/name").to_string())
                .collect();
            let generation = i(&pdb, "/metadata/generation", 1);
            let _ = txn.update_with(well_known::pdbs(), &ns, &name, |o| {
                let disrupted: serde_json::Map<String, Value> = o
                    .pointer("/status/disruptedPods")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .filter(|(k, _)| live.contains(k))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                let conds = o
                    .pointer("/status/conditions")
                    .cloned()
                    .unwrap_or(json!([]));
                o["status"] = json!({
                    "observedGeneration": generation, "currentHealthy": b.current_healthy,
                    "desiredHealthy": b.desired_healthy, "expectedPods": b.expected,
                    "disruptionsAllowed": b.allowed(), "conditions": conds,
                });
                if !disrupted.is_empty() {
                    o["status"]["disruptedPods"] = Value::Object(disrupted);
                }
                let allowed = b.allowed() > 0;
                super::util::set_condition(
                    o,
                    "DisruptionAllowed",
                    if allowed { "True" } else { "False" },
                    if allowed {
                        "SufficientPods"
                    } else {
                        "InsufficientPods"
                    },
                    "",
                );
                Ok(())
            });
        });
    }
}

//! The kubelets: one per node, each renewing its Lease, posting node status and running the
//! pods bound to it as real HTTP backends.
//!
//! A silent node (not reporting, or partitioned) does nothing: its Lease ages, its terminating
//! pods stay Terminating, and its backends keep running, exactly what a dead kubelet leaves.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tracing::warn;

use super::ephemeral::PodEphemerals;
use super::util::{controller_name, s, set_condition, terminating};
use crate::sandbox::backend::{Backend, BackendIdentity};
use crate::sandbox::cluster::{NodeRuntime, Shared};
use crate::sandbox::netem::NetworkCell;
use crate::sandbox::ops;
use crate::sandbox::resources::well_known;
use crate::sandbox::store::{now_micro, now_rfc3339};

/// Annotation carrying a pod's backend port (pods share the loopback IP).
pub(crate) const PORT_ANNOTATION: &str = "sandbox.steadfast.dev/backend-port";

struct Stopping {
    began: Instant,
    deadline: Instant,
    shutdown_sent: bool,
}

struct PodRun {
    backend: Backend,
    node: String,
    started: Instant,
    /// Ready has been observed or posted; until then a timer is pending.
    ready: bool,
    stopping: Option<Stopping>,
    /// The pod's network rules, applied by its backend.
    network: NetworkCell,
    /// Its ephemeral containers.
    ephemerals: PodEphemerals,
}

/// Runtime state of every kubelet.
#[derive(Default)]
pub(crate) struct Kubelets {
    pods: HashMap<String, PodRun>,
    last_renew: HashMap<String, Instant>,
}

fn active(rt: &NodeRuntime) -> bool {
    rt.reporting && !rt.partitioned.load(Ordering::Relaxed) && rt.joined.elapsed() >= rt.boot_delay
}

impl Kubelets {
    /// Every kubelet's heartbeat: Lease renewal and node status.
    pub fn heartbeat(&mut self, shared: &Arc<Shared>) {
        let runtimes: HashMap<String, NodeRuntime> = shared
            .nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (name, rt) in &runtimes {
            self.node_status(shared, name, rt);
        }
    }

    /// Whether a pod waits for a timer (start-up delay, termination).
    pub fn has_timers(&self) -> bool {
        self.pods
            .values()
            .any(|r| !r.ready || r.stopping.is_some() || r.ephemerals.has_timers())
    }

    /// Every kubelet's pod work: start, report readiness, terminate.
    pub fn sync_pods(&mut self, shared: &Arc<Shared>) {
        let runtimes: HashMap<String, NodeRuntime> = shared
            .nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let (pods, _) = shared.store.list("pods", None);
        let mut live = std::collections::HashSet::new();
        for pod in &pods {
            let uid = s(pod, "/metadata/uid").to_string();
            live.insert(uid.clone());
            let node = s(pod, "/spec/nodeName");
            let Some(rt) = runtimes.get(node) else {
                continue;
            };
            if !active(rt) {
                continue;
            }
            self.sync_pod(shared, pod, uid, rt);
        }
        // Pods removed from the API (forced deletion) are killed once their kubelet is back.
        self.pods.retain(|uid, run| {
            live.contains(uid) || runtimes.get(&run.node).is_some_and(|rt| !active(rt))
        });
    }

    fn node_status(&mut self, shared: &Arc<Shared>, name: &str, rt: &NodeRuntime) {
        if !rt.reporting || rt.partitioned.load(Ordering::Relaxed) {
            return;
        }
        let Some(node) = shared.store.get("nodes", "", name) else {
            return;
        };
        let booted = rt.joined.elapsed() >= rt.boot_delay;
        if booted {
            // The machine has booted: the containers of its pods run again.
            rt.powered_off
                .send_if_modified(|off| std::mem::replace(off, false));
        }
        let due = self
            .last_renew
            .get(name)
            .is_none_or(|t| t.elapsed() >= shared.timing.lease_renew_interval);
        if booted && due {
            self.last_renew.insert(name.to_string(), Instant::now());
            renew_lease(shared, name, &node);
        }
        let ready = super::util::condition(&node, "Ready");
        let want = if booted { "True" } else { "False" };
        if ready != Some(want) {
            shared.store.transaction(|txn| {
                let updated = txn.update_with(well_known::nodes(), "", name, |n| {
                    let now = now_rfc3339();
                    for ty in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
                        set_condition(n, ty, "False", &format!("KubeletHasNo{ty}"), "");
                    }
                    if booted {
                        set_condition(
                            n,
                            "Ready",
                            "True",
                            "KubeletReady",
                            "kubelet is posting ready status",
                        );
                    } else {
                        set_condition(
                            n,
                            "Ready",
                            "False",
                            "KubeletNotReady",
                            "container runtime network not ready: NetworkReady=false",
                        );
                    }
                    if let Some(conds) = n["status"]["conditions"].as_array_mut() {
                        for c in conds {
                            c["lastHeartbeatTime"] = json!(now);
                        }
                    }
                    Ok(())
                });
                if let Ok(node) = updated
                    && booted
                {
                    ops::record_event(
                        txn,
                        &node,
                        "Normal",
                        "NodeReady",
                        "NodeReady",
                        &format!("Node {name} status is now: NodeReady"),
                        "kubelet",
                    );
                }
            });
        }
    }

    fn sync_pod(&mut self, shared: &Arc<Shared>, pod: &Value, uid: String, rt: &NodeRuntime) {
        let (ns, name) = crate::sandbox::store::ns_name(pod);
        let deleting = terminating(pod);
        let Some(run) = self.pods.get_mut(&uid) else {
            if deleting {
                // Never started: nothing to stop.
                let _ = shared
                    .store
                    .remove(well_known::pods(), &ns, &name, Some(&uid));
            } else if !matches!(s(pod, "/status/phase"), "Succeeded" | "Failed") {
                self.start_pod(shared, pod, uid, rt);
            }
            return;
        };
        if deleting {
            let grace =
                super::util::i(pod, "/metadata/deletionGracePeriodSeconds", 30).max(0) as u64;
            let stop = run.stopping.get_or_insert_with(|| {
                let container = s(pod, "/spec/containers/0/name").to_string();
                shared.store.transaction(|txn| {
                    ops::record_event(
                        txn,
                        pod,
                        "Normal",
                        "Killing",
                        "Killing",
                        &format!("Stopping container {container}"),
                        "kubelet",
                    );
                });
                Stopping {
                    began: Instant::now(),
                    deadline: Instant::now() + Duration::from_secs(grace),
                    shutdown_sent: false,
                }
            });
            let pre_stop = shared.timing.pre_stop_delay.min(Duration::from_secs(grace));
            if !stop.shutdown_sent && stop.began.elapsed() >= pre_stop {
                stop.shutdown_sent = true;
                run.backend.begin_shutdown();
            }
            if (stop.shutdown_sent && run.backend.is_finished()) || Instant::now() >= stop.deadline
            {
                self.pods.remove(&uid);
                let _ = shared
                    .store
                    .remove(well_known::pods(), &ns, &name, Some(&uid));
            }
            return;
        }
        run.ephemerals.sync(shared, pod, &run.network);
        if run.started < rt.joined {
            // The machine booted again (a stopped instance started): its containers restart.
            run.started = Instant::now();
        }
        // Re-posted after a silence too: the node controller may have marked the pod not ready.
        if run.started.elapsed() < shared.timing.pod_startup_delay {
            return;
        }
        run.ready = true;
        if !super::util::pod_ready(pod) {
            let _ = shared
                .store
                .update_with(well_known::pods(), &ns, &name, |p| {
                    set_condition(p, "ContainersReady", "True", "", "");
                    set_condition(p, "Ready", "True", "", "");
                    if let Some(cs) = p["status"]["containerStatuses"].as_array_mut() {
                        for c in cs {
                            c["ready"] = json!(true);
                        }
                    }
                    Ok(())
                });
        }
    }

    fn start_pod(&mut self, shared: &Arc<Shared>, pod: &Value, uid: String, rt: &NodeRuntime) {
        let (ns, name) = crate::sandbox::store::ns_name(pod);
        let node = s(pod, "/spec/nodeName").to_string();
        let workload = deployment_of(shared, pod).unwrap_or_else(|| name.clone());
        let id = BackendIdentity {
            namespace: ns.clone(),
            pod: name.clone(),
            node: node.clone(),
            zone: rt.zone.clone(),
        };
        let network = NetworkCell::default();
        let backend = match Backend::start(
            id,
            shared.behaviour(&ns, &workload),
            rt.partitioned.clone(),
            rt.powered_off.clone(),
            network.clone(),
            shared
                .upstream(&ns, &workload)
                .map(|upstream| crate::sandbox::backend::UpstreamCall {
                    upstream,
                    shared: Arc::downgrade(shared),
                }),
            shared.service_peers.clone(),
        ) {
            Ok(b) => b,
            Err(e) => {
                warn!(pod = %name, error = %e, "cannot start backend");
                return;
            }
        };
        let port = backend.addr.port();
        let now = now_rfc3339();
        let containers: Vec<Value> = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let statuses: Vec<Value> = containers
            .iter()
            .map(|c| {
                json!({
                    "name": c["name"], "image": c["image"], "imageID": format!("{}@sha256:0", s(c, "/image")),
                    "containerID": format!("containerd://{uid}"), "ready": false, "started": true,
                    "restartCount": 0, "state": {"running": {"startedAt": now}},
                })
            })
            .collect();
        let result = shared.store.transaction(|txn| {
            let updated = txn.update_with(well_known::pods(), &ns, &name, |p| {
                p["metadata"]["annotations"][PORT_ANNOTATION] = json!(port.to_string());
                p["status"]["phase"] = json!("Running");
                p["status"]["hostIP"] = json!("127.0.0.1");
                p["status"]["hostIPs"] = json!([{"ip": "127.0.0.1"}]);
                p["status"]["podIP"] = json!("127.0.0.1");
                p["status"]["podIPs"] = json!([{"ip": "127.0.0.1"}]);
                p["status"]["startTime"] = json!(now);
                p["status"]["containerStatuses"] = json!(statuses);
                set_condition(p, "Initialized", "True", "", "");
                set_condition(p, "PodReadyToStartContainers", "True", "", "");
                set_condition(
                    p,
                    "ContainersReady",
                    "False",
                    "ContainersNotReady",
                    "containers with unready status",
                );
                set_condition(
                    p,
                    "Ready",
                    "False",
                    "ContainersNotReady",
                    "containers with unready status",
                );
                Ok(())
            });
            if let Ok(p) = &updated {
                let container = s(p, "/spec/containers/0/name").to_string();
                ops::record_event(
                    txn,
                    p,
                    "Normal",
                    "Started",
                    "Started",
                    &format!("Started container {container}"),
                    "kubelet",
                );
            }
            updated
        });
        if result.is_ok() {
            self.pods.insert(
                uid,
                PodRun {
                    backend,
                    node,
                    started: Instant::now(),
                    ready: false,
                    stopping: None,
                    network,
                    ephemerals: PodEphemerals::default(),
                },
            );
        }
    }
}

/// The workload a pod belongs to: the Deployment owning its ReplicaSet, or its controller.
fn deployment_of(shared: &Arc<Shared>, pod: &Value) -> Option<String> {
    let ns = s(pod, "/metadata/namespace");
    let Some(rs_name) = controller_name(pod, "ReplicaSet") else {
        return pod
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)?
            .iter()
            .find(|r| r["controller"] == json!(true))
            .and_then(|r| r["name"].as_str())
            .map(String::from);
    };
    let rs = shared.store.get("replicasets", ns, rs_name);
    Some(
        rs.as_ref()
            .and_then(|rs| controller_name(rs, "Deployment"))
            .map(String::from)
            .unwrap_or_else(|| rs_name.to_string()),
    )
}

fn renew_lease(shared: &Arc<Shared>, name: &str, node: &Value) {
    let now = now_micro();
    let leases = well_known::leases();
    let renewed = shared
        .store
        .update_with(leases, "kube-node-lease", name, |l| {
            l["spec"]["renewTime"] = json!(now);
            l["spec"]["holderIdentity"] = json!(name);
            Ok(())
        });
    if renewed.is_err() {
        let lease = json!({
            "metadata": {"name": name, "ownerReferences": [{
                "apiVersion": "v1", "kind": "Node", "name": name, "uid": node.pointer("/metadata/uid"),
            }]},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now},
        });
        let _ = shared.store.create(leases, "kube-node-lease", lease);
    }
}

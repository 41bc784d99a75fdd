//! Nodes as machines: creating them, their kubelet reporting, their network, their removal.
//!
//! Shared by the [`Sandbox`](super::Sandbox) handle and the cloud link, which both add and
//! remove machines.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::SandboxError;
use super::cluster::{NodeRuntime, Shared};
use super::resources::well_known;

/// A made-up EC2 instance id for nodes without a cloud.
pub(crate) fn random_instance_id() -> String {
    format!("i-{:017x}", rand::random::<u64>() & 0x0fff_ffff_ffff_ffff)
}

/// Creates and controls the sandbox's machines.
#[derive(Clone)]
pub(crate) struct NodeFactory {
    shared: Arc<Shared>,
    zones: Vec<String>,
}

impl NodeFactory {
    /// A factory for the zones of a topology.
    pub fn new(shared: Arc<Shared>, zones: Vec<String>) -> Self {
        Self { shared, zones }
    }

    /// Creates a node object and its machine state in zone `zone_index`.
    pub fn create(
        &self,
        zone_index: usize,
        zone: &str,
        n: u32,
        boot_delay: Duration,
        instance: &str,
    ) -> Result<String, SandboxError> {
        let region = &self.shared.region;
        let domain = if region == "us-east-1" {
            "ec2.internal".to_string()
        } else {
            format!("{region}.compute.internal")
        };
        let mut third = 16 * (zone_index as u32 + 1);
        let mut host = 10 + n;
        let mut name = format!("ip-10-0-{third}-{host}.{domain}");
        while self.shared.store.get("nodes", "", &name).is_some() {
            host += 1;
            if host > 250 {
                host = 10;
                third += 1;
            }
            name = format!("ip-10-0-{third}-{host}.{domain}");
        }
        let node = json!({
            "metadata": {
                "name": name,
                "labels": {
                    "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                    "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
                    "topology.kubernetes.io/zone": zone, "topology.kubernetes.io/region": region,
                    "failure-domain.beta.kubernetes.io/zone": zone, "failure-domain.beta.kubernetes.io/region": region,
                    "node.kubernetes.io/instance-type": self.shared.instance_type,
                    "eks.amazonaws.com/nodegroup": format!("sandbox-{zone}"),
                },
            },
            "spec": {"providerID": format!("aws:///{zone}/{instance}")},
            "status": {
                "addresses": [
                    {"type": "InternalIP", "address": format!("10.0.{third}.{host}")},
                    {"type": "Hostname", "address": name},
                    {"type": "InternalDNS", "address": name},
                ],
                "capacity": {"cpu": "2", "memory": "8025424Ki", "pods": "110", "ephemeral-storage": "83873772Ki"},
                "allocatable": {"cpu": "1930m", "memory": "7335248Ki", "pods": "110", "ephemeral-storage": "76224326324"},
                "nodeInfo": {
                    "kubeletVersion": "v1.32.0-eks-sandbox", "kubeProxyVersion": "v1.32.0-eks-sandbox",
                    "osImage": "Amazon Linux 2023", "kernelVersion": "6.1.0-sandbox", "operatingSystem": "linux",
                    "architecture": "amd64", "containerRuntimeVersion": "containerd://1.7.22",
                    "machineID": instance, "systemUUID": instance, "bootID": instance,
                },
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            },
        });
        self.shared
            .nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                name.clone(),
                NodeRuntime {
                    zone: zone.to_string(),
                    reporting: true,
                    partitioned: Arc::new(AtomicBool::new(false)),
                    powered_off: Arc::new(tokio::sync::watch::Sender::new(false)),
                    joined: Instant::now(),
                    boot_delay,
                },
            );
        self.shared
            .store
            .create(well_known::nodes(), "", node)
            .map_err(|e| SandboxError::Setup {
                what: name.clone(),
                message: e.to_string(),
            })?;
        Ok(name)
    }

    /// Adds a node for `instance` in `zone`; it turns Ready after the node boot delay.
    pub fn join(&self, zone: &str, instance: &str) -> Result<String, SandboxError> {
        let zi = self
            .zones
            .iter()
            .position(|z| z == zone)
            .ok_or_else(|| SandboxError::UnknownZone(zone.to_string()))?;
        let n = self.nodes_in_zone(zone).len() as u32;
        self.create(zi, zone, n, self.shared.timing.node_boot_delay, instance)
    }

    /// Points a node at an instance (what the cloud provider sets when the node registers).
    pub fn set_provider_id(&self, node: &str, zone: &str, instance: &str) {
        let _ = self
            .shared
            .store
            .update_with(well_known::nodes(), "", node, |n| {
                n["spec"]["providerID"] = json!(format!("aws:///{zone}/{instance}"));
                Ok(())
            });
    }

    /// Names of every node, in zone order.
    pub fn node_names(&self) -> Vec<String> {
        let m = self.shared.nodes.lock().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<(String, String)> = m
            .iter()
            .map(|(n, rt)| (rt.zone.clone(), n.clone()))
            .collect();
        names.sort();
        names.into_iter().map(|(_, n)| n).collect()
    }

    /// Names of the nodes in one zone.
    pub fn nodes_in_zone(&self, zone: &str) -> Vec<String> {
        let m = self.shared.nodes.lock().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<String> = m
            .iter()
            .filter(|(_, rt)| rt.zone == zone)
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        names
    }

    /// Sets kubelet reporting; false if the node is unknown.
    pub fn set_reporting(&self, node: &str, reporting: bool) -> bool {
        let mut m = self.shared.nodes.lock().unwrap_or_else(|e| e.into_inner());
        m.get_mut(node).map(|rt| rt.reporting = reporting).is_some()
    }

    /// Powers the machine off: the kubelet falls silent and the backends refuse connections.
    /// False if the node is unknown.
    pub fn power_off(&self, node: &str) -> bool {
        let mut m = self.shared.nodes.lock().unwrap_or_else(|e| e.into_inner());
        m.get_mut(node)
            .map(|rt| {
                rt.reporting = false;
                rt.powered_off.send_replace(true);
            })
            .is_some()
    }

    /// Powers the machine on: it boots for `boot_delay`, then its kubelet reports again and
    /// restarts its pods' backends. False if the node is unknown.
    pub fn power_on(&self, node: &str, boot_delay: Duration) -> bool {
        let mut m = self.shared.nodes.lock().unwrap_or_else(|e| e.into_inner());
        m.get_mut(node)
            .map(|rt| {
                rt.reporting = true;
                rt.joined = Instant::now();
                rt.boot_delay = boot_delay;
            })
            .is_some()
    }

    /// Sets the network partition; false if the node is unknown.
    pub fn set_partitioned(&self, node: &str, partitioned: bool) -> bool {
        let m = self.shared.nodes.lock().unwrap_or_else(|e| e.into_inner());
        m.get(node)
            .map(|rt| rt.partitioned.store(partitioned, Ordering::Relaxed))
            .is_some()
    }

    /// Removes the machine and the Node object; false if the node is unknown.
    pub fn remove(&self, node: &str) -> bool {
        let removed = self
            .shared
            .nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(node);
        let Some(rt) = removed else {
            return false;
        };
        rt.partitioned.store(true, Ordering::Relaxed);
        let _ = self
            .shared
            .store
            .remove(well_known::nodes(), "", node, None);
        true
    }
}

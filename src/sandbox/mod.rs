//! A local Kubernetes for demos and tests: a faithful subset of the Kubernetes API on loopback,
//! the controllers that give it life, and real HTTP backends behind real load balancers.
//!
//! No kube-apiserver can be installed where steadfast is developed and tested, so steadfast
//! brings one: the same client code (kube-rs), `kubectl` and the Python client talk to it
//! unmodified through the kubeconfig it writes, and the same experiment files run against it
//! and against EKS. What is and is not modelled is listed in `src/sandbox/FIDELITY.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), steadfast::sandbox::SandboxError> {
//! use steadfast::sandbox::{Sandbox, SandboxOptions, Topology};
//! let topology = Topology::load("experiments/sandbox/topology.yaml".as_ref())?;
//! let dir = std::env::temp_dir().join("steadfast-sandbox");
//! let sandbox = Sandbox::start(&topology, SandboxOptions::new(&dir)).await?;
//! sandbox.wait_ready(std::time::Duration::from_secs(30)).await?;
//! println!("KUBECONFIG={}", sandbox.kubeconfig_path().display());
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```

mod api;
mod backend;
mod cluster;
mod controllers;
mod lb;
mod ops;
mod patch;
mod resources;
mod selector;
mod status;
mod store;
mod topology;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

pub use cluster::BackendBehaviour;
pub use topology::{
    BackendSpec, BudgetSpec, DeploymentSpec, ServiceSpec, Timing, TimingSpec, Topology, ZoneSpec,
};

use cluster::{NodeRuntime, Shared};
use resources::well_known;

/// Errors of the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The topology file cannot be read, parsed or validated.
    #[error("{file}: {message}\nhint: see experiments/sandbox/topology.yaml for a valid topology")]
    Topology {
        /// File (or origin) of the topology.
        file: String,
        /// What is wrong, with the field path.
        message: String,
    },
    /// A file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the sandbox was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The sandbox could not create one of its own objects.
    #[error("cannot create {what}: {message}")]
    Setup {
        /// Which object.
        what: String,
        /// The API error.
        message: String,
    },
    /// No node has this name.
    #[error("no node named {0:?} in the sandbox")]
    UnknownNode(String),
    /// No zone has this name.
    #[error("no zone named {0:?} in the sandbox")]
    UnknownZone(String),
    /// A wait ran out of time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it waited.
        after: Duration,
    },
}

/// Changes kept for watches by default (kube-apiserver's watch cache keeps a comparable window).
pub const DEFAULT_WATCH_HISTORY: usize = 8192;

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Directory for the kubeconfig file (created if missing).
    pub dir: PathBuf,
    /// API server port on 127.0.0.1; 0 picks a free one.
    pub api_port: u16,
    /// Changes kept for watches to resume from; older revisions answer 410 Gone.
    pub watch_history: usize,
}

impl SandboxOptions {
    /// Options writing into `dir`, with a random API port.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            api_port: 0,
            watch_history: DEFAULT_WATCH_HISTORY,
        }
    }
}

/// A running sandbox. Dropping it stops every task; [`Sandbox::shutdown`] also waits for them.
pub struct Sandbox {
    shared: Arc<Shared>,
    api_addr: SocketAddr,
    kubeconfig: PathBuf,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
    zones: Vec<String>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn setup_err(what: &str) -> impl Fn(status::ApiError) -> SandboxError + '_ {
    move |e| SandboxError::Setup {
        what: what.to_string(),
        message: e.to_string(),
    }
}

impl Sandbox {
    /// Starts the API server, the controllers and the nodes and workloads of `topology`, and
    /// writes `<dir>/kubeconfig`.
    ///
    /// # Errors
    /// [`SandboxError::Io`] when the port cannot be bound or the kubeconfig not written;
    /// [`SandboxError::Setup`] if an object of the topology is rejected.
    pub async fn start(topology: &Topology, options: SandboxOptions) -> Result<Self, SandboxError> {
        let problems = topology.validate();
        if !problems.is_empty() {
            return Err(SandboxError::Topology {
                file: "<topology>".into(),
                message: problems.join("; "),
            });
        }
        let timing = topology.timing.resolve();
        let shared = Arc::new(Shared::new(
            timing,
            topology.region.clone(),
            topology.instance_type.clone(),
            options.watch_history,
        ));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.api_port))
            .await
            .map_err(|source| SandboxError::Io {
                context: format!("binding the API server on 127.0.0.1:{}", options.api_port),
                source,
            })?;
        let api_addr = listener.local_addr().map_err(|source| SandboxError::Io {
            context: "reading the API server address".into(),
            source,
        })?;
        let cancel = CancellationToken::new();
        let mut sandbox = Self {
            shared: shared.clone(),
            api_addr,
            kubeconfig: options.dir.join("kubeconfig"),
            cancel: cancel.clone(),
            tasks: JoinSet::new(),
            zones: topology.zones.iter().map(|z| z.name.clone()).collect(),
        };
        sandbox.bootstrap(topology)?;
        let app = Arc::new(api::App {
            shared: shared.clone(),
            addr: api_addr,
            cancel: cancel.clone(),
        });
        sandbox.tasks.spawn(
            async move {
                if let Err(e) = api::serve(app, listener).await {
                    warn!(error = %e, "sandbox API server stopped");
                }
            }
            .instrument(info_span!("sandbox_api", %api_addr)),
        );
        sandbox.tasks.spawn(controllers::run(shared, cancel));
        write_kubeconfig(&options.dir, &sandbox.kubeconfig, api_addr)?;
        info!(api = %api_addr, kubeconfig = %sandbox.kubeconfig.display(), "sandbox started");
        Ok(sandbox)
    }

    fn bootstrap(&self, topology: &Topology) -> Result<(), SandboxError> {
        let store = &self.shared.store;
        let tol = self.shared.timing.toleration.as_secs() as i64;
        let mut namespaces = vec!["default", "kube-system", "kube-public", "kube-node-lease"];
        for d in &topology.deployments {
            if !namespaces.contains(&d.namespace.as_str()) {
                namespaces.push(&d.namespace);
            }
        }
        for ns in namespaces {
            let mut obj = json!({"metadata": {"name": ns}});
            ops::admit_create(well_known::namespaces(), &mut obj, tol);
            store
                .create(well_known::namespaces(), "", obj)
                .map_err(setup_err(ns))?;
        }
        for (zi, zone) in topology.zones.iter().enumerate() {
            for n in 0..zone.nodes {
                self.create_node(zi, &zone.name, n, Duration::ZERO)?;
            }
        }
        let grace = self.shared.timing.termination_grace_period.as_secs();
        for d in &topology.deployments {
            let labels = Topology::pod_labels(d);
            self.set_backend_behaviour(
                &d.namespace,
                &d.name,
                BackendBehaviour {
                    latency: d.backend.latency.unwrap_or_default(),
                    error_rate: d.backend.error_rate,
                },
            );
            let mut deploy = json!({
                "metadata": {"name": d.name, "labels": labels},
                "spec": {
                    "replicas": d.replicas,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "terminationGracePeriodSeconds": grace,
                            "containers": [{
                                "name": d.name, "image": "steadfast/sandbox-backend:v1",
                                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                                "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1},
                            }],
                        },
                    },
                },
            });
            ops::admit_create(well_known::deployments(), &mut deploy, tol);
            store
                .create(well_known::deployments(), &d.namespace, deploy)
                .map_err(setup_err(&d.name))?;
            if let Some(svc) = &d.service {
                let mut obj = json!({
                    "metadata": {"name": d.name, "labels": labels},
                    "spec": {"selector": labels, "ports": [{"name": "http", "port": svc.port, "targetPort": "http", "protocol": "TCP"}]},
                });
                ops::admit_create(well_known::services(), &mut obj, tol);
                store
                    .create(well_known::services(), &d.namespace, obj)
                    .map_err(setup_err(&d.name))?;
            }
            if let Some(b) = &d.disruption_budget {
                let mut spec = json!({"selector": {"matchLabels": labels}});
                if let Some(m) = b.min_available {
                    spec["minAvailable"] = json!(m);
                }
                if let Some(m) = b.max_unavailable {
                    spec["maxUnavailable"] = json!(m);
                }
                store
                    .create(
                        well_known::pdbs(),
                        &d.namespace,
                        json!({"metadata": {"name": d.name}, "spec": spec}),
                    )
                    .map_err(setup_err(&d.name))?;
            }
        }
        Ok(())
    }

    fn create_node(
        &self,
        zone_index: usize,
        zone: &str,
        n: u32,
        boot_delay: Duration,
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
        let instance = format!("i-{:017x}", rand::random::<u64>() & 0x0fff_ffff_ffff_ffff);
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
                    joined: Instant::now(),
                    boot_delay,
                },
            );
        self.shared
            .store
            .create(well_known::nodes(), "", node)
            .map_err(setup_err(&name))?;
        Ok(name)
    }

    /// Path of the kubeconfig that points at this sandbox.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Base URL of the API server (`http://127.0.0.1:<port>`).
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    /// URL of the Prometheus metrics of the Service load balancers.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.api_addr)
    }

    /// URL of a Service's load balancer, once the endpoint controller has started it.
    pub fn service_url(&self, namespace: &str, name: &str) -> Option<String> {
        let m = self
            .shared
            .lb_addrs
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        m.get(&(namespace.to_string(), name.to_string()))
            .map(|a| format!("http://{a}"))
    }

    /// Timing the sandbox runs with.
    pub fn timing(&self) -> Timing {
        self.shared.timing
    }

    /// Changes the latency and error rate of a Deployment's backends; takes effect at once.
    pub fn set_backend_behaviour(
        &self,
        namespace: &str,
        deployment: &str,
        behaviour: BackendBehaviour,
    ) {
        let cell = self.shared.behaviour(namespace, deployment);
        *cell.write().unwrap_or_else(|e| e.into_inner()) = behaviour;
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

    /// Stops or resumes a node's kubelet reporting (Lease renewals and status). A silent node
    /// turns Ready=Unknown after the monitor grace period; its backends keep serving.
    ///
    /// # Errors
    /// [`SandboxError::UnknownNode`] if no node has this name.
    pub fn set_node_reporting(&self, node: &str, reporting: bool) -> Result<(), SandboxError> {
        let mut m = self.shared.nodes.lock().unwrap_or_else(|e| e.into_inner());
        let rt = m
            .get_mut(node)
            .ok_or_else(|| SandboxError::UnknownNode(node.to_string()))?;
        rt.reporting = reporting;
        Ok(())
    }

    /// Cuts or restores a node's network: its backends stop answering (connections hang, as
    /// with dropped packets) and its kubelet falls silent.
    ///
    /// # Errors
    /// [`SandboxError::UnknownNode`] if no node has this name.
    pub fn set_node_partitioned(&self, node: &str, partitioned: bool) -> Result<(), SandboxError> {
        let m = self.shared.nodes.lock().unwrap_or_else(|e| e.into_inner());
        let rt = m
            .get(node)
            .ok_or_else(|| SandboxError::UnknownNode(node.to_string()))?;
        rt.partitioned.store(partitioned, Ordering::Relaxed);
        Ok(())
    }

    /// Adds a node to `zone`; it turns Ready after the topology's node boot delay.
    ///
    /// # Errors
    /// [`SandboxError::UnknownZone`] for a zone not in the topology.
    pub fn add_node(&self, zone: &str) -> Result<String, SandboxError> {
        let zi = self
            .zones
            .iter()
            .position(|z| z == zone)
            .ok_or_else(|| SandboxError::UnknownZone(zone.to_string()))?;
        let n = self.nodes_in_zone(zone).len() as u32;
        self.create_node(zi, zone, n, self.shared.timing.node_boot_delay)
    }

    /// Removes a node as the cloud controller does when its instance is gone: the Node object
    /// is deleted and its pods are garbage-collected.
    ///
    /// # Errors
    /// [`SandboxError::UnknownNode`] if no node has this name.
    pub fn remove_node(&self, node: &str) -> Result<(), SandboxError> {
        let rt = self
            .shared
            .nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(node)
            .ok_or_else(|| SandboxError::UnknownNode(node.to_string()))?;
        rt.partitioned.store(true, Ordering::Relaxed);
        let _ = self
            .shared
            .store
            .remove(well_known::nodes(), "", node, None);
        Ok(())
    }

    /// Waits until every Deployment has all its replicas available and every Service a load
    /// balancer.
    ///
    /// # Errors
    /// [`SandboxError::Timeout`] naming what is still not ready.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), SandboxError> {
        let start = Instant::now();
        loop {
            let pending = self.not_ready();
            if pending.is_empty() {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(SandboxError::Timeout {
                    what: pending.join(", "),
                    after: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn not_ready(&self) -> Vec<String> {
        let mut out = Vec::new();
        let (deployments, _) = self.shared.store.list("deployments", None);
        for d in deployments {
            let want = d
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let have = d
                .pointer("/status/availableReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let updated = d
                .pointer("/status/updatedReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let total = d
                .pointer("/status/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if have < want || updated < want || total > want {
                let (ns, name) = store::ns_name(&d);
                out.push(format!("deployment {ns}/{name} ({have}/{want} available)"));
            }
        }
        let (services, _) = self.shared.store.list("services", None);
        for s in services {
            let (ns, name) = store::ns_name(&s);
            if s.pointer("/spec/selector").is_some() && self.service_url(&ns, &name).is_none() {
                out.push(format!("service {ns}/{name} load balancer"));
            }
        }
        out
    }

    /// Stops every task (API server, controllers, backends, load balancers) and waits for them.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        let deadline = Duration::from_secs(10);
        let drained = tokio::time::timeout(deadline, async {
            while let Some(r) = self.tasks.join_next().await {
                if let Err(e) = r
                    && e.is_panic()
                {
                    warn!(error = %e, "a sandbox task panicked");
                }
            }
        })
        .await;
        if drained.is_err() {
            warn!("sandbox tasks did not stop within {deadline:?}; aborting them");
            self.tasks.abort_all();
        }
    }
}

fn write_kubeconfig(dir: &Path, path: &Path, addr: SocketAddr) -> Result<(), SandboxError> {
    std::fs::create_dir_all(dir).map_err(|source| SandboxError::Io {
        context: format!("creating {}", dir.display()),
        source,
    })?;
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: steadfast-sandbox\n  cluster:\n    server: http://{addr}\ncontexts:\n- name: steadfast-sandbox\n  context:\n    cluster: steadfast-sandbox\n    user: steadfast-sandbox\n    namespace: default\ncurrent-context: steadfast-sandbox\nusers:\n- name: steadfast-sandbox\n  user: {{}}\npreferences: {{}}\n"
    );
    std::fs::write(path, text).map_err(|source| SandboxError::Io {
        context: format!("writing {}", path.display()),
        source,
    })
}

//! A local Kubernetes for demos and tests: a faithful subset of the Kubernetes API on loopback,
//! the controllers that give it life, and real HTTP backends behind real load balancers.
//!
//! No kube-apiserver can be installed where steadfast is developed and tested, so steadfast
//! brings one: the same client code (kube-rs), `kubectl` and the Python client talk to it
//! unmodified through the kubeconfig it writes, and the same experiment files run against it
//! and against EKS. What is and is not modelled is listed in `src/sandbox/FIDELITY.md`.
//!
//! The handle is small on purpose: [`Topology::load`] reads a topology file,
//! [`Sandbox::start`] runs it and writes `<dir>/kubeconfig`; [`Sandbox::service_url`] gives a
//! Service's load balancer, [`Sandbox::set_backend_behaviour`] makes a Deployment slow or
//! failing, [`Sandbox::set_node_reporting`], [`Sandbox::set_node_partitioned`],
//! [`Sandbox::add_node`] and [`Sandbox::remove_node`] act on machines, and
//! [`Sandbox::link_cloud`] ties the nodes to EC2 instances of an AWS emulator.
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
pub mod cloud;
mod cloud_shutdown;
mod cluster;
mod controllers;
mod hostile;
mod lb;
mod netem;
mod nodes;
mod ops;
mod patch;
mod pod_defaults;
mod rbac;
mod resources;
mod selector;
mod status;
mod store;
mod topology;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

pub use cluster::BackendBehaviour;
pub use hostile::{
    Apf429Spec, ConnectionResetSpec, Error5xxSpec, GoneOnResumeSpec, HostileSpec, LatencySpec,
    WatchCloseSpec,
};
pub use topology::{
    BackendSpec, BudgetSpec, DeploymentSpec, RbacMode, ServiceSpec, Timing, TimingSpec, Topology,
    ZoneSpec,
};

use crate::infra::kube::access::{AccessLog, ApiAccess};
use cluster::Shared;
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
    /// A call to the cloud endpoint failed.
    #[error("cloud call {what} failed: {message}")]
    Cloud {
        /// The API operation.
        what: String,
        /// What the endpoint said, or that it did not answer.
        message: String,
    },
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
    /// Serve HTTPS with this certificate instead of plain HTTP, as a real API server does.
    pub tls: Option<SandboxTls>,
    /// Require this bearer token on every request but the health checks, as a real API server
    /// requires a service-account token. It is the administrator's (`system:masters`); with
    /// `rbac: enforce` and none given, a random one is made and written into the kubeconfig.
    pub bearer_token: Option<String>,
}

/// The PEM files of an HTTPS API server.
#[derive(Debug, Clone)]
pub struct SandboxTls {
    /// The server certificate chain (its SANs must name 127.0.0.1).
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
    /// The CA that signed it, written into the kubeconfig for clients to trust.
    pub ca: PathBuf,
}

impl SandboxOptions {
    /// Options writing into `dir`, with a random API port.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            api_port: 0,
            watch_history: DEFAULT_WATCH_HISTORY,
            tls: None,
            bearer_token: None,
        }
    }
}

/// A running sandbox. Dropping it stops every task; [`Sandbox::shutdown`] also waits for them.
pub struct Sandbox {
    shared: Arc<Shared>,
    options: SandboxOptions,
    api_addr: SocketAddr,
    scheme: &'static str,
    accesses: AccessLog,
    kubeconfig: PathBuf,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
    zones: Vec<String>,
    nodes: nodes::NodeFactory,
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
        let mut options = options;
        let enforce = topology.rbac == RbacMode::Enforce;
        if enforce && options.bearer_token.is_none() {
            options.bearer_token = Some(format!(
                "sandbox-admin.{:016x}{:016x}",
                rand::random::<u64>(),
                rand::random::<u64>()
            ));
        }
        let mut shared = Shared::new(
            timing,
            topology.region.clone(),
            topology.instance_type.clone(),
            options.watch_history,
        );
        shared.auth.enforce = enforce;
        shared.proxy_mode = topology.proxy_mode;
        shared.auth.admin_token = options.bearer_token.clone();
        shared.hostile = std::sync::RwLock::new(
            topology
                .hostile
                .clone()
                .map(|h| Arc::new(hostile::Hostile::new(h))),
        );
        let shared = Arc::new(shared);
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
        let acceptor =
            match &options.tls {
                Some(tls) => Some(api::tls_acceptor(&tls.cert, &tls.key).map_err(|e| {
                    SandboxError::Setup {
                        what: "the TLS listener".into(),
                        message: e.to_string(),
                    }
                })?),
                None => None,
            };
        let cancel = CancellationToken::new();
        let accesses = AccessLog::default();
        let mut sandbox = Self {
            shared: shared.clone(),
            options: options.clone(),
            api_addr,
            scheme: if acceptor.is_some() { "https" } else { "http" },
            accesses: accesses.clone(),
            kubeconfig: options.dir.join("kubeconfig"),
            cancel: cancel.clone(),
            tasks: JoinSet::new(),
            zones: topology.zones.iter().map(|z| z.name.clone()).collect(),
            nodes: nodes::NodeFactory::new(
                shared.clone(),
                topology.zones.iter().map(|z| z.name.clone()).collect(),
            ),
        };
        sandbox.bootstrap(topology)?;
        let app = Arc::new(api::App {
            shared: shared.clone(),
            addr: api_addr,
            cancel: cancel.clone(),
            accesses,
        });
        sandbox.tasks.spawn(
            async move {
                let served = match acceptor {
                    Some(acceptor) => api::serve_tls(app, listener, acceptor).await,
                    None => api::serve(app, listener).await,
                };
                if let Err(e) = served {
                    warn!(error = %e, "sandbox API server stopped");
                }
            }
            .instrument(info_span!("sandbox_api", %api_addr)),
        );
        sandbox.tasks.spawn(controllers::run(shared, cancel));
        write_kubeconfig(
            &options,
            &sandbox.kubeconfig,
            api_addr,
            options.bearer_token.as_deref(),
            "default",
        )?;
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
        if self.shared.auth.enforce {
            for role in rbac::bootstrap::roles() {
                store
                    .create(well_known::clusterroles(), "", role)
                    .map_err(setup_err("the bootstrap ClusterRoles"))?;
            }
            for binding in rbac::bootstrap::bindings() {
                store
                    .create(well_known::clusterrolebindings(), "", binding)
                    .map_err(setup_err("the bootstrap ClusterRoleBindings"))?;
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
                self.nodes.create(
                    zi,
                    &zone.name,
                    n,
                    Duration::ZERO,
                    &nodes::random_instance_id(),
                )?;
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
            if let Some(u) = &d.backend.upstream {
                let ns = u.namespace.clone().unwrap_or_else(|| d.namespace.clone());
                self.shared
                    .upstreams
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(
                        (d.namespace.clone(), d.name.clone()),
                        cluster::Upstream {
                            service: (ns, u.service.clone()),
                            path: u.path.clone(),
                            on: u.on.clone(),
                        },
                    );
            }
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
            if !d.node_selector.is_empty() {
                deploy["spec"]["template"]["spec"]["nodeSelector"] = json!(d.node_selector);
            }
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

    /// Turns hostile mode on (counting decisions from 0 again) or, with `None`, off; tests
    /// set up a scene on a friendly server, then let steadfast meet a hostile one.
    pub fn set_hostile(&self, spec: Option<HostileSpec>) {
        *self
            .shared
            .hostile
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            spec.map(|h| Arc::new(hostile::Hostile::new(h)));
    }

    /// Ends every watch open now (clients resume from their last `resourceVersion`); tests use
    /// it to force the closes a real API server makes on its own.
    pub fn close_watches(&self) {
        self.shared.close_watches();
    }

    /// Path of the kubeconfig that points at this sandbox.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Whether the API server authorizes requests by RBAC (`rbac: enforce`).
    pub fn enforces_rbac(&self) -> bool {
        self.shared.auth.enforce
    }

    /// A bearer token of the ServiceAccount `namespace/name`, as TokenRequest issues them.
    ///
    /// # Errors
    /// [`SandboxError::Setup`] when the ServiceAccount does not exist.
    pub fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<String, SandboxError> {
        let def = well_known::serviceaccounts();
        let account = self
            .shared
            .store
            .get(def.storage, namespace, name)
            .ok_or_else(|| SandboxError::Setup {
                what: format!("a token for ServiceAccount {namespace}/{name}"),
                message: format!(
                    "serviceaccounts \"{name}\" not found in namespace \"{namespace}\"; hint: create it first (kubectl create serviceaccount)"
                ),
            })?;
        let uid = account
            .pointer("/metadata/uid")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        Ok(self.shared.auth.tokens.issue(namespace, name, uid))
    }

    /// Writes `<dir>/kubeconfig-<namespace>-<name>`, whose user is the ServiceAccount
    /// `namespace/name` (created, with its namespace, when missing) by its bearer token.
    ///
    /// # Errors
    /// [`SandboxError::Setup`] when the namespace or account cannot be created,
    /// [`SandboxError::Io`] when the file cannot be written.
    pub fn write_service_account_kubeconfig(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<PathBuf, SandboxError> {
        let store = &self.shared.store;
        let tol = self.shared.timing.toleration.as_secs() as i64;
        if store.get("namespaces", "", namespace).is_none() {
            let mut obj = json!({"metadata": {"name": namespace}});
            ops::admit_create(well_known::namespaces(), &mut obj, tol);
            store
                .create(well_known::namespaces(), "", obj)
                .map_err(setup_err(namespace))?;
        }
        if store.get("serviceaccounts", namespace, name).is_none() {
            let mut obj = json!({"metadata": {"name": name, "namespace": namespace}});
            ops::admit_create(well_known::serviceaccounts(), &mut obj, tol);
            store
                .create(well_known::serviceaccounts(), namespace, obj)
                .map_err(setup_err(name))?;
        }
        let token = self.service_account_token(namespace, name)?;
        let path = self
            .options
            .dir
            .join(format!("kubeconfig-{namespace}-{name}"));
        write_kubeconfig(&self.options, &path, self.api_addr, Some(&token), namespace)?;
        Ok(path)
    }

    /// Base URL of the API server (`http://127.0.0.1:<port>`, `https://` when serving TLS).
    pub fn api_url(&self) -> String {
        format!("{}://{}", self.scheme, self.api_addr)
    }

    /// The API server's address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// Every distinct (verb, resource) that clients have used on the API so far, recorded by
    /// the server itself so runs in child processes count too.
    pub fn api_accesses(&self) -> std::collections::BTreeSet<ApiAccess> {
        self.accesses.snapshot()
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
        self.nodes.node_names()
    }

    /// Names of the nodes in one zone.
    pub fn nodes_in_zone(&self, zone: &str) -> Vec<String> {
        self.nodes.nodes_in_zone(zone)
    }

    /// Stops or resumes a node's kubelet reporting (Lease renewals and status). A silent node
    /// turns Ready=Unknown after the monitor grace period; its backends keep serving.
    ///
    /// # Errors
    /// [`SandboxError::UnknownNode`] if no node has this name.
    pub fn set_node_reporting(&self, node: &str, reporting: bool) -> Result<(), SandboxError> {
        self.nodes
            .set_reporting(node, reporting)
            .then_some(())
            .ok_or_else(|| SandboxError::UnknownNode(node.to_string()))
    }

    /// Cuts or restores a node's network: its backends stop answering (connections hang, as
    /// with dropped packets) and its kubelet falls silent.
    ///
    /// # Errors
    /// [`SandboxError::UnknownNode`] if no node has this name.
    pub fn set_node_partitioned(&self, node: &str, partitioned: bool) -> Result<(), SandboxError> {
        self.nodes
            .set_partitioned(node, partitioned)
            .then_some(())
            .ok_or_else(|| SandboxError::UnknownNode(node.to_string()))
    }

    /// Adds a node to `zone`; it turns Ready after the topology's node boot delay.
    ///
    /// # Errors
    /// [`SandboxError::UnknownZone`] for a zone not in the topology.
    pub fn add_node(&self, zone: &str) -> Result<String, SandboxError> {
        self.nodes.join(zone, &nodes::random_instance_id())
    }

    /// Removes a node as the cloud controller does when its instance is gone: the Node object
    /// is deleted and its pods are garbage-collected.
    ///
    /// # Errors
    /// [`SandboxError::UnknownNode`] if no node has this name.
    pub fn remove_node(&self, node: &str) -> Result<(), SandboxError> {
        self.nodes
            .remove(node)
            .then_some(())
            .ok_or_else(|| SandboxError::UnknownNode(node.to_string()))
    }

    /// Ties the nodes to EC2 instances of an AWS-compatible endpoint (moto) and mirrors
    /// instance terminations, launches and subnet ACL changes into the cluster.
    ///
    /// # Errors
    /// [`SandboxError::Cloud`] when the endpoint refuses a call or does not answer.
    pub async fn link_cloud(
        &self,
        options: cloud::CloudOptions,
    ) -> Result<cloud::CloudLink, SandboxError> {
        let zones = self
            .zones
            .iter()
            .map(|z| (z.clone(), self.nodes.nodes_in_zone(z).len() as u32))
            .collect();
        cloud::link(self.shared.clone(), self.nodes.clone(), zones, options).await
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

fn write_kubeconfig(
    options: &SandboxOptions,
    path: &Path,
    addr: SocketAddr,
    token: Option<&str>,
    namespace: &str,
) -> Result<(), SandboxError> {
    let dir = &options.dir;
    std::fs::create_dir_all(dir).map_err(|source| SandboxError::Io {
        context: format!("creating {}", dir.display()),
        source,
    })?;
    let (server, ca) = match &options.tls {
        Some(tls) => (
            format!("https://{addr}"),
            format!(
                "\n    certificate-authority: {}",
                serde_json::Value::String(tls.ca.display().to_string())
            ),
        ),
        None => (format!("http://{addr}"), String::new()),
    };
    let user = match token {
        Some(token) => format!(
            "\n    token: {}",
            serde_json::Value::String(token.to_owned())
        ),
        None => " {}".to_owned(),
    };
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: steadfast-sandbox\n  cluster:\n    server: {server}{ca}\ncontexts:\n- name: steadfast-sandbox\n  context:\n    cluster: steadfast-sandbox\n    user: steadfast-sandbox\n    namespace: {namespace}\ncurrent-context: steadfast-sandbox\nusers:\n- name: steadfast-sandbox\n  user:{user}\npreferences: {{}}\n"
    );
    std::fs::write(path, text).map_err(|source| SandboxError::Io {
        context: format!("writing {}", path.display()),
        source,
    })
}

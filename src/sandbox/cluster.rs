//! State shared by the API server, the controllers and the data path.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::store::Store;
use super::topology::{ProxyMode, Timing};

/// How a Deployment's backends answer; read on every request, so changes apply at once.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BackendBehaviour {
    /// Added latency per request.
    pub latency: Duration,
    /// Fraction of requests answered with 500, 0.0..=1.0.
    pub error_rate: f64,
}

/// Local addresses of the connections Service load balancers hold open to backends, so a
/// backend can tell traffic routed by a Service from direct traffic.
pub(crate) type ServicePeers = Arc<Mutex<HashSet<SocketAddr>>>;

/// A behaviour cell shared by every backend of one Deployment.
pub(crate) type BehaviourCell = Arc<RwLock<BackendBehaviour>>;

/// Simulated machine state of a node, outside the API (what the kubelet and network do).
#[derive(Debug, Clone)]
pub(crate) struct NodeRuntime {
    /// Zone of the node.
    pub zone: String,
    /// Whether the kubelet posts status and renews its Lease.
    pub reporting: bool,
    /// Whether the node's network drops traffic (backends unreachable, kubelet silent).
    pub partitioned: Arc<AtomicBool>,
    /// Whether the machine is powered off (a stopped instance): its backends refuse
    /// connections until the kubelet is back after the boot delay.
    pub powered_off: super::backend::PowerCell,
    /// When the node joined (or its machine last started); it turns Ready after the boot delay.
    pub joined: Instant,
    /// Boot delay of this node (zero for nodes present at start).
    pub boot_delay: Duration,
}

/// `(namespace, name)` of a Service.
pub(crate) type ServiceKey = (String, String);

/// The call a Deployment's backends make to another Service (the topology's `backend.upstream`).
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    /// `(namespace, name)` of the Service called.
    pub service: ServiceKey,
    /// Path requested from it.
    pub path: String,
    /// Requests under this path make the call.
    pub on: String,
}

/// A ready endpoint as the load balancers see it.
#[derive(Debug, Clone)]
pub(crate) struct LbEndpoint {
    /// Pod name.
    pub pod: String,
    /// Backend address.
    pub addr: SocketAddr,
}

/// Counters of the service load balancers, exported on the API server's `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct LbMetrics {
    /// `(namespace, service, pod, code)` → requests.
    pub requests: Mutex<HashMap<(String, String, String, u16), u64>>,
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections refused for want of a ready endpoint.
    pub no_endpoint: AtomicU64,
}

impl LbMetrics {
    /// Counts one proxied request.
    pub fn count(&self, ns: &str, svc: &str, pod: &str, code: u16) {
        let mut m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((ns.into(), svc.into(), pod.into(), code))
            .or_default() += 1;
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP steadfast_sandbox_lb_requests_total Requests proxied by sandbox Service load balancers.\n# TYPE steadfast_sandbox_lb_requests_total counter\n",
        );
        let m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let mut rows: Vec<_> = m.iter().collect();
        rows.sort();
        for ((ns, svc, pod, code), n) in rows {
            out.push_str(&format!(
                "steadfast_sandbox_lb_requests_total{{namespace=\"{ns}\",service=\"{svc}\",pod=\"{pod}\",code=\"{code}\"}} {n}\n"
            ));
        }
        out.push_str(&format!(
            "# HELP steadfast_sandbox_lb_connections_total Client connections accepted.\n# TYPE steadfast_sandbox_lb_connections_total counter\nsteadfast_sandbox_lb_connections_total {}\n",
            self.connections.load(Ordering::Relaxed)
        ));
        out.push_str(&format!(
            "# HELP steadfast_sandbox_lb_no_endpoint_total Connections closed because no endpoint was ready.\n# TYPE steadfast_sandbox_lb_no_endpoint_total counter\nsteadfast_sandbox_lb_no_endpoint_total {}\n",
            self.no_endpoint.load(Ordering::Relaxed)
        ));
        out
    }
}

/// Everything the sandbox's tasks share.
pub(crate) struct Shared {
    /// The API objects.
    pub store: Store,
    /// Timing knobs.
    pub timing: Timing,
    /// Region the nodes claim.
    pub region: String,
    /// Instance type the nodes claim.
    pub instance_type: String,
    /// Backend behaviour per `(namespace, deployment)`.
    pub behaviours: Mutex<HashMap<(String, String), BehaviourCell>>,
    /// The Service each `(namespace, deployment)`'s backends call.
    pub upstreams: Mutex<HashMap<(String, String), Upstream>>,
    /// Simulated machine state per node name.
    pub nodes: Mutex<HashMap<String, NodeRuntime>>,
    /// Ready endpoints per `(namespace, service)`, published by the endpoint controller.
    pub endpoints: RwLock<HashMap<ServiceKey, Arc<Vec<LbEndpoint>>>>,
    /// Load balancer address per `(namespace, service)`.
    pub lb_addrs: Mutex<HashMap<(String, String), SocketAddr>>,
    /// Load balancer counters.
    pub lb_metrics: LbMetrics,
    /// How Services pick an endpoint per connection.
    pub proxy_mode: ProxyMode,
    /// Where the load balancers' connections to backends come from.
    pub service_peers: ServicePeers,
    /// Connections picked so far per Service, the turn of [`ProxyMode::Ipvs`].
    turns: Mutex<HashMap<ServiceKey, usize>>,
    /// Authentication and (optional) RBAC of API requests.
    pub auth: super::rbac::Auth,
    /// Hostile mode, when on; replaced whole by `Sandbox::set_hostile`.
    pub hostile: RwLock<Option<Arc<super::hostile::Hostile>>>,
    /// Cancelled (and replaced) to end every open watch at once.
    watch_closer: Mutex<tokio_util::sync::CancellationToken>,
}

impl Shared {
    /// Fresh shared state.
    pub fn new(timing: Timing, region: String, instance_type: String, history: usize) -> Self {
        Self {
            store: Store::new(history.max(16)),
            timing,
            region,
            instance_type,
            behaviours: Mutex::new(HashMap::new()),
            upstreams: Mutex::new(HashMap::new()),
            nodes: Mutex::new(HashMap::new()),
            endpoints: RwLock::new(HashMap::new()),
            lb_addrs: Mutex::new(HashMap::new()),
            lb_metrics: LbMetrics::default(),
            proxy_mode: ProxyMode::default(),
            service_peers: ServicePeers::default(),
            turns: Mutex::new(HashMap::new()),
            auth: super::rbac::Auth::default(),
            hostile: RwLock::new(None),
            watch_closer: Mutex::new(tokio_util::sync::CancellationToken::new()),
        }
    }

    /// The token that ends the watches open now when [`Self::close_watches`] runs.
    pub fn watch_closer(&self) -> tokio_util::sync::CancellationToken {
        self.watch_closer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Ends every open watch now, cleanly, as an API server restarting or rebalancing does;
    /// watches started afterwards are not affected.
    pub fn close_watches(&self) {
        let old = std::mem::take(
            &mut *self
                .watch_closer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        old.cancel();
    }

    /// The running hostile mode, if on.
    pub fn hostile(&self) -> Option<Arc<super::hostile::Hostile>> {
        self.hostile
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The behaviour cell of a Deployment, created on first use.
    pub fn behaviour(&self, ns: &str, deployment: &str) -> BehaviourCell {
        let mut m = self.behaviours.lock().unwrap_or_else(|e| e.into_inner());
        m.entry((ns.to_string(), deployment.to_string()))
            .or_default()
            .clone()
    }

    /// The Service a Deployment's backends call, if any.
    pub fn upstream(&self, ns: &str, deployment: &str) -> Option<Upstream> {
        let m = self.upstreams.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&(ns.to_string(), deployment.to_string())).cloned()
    }

    /// A snapshot of one node's runtime state.
    pub fn node_runtime(&self, node: &str) -> Option<NodeRuntime> {
        let m = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        m.get(node).cloned()
    }

    /// A cheap summary of every node's simulated state, to notice changes made outside the API.
    pub fn node_fingerprint(&self) -> Vec<(String, bool, bool, bool)> {
        let m = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = m
            .iter()
            .map(|(n, rt)| {
                (
                    n.clone(),
                    rt.reporting,
                    rt.partitioned.load(std::sync::atomic::Ordering::Relaxed),
                    rt.joined.elapsed() >= rt.boot_delay,
                )
            })
            .collect();
        v.sort();
        v
    }

    /// The endpoint a new connection to Service `ns/svc` goes to, `None` without any.
    pub fn pick_endpoint(&self, ns: &str, svc: &str) -> Option<LbEndpoint> {
        let endpoints = self.ready_endpoints(ns, svc);
        if endpoints.is_empty() {
            return None;
        }
        let index = match self.proxy_mode {
            ProxyMode::Iptables => rand::random_range(0..endpoints.len()),
            ProxyMode::Ipvs => {
                let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
                let turn = turns.entry((ns.to_owned(), svc.to_owned())).or_default();
                let index = *turn % endpoints.len();
                *turn = turn.wrapping_add(1);
                index
            }
        };
        Some(endpoints[index].clone())
    }

    /// Ready endpoints of a Service.
    pub fn ready_endpoints(&self, ns: &str, svc: &str) -> Arc<Vec<LbEndpoint>> {
        let m = self.endpoints.read().unwrap_or_else(|e| e.into_inner());
        m.get(&(ns.to_string(), svc.to_string()))
            .cloned()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::sandbox::topology::TimingSpec;

    fn shared_with_endpoints(mode: ProxyMode, pods: usize) -> Shared {
        let mut shared = Shared::new(
            TimingSpec::default().resolve(),
            "us-east-1".into(),
            "m5.large".into(),
            16,
        );
        shared.proxy_mode = mode;
        let endpoints = (0..pods)
            .map(|i| LbEndpoint {
                pod: format!("web-{i}"),
                addr: SocketAddr::from(([127, 0, 0, 1], 10_000 + i as u16)),
            })
            .collect();
        shared
            .endpoints
            .write()
            .unwrap()
            .insert(("shop".into(), "web".into()), Arc::new(endpoints));
        shared
    }

    fn shares(shared: &Shared, connections: usize) -> BTreeMap<String, usize> {
        let mut shares = BTreeMap::new();
        for _ in 0..connections {
            let pick = shared.pick_endpoint("shop", "web").expect("an endpoint");
            *shares.entry(pick.pod).or_default() += 1;
        }
        shares
    }

    #[test]
    fn ipvs_mode_gives_every_endpoint_the_same_share_and_iptables_mode_samples() {
        let ipvs = shares(&shared_with_endpoints(ProxyMode::Ipvs, 6), 600);
        assert_eq!(ipvs.len(), 6, "{ipvs:?}");
        assert!(ipvs.values().all(|n| *n == 100), "{ipvs:?}");

        let iptables = shares(&shared_with_endpoints(ProxyMode::Iptables, 6), 6_000);
        assert_eq!(iptables.len(), 6, "{iptables:?}");
        assert!(
            iptables.values().all(|n| (800..1_200).contains(n)),
            "{iptables:?}"
        );

        let empty = shared_with_endpoints(ProxyMode::Ipvs, 0);
        assert!(empty.pick_endpoint("shop", "web").is_none());
    }
}

//! The topology file: zones, nodes, workloads and timing knobs of a sandbox.
//!
//! Strict like every steadfast file: unknown fields are errors, and errors name the file and the
//! field path. Timing defaults follow Kubernetes' own; the shipped topology scales them down so
//! tests and demos finish in seconds.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::SandboxError;
use super::hostile::HostileSpec;

/// `apiVersion` every topology file declares.
pub const API_VERSION: &str = "steadfast.dev/v1alpha1";
/// `kind` every topology file declares.
pub const KIND: &str = "SandboxTopology";

pub(super) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(serde::de::Error::custom)
}

pub(super) fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// A sandbox topology as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Topology {
    /// Must be `steadfast.dev/v1alpha1`.
    pub api_version: String,
    /// Must be `SandboxTopology`.
    pub kind: String,
    /// AWS region the nodes claim (`topology.kubernetes.io/region`).
    pub region: String,
    /// Availability zones and how many nodes each has.
    pub zones: Vec<ZoneSpec>,
    /// EC2 instance type the nodes claim.
    #[serde(default = "default_instance_type")]
    pub instance_type: String,
    /// Timing knobs; omitted ones take Kubernetes' defaults.
    #[serde(default)]
    pub timing: TimingSpec,
    /// Deployments (with optional Service and PodDisruptionBudget) created at start.
    #[serde(default)]
    pub deployments: Vec<DeploymentSpec>,
    /// Whether requests are authorized by RBAC (`enforce`) or all allowed (`off`, the default,
    /// so the demo needs no setup).
    #[serde(default)]
    pub rbac: RbacMode,
    /// Hostile mode: seeded throttling, server errors, latency and dropped watches on the API
    /// server (see `src/sandbox/hostile.rs`); absent, the API server behaves.
    #[serde(default)]
    pub hostile: Option<HostileSpec>,
    /// How Services spread connections over their ready endpoints, as kube-proxy's
    /// `--proxy-mode` does.
    #[serde(default)]
    pub proxy_mode: ProxyMode,
}

/// How a Service picks the endpoint of each new connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProxyMode {
    /// At random, as iptables (and nftables) mode does: each backend's share varies from run to
    /// run by sampling alone.
    #[default]
    Iptables,
    /// In turn, as IPVS mode with its default `rr` scheduler does: shares are exact, so two runs
    /// differ only by what changed in the cluster.
    Ipvs,
}

/// How the sandbox's API server authorizes requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RbacMode {
    /// Every request is allowed, with or without a token.
    #[default]
    Off,
    /// Requests need a token and are authorized by Roles, ClusterRoles and their bindings;
    /// the sandbox's own kubeconfig is `system:masters`.
    Enforce,
}

fn default_instance_type() -> String {
    "m5.large".into()
}

/// One availability zone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ZoneSpec {
    /// Zone name, e.g. `us-east-1a`.
    pub name: String,
    /// Number of nodes in the zone.
    pub nodes: u32,
}

/// Timing knobs, each optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TimingSpec {
    /// From container start to Ready (models image pull, start-up and the readiness probe).
    #[serde(default, deserialize_with = "opt_duration")]
    pub pod_startup_delay: Option<Duration>,
    /// From a node joining to it turning Ready.
    #[serde(default, deserialize_with = "opt_duration")]
    pub node_boot_delay: Option<Duration>,
    /// `terminationGracePeriodSeconds` of the pods the topology creates.
    #[serde(default, deserialize_with = "opt_duration")]
    pub termination_grace_period: Option<Duration>,
    /// Controller manager `--node-monitor-grace-period`.
    #[serde(default, deserialize_with = "opt_duration")]
    pub node_monitor_grace_period: Option<Duration>,
    /// `--default-not-ready-toleration-seconds` / `--default-unreachable-toleration-seconds`.
    #[serde(default, deserialize_with = "opt_duration")]
    pub toleration: Option<Duration>,
    /// How often a kubelet renews its node Lease.
    #[serde(default, deserialize_with = "opt_duration")]
    pub lease_renew_interval: Option<Duration>,
    /// Time a terminating backend keeps accepting requests (a `preStop` sleep).
    #[serde(default, deserialize_with = "opt_duration")]
    pub pre_stop_delay: Option<Duration>,
}

/// A Deployment the sandbox creates, with its Service and budget.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeploymentSpec {
    /// Deployment name.
    pub name: String,
    /// Namespace (created if missing).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Desired replicas.
    pub replicas: u32,
    /// Pod labels and selector; defaults to `app: <name>`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// A Service selecting the pods.
    #[serde(default)]
    pub service: Option<ServiceSpec>,
    /// A PodDisruptionBudget over the pods.
    #[serde(default)]
    pub disruption_budget: Option<BudgetSpec>,
    /// How the backends answer.
    #[serde(default)]
    pub backend: BackendSpec,
    /// The pod template's `nodeSelector`, e.g. a zone label to pin every replica to one zone.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
}

fn default_namespace() -> String {
    "default".into()
}

/// Service settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Service port.
    #[serde(default = "default_port")]
    pub port: u16,
}

fn default_port() -> u16 {
    80
}

/// PodDisruptionBudget settings: exactly one of the two.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BudgetSpec {
    /// `minAvailable` (a count).
    #[serde(default)]
    pub min_available: Option<u32>,
    /// `maxUnavailable` (a count).
    #[serde(default)]
    pub max_unavailable: Option<u32>,
}

/// Backend behaviour.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendSpec {
    /// Added latency per request.
    #[serde(default, deserialize_with = "opt_duration")]
    pub latency: Option<Duration>,
    /// Fraction of requests answered with 500, 0.0..=1.0.
    #[serde(default)]
    pub error_rate: f64,
    /// A call each request makes to another Service's pod before answering.
    #[serde(default)]
    pub upstream: Option<UpstreamSpec>,
}

/// Pod-to-pod traffic: each request to a backend under the path `on` makes a real loopback HTTP
/// call to a ready pod of this Service and answers 502 when that call fails, so network rules
/// between pods (`to:`) have traffic to act on. Other paths are answered without the call, so a
/// prober can tell the pod's own latency from its dependency's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpstreamSpec {
    /// The Service called: a deployment of the topology with a `service`.
    pub service: String,
    /// Its namespace; defaults to the caller's.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Path requested from it.
    #[serde(default = "default_upstream_path")]
    pub path: String,
    /// Requests to this path or below it make the call; default `/` (every request).
    #[serde(default = "default_upstream_path")]
    pub on: String,
}

fn default_upstream_path() -> String {
    "/".into()
}

/// Timing resolved from the file and Kubernetes' defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Container start to Ready.
    pub pod_startup_delay: Duration,
    /// Node join to Ready.
    pub node_boot_delay: Duration,
    /// Grace period of topology pods.
    pub termination_grace_period: Duration,
    /// Silence after which a node turns Ready=Unknown.
    pub node_monitor_grace_period: Duration,
    /// Default toleration of not-ready/unreachable nodes.
    pub toleration: Duration,
    /// Lease renewal period of kubelets.
    pub lease_renew_interval: Duration,
    /// Time a terminating backend keeps serving before shutting down.
    pub pre_stop_delay: Duration,
}

impl Default for Timing {
    /// Kubernetes' defaults (1.32): 50 s monitor grace, 300 s toleration, 30 s grace, 10 s lease
    /// renewal; start-up and boot delays are typical, not defaults.
    fn default() -> Self {
        Self {
            pod_startup_delay: Duration::from_secs(2),
            node_boot_delay: Duration::from_secs(60),
            termination_grace_period: Duration::from_secs(30),
            node_monitor_grace_period: Duration::from_secs(50),
            toleration: Duration::from_secs(300),
            lease_renew_interval: Duration::from_secs(10),
            pre_stop_delay: Duration::ZERO,
        }
    }
}

impl TimingSpec {
    /// Fills omitted knobs with the defaults.
    pub fn resolve(&self) -> Timing {
        let d = Timing::default();
        let monitor = self
            .node_monitor_grace_period
            .unwrap_or(d.node_monitor_grace_period);
        Timing {
            pod_startup_delay: self.pod_startup_delay.unwrap_or(d.pod_startup_delay),
            node_boot_delay: self.node_boot_delay.unwrap_or(d.node_boot_delay),
            termination_grace_period: self
                .termination_grace_period
                .unwrap_or(d.termination_grace_period),
            node_monitor_grace_period: monitor,
            toleration: self.toleration.unwrap_or(d.toleration),
            lease_renew_interval: self
                .lease_renew_interval
                .unwrap_or(d.lease_renew_interval.min(monitor / 4)),
            pre_stop_delay: self.pre_stop_delay.unwrap_or(d.pre_stop_delay),
        }
    }
}

fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl Topology {
    /// Reads and validates a topology file.
    ///
    /// # Errors
    /// [`SandboxError::Topology`] naming the file and field when the file cannot be read, does
    /// not parse, or fails validation.
    pub fn load(path: &Path) -> Result<Self, SandboxError> {
        let text = std::fs::read_to_string(path).map_err(|e| SandboxError::Topology {
            file: path.display().to_string(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates topology YAML; `origin` names the source in errors.
    ///
    /// # Errors
    /// [`SandboxError::Topology`] with the field path of the first parse error, or every
    /// validation problem found.
    pub fn parse(text: &str, origin: &str) -> Result<Self, SandboxError> {
        let de = serde_yaml::Deserializer::from_str(text);
        let topo: Topology =
            serde_path_to_error::deserialize(de).map_err(|e| SandboxError::Topology {
                file: origin.to_string(),
                message: format!("at `{}`: {}", e.path(), e.inner()),
            })?;
        let problems = topo.validate();
        if problems.is_empty() {
            Ok(topo)
        } else {
            Err(SandboxError::Topology {
                file: origin.to_string(),
                message: problems.join("; "),
            })
        }
    }

    /// Every validation problem, each naming its field.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.api_version != API_VERSION {
            p.push(format!(
                "apiVersion: expected `{API_VERSION}`, found `{}`",
                self.api_version
            ));
        }
        if self.kind != KIND {
            p.push(format!("kind: expected `{KIND}`, found `{}`", self.kind));
        }
        if self.zones.is_empty() {
            p.push("zones: at least one zone is required".into());
        }
        for (i, z) in self.zones.iter().enumerate() {
            if !dns_label(&z.name) {
                p.push(format!("zones[{i}].name: `{}` is not a DNS label", z.name));
            }
            if z.nodes == 0 || z.nodes > 100 {
                p.push(format!(
                    "zones[{i}].nodes: must be 1..=100, found {}",
                    z.nodes
                ));
            }
            if self.zones[..i].iter().any(|o| o.name == z.name) {
                p.push(format!("zones[{i}].name: `{}` appears twice", z.name));
            }
        }
        for (i, d) in self.deployments.iter().enumerate() {
            if !dns_label(&d.name) {
                p.push(format!(
                    "deployments[{i}].name: `{}` is not a DNS label",
                    d.name
                ));
            }
            if !dns_label(&d.namespace) {
                p.push(format!(
                    "deployments[{i}].namespace: `{}` is not a DNS label",
                    d.namespace
                ));
            }
            if !(0.0..=1.0).contains(&d.backend.error_rate) {
                p.push(format!(
                    "deployments[{i}].backend.errorRate: must be within 0..=1, found {}",
                    d.backend.error_rate
                ));
            }
            if let Some(u) = &d.backend.upstream {
                let ns = u.namespace.as_deref().unwrap_or(&d.namespace);
                let called = self
                    .deployments
                    .iter()
                    .find(|o| o.name == u.service && o.namespace == ns && o.service.is_some());
                if called.is_none() {
                    p.push(format!(
                        "deployments[{i}].backend.upstream.service: no deployment `{ns}/{}` with a service in this topology; name one that has `service:`",
                        u.service
                    ));
                } else if u.service == d.name && ns == d.namespace {
                    p.push(format!(
                        "deployments[{i}].backend.upstream.service: a deployment cannot call itself; name another one"
                    ));
                }
                for (field, v) in [("path", &u.path), ("on", &u.on)] {
                    if !v.starts_with('/') {
                        p.push(format!(
                            "deployments[{i}].backend.upstream.{field}: `{v}` must start with `/`"
                        ));
                    }
                }
            }
            if let Some(b) = &d.disruption_budget
                && b.min_available.is_some() == b.max_unavailable.is_some()
            {
                p.push(format!(
                    "deployments[{i}].disruptionBudget: set exactly one of minAvailable, maxUnavailable"
                ));
            }
            if self.deployments[..i]
                .iter()
                .any(|o| o.name == d.name && o.namespace == d.namespace)
            {
                p.push(format!("deployments[{i}].name: `{}` appears twice", d.name));
            }
        }
        if let Some(h) = &self.hostile {
            p.extend(h.validate("hostile"));
        }
        p
    }

    /// The labels of a deployment's pods (`app: <name>` unless given).
    pub fn pod_labels(d: &DeploymentSpec) -> BTreeMap<String, String> {
        if d.labels.is_empty() {
            BTreeMap::from([("app".to_string(), d.name.clone())])
        } else {
            d.labels.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: SandboxTopology
region: us-east-1
zones: [{name: us-east-1a, nodes: 2}]
timing: {podStartupDelay: 500ms, nodeMonitorGracePeriod: 8s}
deployments:
  - {name: web, namespace: shop, replicas: 3, service: {port: 80}, disruptionBudget: {minAvailable: 2}}
"#;

    #[test]
    fn parses_and_resolves_timing() {
        let t = Topology::parse(GOOD, "t.yaml").unwrap();
        let timing = t.timing.resolve();
        assert_eq!(timing.pod_startup_delay, Duration::from_millis(500));
        assert_eq!(timing.lease_renew_interval, Duration::from_secs(2));
        assert_eq!(timing.toleration, Duration::from_secs(300));
        assert_eq!(Topology::pod_labels(&t.deployments[0])["app"], "web");
    }

    #[test]
    fn an_upstream_must_name_another_deployment_with_a_service() {
        let with = |up: &str| {
            GOOD.replace(
                "disruptionBudget: {minAvailable: 2}}",
                &format!("disruptionBudget: {{minAvailable: 2}}, backend: {{upstream: {up}}}}}\n  - {{name: api, namespace: shop, replicas: 1, service: {{port: 80}}}}"),
            )
        };
        let ok = Topology::parse(&with("{service: api, on: /checkout}"), "t.yaml").unwrap();
        assert_eq!(
            ok.deployments[0].backend.upstream.as_ref().unwrap().path,
            "/"
        );
        for (up, says) in [
            ("{service: db}", "no deployment `shop/db`"),
            ("{service: web}", "cannot call itself"),
            ("{service: api, on: checkout}", "upstream.on"),
        ] {
            let err = Topology::parse(&with(up), "t.yaml")
                .unwrap_err()
                .to_string();
            assert!(err.contains("deployments[0].backend.upstream"), "{err}");
            assert!(err.contains(says), "{up}: {err}");
        }
    }

    #[test]
    fn unknown_fields_name_the_file_and_path() {
        let bad = GOOD.replace("replicas: 3", "replicas: 3, replica: 4");
        let err = Topology::parse(&bad, "t.yaml").unwrap_err().to_string();
        assert!(err.contains("t.yaml"), "{err}");
        assert!(err.contains("deployments[0]"), "{err}");
        assert!(err.contains("replica"), "{err}");
    }

    #[test]
    fn validation_collects_every_problem() {
        let bad = GOOD
            .replace("nodes: 2", "nodes: 0")
            .replace("{minAvailable: 2}", "{minAvailable: 2, maxUnavailable: 1}");
        let err = Topology::parse(&bad, "t.yaml").unwrap_err().to_string();
        assert!(err.contains("zones[0].nodes"), "{err}");
        assert!(err.contains("deployments[0].disruptionBudget"), "{err}");
    }

    #[test]
    fn a_hostile_block_parses_and_its_errors_name_the_field() {
        let hostile = format!(
            "{GOOD}hostile: {{seed: 3, apf429: {{probability: 0.5, retryAfterSeconds: 2, verbs: [create], resources: [pods/eviction]}}, error5xx: {{probability: 0.1}}, latency: {{probability: 0.2, min: 5ms, max: 50ms}}, watchCloseAfter: {{min: 3s, max: 8s}}}}\n"
        );
        let t = Topology::parse(&hostile, "t.yaml").unwrap();
        let h = t.hostile.unwrap();
        assert_eq!(h.seed, 3);
        assert_eq!(h.error5xx.unwrap().codes, vec![500, 503, 504]);
        assert_eq!(h.latency.unwrap().max, Duration::from_millis(50));
        let bad = hostile.replace("probability: 0.1", "probability: 2");
        let err = Topology::parse(&bad, "t.yaml").unwrap_err().to_string();
        assert!(err.contains("hostile.error5xx.probability"), "{err}");
        let unknown = hostile.replace("seed: 3", "sed: 3");
        let err = Topology::parse(&unknown, "t.yaml").unwrap_err().to_string();
        assert!(err.contains("hostile") && err.contains("sed"), "{err}");
    }

    #[test]
    fn shipped_topology_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/sandbox/topology.yaml");
        let t = Topology::load(&path).unwrap();
        assert_eq!(t.zones.len(), 3);
        assert!(
            t.deployments
                .iter()
                .any(|d| d.name == "web" && d.replicas == 6)
        );
    }
}

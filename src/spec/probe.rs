//! Probe specs: HTTP, PromQL, Kubernetes state and Auto Scaling state.
//!
//! A probe has exactly one kind key, in the style of Kubernetes volume sources, so a file reads
//! as `- name: web` / `http: {...}` and the schema stays flat.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::quantity::{Comparison, Count, DurationSpec, Number, Percent, Rate};

/// One probe: a name and exactly one kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct ProbeSpec {
    /// Unique within the experiment; targets and abort conditions refer to it.
    pub name: String,
    /// Requests at a constant rate to a URL or a Kubernetes Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpProbeSpec>,
    /// A PromQL query compared with a bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusProbeSpec>,
    /// Readiness of a workload, nodes or pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesProbeSpec>,
    /// Auto Scaling groups at their desired capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingProbeSpec>,
}

/// The probe kind keys, in the order the schema lists them.
pub const PROBE_KINDS: &[&str] = &["http", "prometheus", "kubernetes", "autoscaling"];

/// Which kind a probe is, once validation has made sure there is exactly one; reports write
/// its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ProbeKind {
    /// `http`
    Http,
    /// `prometheus`
    Prometheus,
    /// `kubernetes`
    Kubernetes,
    /// `autoscaling`
    Autoscaling,
}

impl ProbeKind {
    /// The key as written in experiment files.
    pub fn key(self) -> &'static str {
        match self {
            ProbeKind::Http => "http",
            ProbeKind::Prometheus => "prometheus",
            ProbeKind::Kubernetes => "kubernetes",
            ProbeKind::Autoscaling => "autoscaling",
        }
    }
}

impl ProbeSpec {
    /// The kinds that are set; valid probes have exactly one.
    pub fn kinds(&self) -> Vec<ProbeKind> {
        let mut kinds = Vec::new();
        if self.http.is_some() {
            kinds.push(ProbeKind::Http);
        }
        if self.prometheus.is_some() {
            kinds.push(ProbeKind::Prometheus);
        }
        if self.kubernetes.is_some() {
            kinds.push(ProbeKind::Kubernetes);
        }
        if self.autoscaling.is_some() {
            kinds.push(ProbeKind::Autoscaling);
        }
        kinds
    }
}

/// HTTP requests at a constant open-model rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct HttpProbeSpec {
    /// A full URL. Give this or `service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A Kubernetes Service, reached through cluster DNS inside a pod and through the API
    /// server's service proxy from outside. Give this or `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceRef>,
    /// HTTP method. Default GET.
    #[serde(default = "default_method")]
    pub method: String,
    /// Request headers. Values of the form `${env:NAME}` are read from the environment and never
    /// written to reports.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// What a successful response looks like. Default: any 2xx status.
    #[serde(default)]
    pub expect: HttpExpectSpec,
    /// Per-request timeout, counted from the scheduled start. Default 2s.
    #[serde(default = "default_request_timeout")]
    pub timeout: DurationSpec,
    /// Requests started per unit of time, whether or not earlier ones answered. Default 50/s.
    #[serde(default = "default_rate")]
    pub rate: Rate,
    /// Most requests in flight; a start beyond it is counted as dropped (a failure). Default 64.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Open a new connection for every request, so per-connection balancing (kube-proxy) is
    /// exercised. Default false (keep-alive).
    #[serde(default)]
    pub new_connection_per_request: bool,
    /// Response header that names the backend that answered; enables load-balance measurements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_header: Option<String>,
    /// Also probe every endpoint of the Service that is ready when probing starts, directly at
    /// its pod address (reachable from inside the cluster or a VPC that routes pod IPs), as
    /// `<probe>@<pod>`: reported beside the Service's probe but never judged, to tell Service
    /// failover from backend failure. Needs `service`.
    #[serde(default)]
    pub per_endpoint: bool,
    /// TLS settings for https URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// Availability over the steady-state windows below which the system is not steady.
    /// Default 99%.
    #[serde(default = "default_steady_availability")]
    pub steady_availability: Percent,
}

fn default_method() -> String {
    "GET".to_owned()
}

fn default_request_timeout() -> DurationSpec {
    DurationSpec::from_secs(2)
}

fn default_rate() -> Rate {
    Rate::per_second(50.0)
}

fn default_concurrency() -> u32 {
    64
}

fn default_steady_availability() -> Percent {
    Percent::new(99.0)
}

/// A port of a Kubernetes Service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct ServiceRef {
    /// Namespace of the Service.
    pub namespace: String,
    /// Name of the Service.
    pub name: String,
    /// Service port number. Default: the Service's first port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Path and query of the request. Default `/`.
    #[serde(default = "default_path")]
    pub path: String,
    /// `http` or `https`. Default `http`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// How requests reach the Service. Default `auto`.
    #[serde(default, skip_serializing_if = "ServiceAccess::is_auto")]
    pub access: ServiceAccess,
}

/// How a probe reaches a Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ServiceAccess {
    /// Cluster DNS when steadfast runs in a pod, the API server's service proxy otherwise.
    #[default]
    Auto,
    /// `http://NAME.NAMESPACE.svc:PORT`: in a pod, or where cluster DNS and networks reach.
    ClusterDns,
    /// The API server's `services/proxy` subresource with the kubeconfig's credentials: works
    /// from anywhere the API server does, but every request is an API request.
    ApiProxy,
}

impl ServiceAccess {
    fn is_auto(&self) -> bool {
        *self == ServiceAccess::Auto
    }
}

fn default_path() -> String {
    "/".to_owned()
}

fn default_scheme() -> String {
    "http".to_owned()
}

/// Expectations a response must meet to count as a success.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct HttpExpectSpec {
    /// Accepted statuses: codes (`200`) or ranges (`"200-299"`). Default 200-299.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<StatusMatch>,
    /// The body must contain this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// The body must match this regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_regex: Option<String>,
    /// The body is JSON and the value at `pointer` equals `equals`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<JsonPointerMatch>,
    /// Responses slower than this (from the scheduled start) count as failures, e.g. `< 1s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Comparison<DurationSpec>>,
}

/// An accepted status: a code or an inclusive range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StatusMatch {
    /// One code, e.g. `200`.
    Code(u16),
    /// An inclusive range written `"200-299"`.
    Range(String),
}

impl StatusMatch {
    /// The inclusive range this match accepts, or None when a range is malformed.
    pub fn bounds(&self) -> Option<(u16, u16)> {
        match self {
            StatusMatch::Code(code) => Some((*code, *code)),
            StatusMatch::Range(text) => {
                let (low, high) = text.split_once('-')?;
                let (low, high) = (low.trim().parse().ok()?, high.trim().parse().ok()?);
                (low <= high).then_some((low, high))
            }
        }
    }
}

/// A JSON-pointer equality check on the response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct JsonPointerMatch {
    /// RFC 6901 pointer, e.g. `/status`.
    pub pointer: String,
    /// The expected value (any JSON value).
    pub equals: serde_json::Value,
}

/// TLS client settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct TlsSpec {
    /// PEM file with the CA certificates to trust instead of the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Skip certificate verification. Only for test environments.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// A PromQL query compared with a bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct PrometheusProbeSpec {
    /// Prometheus base URL; defaults to the `--prometheus` flag or `STEADFAST_PROMETHEUS_URL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// PromQL. `$window`, `$start` and `$end` are replaced with the window being judged.
    pub query: String,
    /// Every series of the result must satisfy this, e.g. `< 0.01`.
    pub expect: Comparison<Number>,
    /// Evaluate as an instant query this often during the run. Default 15s.
    #[serde(default = "default_every")]
    pub every: DurationSpec,
    /// Step of the range query evaluated over each window after the run. Default 15s.
    #[serde(default = "default_every")]
    pub step: DurationSpec,
    /// What an empty result means. Default `fail`.
    #[serde(default)]
    pub on_empty: EmptyResultPolicy,
    /// Authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<PrometheusAuthSpec>,
    /// Extra request headers (e.g. a tenant id).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

fn default_every() -> DurationSpec {
    DurationSpec::from_secs(15)
}

/// What an empty PromQL result means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum EmptyResultPolicy {
    /// The expectation fails: a missing metric is not a healthy one.
    #[default]
    Fail,
    /// The evaluation is skipped.
    Ignore,
}

/// Credentials for Prometheus, always read from the environment or a file, never inline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct PrometheusAuthSpec {
    /// Environment variable holding a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_env: Option<String>,
    /// File holding a bearer token (e.g. a projected service-account token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    /// Basic-auth user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Environment variable holding the basic-auth password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
}

/// Readiness of Kubernetes objects, watched rather than polled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct KubernetesProbeSpec {
    /// A Deployment or StatefulSet whose ready replicas are counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadRef>,
    /// Nodes counted when Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<NodeQuery>,
    /// Pods counted when Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<PodQuery>,
    /// The count that must hold, e.g. `>= 5`. Default: for a workload, all desired replicas
    /// ready; otherwise `>= 1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<Comparison<Count>>,
}

/// A workload by kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct WorkloadRef {
    /// `Deployment` or `StatefulSet`.
    pub kind: WorkloadKind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// Workload kinds whose ready replicas can be watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum WorkloadKind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 StatefulSet.
    StatefulSet,
}

/// Nodes by label selector and/or zone.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct NodeQuery {
    /// Label selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Value of `topology.kubernetes.io/zone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// Pods by namespace and label selector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct PodQuery {
    /// Namespace.
    pub namespace: String,
    /// Label selector.
    pub selector: String,
}

/// Auto Scaling groups with every desired instance InService.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct AutoscalingProbeSpec {
    /// Group names; each must exist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Groups carrying all of these tags, e.g. the cluster's `kubernetes.io/cluster/<name>: owned`;
    /// with `groups`, only the named groups that carry them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Evaluate this often. Default 10s.
    #[serde(default = "default_asg_every")]
    pub every: DurationSpec,
}

fn default_asg_every() -> DurationSpec {
    DurationSpec::from_secs(10)
}

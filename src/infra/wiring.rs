//! Turning a validated experiment into the adapters a run needs: clients, faults, undoers and
//! probes. The only place that knows every adapter; the engine sees traits.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use async_trait::async_trait;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::Api;
use kube::api::ListParams;

use super::aws::{AwsClients, AwsContext, AwsOptions};
use super::kube::client::load_config;
use super::kube::{KubeClient, KubeOptions, ServiceProxyTransport};
use super::nodes::{DEFAULT_LIST_TIMEOUT, KubeNodes, node_facts};
use crate::engine::AbortCheck;
use crate::fault::aws_undo::AwsUndoer;
use crate::fault::az_partition::AzPartitionFault;
use crate::fault::ec2_stop::Ec2StopFault;
use crate::fault::ec2_terminate::Ec2TerminateFault;
use crate::fault::kube_context::{KubeFaultContext, kube_fault};
use crate::fault::kube_undo::KubeUndoer;
use crate::fault::observed::Observed;
use crate::fault::targets::is_running_and_ready;
use crate::fault::{Fault, FaultError, RollbackOutcome, UndoAction, UndoRecord, Undoer};
use crate::measure::{MeasurementStore, StoreConfig};
use crate::plan::zones::instance_caps;
use crate::probe::http::{
    BodyExpectation, ConnectionMode, DirectTransport, DirectTransportConfig, Expectations,
    HttpProbe, HttpProbeConfig, ProbeRequest, StatusExpectation, TlsOptions,
};
use crate::probe::prometheus::{AlertAbort, PrometheusProbe, PrometheusProbeConfig};
use crate::probe::set::{Condition, ConditionSource, ProbeSet};
use crate::spec::probe::{
    HttpProbeSpec, KubernetesProbeSpec, ServiceAccess, ServiceRef, WorkloadKind,
};
use crate::spec::quantity::Count;
use crate::spec::{ExperimentSpec, FaultKind};

/// How to reach the cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterArgs {
    /// A kubeconfig file; KUBECONFIG or in-cluster config otherwise.
    pub kubeconfig: Option<PathBuf>,
    /// A context of it.
    pub context: Option<String>,
}

/// The clients of one run.
pub struct Connected {
    /// Kubernetes, rate limited by the experiment's safety settings.
    pub kube: KubeClient,
    /// The API server's URL.
    pub server: String,
    /// Kubernetes without the rate limiter, for probe requests through the service proxy: they
    /// must not spend the budget that paces the faults.
    pub proxy: kube::Client,
    /// AWS, when the experiment has AWS faults or probes.
    pub aws: Option<AwsClients>,
    /// The AWS options used.
    pub aws_options: AwsOptions,
}

fn needs_aws(spec: &ExperimentSpec) -> bool {
    spec.spec.faults.iter().any(|f| {
        matches!(
            f.kind(),
            Some(FaultKind::Ec2Terminate | FaultKind::Ec2Stop | FaultKind::AzPartition)
        )
    }) || spec
        .spec
        .steady_state
        .probes
        .iter()
        .any(|p| p.autoscaling.is_some())
}

impl ClusterArgs {
    /// Client options for these settings, with the default rate limit.
    pub fn kube_options(&self) -> KubeOptions {
        KubeOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            ..KubeOptions::default()
        }
    }
}

/// Connects the clients an experiment needs.
///
/// # Errors
/// When no cluster configuration is found or AWS cannot be configured.
pub async fn connect(spec: &ExperimentSpec, cluster: &ClusterArgs) -> anyhow::Result<Connected> {
    let options = KubeOptions {
        qps: spec.spec.safety.api_qps,
        burst: spec.spec.safety.api_burst,
        ..cluster.kube_options()
    };
    let config = load_config(&options)
        .await
        .context("cannot load the Kubernetes configuration")?;
    let server = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_owned();
    let proxy =
        kube::Client::try_from(config.clone()).context("cannot build the Kubernetes client")?;
    let kube =
        KubeClient::from_config(config, &options).context("cannot build the Kubernetes client")?;
    let aws_options = AwsOptions::from_spec(spec.spec.aws.as_ref());
    let aws = if needs_aws(spec) {
        Some(
            AwsClients::connect(&aws_options)
                .await
                .context("cannot configure AWS")?,
        )
    } else {
        None
    };
    Ok(Connected {
        kube,
        server,
        proxy,
        aws,
        aws_options,
    })
}

/// One fault per `spec.faults` entry, in order.
///
/// # Errors
/// When a fault needs AWS and AWS is not configured.
pub fn faults(
    spec: &ExperimentSpec,
    connected: &Connected,
    seed: u64,
) -> anyhow::Result<Vec<Arc<dyn Fault>>> {
    let kube_context =
        KubeFaultContext::new(connected.kube.clone(), spec.spec.safety.clone(), seed);
    let aws_context = connected.aws.clone().map(|clients| AwsContext {
        nodes: Some(Arc::new(KubeNodes::new(
            connected.kube.raw().clone(),
            DEFAULT_LIST_TIMEOUT,
        ))),
        vpc_id: spec.spec.aws.as_ref().and_then(|a| a.vpc_id.clone()),
        ..AwsContext::new(clients)
    });
    let caps = instance_caps(&spec.spec.safety);
    let mut built: Vec<Arc<dyn Fault>> = Vec::new();
    for fault in &spec.spec.faults {
        if let Some(kube) = kube_fault(fault, &kube_context) {
            let disrupts_pods =
                fault.pod_kill.is_some() || fault.pod_evict.is_some() || fault.node_drain.is_some();
            if disrupts_pods {
                // Replacements are watched from just before each firing, for self-healing targets.
                let timeout = spec.spec.steady_state.recovery_timeout.get() + fault.for_.get();
                built.push(Arc::new(Observed::new(
                    kube,
                    connected.kube.clone(),
                    timeout,
                )));
            } else {
                built.push(kube);
            }
            continue;
        }
        let Some(aws) = aws_context.clone() else {
            bail!("fault `{}` needs AWS, which is not configured", fault.name);
        };
        let name = fault.name.clone();
        if let Some(s) = &fault.ec2_terminate {
            built.push(Arc::new(Ec2TerminateFault::new(
                name,
                s.clone(),
                aws,
                caps,
                seed,
            )));
        } else if let Some(s) = &fault.ec2_stop {
            built.push(Arc::new(Ec2StopFault::new(
                name,
                s.clone(),
                aws,
                caps,
                seed,
            )));
        } else if let Some(s) = &fault.az_partition {
            built.push(Arc::new(AzPartitionFault::new(name, s.clone(), aws)));
        } else {
            bail!("fault `{}` has no kind", fault.name);
        }
    }
    Ok(built)
}

/// Applies undo records with whichever adapter knows the action.
pub struct CompositeUndoer {
    undoers: Vec<Box<dyn Undoer>>,
}

impl CompositeUndoer {
    /// The Kubernetes undoer, and the AWS one (which connects lazily per region).
    pub fn new(kube: KubeClient, aws: AwsOptions) -> Self {
        Self {
            undoers: vec![
                Box::new(KubeUndoer::new(kube)),
                Box::new(AwsUndoer::new(aws)),
            ],
        }
    }
}

#[async_trait]
impl Undoer for CompositeUndoer {
    fn handles(&self, action: &UndoAction) -> bool {
        self.undoers.iter().any(|u| u.handles(action))
    }

    async fn undo(&self, record: &UndoRecord) -> Result<RollbackOutcome, FaultError> {
        match self.undoers.iter().find(|u| u.handles(&record.action)) {
            Some(undoer) => undoer.undo(record).await,
            None => Err(FaultError::Refused(format!(
                "no adapter can apply `{}`",
                record.action.describe()
            ))),
        }
    }
}

/// Where an HTTP probe sends its requests, and whether through the API server.
struct ProbeTarget {
    url: String,
    through_api_proxy: bool,
}

impl ProbeTarget {
    fn direct(url: String) -> Self {
        Self {
            url,
            through_api_proxy: false,
        }
    }
}

async fn probe_target(http: &HttpProbeSpec, connected: &Connected) -> anyhow::Result<ProbeTarget> {
    if let Some(url) = &http.url {
        return Ok(ProbeTarget::direct(url.clone()));
    }
    let Some(service) = &http.service else {
        bail!("the probe has neither url nor service")
    };
    resolve_service(service, connected).await
}

/// A Service's URL. With `access: auto`: the sandbox's load balancer when it names one, cluster
/// DNS inside a pod, the API server's service proxy otherwise.
async fn resolve_service(
    service: &ServiceRef,
    connected: &Connected,
) -> anyhow::Result<ProbeTarget> {
    let api: Api<Service> = Api::namespaced(connected.kube.raw().clone(), &service.namespace);
    let found = tokio::time::timeout(Duration::from_secs(15), api.get_opt(&service.name))
        .await
        .context("the API server did not answer in time")??
        .with_context(|| format!("Service {}/{} not found", service.namespace, service.name))?;
    let port = service
        .port
        .or_else(|| {
            found
                .spec
                .as_ref()?
                .ports
                .as_ref()?
                .first()
                .map(|p| p.port as u16)
        })
        .with_context(|| format!("Service {}/{} has no port", service.namespace, service.name))?;
    let sandbox_url = found
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("sandbox.steadfast.dev/url"));
    let in_pod = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let access = match (service.access, sandbox_url) {
        (ServiceAccess::Auto, Some(url)) => {
            return Ok(ProbeTarget::direct(format!(
                "{}{}",
                url.trim_end_matches('/'),
                service.path
            )));
        }
        (ServiceAccess::Auto, None) if in_pod => ServiceAccess::ClusterDns,
        (ServiceAccess::Auto, None) => ServiceAccess::ApiProxy,
        (chosen, _) => chosen,
    };
    if access == ServiceAccess::ClusterDns {
        return Ok(ProbeTarget::direct(format!(
            "{}://{}.{}.svc:{port}{}",
            service.scheme, service.name, service.namespace, service.path
        )));
    }
    Ok(ProbeTarget {
        url: format!(
            "{}/api/v1/namespaces/{}/services/{}:{}:{port}/proxy{}",
            connected.server, service.namespace, service.scheme, service.name, service.path
        ),
        through_api_proxy: true,
    })
}

fn expectations(http: &HttpProbeSpec) -> anyhow::Result<Expectations> {
    let mut expect = Expectations::default();
    if !http.expect.status.is_empty() {
        expect.status = StatusExpectation {
            codes: Vec::new(),
            ranges: http
                .expect
                .status
                .iter()
                .filter_map(|s| s.bounds())
                .map(|(low, high)| low..=high)
                .collect(),
        };
    }
    if let Some(text) = &http.expect.body_contains {
        expect.body.push(BodyExpectation::Contains(text.clone()));
    }
    if let Some(pattern) = &http.expect.body_regex {
        expect
            .body
            .push(BodyExpectation::Matches(regex::bytes::Regex::new(pattern)?));
    }
    if let Some(json) = &http.expect.json {
        expect.body.push(BodyExpectation::JsonPointerEquals {
            pointer: json.pointer.clone(),
            value: json.equals.clone(),
        });
    }
    expect.max_latency = http.expect.latency.map(|c| c.value.get());
    Ok(expect)
}

fn header_value(value: &str) -> anyhow::Result<HeaderValue> {
    // `${env:NAME}` keeps secrets out of experiment files (and so out of reports).
    let resolved = match value
        .strip_prefix("${env:")
        .and_then(|v| v.strip_suffix('}'))
    {
        Some(name) => std::env::var(name)
            .with_context(|| format!("environment variable {name} is not set"))?,
        None => value.to_owned(),
    };
    Ok(HeaderValue::from_str(&resolved)?)
}

async fn http_probe(http: &HttpProbeSpec, connected: &Connected) -> anyhow::Result<HttpProbe> {
    let target = probe_target(http, connected).await?;
    let url = &target.url;
    let uri: Uri = url
        .parse()
        .with_context(|| format!("`{url}` is not a URL"))?;
    let mut headers = HeaderMap::new();
    for (name, value) in &http.headers {
        headers.insert(
            HeaderName::from_bytes(name.as_bytes())?,
            header_value(value)?,
        );
    }
    let config = HttpProbeConfig {
        request: ProbeRequest {
            method: Method::from_bytes(http.method.as_bytes())?,
            uri,
            headers,
            body: bytes::Bytes::from(http.body.clone().unwrap_or_default()),
        },
        rate_per_second: http.rate.as_per_second(),
        max_in_flight: http.concurrency as usize,
        timeout: http.timeout.get(),
        expect: expectations(http)?,
        backend_header: http
            .backend_header
            .as_deref()
            .map(|h| HeaderName::from_bytes(h.as_bytes()))
            .transpose()?,
        duration: None,
    };
    if target.through_api_proxy {
        let transport = ServiceProxyTransport::new(connected.proxy.clone(), &connected.server);
        return Ok(HttpProbe::new(config, Arc::new(transport))?);
    }
    let tls = http
        .tls
        .as_ref()
        .map_or_else(TlsOptions::default, |t| TlsOptions {
            ca_file: t.ca_file.clone().map(PathBuf::from),
            insecure_skip_verify: t.insecure_skip_verify,
        });
    let transport = DirectTransport::new(DirectTransportConfig {
        tls,
        connection: if http.new_connection_per_request {
            ConnectionMode::NewConnectionPerRequest
        } else {
            ConnectionMode::KeepAlive
        },
        ..DirectTransportConfig::default()
    })?;
    Ok(HttpProbe::new(config, Arc::new(transport))?)
}

/// Counts ready Kubernetes objects against a bound.
struct ReadyCount {
    kube: KubeClient,
    spec: KubernetesProbeSpec,
}

impl ReadyCount {
    async fn count(&self) -> anyhow::Result<(u64, Option<u64>)> {
        let client = self.kube.raw().clone();
        if let Some(workload) = &self.spec.workload {
            let (ready, desired) = match workload.kind {
                WorkloadKind::Deployment => {
                    let api: Api<Deployment> = Api::namespaced(client, &workload.namespace);
                    let d = api.get(&workload.name).await?;
                    let ready = d
                        .status
                        .as_ref()
                        .and_then(|s| s.ready_replicas)
                        .unwrap_or(0);
                    (ready, d.spec.replicas.unwrap_or(1))
                }
                WorkloadKind::StatefulSet => {
                    let api: Api<k8s_openapi::api::apps::v1::StatefulSet> =
                        Api::namespaced(client, &workload.namespace);
                    let s = api.get(&workload.name).await?;
                    let ready = s
                        .status
                        .as_ref()
                        .and_then(|s| s.ready_replicas)
                        .unwrap_or(0);
                    (ready, s.spec.replicas.unwrap_or(1))
                }
            };
            return Ok((ready.max(0) as u64, Some(desired.max(0) as u64)));
        }
        if let Some(nodes) = &self.spec.nodes {
            let api: Api<Node> = Api::all(client);
            let mut params = ListParams::default();
            if let Some(selector) = &nodes.selector {
                params = params.labels(selector);
            }
            // The same facts the zone model uses: zone label and the Ready condition.
            let ready = api
                .list(&params)
                .await?
                .items
                .iter()
                .map(node_facts)
                .filter(|n| {
                    n.ready
                        && nodes
                            .zone
                            .as_ref()
                            .is_none_or(|z| n.zone.as_ref() == Some(z))
                })
                .count();
            return Ok((ready as u64, None));
        }
        if let Some(pods) = &self.spec.pods {
            let api: Api<Pod> = Api::namespaced(client, &pods.namespace);
            let ready = api
                .list(&ListParams::default().labels(&pods.selector))
                .await?
                .items
                .iter()
                .filter(|p| is_running_and_ready(p))
                .count();
            return Ok((ready as u64, None));
        }
        bail!("the probe names no workload, nodes or pods")
    }
}

#[async_trait]
impl Condition for ReadyCount {
    async fn evaluate(&self) -> (bool, Option<f64>, String) {
        match tokio::time::timeout(Duration::from_secs(10), self.count()).await {
            Ok(Ok((ready, desired))) => {
                let held = match (self.spec.ready, desired) {
                    (Some(bound), _) => bound.holds(Count(ready)),
                    (None, Some(desired)) => ready >= desired,
                    (None, None) => ready >= 1,
                };
                let expected = match (self.spec.ready, desired) {
                    (Some(bound), _) => bound.to_string(),
                    (None, Some(desired)) => format!(">= {desired} (desired)"),
                    (None, None) => ">= 1".to_owned(),
                };
                (
                    held,
                    Some(ready as f64),
                    format!("{ready} ready, expected {expected}"),
                )
            }
            Ok(Err(err)) => (false, None, err.to_string()),
            Err(_) => (
                false,
                None,
                "the API server did not answer in time".to_owned(),
            ),
        }
    }
}

fn prometheus_config(
    url: &str,
    prom: &crate::spec::probe::PrometheusProbeSpec,
) -> anyhow::Result<PrometheusProbeConfig> {
    use crate::probe::prometheus::{Comparison, EmptyResult, PrometheusAuth};
    use crate::spec::probe::EmptyResultPolicy;
    let op = prom.expect.op;
    let auth = match &prom.auth {
        None => None,
        Some(a) => {
            if let Some(env) = &a.bearer_token_env {
                Some(PrometheusAuth::Bearer(
                    std::env::var(env).with_context(|| format!("{env} is not set"))?,
                ))
            } else if let Some(file) = &a.bearer_token_file {
                let token = std::fs::read_to_string(file)
                    .with_context(|| format!("{file}: cannot read the token"))?;
                Some(PrometheusAuth::Bearer(token.trim().to_owned()))
            } else if let (Some(username), Some(env)) = (&a.username, &a.password_env) {
                let password = std::env::var(env).with_context(|| format!("{env} is not set"))?;
                Some(PrometheusAuth::Basic {
                    username: username.clone(),
                    password,
                })
            } else {
                None
            }
        }
    };
    let mut headers = HeaderMap::new();
    for (name, value) in &prom.headers {
        headers.insert(
            HeaderName::from_bytes(name.as_bytes())?,
            header_value(value)?,
        );
    }
    Ok(PrometheusProbeConfig {
        url: url.to_owned(),
        query: prom.query.clone(),
        comparison: Comparison {
            op,
            threshold: prom.expect.value.0,
        },
        on_empty: match prom.on_empty {
            EmptyResultPolicy::Fail => EmptyResult::Fail,
            EmptyResultPolicy::Ignore => EmptyResult::Ignore,
        },
        auth,
        headers,
        timeout: Duration::from_secs(10),
    })
}

/// Builds every probe of the experiment.
///
/// # Errors
/// When a probe cannot be built (an unresolvable Service, a bad header value) or is of a kind
/// this build cannot run.
pub async fn probes(
    spec: &ExperimentSpec,
    connected: &Connected,
    origin: std::time::Instant,
) -> anyhow::Result<ProbeSet> {
    let mut set = ProbeSet::new(origin);
    for probe in &spec.spec.steady_state.probes {
        let context = || format!("probe `{}`", probe.name);
        if let Some(http) = &probe.http {
            let built = http_probe(http, connected).await.with_context(context)?;
            let store = MeasurementStore::new(StoreConfig::default()).with_context(context)?;
            set.add_http(&probe.name, built, store, http.steady_availability.ratio());
        } else if let Some(prom) = &probe.prometheus {
            let url = prom
                .url
                .clone()
                .or_else(|| std::env::var("STEADFAST_PROMETHEUS_URL").ok())
                .with_context(|| {
                    format!(
                        "probe `{}` has no url and STEADFAST_PROMETHEUS_URL is not set",
                        probe.name
                    )
                })?;
            let config = prometheus_config(&url, prom).with_context(context)?;
            let built = PrometheusProbe::new(config).with_context(context)?;
            set.add_condition(
                &probe.name,
                "prometheus",
                ConditionSource::Prometheus {
                    probe: Arc::new(built),
                    every: prom.every.get(),
                },
            );
        } else if let Some(kube) = &probe.kubernetes {
            let condition = ReadyCount {
                kube: connected.kube.clone(),
                spec: kube.clone(),
            };
            set.add_condition(
                &probe.name,
                "kubernetes",
                ConditionSource::Poll {
                    condition: Arc::new(condition),
                    every: Duration::from_secs(1),
                },
            );
        } else if probe.autoscaling.is_some() {
            bail!(
                "probe `{}`: autoscaling probes are not supported by `run` yet; use a kubernetes nodes probe",
                probe.name
            );
        }
    }
    Ok(set)
}

/// Bound on one look at a Prometheus' alerts: the engine checks every second and must not stall
/// behind a slow server.
const ALERT_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The external stop conditions of `spec.safety.abortWhen`: one check per `alert` entry.
///
/// # Errors
/// When an alert has no Prometheus URL (neither `url` nor `STEADFAST_PROMETHEUS_URL`) or the URL
/// is not one.
pub fn abort_checks(spec: &ExperimentSpec) -> anyhow::Result<Vec<Box<dyn AbortCheck>>> {
    let mut checks: Vec<Box<dyn AbortCheck>> = Vec::new();
    for (index, condition) in spec.spec.safety.abort_when.iter().enumerate() {
        let Some(alert) = &condition.alert else {
            continue;
        };
        let path = format!("spec.safety.abortWhen[{index}].alert");
        let url = alert
            .url
            .clone()
            .or_else(|| {
                std::env::var("STEADFAST_PROMETHEUS_URL")
                    .ok()
                    .filter(|u| !u.is_empty())
            })
            .with_context(|| {
                format!(
                    "{path}: no Prometheus URL\nhint: set {path}.url, or STEADFAST_PROMETHEUS_URL"
                )
            })?;
        let check = AlertAbort::new(&url, &alert.name, ALERT_CHECK_TIMEOUT)
            .with_context(|| format!("{path}.url"))?;
        checks.push(Box::new(check));
    }
    Ok(checks)
}

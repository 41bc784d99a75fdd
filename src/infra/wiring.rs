//! Turning a validated experiment into the adapters a run needs: clients, faults, undoers and
//! probes. The only place that knows every adapter; the engine sees traits.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use async_trait::async_trait;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::ListParams;
use tracing::info;

use super::aws::{AwsClients, AwsContext, AwsOptions};
use super::kube::client::load_config;
use super::kube::{KubeClient, KubeOptions, ReadinessWatch, ServiceProxyTransport};
use super::nodes::{DEFAULT_LIST_TIMEOUT, KubeNodes};
use crate::engine::AbortCheck;
use crate::fault::aws_undo::AwsUndoer;
use crate::fault::az_partition::AzPartitionFault;
use crate::fault::detected::Detected;
use crate::fault::ec2_stop::Ec2StopFault;
use crate::fault::ec2_terminate::Ec2TerminateFault;
use crate::fault::kube_context::{KubeFaultContext, kube_fault};
use crate::fault::kube_undo::KubeUndoer;
use crate::fault::observed::Observed;
use crate::fault::{Fault, FaultError, RollbackOutcome, UndoAction, UndoRecord, Undoer};
use crate::measure::{MeasurementStore, StoreConfig};
use crate::plan::zones::instance_caps;
use crate::probe::autoscaling::AutoscalingCondition;
use crate::probe::http::{
    BodyExpectation, ConnectionMode, DirectTransport, DirectTransportConfig, Endpoint,
    Expectations, HttpProbe, HttpProbeConfig, ProbeRequest, StatusExpectation, TlsOptions,
};
use crate::probe::prometheus::{AlertAbort, PrometheusProbe, PrometheusProbeConfig};
use crate::probe::set::{ConditionSource, ProbeSet};
use crate::spec::probe::{HttpProbeSpec, ServiceAccess, ServiceRef};
use crate::spec::{ExperimentSpec, FaultKind, FaultSpec, ProbeKind};

/// How to reach the cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterArgs {
    /// A kubeconfig file; KUBECONFIG or in-cluster config otherwise.
    pub kubeconfig: Option<PathBuf>,
    /// A context of it.
    pub context: Option<String>,
}

/// The Kubernetes clients of one run.
pub struct ClusterClients {
    /// Kubernetes, rate limited by the experiment's safety settings.
    pub kube: KubeClient,
    /// The API server's URL.
    pub server: String,
    /// Kubernetes without the rate limiter, for probe requests through the service proxy: they
    /// must not spend the budget that paces the faults.
    pub proxy: kube::Client,
}

/// The clients of one run.
pub struct Connected {
    /// Kubernetes; `None` when no configuration was found and nothing in the experiment needs
    /// a cluster (URL probes and AWS faults only).
    pub cluster: Option<ClusterClients>,
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

impl Connected {
    /// The Kubernetes clients.
    ///
    /// # Errors
    /// When the run has no cluster.
    pub fn cluster(&self) -> anyhow::Result<&ClusterClients> {
        self.cluster.as_ref().context(
            "this needs a Kubernetes cluster and no configuration was found; set KUBECONFIG or pass --kubeconfig",
        )
    }
}

/// Whether anything in the experiment talks to Kubernetes: a Kubernetes fault, an instance
/// target chosen by node labels, a Kubernetes probe, or an HTTP probe of a Service.
pub fn needs_cluster(spec: &ExperimentSpec) -> bool {
    let faults = spec.spec.faults.iter().any(|f| {
        let by_nodes = [
            f.ec2_stop.as_ref().map(|s| &s.target),
            f.ec2_terminate.as_ref().map(|s| &s.target),
        ]
        .into_iter()
        .flatten()
        .any(|t| t.node_selector.is_some());
        by_nodes || !is_aws_fault(f)
    });
    let probes = spec.spec.steady_state.probes.iter().any(|p| {
        p.kubernetes.is_some()
            || p.http
                .as_ref()
                .is_some_and(|h| h.url.is_none() || h.per_endpoint)
    });
    faults || probes
}

fn is_aws_fault(fault: &FaultSpec) -> bool {
    matches!(
        fault.kind(),
        Some(FaultKind::Ec2Terminate | FaultKind::Ec2Stop | FaultKind::AzPartition)
    )
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
/// Without any Kubernetes configuration (none named, none in the environment) an experiment
/// that [`needs_cluster`] says needs none gets no cluster rather than an error.
///
/// # Errors
/// When a needed or named cluster configuration cannot be loaded, or AWS cannot be configured.
pub async fn connect(spec: &ExperimentSpec, cluster: &ClusterArgs) -> anyhow::Result<Connected> {
    let aws_options = AwsOptions::from_spec(spec.spec.aws.as_ref());
    let options = KubeOptions {
        qps: spec.spec.safety.api_qps,
        burst: spec.spec.safety.api_burst,
        ..cluster.kube_options()
    };
    let explicit = cluster.kubeconfig.is_some() || cluster.context.is_some();
    let config = match load_config(&options).await {
        Ok(config) => config,
        Err(err) if !explicit && !needs_cluster(spec) => {
            info!(
                "no Kubernetes configuration ({err}); the experiment needs none, so none is used"
            );
            return Ok(Connected {
                cluster: None,
                aws: connect_aws(spec, &aws_options).await?,
                aws_options,
            });
        }
        Err(err) => {
            return Err(anyhow::Error::new(err).context("cannot load the Kubernetes configuration"));
        }
    };
    let server = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_owned();
    let proxy =
        kube::Client::try_from(config.clone()).context("cannot build the Kubernetes client")?;
    let kube =
        KubeClient::from_config(config, &options).context("cannot build the Kubernetes client")?;
    Ok(Connected {
        cluster: Some(ClusterClients {
            kube,
            server,
            proxy,
        }),
        aws: connect_aws(spec, &aws_options).await?,
        aws_options,
    })
}

async fn connect_aws(
    spec: &ExperimentSpec,
    options: &AwsOptions,
) -> anyhow::Result<Option<AwsClients>> {
    if !needs_aws(spec) {
        return Ok(None);
    }
    Ok(Some(
        AwsClients::connect(options)
            .await
            .context("cannot configure AWS")?,
    ))
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
    let kube_context = connected
        .cluster
        .as_ref()
        .map(|c| KubeFaultContext::new(c.kube.clone(), spec.spec.safety.clone(), seed));
    let aws_context = connected.aws.clone().map(|clients| AwsContext {
        nodes: connected.cluster.as_ref().map(|c| {
            Arc::new(KubeNodes::new(c.kube.raw().clone(), DEFAULT_LIST_TIMEOUT))
                as Arc<dyn crate::infra::nodes::NodeSource>
        }),
        vpc_id: spec.spec.aws.as_ref().and_then(|a| a.vpc_id.clone()),
        ..AwsContext::new(clients)
    });
    let caps = instance_caps(&spec.spec.safety);
    let mut built: Vec<Arc<dyn Fault>> = Vec::new();
    for fault in &spec.spec.faults {
        if !is_aws_fault(fault) && kube_context.is_none() {
            connected
                .cluster()
                .with_context(|| format!("fault `{}`", fault.name))?;
        }
        if let Some(kube) = kube_context.as_ref().and_then(|c| kube_fault(fault, c)) {
            let disrupts_pods =
                fault.pod_kill.is_some() || fault.pod_evict.is_some() || fault.node_drain.is_some();
            if disrupts_pods {
                // Replacements are watched from just before each firing, for self-healing targets.
                let timeout = spec.spec.steady_state.recovery_timeout.get() + fault.for_.get();
                built.push(Arc::new(Observed::new(
                    kube,
                    connected.cluster()?.kube.clone(),
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
    // Every firing is watched from just before it acts, for the moment the system noticed it.
    // Without a cluster there is nothing to watch: detection is not reported.
    let Some(cluster) = &connected.cluster else {
        return Ok(built);
    };
    let built = built
        .into_iter()
        .zip(&spec.spec.faults)
        .map(|(fault, s)| {
            let timeout = spec.spec.steady_state.recovery_timeout.get() + s.for_.get();
            Arc::new(Detected::new(fault, cluster.kube.clone(), timeout)) as Arc<dyn Fault>
        })
        .collect();
    Ok(built)
}

/// Applies undo records with whichever adapter knows the action.
pub struct CompositeUndoer {
    undoers: Vec<Box<dyn Undoer>>,
}

impl CompositeUndoer {
    /// The Kubernetes undoer when there is a cluster, and the AWS one (which connects lazily
    /// per region).
    pub fn new(kube: Option<KubeClient>, aws: AwsOptions) -> Self {
        let mut undoers: Vec<Box<dyn Undoer>> = Vec::new();
        if let Some(kube) = kube {
            undoers.push(Box::new(KubeUndoer::new(kube.clone())));
            undoers.push(Box::new(crate::fault::pod_network::PodNetworkUndoer::new(
                kube,
            )));
        }
        undoers.push(Box::new(AwsUndoer::new(aws)));
        Self { undoers }
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
    let api: Api<Service> =
        Api::namespaced(connected.cluster()?.kube.raw().clone(), &service.namespace);
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
            connected.cluster()?.server,
            service.namespace,
            service.scheme,
            service.name,
            service.path
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

fn http_config(http: &HttpProbeSpec, uri: Uri) -> anyhow::Result<HttpProbeConfig> {
    let mut headers = HeaderMap::new();
    for (name, value) in &http.headers {
        headers.insert(
            HeaderName::from_bytes(name.as_bytes())?,
            header_value(value)?,
        );
    }
    Ok(HttpProbeConfig {
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
    })
}

fn direct_transport(http: &HttpProbeSpec) -> anyhow::Result<DirectTransport> {
    let tls = http
        .tls
        .as_ref()
        .map_or_else(TlsOptions::default, |t| TlsOptions {
            ca_file: t.ca_file.clone().map(PathBuf::from),
            insecure_skip_verify: t.insecure_skip_verify,
        });
    Ok(DirectTransport::new(DirectTransportConfig {
        tls,
        connection: if http.new_connection_per_request {
            ConnectionMode::NewConnectionPerRequest
        } else {
            ConnectionMode::KeepAlive
        },
        ..DirectTransportConfig::default()
    })?)
}

async fn http_probe(http: &HttpProbeSpec, connected: &Connected) -> anyhow::Result<HttpProbe> {
    let target = probe_target(http, connected).await?;
    let url = &target.url;
    let uri: Uri = url
        .parse()
        .with_context(|| format!("`{url}` is not a URL"))?;
    let config = http_config(http, uri)?;
    if target.through_api_proxy {
        let cluster = connected.cluster()?;
        let transport = ServiceProxyTransport::new(cluster.proxy.clone(), &cluster.server);
        return Ok(HttpProbe::new(config, Arc::new(transport))?);
    }
    Ok(HttpProbe::new(config, Arc::new(direct_transport(http)?))?)
}

/// The ready endpoints of a Service, from its EndpointSlices: each pod's address and the port
/// the Service's port targets there, named after the pod.
async fn service_endpoints(
    service: &ServiceRef,
    connected: &Connected,
) -> anyhow::Result<Vec<Endpoint>> {
    let client = connected.cluster()?.kube.raw().clone();
    let services: Api<Service> = Api::namespaced(client.clone(), &service.namespace);
    let found = tokio::time::timeout(Duration::from_secs(15), services.get(&service.name))
        .await
        .context("the API server did not answer in time")??;
    let ports = found.spec.and_then(|s| s.ports).unwrap_or_default();
    let port_name = match service.port {
        Some(port) => ports.iter().find(|p| p.port == i32::from(port)),
        None => ports.first(),
    }
    .and_then(|p| p.name.clone())
    .unwrap_or_default();
    let slices: Api<EndpointSlice> = Api::namespaced(client, &service.namespace);
    let params =
        ListParams::default().labels(&format!("kubernetes.io/service-name={}", service.name));
    let listed = tokio::time::timeout(Duration::from_secs(15), slices.list(&params))
        .await
        .context("the API server did not answer in time")??;
    let mut endpoints = Vec::new();
    for slice in listed.items {
        let slice_ports = slice.ports.unwrap_or_default();
        let Some(port) = slice_ports
            .iter()
            .find(|p| p.name.clone().unwrap_or_default() == port_name)
            .or_else(|| slice_ports.first())
            .and_then(|p| p.port)
        else {
            continue;
        };
        for endpoint in slice.endpoints.unwrap_or_default() {
            // An unknown readiness counts as ready, as kube-proxy treats it.
            let ready = endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .unwrap_or(true);
            let Some(address) = endpoint.addresses.first().filter(|_| ready) else {
                continue;
            };
            let host = if address.contains(':') {
                format!("[{address}]")
            } else {
                address.clone()
            };
            let name = endpoint
                .target_ref
                .as_ref()
                .and_then(|r| r.name.clone())
                .unwrap_or_else(|| format!("{host}:{port}"));
            let url = format!("{}://{host}:{port}{}", service.scheme, service.path);
            endpoints.push(Endpoint {
                name: Arc::from(name),
                uri: url
                    .parse::<Uri>()
                    .with_context(|| format!("`{url}` is not a URL"))?,
            });
        }
    }
    endpoints.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(endpoints)
}

/// One probe per ready endpoint of the probe's Service, sent directly to the pod (pod IPs must
/// be reachable: in the cluster, or from a VPC that routes them).
async fn endpoint_probes(
    http: &HttpProbeSpec,
    connected: &Connected,
) -> anyhow::Result<Vec<(Arc<str>, HttpProbe)>> {
    let Some(service) = &http.service else {
        bail!("perEndpoint needs `service`: a bare URL has no endpoints to list")
    };
    let endpoints = service_endpoints(service, connected).await?;
    if endpoints.is_empty() {
        bail!(
            "Service {}/{} has no ready endpoint to probe",
            service.namespace,
            service.name
        );
    }
    let transport: Arc<dyn crate::probe::http::Transport> = Arc::new(direct_transport(http)?);
    let config = http_config(http, endpoints[0].uri.clone())?;
    endpoints
        .iter()
        .map(|endpoint| {
            let probe = HttpProbe::for_endpoint(&config, endpoint, transport.clone())?;
            Ok((endpoint.name.clone(), probe))
        })
        .collect()
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

/// How often a watched condition's unchanged state is recorded again, so the share of
/// evaluations that held weighs time as a one-second poll did.
pub const WATCH_HEARTBEAT: Duration = Duration::from_secs(1);

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
            if http.per_endpoint {
                for (pod, built) in endpoint_probes(http, connected)
                    .await
                    .with_context(context)?
                {
                    let store =
                        MeasurementStore::new(StoreConfig::default()).with_context(context)?;
                    set.add_http_endpoint(&format!("{}@{pod}", probe.name), built, store);
                }
            }
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
                ProbeKind::Prometheus,
                ConditionSource::Prometheus {
                    probe: Arc::new(built),
                    every: prom.every.get(),
                },
            );
        } else if let Some(kube) = &probe.kubernetes {
            set.add_condition(
                &probe.name,
                ProbeKind::Kubernetes,
                ConditionSource::Watch {
                    condition: Arc::new(ReadinessWatch::new(
                        &connected.cluster().with_context(context)?.kube,
                        kube.clone(),
                    )),
                    heartbeat: WATCH_HEARTBEAT,
                },
            );
        } else if let Some(asg) = &probe.autoscaling {
            let Some(aws) = &connected.aws else {
                bail!("probe `{}` needs AWS, which is not configured", probe.name);
            };
            let condition =
                AutoscalingCondition::new(Arc::new(aws.autoscaling.clone()), asg.clone());
            set.add_condition(
                &probe.name,
                ProbeKind::Autoscaling,
                ConditionSource::Poll {
                    condition: Arc::new(condition),
                    every: asg.every.get(),
                },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_experiment;

    fn spec(probe: &str, fault: &str) -> ExperimentSpec {
        let text = format!(
            "apiVersion: steadfast.dev/v1alpha1\nkind: Experiment\nmetadata: {{name: t}}\nspec:\n  duration: 10s\n  steadyState:\n    probes:\n      - {probe}\n  faults:\n    - {{name: f, at: 0s, for: 5s, {fault}}}\n  safety: {{maxNodes: 1}}\n"
        );
        parse_experiment("t.yaml", &text)
            .unwrap_or_else(|d| panic!("{d:?}"))
            .0
    }

    const URL: &str = r#"{name: web, http: {url: "http://127.0.0.1:1/", rate: 1/s}}"#;
    const BY_TAG: &str = "ec2Stop: {target: {tags: {role: x}}}";

    #[test]
    fn only_url_probes_and_aws_faults_need_no_cluster() {
        assert!(!needs_cluster(&spec(URL, BY_TAG)));
        let az = "azPartition: {zone: us-east-1a}";
        assert!(!needs_cluster(&spec(URL, az)));
        let by_nodes = "ec2Stop: {target: {nodeSelector: pool=a}}";
        assert!(needs_cluster(&spec(URL, by_nodes)));
        let pods = "podKill: {target: {namespaces: [shop], selector: app=web}}";
        assert!(needs_cluster(&spec(URL, pods)));
        let service = "{name: web, http: {service: {namespace: shop, name: web}, rate: 1/s}}";
        assert!(needs_cluster(&spec(service, BY_TAG)));
    }
}

//! Per-endpoint probing: the same request sent to each ready backend directly.
//!
//! Probing the Service alone cannot tell "one backend failed and the Service routed around it"
//! from "the Service was down"; probing every endpoint at the same time, with samples tagged by
//! endpoint, can.

use std::sync::Arc;
use std::time::Instant;

use http::Uri;
use tokio_util::sync::CancellationToken;

use super::{HttpProbe, HttpProbeConfig, HttpProbeError, RunStats, Transport};
use crate::probe::SampleSink;

/// One backend to probe directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The name samples carry as their backend, e.g. the pod name.
    pub name: Arc<str>,
    /// The URL that reaches this backend alone, e.g. `http://10.0.3.7:8080/healthz`.
    pub uri: Uri,
}

impl HttpProbe {
    /// A probe of one endpoint: `config` with its URL replaced by the endpoint's, every sample
    /// naming the endpoint as its backend.
    ///
    /// # Errors
    /// [`HttpProbeError`] for a rate, cap, timeout or URL that cannot work.
    pub fn for_endpoint(
        config: &HttpProbeConfig,
        endpoint: &Endpoint,
        transport: Arc<dyn Transport>,
    ) -> Result<Self, HttpProbeError> {
        let mut config = config.clone();
        config.request.uri = endpoint.uri.clone();
        HttpProbe::build(config, transport, Some(endpoint.name.clone()))
    }
}

/// Probes every endpoint with `config` (its URL replaced by the endpoint's) at the configured
/// rate each, until `cancel` fires or the duration passes. Every sample's backend is the
/// endpoint's name. Each endpoint has its own pacer thread, so keep the list to the backends of
/// one workload.
///
/// # Errors
/// [`HttpProbeError`] from the first endpoint whose probe cannot be built or started.
pub async fn run_per_endpoint(
    config: &HttpProbeConfig,
    endpoints: &[Endpoint],
    transport: Arc<dyn Transport>,
    origin: Instant,
    cancel: CancellationToken,
    sink: Arc<dyn SampleSink>,
) -> Result<Vec<RunStats>, HttpProbeError> {
    let probes = endpoints
        .iter()
        .map(|endpoint| HttpProbe::for_endpoint(config, endpoint, transport.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let runs = probes
        .iter()
        .map(|probe| probe.run(origin, cancel.clone(), sink.clone()));
    futures::future::join_all(runs).await.into_iter().collect()
}

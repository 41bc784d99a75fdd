//! A probe transport through the API server's service proxy.
//!
//! From a laptop or a CI runner, a Service's cluster IP and DNS name are out of reach; the API
//! server's `services/proxy` subresource is not. Requests go through the kube client, so they
//! carry whatever the kubeconfig authenticates with (client certificates, tokens, and the exec
//! plugins EKS and GKE use), which a plain HTTP client could not reproduce.
//!
//! The proxy adds a hop: latency includes the API server, and every probe request is an API
//! request. Keep proxy probes at modest rates, and measure latency targets from inside the cluster.

use futures::future::BoxFuture;
use http::Request;
use http::header::HOST;
use kube::client::Body;

use crate::probe::http::{ProbeRequest, ProbeResponse, Transport, TransportError, read_limited};

/// Bytes of body kept for expectations, as the direct transport keeps.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Sends probe requests to `/api/v1/namespaces/{ns}/services/{scheme}:{name}:{port}/proxy/...`
/// with the kube client's connection and credentials.
///
/// The client must not carry the run's API rate limiter: probe traffic would spend the budget
/// that protects the API server from the faults, and a throttled probe measures the throttle.
pub struct ServiceProxyTransport {
    client: kube::Client,
    server: String,
}

impl ServiceProxyTransport {
    /// A transport over `client`, whose API server answers at `server` (scheme and authority,
    /// used to tell in error messages where requests went).
    pub fn new(client: kube::Client, server: impl Into<String>) -> Self {
        Self {
            client,
            server: server.into(),
        }
    }

    async fn exchange(&self, request: &ProbeRequest) -> Result<ProbeResponse, TransportError> {
        // The kube client adds the cluster URL itself; it wants the path alone.
        let path = request
            .uri
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str);
        let mut builder = Request::builder().method(request.method.clone()).uri(path);
        for (name, value) in &request.headers {
            if name != HOST {
                builder = builder.header(name, value);
            }
        }
        let outgoing = builder
            .body(Body::from(request.body.clone()))
            .map_err(|e| TransportError::InvalidRequest(e.to_string()))?;
        let response = self
            .client
            .send(outgoing)
            .await
            .map_err(|e| self.classify(e))?;
        let (parts, body) = response.into_parts();
        let (body, truncated) = read_limited(body, MAX_BODY_BYTES).await?;
        Ok(ProbeResponse {
            status: parts.status,
            headers: parts.headers,
            body,
            truncated,
        })
    }

    fn classify(&self, error: kube::Error) -> TransportError {
        match error {
            kube::Error::HyperError(e) => TransportError::Protocol(Box::new(e)),
            other => TransportError::Connect {
                authority: self.server.clone(),
                source: Box::new(other),
            },
        }
    }
}

impl Transport for ServiceProxyTransport {
    fn send<'a>(
        &'a self,
        request: &'a ProbeRequest,
    ) -> BoxFuture<'a, Result<ProbeResponse, TransportError>> {
        Box::pin(self.exchange(request))
    }
}

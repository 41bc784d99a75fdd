//! The direct transport: hyper's HTTP/1 client connection over TCP, optionally TLS.
//!
//! The connection pool is ours, not hyper-util's, because the probe must control how
//! connections are used: kube-proxy balances per *connection*, so keep-alive reuse measures one
//! backend for a long time while a fresh connection per request spreads over all of them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::header::{CONTENT_LENGTH, HOST};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::Full;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;

use super::tls::{self, TlsError, TlsOptions};
use super::transport::{ProbeRequest, ProbeResponse, Transport, TransportError, read_limited};

/// Default bound on establishing one connection (TCP plus TLS handshake).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default bound on how much of a body is kept for expectations.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Default bound on idle keep-alive connections per target.
pub const DEFAULT_MAX_IDLE_PER_TARGET: usize = 256;

/// Whether requests share connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConnectionMode {
    /// Reuse idle connections (HTTP keep-alive), as most clients do.
    #[default]
    KeepAlive,
    /// Open a fresh connection for every request, so connection-level balancing (kube-proxy,
    /// NLBs) spreads the probe over all backends.
    NewConnectionPerRequest,
}

/// Settings of the direct transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectTransportConfig {
    /// Certificate verification for `https` targets.
    pub tls: TlsOptions,
    /// Connection reuse.
    pub connection: ConnectionMode,
    /// Bound on establishing one connection.
    pub connect_timeout: Duration,
    /// Bytes of body kept for expectations; the rest is read and discarded.
    pub max_body_bytes: usize,
    /// Idle keep-alive connections kept per target; more are closed.
    pub max_idle_per_target: usize,
}

impl Default for DirectTransportConfig {
    fn default() -> Self {
        DirectTransportConfig {
            tls: TlsOptions::default(),
            connection: ConnectionMode::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_idle_per_target: DEFAULT_MAX_IDLE_PER_TARGET,
        }
    }
}

/// Sends probe requests straight to their URL.
///
/// Connection tasks are owned by the transport and aborted when it is dropped.
pub struct DirectTransport {
    config: DirectTransportConfig,
    tls: OnceLock<Result<TlsConnector, Arc<TlsError>>>,
    idle: Mutex<HashMap<PoolKey, Vec<SendRequest<Full<Bytes>>>>>,
    connections: Mutex<JoinSet<()>>,
    opened: AtomicU64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    https: bool,
    authority: Authority,
}

/// Where one request goes, taken apart once.
struct Target {
    key: PoolKey,
    host: String,
    port: u16,
    path: PathAndQuery,
}

impl DirectTransport {
    /// A transport with `config`.
    ///
    /// # Errors
    /// [`TlsError`] when a configured CA file is unusable. Without explicit TLS options the
    /// system roots are loaded on the first `https` request instead, so plain-HTTP probes work
    /// where no trust store is installed.
    pub fn new(config: DirectTransportConfig) -> Result<Self, TlsError> {
        let tls = OnceLock::new();
        if config.tls != TlsOptions::default() {
            let connector = TlsConnector::from(tls::client_config(&config.tls)?);
            let _ = tls.set(Ok(connector));
        }
        Ok(DirectTransport {
            config,
            tls,
            idle: Mutex::new(HashMap::new()),
            connections: Mutex::new(JoinSet::new()),
            opened: AtomicU64::new(0),
        })
    }

    /// Connections opened so far; with [`ConnectionMode::NewConnectionPerRequest`] one per
    /// request (plus none reused).
    pub fn connections_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    async fn exchange(&self, request: &ProbeRequest) -> Result<ProbeResponse, TransportError> {
        let target = Target::of(&request.uri)?;
        let (mut sender, reused) = match self.checkout(&target.key).await {
            Some(sender) => (sender, true),
            None => (self.open(&target).await?, false),
        };
        let response = match sender.send_request(build(request, &target)?).await {
            Ok(response) => response,
            // A pooled connection the server closed while it sat idle: the request never
            // reached a handler, so one retry on a fresh connection is what any client does.
            Err(error) if reused && retryable(&error, &request.method) => {
                sender = self.open(&target).await?;
                sender
                    .send_request(build(request, &target)?)
                    .await
                    .map_err(|error| classify(error, &target))?
            }
            Err(error) => return Err(classify(error, &target)),
        };
        let keep = response_allows_reuse(&response);
        let (parts, body) = response.into_parts();
        let (body, truncated) = read_limited(body, self.config.max_body_bytes).await?;
        if keep && self.config.connection == ConnectionMode::KeepAlive {
            self.checkin(target.key, sender);
        }
        Ok(ProbeResponse {
            status: parts.status,
            headers: parts.headers,
            body,
            truncated,
        })
    }

    async fn checkout(&self, key: &PoolKey) -> Option<SendRequest<Full<Bytes>>> {
        if self.config.connection == ConnectionMode::NewConnectionPerRequest {
            return None;
        }
        loop {
            let mut sender = {
                let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
                idle.get_mut(key)?.pop()?
            };
            if sender.is_closed() {
                continue;
            }
            // Right after a response the connection may need a moment to become ready again.
            if let Ok(Ok(())) =
                tokio::time::timeout(self.config.connect_timeout, sender.ready()).await
            {
                return Some(sender);
            }
        }
    }

    fn checkin(&self, key: PoolKey, sender: SendRequest<Full<Bytes>>) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let senders = idle.entry(key).or_default();
        if senders.len() < self.config.max_idle_per_target {
            senders.push(sender);
        }
    }

    async fn open(&self, target: &Target) -> Result<SendRequest<Full<Bytes>>, TransportError> {
        let authority = target.key.authority.to_string();
        let timeout = self.config.connect_timeout;
        let connect = async {
            let tcp = TcpStream::connect((target.host.as_str(), target.port))
                .await
                .map_err(|source| connect_error(&authority, source))?;
            // Probe requests are small; do not let Nagle hold them back.
            tcp.set_nodelay(true)
                .map_err(|source| connect_error(&authority, source))?;
            if target.key.https {
                let connector = self.tls_connector(&authority)?;
                let name = ServerName::try_from(target.host.clone())
                    .map_err(|source| connect_error(&authority, source))?;
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|source| connect_error(&authority, source))?;
                self.handshake(tls, &authority).await
            } else {
                self.handshake(tcp, &authority).await
            }
        };
        let sender = tokio::time::timeout(timeout, connect).await.map_err(|_| {
            TransportError::ConnectTimeout {
                authority: authority.clone(),
            }
        })??;
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(sender)
    }

    async fn handshake<T>(
        &self,
        io: T,
        authority: &str,
    ) -> Result<SendRequest<Full<Bytes>>, TransportError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = http1::handshake(TokioIo::new(io))
            .await
            .map_err(|source| connect_error(authority, source))?;
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Reap finished connections so the set stays as large as the open ones.
        while connections.try_join_next().is_some() {}
        connections.spawn(async move {
            // A connection ends when its sender is dropped or the peer closes; either way
            // the request that used it has already seen the outcome.
            let _ = connection.await;
        });
        Ok(sender)
    }

    fn tls_connector(&self, authority: &str) -> Result<TlsConnector, TransportError> {
        let connector = self.tls.get_or_init(|| {
            tls::client_config(&self.config.tls)
                .map(TlsConnector::from)
                .map_err(Arc::new)
        });
        connector.clone().map_err(|error| TransportError::Connect {
            authority: authority.to_owned(),
            source: Box::new(ArcError(error)),
        })
    }
}

impl Transport for DirectTransport {
    fn send<'a>(
        &'a self,
        request: &'a ProbeRequest,
    ) -> BoxFuture<'a, Result<ProbeResponse, TransportError>> {
        Box::pin(self.exchange(request))
    }
}

impl Target {
    fn of(uri: &Uri) -> Result<Target, TransportError> {
        let https = match uri.scheme() {
            Some(scheme) if *scheme == Scheme::HTTP => false,
            Some(scheme) if *scheme == Scheme::HTTPS => true,
            _ => {
                return Err(TransportError::InvalidRequest(format!(
                    "{uri}: the URL must start with http:// or https://"
                )));
            }
        };
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| TransportError::InvalidRequest(format!("{uri}: the URL has no host")))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        Ok(Target {
            key: PoolKey { https, authority },
            host,
            port,
            path,
        })
    }
}

/// The hyper request for one attempt: origin-form URI and a `Host` header, as HTTP/1.1 wants.
fn build(request: &ProbeRequest, target: &Target) -> Result<Request<Full<Bytes>>, TransportError> {
    let mut built = Request::builder()
        .method(request.method.clone())
        .uri(target.path.clone())
        .body(Full::new(request.body.clone()))
        .map_err(|error| TransportError::InvalidRequest(error.to_string()))?;
    let headers = built.headers_mut();
    headers.extend(request.headers.clone());
    if !headers.contains_key(HOST) {
        let host = HeaderValue::from_str(target.key.authority.as_str())
            .map_err(|error| TransportError::InvalidRequest(error.to_string()))?;
        headers.insert(HOST, host);
    }
    if !request.body.is_empty() && !headers.contains_key(CONTENT_LENGTH) {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(request.body.len()));
    }
    Ok(built)
}

fn response_allows_reuse<B>(response: &http::Response<B>) -> bool {
    !response
        .headers()
        .get_all(http::header::CONNECTION)
        .iter()
        .any(|value| value.as_bytes().eq_ignore_ascii_case(b"close"))
}

/// True when a failure on a reused connection means the request was not processed: it was
/// never written, or (for methods safe to repeat) the server closed before answering.
fn retryable(error: &hyper::Error, method: &Method) -> bool {
    error.is_canceled()
        || (error.is_incomplete_message()
            && (method.is_safe() || method == Method::PUT || method == Method::DELETE))
}

/// Errors before a response head count as connect failures (refused, reset); bad HTTP as
/// protocol failures.
fn classify(error: hyper::Error, target: &Target) -> TransportError {
    if error.is_parse() || error.is_parse_status() || error.is_parse_too_large() || error.is_user()
    {
        TransportError::Protocol(Box::new(error))
    } else {
        connect_error(target.key.authority.as_str(), error)
    }
}

fn connect_error(
    authority: &str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> TransportError {
    TransportError::Connect {
        authority: authority.to_owned(),
        source: Box::new(source),
    }
}

/// Lets a shared TLS setup error travel as a boxed source.
#[derive(Debug)]
struct ArcError(Arc<TlsError>);

impl std::fmt::Display for ArcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ArcError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(uri: &str) -> Result<Target, TransportError> {
        Target::of(&uri.parse().unwrap())
    }

    #[test]
    fn target_defaults_port_and_path() {
        let plain = target("http://example.test").unwrap();
        assert_eq!((plain.port, plain.path.as_str()), (80, "/"));
        let tls = target("https://example.test/healthz?x=1").unwrap();
        assert_eq!(
            (tls.port, tls.path.as_str(), tls.key.https),
            (443, "/healthz?x=1", true)
        );
        let v6 = target("http://[::1]:8080/").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 8080));
    }

    #[test]
    fn target_rejects_other_schemes() {
        assert!(matches!(
            target("ftp://example.test/"),
            Err(TransportError::InvalidRequest(_))
        ));
        assert!(matches!(
            target("/relative"),
            Err(TransportError::InvalidRequest(_))
        ));
    }

    #[test]
    fn request_carries_host_and_length() {
        let request = ProbeRequest {
            method: Method::POST,
            uri: "http://127.0.0.1:9/echo".parse().unwrap(),
            headers: http::HeaderMap::new(),
            body: Bytes::from_static(b"ping"),
        };
        let built = build(&request, &Target::of(&request.uri).unwrap()).unwrap();
        assert_eq!(built.uri(), "/echo");
        assert_eq!(built.headers()[HOST], "127.0.0.1:9");
        assert_eq!(built.headers()[CONTENT_LENGTH], "4");
    }
}

//! A Service's data path, modelled on kube-proxy: each client **connection** is sent to one
//! ready endpoint, picked at random (iptables mode) or in turn (IPVS), and stays there;
//! requests on it are counted by pod and status code. When the backend closes the connection (it is shutting down), the client
//! connection is closed too, so the client reconnects and lands on another endpoint.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info_span};

use super::cluster::{ServicePeers, Shared};

/// Time allowed to open a connection to a backend.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A running load balancer; dropping it stops the listener and its connections.
pub(crate) struct LoadBalancer {
    /// Address clients connect to.
    pub addr: SocketAddr,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LoadBalancer {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.task.abort();
    }
}

impl LoadBalancer {
    /// Binds a loopback port for Service `ns/name`.
    pub fn start(shared: Arc<Shared>, ns: String, name: String) -> std::io::Result<Self> {
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        std_listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std_listener)?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let span = info_span!("service_lb", namespace = %ns, service = %name);
        let task =
            tokio::spawn(accept_loop(listener, shared, ns, name, cancel.clone()).instrument(span));
        Ok(Self { addr, cancel, task })
    }
}

/// A load balancer's connection to a backend, known to the backends while it is open.
struct ServicePeer {
    peers: ServicePeers,
    local: SocketAddr,
}

impl ServicePeer {
    fn register(peers: &ServicePeers, local: SocketAddr) -> Self {
        peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(local);
        Self {
            peers: peers.clone(),
            local,
        }
    }
}

impl Drop for ServicePeer {
    fn drop(&mut self) {
        self.peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.local);
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    ns: String,
    name: String,
    cancel: CancellationToken,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                shared.lb_metrics.connections.fetch_add(1, Ordering::Relaxed);
                let Some(pick) = shared.pick_endpoint(&ns, &name) else {
                    // kube-proxy rejects connections to a Service without endpoints.
                    shared.lb_metrics.no_endpoint.fetch_add(1, Ordering::Relaxed);
                    drop(client);
                    continue;
                };
                conns.spawn(proxy_connection(client, pick.addr, pick.pod, shared.clone(), ns.clone(), name.clone(), cancel.clone()));
            }
        }
    }
    conns.abort_all();
}

async fn proxy_connection(
    client: TcpStream,
    backend: SocketAddr,
    pod: String,
    shared: Arc<Shared>,
    ns: String,
    svc: String,
    cancel: CancellationToken,
) {
    let Ok(Ok(stream)) = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(backend)).await
    else {
        debug!(%backend, "backend connection failed; closing client connection");
        return;
    };
    let _peer = stream
        .local_addr()
        .ok()
        .map(|local| ServicePeer::register(&shared.service_peers, local));
    let Ok((sender, backend_conn)) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        return;
    };
    let sender = Arc::new(Mutex::new(sender));
    let svc_fn = service_fn(move |req: Request<Incoming>| {
        let sender = sender.clone();
        let shared = shared.clone();
        let (ns, svc, pod) = (ns.clone(), svc.clone(), pod.clone());
        async move {
            let mut s = sender.lock().await;
            let result = match s.ready().await {
                Ok(()) => s.send_request(req).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(resp) => {
                    shared
                        .lb_metrics
                        .count(&ns, &svc, &pod, resp.status().as_u16());
                    Ok::<_, std::convert::Infallible>(resp.map(http_body_util::Either::Left))
                }
                Err(e) => {
                    debug!(error = %e, "backend request failed");
                    shared.lb_metrics.count(&ns, &svc, &pod, 502);
                    let mut resp =
                        Response::new(http_body_util::Either::Right(http_body_util::Full::new(
                            bytes::Bytes::from_static(b"upstream connection error\n"),
                        )));
                    *resp.status_mut() = http::StatusCode::BAD_GATEWAY;
                    resp.headers_mut().insert(
                        http::header::CONNECTION,
                        http::HeaderValue::from_static("close"),
                    );
                    Ok(resp)
                }
            }
        }
    });
    let client_conn = http1::Builder::new().serve_connection(TokioIo::new(client), svc_fn);
    tokio::pin!(client_conn);
    tokio::pin!(backend_conn);
    let mut backend_open = true;
    loop {
        tokio::select! {
            _ = client_conn.as_mut() => break,
            _ = backend_conn.as_mut(), if backend_open => {
                backend_open = false;
                client_conn.as_mut().graceful_shutdown();
            }
            _ = cancel.cancelled() => break,
        }
    }
}

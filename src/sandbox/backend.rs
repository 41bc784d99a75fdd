//! The "container" of a sandbox pod: a real HTTP server on its own loopback port.
//!
//! It names its pod, node and zone in response headers so clients see where traffic lands,
//! applies the Deployment's latency and error rate on each request, and exposes `/metrics`.
//! Termination follows the kubelet: after the pre-stop delay it stops accepting, lets in-flight
//! requests finish (idle keep-alive connections close), and is killed when the grace period ends.
//! While its machine is powered off (a stopped instance) nothing listens on its port, so
//! connections are refused, and open ones are closed; it listens on the same port again when
//! the machine has booted.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info_span, warn};

use super::cluster::{BehaviourCell, ServicePeers, Shared, Upstream};
use super::netem::{Lane, NetworkCell, Verdict};

/// The call a backend makes to another Service's pod on each request (the topology's
/// `backend.upstream`).
#[derive(Debug, Clone)]
pub(crate) struct UpstreamCall {
    /// What to call, and on which requests.
    pub upstream: Upstream,
    /// Where its ready endpoints are published.
    pub shared: std::sync::Weak<Shared>,
}

/// How long an upstream call may take before the caller gives up and answers 502 (a client
/// timeout, as an application would set).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a backend runs, as reported in its headers and metrics.
#[derive(Debug, Clone)]
pub(crate) struct BackendIdentity {
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Node name.
    pub node: String,
    /// Zone of the node.
    pub zone: String,
}

struct Counters {
    by_code: Mutex<BTreeMap<u16, u64>>,
}

struct Ctx {
    id: BackendIdentity,
    behaviour: BehaviourCell,
    partitioned: Arc<AtomicBool>,
    powered_off: PowerCell,
    network: NetworkCell,
    upstream: Option<UpstreamCall>,
    /// Tells exchanges routed by a Service from direct ones (see [`Lane`]).
    service_peers: ServicePeers,
    port: u16,
    counters: Counters,
}

/// A machine's power state, shared by its backends: `true` while powered off. A watch channel
/// so that idle backends wake only when it changes.
pub(crate) type PowerCell = Arc<tokio::sync::watch::Sender<bool>>;

/// How long a backend waits before trying its port again when it cannot rebind it.
const REBIND_RETRY: Duration = Duration::from_millis(100);
/// Attempts to rebind before the backend gives up (its pod then refuses connections for good).
const REBIND_ATTEMPTS: u32 = 50;

/// A running backend; dropping it kills the server.
pub(crate) struct Backend {
    /// Address the backend listens on.
    pub addr: SocketAddr,
    drain: CancellationToken,
    kill: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill.cancel();
        self.task.abort();
    }
}

impl Backend {
    /// Binds a loopback port and starts serving.
    pub fn start(
        id: BackendIdentity,
        behaviour: BehaviourCell,
        partitioned: Arc<AtomicBool>,
        powered_off: PowerCell,
        network: NetworkCell,
        upstream: Option<UpstreamCall>,
        service_peers: ServicePeers,
    ) -> std::io::Result<Self> {
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        std_listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std_listener)?;
        let addr = listener.local_addr()?;
        let drain = CancellationToken::new();
        let kill = CancellationToken::new();
        let span = info_span!("backend", pod = %id.pod, node = %id.node);
        let ctx = Arc::new(Ctx {
            id,
            behaviour,
            partitioned,
            powered_off,
            network,
            upstream,
            service_peers,
            port: addr.port(),
            // Both codes start at zero so rates exist before the first error.
            counters: Counters {
                by_code: Mutex::new(BTreeMap::from([(200, 0), (500, 0)])),
            },
        });
        let task = tokio::spawn(serve(listener, ctx, drain.clone(), kill.clone()).instrument(span));
        Ok(Self {
            addr,
            drain,
            kill,
            task,
        })
    }

    /// Starts a graceful shutdown: stop accepting, finish in-flight requests.
    pub fn begin_shutdown(&self) {
        self.drain.cancel();
    }

    /// Whether the server has stopped.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Accepts on `listener`, or waits forever when there is none (the machine is off).
async fn accept(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Listens on `addr` again (the port the pod's endpoints name).
fn rebind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    TcpListener::from_std(std_listener)
}

async fn serve(
    listener: TcpListener,
    ctx: Arc<Ctx>,
    drain: CancellationToken,
    kill: CancellationToken,
) {
    let Ok(addr) = listener.local_addr() else {
        return;
    };
    let mut listener = Some(listener);
    let mut power = ctx.powered_off.subscribe();
    // Set when the node's runtime is gone (node removed): the power state no longer changes.
    let mut power_gone = false;
    let mut conns = JoinSet::new();
    let mut rebind_failures = 0;
    loop {
        let off = *power.borrow_and_update();
        if off && listener.is_some() {
            // Powered off: nothing listens, open connections die with the machine.
            listener = None;
            conns.abort_all();
            debug!(%addr, "machine off; port closed");
        } else if !off && listener.is_none() {
            match rebind(addr) {
                Ok(l) => {
                    listener = Some(l);
                    rebind_failures = 0;
                    debug!(%addr, "machine booted; listening again");
                }
                Err(e) => {
                    rebind_failures += 1;
                    if rebind_failures >= REBIND_ATTEMPTS {
                        warn!(%addr, error = %e, "port taken while the machine was off; backend gone");
                        return;
                    }
                    debug!(%addr, error = %e, "cannot listen again yet");
                }
            }
        }
        let retry = !off && listener.is_none();
        tokio::select! {
            _ = drain.cancelled() => break,
            _ = kill.cancelled() => return,
            changed = power.changed(), if !power_gone => power_gone = changed.is_err(),
            _ = tokio::time::sleep(REBIND_RETRY), if retry => {}
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = accept(listener.as_ref()) => {
                let Ok((stream, peer)) = accepted else { continue };
                let ctx = ctx.clone();
                let drain = drain.clone();
                conns.spawn(async move {
                    // A partition drops packets: the connection waits, as TCP retransmits would.
                    while ctx.partitioned.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    let svc_ctx = ctx.clone();
                    let svc = service_fn(move |req| handle(req, svc_ctx.clone(), peer));
                    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
                    tokio::pin!(conn);
                    tokio::select! {
                        r = conn.as_mut() => { if let Err(e) = r { debug!(error = %e, "backend connection ended"); } }
                        _ = drain.cancelled() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
            }
        }
    }
    drop(listener);
    tokio::select! {
        _ = async { while conns.join_next().await.is_some() {} } => {}
        _ = kill.cancelled() => conns.abort_all(),
    }
}

/// A request lost to the pod's network rules: the connection dies without an answer.
#[derive(Debug)]
struct Lost;

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request lost to the pod's network rules")
    }
}

impl std::error::Error for Lost {}

/// How long a blackholed request waits before looking at the rules again.
const BLACKHOLE_RECHECK: Duration = Duration::from_millis(50);

/// Waits out a blackhole (as TCP retransmits would), then the verdict's delay; `Err` when the
/// exchange is lost.
async fn cross(
    ctx: &Ctx,
    judge: impl Fn(&mut super::netem::PodNetwork) -> Verdict,
) -> Result<(), Lost> {
    let verdict = loop {
        let v = judge(&mut ctx.network.lock().unwrap_or_else(|e| e.into_inner()));
        if !v.blackholed {
            break v;
        }
        tokio::time::sleep(BLACKHOLE_RECHECK).await;
    };
    if !verdict.delay.is_zero() {
        tokio::time::sleep(verdict.delay).await;
    }
    if verdict.lost { Err(Lost) } else { Ok(()) }
}

/// Whether a request to `path` makes the upstream call: `on` itself or a path below it.
fn calls_upstream(on: &str, path: &str) -> bool {
    on == "/"
        || path == on
        || path
            .strip_prefix(on)
            .is_some_and(|rest| on.ends_with('/') || rest.starts_with('/'))
}

/// One call to a ready pod of the upstream Service, through this pod's egress rules; whether it
/// was answered with a success.
async fn call_upstream(ctx: &Ctx, up: &UpstreamCall) -> bool {
    let Some(shared) = up.shared.upgrade() else {
        return false;
    };
    let (ns, svc) = &up.upstream.service;
    let Some(dest) = shared.pick_endpoint(ns, svc).map(|e| e.addr) else {
        return false;
    };
    drop(shared);
    let call = async {
        // The request leaves through our root qdisc towards `dest`.
        cross(ctx, |n| n.judge_outbound(dest)).await.ok()?;
        let stream = tokio::net::TcpStream::connect(dest).await.ok()?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .ok()?;
        tokio::spawn(conn);
        let req = Request::get(up.upstream.path.as_str())
            .header(http::header::HOST, dest.to_string())
            .body(http_body_util::Empty::<Bytes>::new())
            .ok()?;
        let resp = sender.send_request(req).await.ok()?;
        Some(resp.status().is_success())
    };
    matches!(
        tokio::time::timeout(UPSTREAM_TIMEOUT, call).await,
        Ok(Some(true))
    )
}

async fn handle(
    req: Request<Incoming>,
    ctx: Arc<Ctx>,
    peer: SocketAddr,
) -> Result<Response<Full<Bytes>>, Lost> {
    while ctx.partitioned.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if req.uri().path() != "/metrics" {
        // The answer leaves through our root qdisc towards `peer`.
        let lane = if ctx
            .service_peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&peer)
        {
            Lane::Service
        } else {
            Lane::Direct
        };
        cross(&ctx, |n| n.judge_inbound(ctx.port, peer, lane)).await?;
    }
    if req.uri().path() == "/metrics" {
        return Ok(text_response(
            200,
            "text/plain; version=0.0.4",
            render_metrics(&ctx),
        ));
    }
    let behaviour = *ctx.behaviour.read().unwrap_or_else(|e| e.into_inner());
    if !behaviour.latency.is_zero() {
        tokio::time::sleep(behaviour.latency).await;
    }
    let upstream_ok = match &ctx.upstream {
        Some(up) if calls_upstream(&up.upstream.on, req.uri().path()) => {
            call_upstream(&ctx, up).await
        }
        _ => true,
    };
    let code: u16 = if !upstream_ok {
        502
    } else if behaviour.error_rate > 0.0 && rand::random::<f64>() < behaviour.error_rate {
        500
    } else {
        200
    };
    {
        let mut m = ctx
            .counters
            .by_code
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *m.entry(code).or_default() += 1;
    }
    let body = serde_json::json!({
        "pod": ctx.id.pod, "namespace": ctx.id.namespace, "node": ctx.id.node, "zone": ctx.id.zone,
        "path": req.uri().path(), "status": code,
    })
    .to_string();
    let mut resp = text_response(code, "application/json", body);
    let h = resp.headers_mut();
    for (name, value) in [
        ("x-steadfast-pod", &ctx.id.pod),
        ("x-steadfast-namespace", &ctx.id.namespace),
        ("x-steadfast-node", &ctx.id.node),
        ("x-steadfast-zone", &ctx.id.zone),
    ] {
        if let Ok(v) = http::HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    }
    Ok(resp)
}

fn text_response(code: u16, ct: &str, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::OK);
    if let Ok(v) = http::HeaderValue::from_str(ct) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    resp
}

fn render_metrics(ctx: &Ctx) -> String {
    let mut out = String::from(
        "# HELP steadfast_sandbox_backend_requests_total Requests answered by this backend.\n# TYPE steadfast_sandbox_backend_requests_total counter\n",
    );
    let m = ctx
        .counters
        .by_code
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    for (code, n) in m.iter() {
        out.push_str(&format!(
            "steadfast_sandbox_backend_requests_total{{namespace=\"{}\",pod=\"{}\",node=\"{}\",zone=\"{}\",code=\"{code}\"}} {n}\n",
            ctx.id.namespace, ctx.id.pod, ctx.id.node, ctx.id.zone
        ));
    }
    out
}

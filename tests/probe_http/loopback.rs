//! Loopback HTTP servers whose behaviour a test controls, and the probe helpers the HTTP probe
//! tests share: outages switched by a flag or at planned instants, slow answers, connection
//! counting, bodies for expectations, and a sink that keeps every sample.
//!
//! Each test binary uses the parts it needs, so the rest would warn as unused there.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use steadfast::measure::{Outcome, Sample};
use steadfast::probe::http::{
    ConnectionMode, DirectTransport, DirectTransportConfig, HttpProbe, HttpProbeConfig, RunStats,
};
use steadfast::probe::{SampleSink, SinkError};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Every test run is bounded; a hung probe fails the test instead of hanging CI.
pub const TEST_BOUND: Duration = Duration::from_secs(30);

/// How long a slow answer takes (`/slow`, or every path of a server set slow).
pub const SLOW: Duration = Duration::from_millis(800);

/// Header in which a server with an [`OutagePlan`] reports when each request arrived, in
/// microseconds since the plan's origin.
pub const ARRIVAL_HEADER: &str = "x-arrival-us";

// ---------------------------------------------------------------------------------------------
// Test server

/// Outages at instants fixed before the run. The server decides each answer by the instant the
/// request arrives, so the switch itself has no scheduling delay, and it stamps every answer
/// with that instant: a test can tell an attempt that was sent late from a mis-measurement.
#[derive(Debug, Clone)]
pub struct OutagePlan {
    /// What arrival stamps count from (the probe's origin).
    pub origin: Instant,
    /// `[down, up)` stretches in which every request is answered 503.
    pub outages: Vec<(Instant, Instant)>,
}

impl OutagePlan {
    /// Whether a request arriving at `at` falls in an outage.
    pub fn is_down(&self, at: Instant) -> bool {
        self.outages
            .iter()
            .any(|(down, up)| *down <= at && at < *up)
    }
}

/// What the server counts and how it behaves; shared with its connections.
#[derive(Default)]
pub struct ServerState {
    /// Answer 200 (true) or 503 (false) on `/`.
    pub available: AtomicBool,
    /// Delay every answer by [`SLOW`].
    pub slow: AtomicBool,
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Requests received.
    pub requests: AtomicU64,
    /// Planned outages; when set, answers also carry [`ARRIVAL_HEADER`].
    pub plan: OnceLock<OutagePlan>,
}

/// A server on a free loopback port; stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<ServerState>,
    pub name: &'static str,
    _task: AbortOnDrop,
}

/// Aborts a spawned task when dropped, so a failing test leaves nothing running.
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl TestServer {
    /// Starts a server that names itself `name` in the `x-backend` header.
    pub async fn start(name: &'static str) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ServerState::default());
        state.available.store(true, Ordering::SeqCst);
        let task = tokio::spawn(serve(listener, state.clone(), name));
        TestServer {
            addr,
            state,
            name,
            _task: AbortOnDrop(task),
        }
    }

    pub fn url(&self, path: &str) -> http::Uri {
        format!("http://{}{path}", self.addr).parse().unwrap()
    }

    /// Switches `/` between 200 and 503 and returns the instant of the switch.
    pub fn set_available(&self, available: bool) -> Instant {
        self.state.available.store(available, Ordering::SeqCst);
        Instant::now()
    }
}

pub async fn serve(listener: TcpListener, state: Arc<ServerState>, name: &'static str) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                state.accepted.fetch_add(1, Ordering::SeqCst);
                let state = state.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request| handle(state.clone(), name, request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn handle(
    state: Arc<ServerState>,
    name: &'static str,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let arrived = Instant::now();
    state.requests.fetch_add(1, Ordering::SeqCst);
    let plan = state.plan.get();
    let path = request.uri().path().to_owned();
    if path == "/slow" || state.slow.load(Ordering::SeqCst) {
        tokio::time::sleep(SLOW).await;
    }
    let (status, body) = if path == "/json" {
        (
            StatusCode::OK,
            r#"{"status":"ok","version":"v2","replicas":3}"#.to_owned(),
        )
    } else if let Some(code) = path.strip_prefix("/status/") {
        (
            StatusCode::from_u16(code.parse().unwrap()).unwrap(),
            String::new(),
        )
    } else if path == "/slow" {
        (StatusCode::OK, "slow but ok".to_owned())
    } else if state.available.load(Ordering::SeqCst) && !plan.is_some_and(|p| p.is_down(arrived)) {
        (StatusCode::OK, "ok".to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "down".to_owned())
    };
    let mut response = Response::builder().status(status).header("x-backend", name);
    if let Some(plan) = plan {
        let micros = arrived.saturating_duration_since(plan.origin).as_micros();
        response = response.header(ARRIVAL_HEADER, micros.to_string());
    }
    Ok(response.body(Full::new(Bytes::from(body))).unwrap())
}

// ---------------------------------------------------------------------------------------------
// Probe helpers

/// Keeps every sample, for checks the measurement store does not answer.
#[derive(Default)]
pub struct Collect(pub Mutex<Vec<Sample>>);

impl SampleSink for Collect {
    fn record(&self, sample: Sample) -> Result<(), SinkError> {
        self.0.lock().unwrap().push(sample);
        Ok(())
    }
}

impl Collect {
    /// The samples in intended order.
    pub fn sorted(&self) -> Vec<Sample> {
        let mut samples = self.0.lock().unwrap().clone();
        samples.sort_by_key(|sample| sample.intended);
        samples
    }
}

pub fn transport(connection: ConnectionMode) -> Arc<DirectTransport> {
    Arc::new(
        DirectTransport::new(DirectTransportConfig {
            connection,
            ..DirectTransportConfig::default()
        })
        .unwrap(),
    )
}

pub fn config(uri: http::Uri, rate: f64, duration: Duration) -> HttpProbeConfig {
    HttpProbeConfig {
        duration: Some(duration),
        ..HttpProbeConfig::get(uri, rate)
    }
}

/// Runs a probe to its end (bounded by [`TEST_BOUND`]) and returns its stats and samples.
pub async fn run(config: HttpProbeConfig, connection: ConnectionMode) -> (RunStats, Vec<Sample>) {
    let probe = HttpProbe::new(config, transport(connection)).unwrap();
    let sink = Arc::new(Collect::default());
    let stats = tokio::time::timeout(
        TEST_BOUND,
        probe.run(Instant::now(), CancellationToken::new(), sink.clone()),
    )
    .await
    .expect("probe run exceeded the test bound")
    .unwrap();
    (stats, sink.sorted())
}

pub fn count(samples: &[Sample], outcome: Outcome) -> usize {
    samples
        .iter()
        .filter(|sample| sample.outcome == outcome)
        .count()
}

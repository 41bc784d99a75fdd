//! The HTTP probe: one request at a constant open-model rate, judged against expectations.
//!
//! Attempt *i* is due at `origin + i / rate` and its latency counts from that instant, whether
//! the previous attempts have answered or not (no coordinated omission, like wrk2 or k6's
//! constant-arrival-rate). A cap on attempts in flight keeps a dead service from piling up
//! connections; a start that finds the cap reached is recorded as
//! [`FailureKind::Dropped`](crate::measure::FailureKind::Dropped), never silently skipped.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use steadfast::probe::http::{DirectTransport, DirectTransportConfig, HttpProbe, HttpProbeConfig};
//!
//! let config = HttpProbeConfig::get("http://127.0.0.1:8080/healthz".parse()?, 200.0);
//! let transport = Arc::new(DirectTransport::new(DirectTransportConfig::default())?);
//! let probe = HttpProbe::new(config, transport)?;
//! let (sink, mut samples) = tokio::sync::mpsc::channel(10_000);
//! let cancel = tokio_util::sync::CancellationToken::new();
//! let stats = probe.run(Instant::now(), cancel, Arc::new(sink)).await?;
//! # Ok(()) }
//! ```

mod direct;
mod endpoints;
mod expect;
mod schedule;
mod tls;
mod transport;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http::{HeaderMap, HeaderName, Method, Uri};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::measure::{FailureKind, Outcome, Sample};
use crate::probe::SampleSink;

pub use direct::{
    ConnectionMode, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_IDLE_PER_TARGET,
    DirectTransport, DirectTransportConfig,
};
pub use endpoints::{Endpoint, run_per_endpoint};
pub use expect::{BodyExpectation, Expectations, StatusExpectation};
pub use schedule::Schedule;
pub use tls::{TlsError, TlsOptions, client_config};
pub use transport::{
    BoxError, ProbeRequest, ProbeResponse, Transport, TransportError, read_limited,
};

/// Default bound on attempts in flight.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1_000;
/// Default per-attempt timeout, counted from the intended start.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// The highest rate the probe accepts; beyond it the probe would measure itself.
pub const MAX_RATE_PER_SECOND: f64 = 100_000.0;

/// A resolved HTTP probe: what to send, how often, and what counts as success.
#[derive(Debug, Clone)]
pub struct HttpProbeConfig {
    /// The request sent on every attempt.
    pub request: ProbeRequest,
    /// Attempts started per second.
    pub rate_per_second: f64,
    /// Attempts in flight at most; a start beyond it is recorded as dropped.
    pub max_in_flight: usize,
    /// Bound on one attempt, counted from its intended start.
    pub timeout: Duration,
    /// What counts as success.
    pub expect: Expectations,
    /// Response header that names the backend (e.g. `x-backend`), copied into
    /// [`Sample::backend`].
    pub backend_header: Option<HeaderName>,
    /// Stop after this long; `None` runs until cancelled.
    pub duration: Option<Duration>,
}

impl HttpProbeConfig {
    /// A `GET` of `uri` at `rate_per_second` with every other setting at its default.
    pub fn get(uri: Uri, rate_per_second: f64) -> Self {
        HttpProbeConfig {
            request: ProbeRequest {
                method: Method::GET,
                uri,
                headers: HeaderMap::new(),
                body: bytes::Bytes::new(),
            },
            rate_per_second,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            timeout: DEFAULT_TIMEOUT,
            expect: Expectations::default(),
            backend_header: None,
            duration: None,
        }
    }
}

/// Why a probe cannot run.
#[derive(Debug, thiserror::Error)]
pub enum HttpProbeError {
    /// The rate is not a positive number up to [`MAX_RATE_PER_SECOND`].
    #[error(
        "probe rate {0}/s is out of range\nhint: use a rate above 0 and at most 100000 per second"
    )]
    InvalidRate(f64),
    /// `max_in_flight` is zero: every start would be dropped.
    #[error("probe concurrency cap is 0\nhint: allow at least one request in flight")]
    NoConcurrency,
    /// The timeout is zero: every attempt would time out.
    #[error("probe timeout is 0\nhint: set a timeout such as 2s")]
    NoTimeout,
    /// The URL cannot be probed.
    #[error("probe URL {uri} is not usable\nhint: give an absolute http:// or https:// URL")]
    InvalidUri {
        /// The configured URL.
        uri: Uri,
    },
    /// The pacer thread could not be started.
    #[error("cannot start the probe pacer thread")]
    Pacer(#[source] std::io::Error),
}

/// What one run did, beyond the samples it produced: enough to tell whether the probe itself
/// kept up.
#[derive(Debug, Clone)]
pub struct RunStats {
    /// Attempts due during the run (started plus dropped).
    pub scheduled: u64,
    /// Starts skipped because the concurrency cap was reached; their samples have zero latency.
    pub dropped: u64,
    /// Samples the sink refused.
    pub lost: u64,
    /// Scheduling lag in microseconds: actual start − intended start, per started attempt.
    pub lag_micros: Histogram<u64>,
}

/// A constant-rate HTTP probe.
pub struct HttpProbe {
    shared: Arc<Shared>,
    schedule: Schedule,
    duration: Option<Duration>,
}

/// What every attempt task needs.
struct Shared {
    request: ProbeRequest,
    timeout: Duration,
    expect: Expectations,
    backend_header: Option<HeaderName>,
    /// Set in per-endpoint mode: every sample names the endpoint it probed.
    fixed_backend: Option<Arc<str>>,
    max_in_flight: usize,
    transport: Arc<dyn Transport>,
}

/// What one run collects besides samples; fresh per run, so a probe can run once per phase.
struct RunState {
    sink: Arc<dyn SampleSink>,
    lag: Mutex<Histogram<u64>>,
    lost: AtomicU64,
}

impl HttpProbe {
    /// A probe of `config` sending through `transport`.
    ///
    /// # Errors
    /// [`HttpProbeError`] for a rate, cap, timeout or URL that cannot work.
    pub fn new(
        config: HttpProbeConfig,
        transport: Arc<dyn Transport>,
    ) -> Result<Self, HttpProbeError> {
        Self::build(config, transport, None)
    }

    fn build(
        config: HttpProbeConfig,
        transport: Arc<dyn Transport>,
        fixed_backend: Option<Arc<str>>,
    ) -> Result<Self, HttpProbeError> {
        let schedule = Schedule::new(config.rate_per_second)
            .filter(|_| config.rate_per_second <= MAX_RATE_PER_SECOND)
            .ok_or(HttpProbeError::InvalidRate(config.rate_per_second))?;
        if config.max_in_flight == 0 {
            return Err(HttpProbeError::NoConcurrency);
        }
        if config.timeout.is_zero() {
            return Err(HttpProbeError::NoTimeout);
        }
        let uri = &config.request.uri;
        let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
        if !scheme_ok || uri.host().is_none() {
            return Err(HttpProbeError::InvalidUri { uri: uri.clone() });
        }
        Ok(HttpProbe {
            shared: Arc::new(Shared {
                request: config.request,
                timeout: config.timeout,
                expect: config.expect,
                backend_header: config.backend_header,
                fixed_backend,
                max_in_flight: config.max_in_flight,
                transport,
            }),
            schedule,
            duration: config.duration,
        })
    }

    /// The probe's schedule.
    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// Probes until `cancel` fires or the configured duration has passed, handing every attempt
    /// to `sink`. Attempts are due at `origin + i / rate`, starting with the first slot at or
    /// after now; samples carry their offset from `origin`.
    ///
    /// When it stops, no new attempt starts; attempts in flight finish within their timeout
    /// and are recorded. Dropping the future aborts them instead.
    ///
    /// # Errors
    /// [`HttpProbeError::Pacer`] when the pacer thread cannot start.
    pub async fn run(
        &self,
        origin: Instant,
        cancel: CancellationToken,
        sink: Arc<dyn SampleSink>,
    ) -> Result<RunStats, HttpProbeError> {
        let end = self.duration.map(|duration| Instant::now() + duration);
        // One microsecond to one hour at three significant digits: constant, valid bounds.
        let lag = Histogram::new_with_bounds(1, 3_600_000_000, 3)
            .expect("constant histogram bounds are valid");
        let state = Arc::new(RunState {
            sink,
            lag: Mutex::new(lag),
            lost: AtomicU64::new(0),
        });
        let pacer_cancel = cancel.child_token();
        let (pacer, mut ticks) =
            schedule::Pacer::start(self.schedule, origin, end, pacer_cancel.clone())
                .map_err(HttpProbeError::Pacer)?;
        let permits = Arc::new(Semaphore::new(self.shared.max_in_flight));
        let mut in_flight = JoinSet::new();
        let mut scheduled = 0_u64;
        let mut dropped = 0_u64;
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                tick = ticks.recv() => {
                    let Some(tick) = tick else { break };
                    scheduled += 1;
                    match permits.clone().try_acquire_owned() {
                        Ok(permit) => {
                            in_flight.spawn(attempt(self.shared.clone(), tick, permit, state.clone()));
                        }
                        Err(_) => {
                            dropped += 1;
                            state.record(Sample {
                                intended: tick.offset,
                                latency: Duration::ZERO,
                                outcome: Outcome::Failure(FailureKind::Dropped),
                                backend: self.shared.fixed_backend.clone(),
                            });
                        }
                    }
                }
                Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => report_panic(joined),
            }
        }
        pacer_cancel.cancel();
        drop(ticks);
        pacer.stop().await;
        // Every attempt ends by its own timeout; the margin covers recording.
        let drain = async {
            while let Some(joined) = in_flight.join_next().await {
                report_panic(joined);
            }
        };
        if tokio::time::timeout(self.shared.timeout + Duration::from_secs(1), drain)
            .await
            .is_err()
        {
            in_flight.abort_all();
        }
        let lag_micros = state
            .lag
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Ok(RunStats {
            scheduled,
            dropped,
            lost: state.lost.load(Ordering::Relaxed),
            lag_micros,
        })
    }
}

impl RunState {
    fn record(&self, sample: Sample) {
        if self.sink.record(sample).is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn record_lag(&self, lag: Duration) {
        let micros = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX).max(1);
        let mut histogram = self.lag.lock().unwrap_or_else(PoisonError::into_inner);
        histogram.saturating_record(micros);
    }
}

impl Shared {
    fn backend(&self, headers: &HeaderMap) -> Option<Arc<str>> {
        if let Some(fixed) = &self.fixed_backend {
            return Some(fixed.clone());
        }
        let name = self.backend_header.as_ref()?;
        let value = headers.get(name)?.to_str().ok()?;
        Some(Arc::from(value))
    }
}

/// One attempt, from its intended start to its recorded sample.
async fn attempt(
    shared: Arc<Shared>,
    tick: schedule::Tick,
    _permit: OwnedSemaphorePermit,
    state: Arc<RunState>,
) {
    state.record_lag(Instant::now().saturating_duration_since(tick.intended));
    let deadline = tokio::time::Instant::from_std(tick.intended + shared.timeout);
    let result = tokio::time::timeout_at(deadline, shared.transport.send(&shared.request)).await;
    let latency = Instant::now().saturating_duration_since(tick.intended);
    let (outcome, backend) = match result {
        Err(_elapsed) => (
            Outcome::Failure(FailureKind::Timeout),
            shared.fixed_backend.clone(),
        ),
        Ok(Err(error)) => {
            tracing::trace!(error = %error, "probe attempt failed");
            (
                Outcome::Failure(error.failure_kind()),
                shared.fixed_backend.clone(),
            )
        }
        Ok(Ok(response)) => (
            shared.expect.check(&response, latency),
            shared.backend(&response.headers),
        ),
    };
    state.record(Sample {
        intended: tick.offset,
        latency,
        outcome,
        backend,
    });
}

fn report_panic(joined: Result<(), tokio::task::JoinError>) {
    if let Err(error) = joined
        && error.is_panic()
    {
        tracing::error!(error = %error, "probe attempt panicked");
    }
}

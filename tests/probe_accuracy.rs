//! How exactly the HTTP probe and the measurement store see what loopback backends really did:
//! outages of 0.5 s, 2 s and 5 s and the availability they cost, the shares of three backends
//! behind a 1:2:3 weighted balancer, and a slow backend's mark on the latency percentiles.
//!
//! The truth comes from the servers, not from the probe: outages are planned at fixed instants
//! and decided by each request's arrival, the balancer counts the connections it routes. Where
//! a loaded machine sends an attempt late across an outage edge, the server's arrival stamp
//! shows it, so such a run is told apart from a mis-measurement and repeated (at most
//! [`ATTEMPTS`] times); a run in which every attempt went out on time must be accurate.

#[path = "probe_http/balancer.rs"]
mod balancer;
#[path = "probe_http/loopback.rs"]
mod loopback;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use balancer::Balancer;
use http::HeaderName;
use loopback::{
    ARRIVAL_HEADER, Collect, OutagePlan, SLOW, TEST_BOUND, TestServer, config, transport,
};
use steadfast::measure::{FailureKind, MeasurementStore, Outcome, Sample, StoreConfig, TimeWindow};
use steadfast::probe::http::{ConnectionMode, HttpProbe, HttpProbeConfig, RunStats};
use steadfast::probe::{SampleSink, SinkError};
use tokio_util::sync::CancellationToken;

/// Probe rate of the outage runs, as the issue fixes it.
const RATE: f64 = 200.0;
/// One probe interval at [`RATE`].
const INTERVAL: Duration = Duration::from_millis(5);
/// Allowed error of a measured outage: one probe interval + 5 ms.
const OUTAGE_TOLERANCE: Duration = Duration::from_millis(10);
/// Allowed error of the measured availability: 0.1 percentage point.
const AVAILABILITY_TOLERANCE: f64 = 0.001;
/// Outages as (start, length) in ms after the origin: 0.5 s, 2 s and 5 s, a second apart.
const OUTAGES_MS: [(u64, u64); 3] = [(1_000, 500), (2_500, 2_000), (5_500, 5_000)];
/// Length of an outage run: the last outage ends at 10.5 s.
const OUTAGE_RUN: Duration = Duration::from_millis(11_500);
/// How far before a probe slot each outage edge lies.
const EDGE_LEAD: Duration = Duration::from_micros(500);
/// Runs tried before a loaded machine's late attempts count as a failure.
const ATTEMPTS: usize = 4;

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// Feeds a measurement store, as the engine does, and keeps every raw sample beside it.
struct Measured {
    store: Mutex<MeasurementStore>,
    raw: Collect,
    /// Whether the store is told the backend (not when the header carries arrival stamps).
    backends: bool,
}

impl Measured {
    fn new(backends: bool) -> Arc<Self> {
        Arc::new(Measured {
            store: Mutex::new(MeasurementStore::new(StoreConfig::default()).unwrap()),
            raw: Collect::default(),
            backends,
        })
    }
}

impl SampleSink for Measured {
    fn record(&self, sample: Sample) -> Result<(), SinkError> {
        let mut stored = sample.clone();
        if !self.backends {
            stored.backend = None;
        }
        self.store
            .lock()
            .unwrap()
            .record(&stored)
            .map_err(|_| SinkError::Full)?;
        self.raw.record(sample)
    }
}

async fn run_into(
    config: HttpProbeConfig,
    connection: ConnectionMode,
    origin: Instant,
    sink: Arc<Measured>,
) -> RunStats {
    let probe = HttpProbe::new(config, transport(connection)).unwrap();
    tokio::time::timeout(
        TEST_BOUND,
        probe.run(origin, CancellationToken::new(), sink),
    )
    .await
    .expect("probe run exceeded the test bound")
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Outages and availability

/// One outage: the truth and what the store measured.
#[derive(Debug)]
struct OutageResult {
    truth: Duration,
    measured: Duration,
    error: Duration,
}

/// What one outage run showed.
#[derive(Debug)]
struct OutageRun {
    outages: Vec<OutageResult>,
    true_availability: f64,
    measured_availability: f64,
    attempts: usize,
    /// Attempts sent so late (or lost) that they crossed an outage edge: (due, arrival lag).
    late: Vec<(Duration, Option<Duration>)>,
    lag_p99: Duration,
}

impl OutageRun {
    fn accurate(&self) -> bool {
        self.outages.iter().all(|o| o.error <= OUTAGE_TOLERANCE)
            && (self.measured_availability - self.true_availability).abs() <= AVAILABILITY_TOLERANCE
    }

    fn print(&self, attempt: usize) {
        for o in &self.outages {
            eprintln!(
                "run {attempt}: true outage {:>7.1} ms, measured {:>7.1} ms, error {:>4.1} ms (tolerance {} ms)",
                o.truth.as_secs_f64() * 1e3,
                o.measured.as_secs_f64() * 1e3,
                o.error.as_secs_f64() * 1e3,
                OUTAGE_TOLERANCE.as_millis()
            );
        }
        eprintln!(
            "run {attempt}: availability true {:.4} %, measured {:.4} %, error {:.4} pp over {} attempts; \
             probe start lag p99 {} µs; {} attempts crossed an edge late",
            self.true_availability * 100.0,
            self.measured_availability * 100.0,
            (self.measured_availability - self.true_availability).abs() * 100.0,
            self.attempts,
            self.lag_p99.as_micros(),
            self.late.len()
        );
    }
}

/// Probes a server with the three planned outages at 200/s and compares the store with them.
///
/// Each edge lies [`EDGE_LEAD`] before a probe slot. Only an attempt due *before* an edge can
/// be misjudged, by being sent so late that it arrives after it; this gives it the most slack.
async fn outage_run() -> OutageRun {
    let server = TestServer::start("b1").await;
    // Slot 0 lies ahead, so the schedule starts there and the plan can refer to it.
    let origin = Instant::now() + ms(100);
    let truth: Vec<(Duration, Duration)> = OUTAGES_MS
        .iter()
        .map(|(start, length)| (ms(*start) - EDGE_LEAD, ms(start + length) - EDGE_LEAD))
        .collect();
    let plan = OutagePlan {
        origin,
        outages: truth
            .iter()
            .map(|(down, up)| (origin + *down, origin + *up))
            .collect(),
    };
    assert!(server.state.plan.set(plan).is_ok());
    let mut probe = config(server.url("/"), RATE, OUTAGE_RUN);
    probe.backend_header = Some(HeaderName::from_static(ARRIVAL_HEADER));
    let sink = Measured::new(false);
    let stats = run_into(probe, ConnectionMode::KeepAlive, origin, sink.clone()).await;
    let samples = sink.raw.sorted();
    let store = sink.store.lock().unwrap();

    // Every slot of the schedule from the first was attempted once, and only those. (A stalled
    // machine may start the pacer past slot 0; the first outage is far enough away.)
    assert_eq!(samples.len() as u64, stats.scheduled);
    assert_eq!(stats.lost, 0);
    let first = samples[0].intended;
    assert!(first < ms(500), "the probe started {first:?} late");
    for (k, sample) in samples.iter().enumerate() {
        assert_eq!(
            sample.intended,
            first + INTERVAL * k as u32,
            "slot {k}: {sample:?}"
        );
    }
    let down_at = |offset: Duration| truth.iter().any(|(d, u)| *d <= offset && offset < *u);

    // Attempts whose outcome the truth at their due instant does not predict: each must have
    // crossed an edge late, by the server's own stamp; anything else is a probe error.
    let mut late = Vec::new();
    for sample in &samples {
        if sample.outcome.is_success() != down_at(sample.intended) {
            continue;
        }
        let arrival = sample
            .backend
            .as_deref()
            .and_then(|stamp| stamp.parse::<u64>().ok())
            .map(Duration::from_micros);
        match arrival {
            Some(at) if down_at(at) != sample.outcome.is_success() => {
                late.push((sample.intended, Some(at.saturating_sub(sample.intended))));
            }
            None if matches!(
                sample.outcome,
                Outcome::Failure(FailureKind::Timeout | FailureKind::Dropped)
            ) =>
            {
                late.push((sample.intended, None));
            }
            _ => panic!(
                "attempt due at {:?} is {:?}, which neither its due instant nor its arrival \
                 ({arrival:?}) explains: {sample:?}",
                sample.intended, sample.outcome
            ),
        }
    }

    let outages = truth
        .iter()
        .map(|(down, up)| {
            let around = TimeWindow::new(down.saturating_sub(ms(250)), *up + ms(250));
            let outage = store
                .longest_outage(around)
                .unwrap_or_else(|| panic!("no outage measured around {down:?}..{up:?}"));
            assert!(outage.recovered && !outage.clipped, "{outage:?}");
            let truth = *up - *down;
            OutageResult {
                truth,
                measured: outage.length,
                error: outage.length.abs_diff(truth),
            }
        })
        .collect();
    let stats_all = store.window(store.covered());
    assert_eq!(stats_all.attempts, samples.len() as u64);
    let due_in_outage = samples.iter().filter(|s| down_at(s.intended)).count();
    OutageRun {
        outages,
        true_availability: 1.0 - due_in_outage as f64 / samples.len() as f64,
        measured_availability: stats_all.availability.unwrap(),
        attempts: samples.len(),
        late,
        lag_p99: Duration::from_micros(stats.lag_micros.value_at_quantile(0.99)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_and_availability_are_measured_within_the_issue_tolerances() {
    for attempt in 1..=ATTEMPTS {
        let run = outage_run().await;
        run.print(attempt);
        if run.accurate() {
            return;
        }
        assert!(
            !run.late.is_empty(),
            "every attempt went out on time, yet the measurement is off: {run:#?}"
        );
        eprintln!(
            "run {attempt}: late attempts at the edges (due, lag): {:?}; running again",
            run.late
        );
    }
    panic!("in {ATTEMPTS} runs the machine never sent the edge attempts on time; see above");
}

// ---------------------------------------------------------------------------------------------
// Load balance and latency behind a loopback balancer

/// Three named backends behind a balancer with `weights`.
async fn balanced(weights: [i64; 3]) -> ([TestServer; 3], Balancer) {
    let servers = [
        TestServer::start("b1").await,
        TestServer::start("b2").await,
        TestServer::start("b3").await,
    ];
    let balancer =
        Balancer::start(servers.iter().map(|s| s.addr).collect(), weights.to_vec()).await;
    (servers, balancer)
}

/// A probe through the balancer: a new connection per request, so each is balanced anew.
async fn probe_balancer(balancer: &Balancer, rate: f64, length: Duration) -> Arc<Measured> {
    let mut probe = config(balancer.url(), rate, length);
    probe.backend_header = Some(HeaderName::from_static("x-backend"));
    let sink = Measured::new(true);
    let stats = run_into(
        probe,
        ConnectionMode::NewConnectionPerRequest,
        Instant::now(),
        sink.clone(),
    )
    .await;
    assert_eq!(stats.lost, 0);
    sink
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_shares_are_measured_within_two_points_of_the_truth() {
    let (servers, balancer) = balanced([1, 2, 3]).await;
    let sink = probe_balancer(&balancer, 200.0, ms(3_000)).await;
    let store = sink.store.lock().unwrap();
    let stats = store.window(store.covered());
    let shares = store.backend_shares(store.covered());
    assert!(stats.attempts >= 590, "{stats:?}");
    assert!(
        stats.availability.unwrap() >= 0.99,
        "the balancer path failed: {stats:?}"
    );
    assert_eq!(shares.attributed_successes, stats.successes);
    assert_eq!(shares.unattributed_successes, 0);
    let routed = balancer.routed();
    let routed_total: u64 = routed.iter().sum();
    // One connection per attempt; one that failed to connect may not have been routed.
    assert!(
        (stats.successes..=stats.attempts).contains(&routed_total),
        "{routed_total} routed for {stats:?}"
    );
    assert_eq!(shares.backends.len(), 3, "{shares:?}");
    for (i, (server, weight)) in servers.iter().zip([1.0, 2.0, 3.0]).enumerate() {
        let measured = &shares.backends[i];
        assert_eq!(measured.backend, server.name);
        let routed_share = routed[i] as f64 / routed_total as f64;
        let weight_share = weight / 6.0;
        eprintln!(
            "{}: weight share {:.2} %, routed {:.2} % ({} connections), measured {:.2} % ({} responses)",
            server.name,
            weight_share * 100.0,
            routed_share * 100.0,
            routed[i],
            measured.share * 100.0,
            measured.successes
        );
        for (what, truth) in [("routed", routed_share), ("weighted", weight_share)] {
            let off = (measured.share - truth).abs() * 100.0;
            assert!(
                off <= 2.0,
                "{}: measured {:.2} % is {off:.2} pp from the {what} share {:.2} %",
                server.name,
                measured.share * 100.0,
                truth * 100.0
            );
        }
        assert!(
            measured.successes <= server.state.requests.load(Ordering::SeqCst),
            "{}: more responses attributed to it than it answered",
            server.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_slowed_to_800_ms_shows_in_p99_but_not_in_p50() {
    let (servers, balancer) = balanced([1, 1, 1]).await;
    servers[2].state.slow.store(true, Ordering::SeqCst);
    let sink = probe_balancer(&balancer, 100.0, ms(3_000)).await;
    let store = sink.store.lock().unwrap();
    let stats = store.window(store.covered());
    assert_eq!(
        stats.successes, stats.attempts,
        "every attempt answered: {stats:?}"
    );
    let latency = stats.latency.expect("latencies were recorded");
    eprintln!(
        "one of three backends at {} ms: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} answers",
        SLOW.as_millis(),
        latency.p50.as_secs_f64() * 1e3,
        latency.p90.as_secs_f64() * 1e3,
        latency.p99.as_secs_f64() * 1e3,
        latency.max.as_secs_f64() * 1e3,
        latency.count
    );
    // A third of the answers are slow: above the median, below the 99th percentile. (A p99
    // far beyond the delay would be something else; a loaded machine adds a few hundred ms.)
    assert!(latency.p99 >= SLOW, "{latency:?}");
    assert!(latency.p99 < SLOW * 2, "{latency:?}");
    assert!(latency.p50 < ms(100), "{latency:?}");
    // Each slow answer counts from its intended start, so none looks faster than the delay.
    for sample in sink.raw.sorted() {
        if sample.backend.as_deref() == Some(servers[2].name) {
            assert!(sample.latency >= SLOW, "{sample:?}");
        } else {
            assert!(sample.latency < SLOW, "{sample:?}");
        }
    }
}

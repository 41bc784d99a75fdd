//! The HTTP probe against a loopback server whose behaviour the test controls: outages at known
//! instants, slow answers, connection counting, and bodies for expectations.

#[path = "probe_http/loopback.rs"]
mod loopback;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use loopback::{
    AbortOnDrop, Collect, ServerState, TEST_BOUND, TestServer, config, count, run, serve, transport,
};
use steadfast::measure::{FailureKind, Outcome, Sample};
use steadfast::probe::http::{
    BodyExpectation, ConnectionMode, DirectTransport, DirectTransportConfig, Endpoint,
    Expectations, HttpProbe, HttpProbeConfig, StatusExpectation, run_per_endpoint,
};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

#[path = "support/tools.rs"]
#[allow(dead_code)]
mod tools;

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_gap_matches_the_true_outage_within_one_interval() {
    let server = TestServer::start("b1").await;
    let rate = 200.0;
    let interval = Duration::from_millis(5);
    let probe = HttpProbe::new(
        config(server.url("/"), rate, Duration::from_millis(3_000)),
        transport(ConnectionMode::KeepAlive),
    )
    .unwrap();
    let sink = Arc::new(Collect::default());
    let origin = Instant::now();
    let run = probe.run(origin, CancellationToken::new(), sink.clone());
    let switch = async {
        tokio::time::sleep_until((origin + Duration::from_millis(1_000)).into()).await;
        let down = server.set_available(false);
        tokio::time::sleep_until((origin + Duration::from_millis(2_000)).into()).await;
        let up = server.set_available(true);
        (down, up)
    };
    let (stats, (down, up)) = tokio::time::timeout(TEST_BOUND, async { tokio::join!(run, switch) })
        .await
        .unwrap();
    let stats = stats.unwrap();
    let samples = sink.sorted();
    assert_eq!(samples.len() as u64, stats.scheduled);
    assert!(
        stats.scheduled >= 590,
        "only {} attempts in 3 s at 200/s",
        stats.scheduled
    );
    assert_eq!(stats.dropped, 0);

    assert_gap_matches(
        &samples,
        origin,
        (down, up),
        interval,
        &[FailureKind::Status],
    );
}

/// The gap between the last success before the outage and the first after it, from the
/// samples' intended times, is the true outage within one probe interval + 5 ms; everything
/// inside the gap failed (as one of `kinds`) and nothing outside it did.
fn assert_gap_matches(
    samples: &[Sample],
    origin: Instant,
    (down, up): (Instant, Instant),
    interval: Duration,
    kinds: &[FailureKind],
) {
    let true_outage = up - down;
    let down_offset = down - origin;
    let last_before = samples
        .iter()
        .filter(|s| s.outcome.is_success() && s.intended < down_offset)
        .map(|s| s.intended)
        .max()
        .unwrap();
    let first_after = samples
        .iter()
        .filter(|s| s.outcome.is_success() && s.intended > last_before + interval * 2)
        .map(|s| s.intended)
        .min()
        .unwrap();
    let measured = first_after - last_before;
    let tolerance = interval + Duration::from_millis(5);
    let error = measured.abs_diff(true_outage);
    assert!(
        error <= tolerance,
        "measured gap {measured:?} vs true outage {true_outage:?} (error {error:?} > {tolerance:?})"
    );
    for sample in samples {
        let inside = sample.intended > last_before && sample.intended < first_after;
        if inside {
            assert!(
                kinds
                    .iter()
                    .any(|kind| sample.outcome == Outcome::Failure(*kind)),
                "{sample:?}"
            );
        } else {
            assert!(sample.outcome.is_success(), "{sample:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_outage_gap_matches_the_true_outage_within_one_interval() {
    // The server goes away entirely: listener closed, open connections dropped, then it comes
    // back on the same port. Pooled keep-alive connections die with it.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(ServerState::default());
    state.available.store(true, Ordering::SeqCst);
    let first = AbortOnDrop(tokio::spawn(serve(listener, state.clone(), "b1")));
    let interval = Duration::from_millis(5);
    let probe = HttpProbe::new(
        config(
            format!("http://{addr}/").parse().unwrap(),
            200.0,
            Duration::from_millis(3_000),
        ),
        transport(ConnectionMode::KeepAlive),
    )
    .unwrap();
    let sink = Arc::new(Collect::default());
    let origin = Instant::now();
    let run = probe.run(origin, CancellationToken::new(), sink.clone());
    let switch = async {
        tokio::time::sleep_until((origin + Duration::from_millis(1_000)).into()).await;
        drop(first);
        let down = Instant::now();
        tokio::time::sleep_until((origin + Duration::from_millis(2_000)).into()).await;
        let listener = TcpListener::bind(addr).await.unwrap();
        let up = Instant::now();
        let second = AbortOnDrop(tokio::spawn(serve(listener, state.clone(), "b1")));
        (down, up, second)
    };
    let (stats, (down, up, _second)) =
        tokio::time::timeout(TEST_BOUND, async { tokio::join!(run, switch) })
            .await
            .unwrap();
    let stats = stats.unwrap();
    let samples = sink.sorted();
    assert_eq!(samples.len() as u64, stats.scheduled);
    assert!(stats.scheduled >= 590, "{}", stats.scheduled);
    assert!(
        samples
            .iter()
            .any(|s| s.outcome == Outcome::Failure(FailureKind::Connect)),
        "a refused outage shows as connect failures"
    );
    // An attempt in flight when the server vanished may also see a broken exchange.
    assert_gap_matches(
        &samples,
        origin,
        (down, up),
        interval,
        &[FailureKind::Connect, FailureKind::Protocol],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_pooled_connections_are_not_counted_as_failures() {
    // A server that closes every connection shortly after answering, without saying so: the
    // pool holds closed connections that the probe must notice or retry, not report.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let server = {
        let accepted = accepted.clone();
        AbortOnDrop(tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                while connections.try_join_next().is_some() {}
                connections.spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buffer = [0_u8; 4096];
                    let _ = stream.read(&mut buffer).await;
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                });
            }
        }))
    };
    let (_, samples) = run(
        config(
            format!("http://{addr}/").parse().unwrap(),
            20.0,
            Duration::from_millis(1_000),
        ),
        ConnectionMode::KeepAlive,
    )
    .await;
    assert!(samples.len() >= 19, "{}", samples.len());
    assert_eq!(
        count(&samples, Outcome::Success),
        samples.len(),
        "{samples:?}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), samples.len() as u64);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_backend_latency_counts_from_the_intended_start() {
    let server = TestServer::start("b1").await;
    let (stats, samples) = run(
        config(server.url("/slow"), 20.0, Duration::from_millis(1_000)),
        ConnectionMode::KeepAlive,
    )
    .await;
    assert!(stats.scheduled >= 19, "{}", stats.scheduled);
    assert_eq!(count(&samples, Outcome::Success), samples.len());
    for sample in &samples {
        assert!(sample.latency >= Duration::from_millis(800), "{sample:?}");
        assert!(sample.latency < Duration::from_millis(1_500), "{sample:?}");
    }
    // Open model: starts follow the schedule (every 50 ms), not the 800 ms answers.
    for pair in samples.windows(2) {
        assert_eq!(
            pair[1].intended - pair[0].intended,
            Duration::from_millis(50)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_cap_records_dropped_starts() {
    let server = TestServer::start("b1").await;
    let mut config = config(server.url("/slow"), 50.0, Duration::from_millis(1_000));
    config.max_in_flight = 5;
    let (stats, samples) = run(config, ConnectionMode::KeepAlive).await;
    let dropped = count(&samples, Outcome::Failure(FailureKind::Dropped));
    assert_eq!(dropped as u64, stats.dropped);
    assert_eq!(samples.len() as u64, stats.scheduled);
    // 50/s of 800 ms answers needs 40 in flight; with 5 allowed, most starts are dropped.
    assert!(dropped >= 30, "dropped {dropped} of {}", samples.len());
    let succeeded = count(&samples, Outcome::Success);
    assert!((5..=10).contains(&succeeded), "{succeeded} succeeded");
    assert!(
        server.state.requests.load(Ordering::SeqCst) <= 10,
        "dropped starts must not reach the server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_connection_per_request_opens_one_connection_each() {
    let server = TestServer::start("b1").await;
    let (_, samples) = run(
        config(server.url("/"), 50.0, Duration::from_millis(600)),
        ConnectionMode::NewConnectionPerRequest,
    )
    .await;
    assert!(samples.len() >= 25, "{}", samples.len());
    assert_eq!(count(&samples, Outcome::Success), samples.len());
    assert_eq!(
        server.state.accepted.load(Ordering::SeqCst),
        samples.len() as u64,
        "one accepted connection per request"
    );

    let keep_alive = TestServer::start("b2").await;
    let (_, samples) = run(
        config(keep_alive.url("/"), 50.0, Duration::from_millis(600)),
        ConnectionMode::KeepAlive,
    )
    .await;
    assert_eq!(count(&samples, Outcome::Success), samples.len());
    let accepted = keep_alive.state.accepted.load(Ordering::SeqCst);
    assert!(
        accepted <= 3,
        "keep-alive opened {accepted} connections for {} requests",
        samples.len()
    );
}

async fn outcomes_with(server: &TestServer, path: &str, expect: Expectations) -> Vec<Outcome> {
    let mut config = config(server.url(path), 20.0, Duration::from_millis(250));
    config.expect = expect;
    config.backend_header = Some(HeaderName::from_static("x-backend"));
    let (_, samples) = run(config, ConnectionMode::KeepAlive).await;
    assert!(samples.len() >= 4, "{}", samples.len());
    for sample in &samples {
        assert_eq!(sample.backend.as_deref(), Some(server.name));
    }
    samples.into_iter().map(|sample| sample.outcome).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expectations_pass_and_fail_as_configured() {
    let server = TestServer::start("b1").await;
    let only = |outcomes: Vec<Outcome>, expected: Outcome| {
        assert!(
            outcomes.iter().all(|o| *o == expected),
            "{outcomes:?} != {expected:?}"
        );
    };

    let teapot_range = Expectations {
        status: StatusExpectation {
            codes: vec![],
            ranges: vec![400..=499],
        },
        ..Expectations::default()
    };
    only(
        outcomes_with(&server, "/status/418", teapot_range.clone()).await,
        Outcome::Success,
    );
    only(
        outcomes_with(&server, "/status/503", teapot_range).await,
        Outcome::Failure(FailureKind::Status),
    );
    only(
        outcomes_with(&server, "/status/418", Expectations::default()).await,
        Outcome::Failure(FailureKind::Status),
    );

    let json = |replicas: u64| Expectations {
        body: vec![
            BodyExpectation::matches(r#""version":"v\d+""#).unwrap(),
            BodyExpectation::JsonPointerEquals {
                pointer: "/replicas".into(),
                value: serde_json::json!(replicas),
            },
        ],
        ..Expectations::default()
    };
    only(
        outcomes_with(&server, "/json", json(3)).await,
        Outcome::Success,
    );
    only(
        outcomes_with(&server, "/json", json(4)).await,
        Outcome::Failure(FailureKind::Body),
    );
    let regex_miss = Expectations {
        body: vec![BodyExpectation::matches(r#""version":"v9""#).unwrap()],
        ..Expectations::default()
    };
    only(
        outcomes_with(&server, "/json", regex_miss).await,
        Outcome::Failure(FailureKind::Body),
    );

    let fast = Expectations {
        max_latency: Some(Duration::from_millis(100)),
        ..Expectations::default()
    };
    only(
        outcomes_with(&server, "/slow", fast).await,
        Outcome::Failure(FailureKind::Latency),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_and_refused_connections_are_told_apart() {
    let server = TestServer::start("b1").await;
    let mut slow = config(server.url("/slow"), 20.0, Duration::from_millis(300));
    slow.timeout = Duration::from_millis(200);
    let (_, samples) = run(slow, ConnectionMode::KeepAlive).await;
    assert!(!samples.is_empty());
    for sample in &samples {
        assert_eq!(sample.outcome, Outcome::Failure(FailureKind::Timeout));
        assert!(sample.latency >= Duration::from_millis(200), "{sample:?}");
        assert!(sample.latency < Duration::from_millis(600), "{sample:?}");
    }

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let refused: http::Uri = format!("http://{closed}/").parse().unwrap();
    let (_, samples) = run(
        config(refused, 20.0, Duration::from_millis(300)),
        ConnectionMode::KeepAlive,
    )
    .await;
    assert!(!samples.is_empty());
    assert_eq!(
        count(&samples, Outcome::Failure(FailureKind::Connect)),
        samples.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_the_probe_promptly() {
    let server = TestServer::start("b1").await;
    let probe = HttpProbe::new(
        HttpProbeConfig::get(server.url("/"), 100.0),
        transport(ConnectionMode::KeepAlive),
    )
    .unwrap();
    let sink = Arc::new(Collect::default());
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let stopper = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    };
    let (stats, ()) = tokio::time::timeout(TEST_BOUND, async {
        tokio::join!(probe.run(started, cancel.clone(), sink.clone()), stopper)
    })
    .await
    .unwrap();
    let stats = stats.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!((20..=40).contains(&stats.scheduled), "{}", stats.scheduled);
    assert_eq!(sink.sorted().len() as u64, stats.scheduled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_endpoint_probing_tags_samples_with_the_endpoint() {
    let healthy = TestServer::start("pod-a").await;
    let failing = TestServer::start("pod-b").await;
    failing.set_available(false);
    let endpoints = [
        Endpoint {
            name: "pod-a".into(),
            uri: healthy.url("/"),
        },
        Endpoint {
            name: "pod-b".into(),
            uri: failing.url("/"),
        },
    ];
    let sink = Arc::new(Collect::default());
    let stats = tokio::time::timeout(
        TEST_BOUND,
        run_per_endpoint(
            &config(healthy.url("/"), 20.0, Duration::from_millis(500)),
            &endpoints,
            transport(ConnectionMode::KeepAlive),
            Instant::now(),
            CancellationToken::new(),
            sink.clone(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(stats.len(), 2);
    let samples = sink.sorted();
    let of = |name: &str| -> Vec<&Sample> {
        samples
            .iter()
            .filter(|s| s.backend.as_deref() == Some(name))
            .collect()
    };
    assert_eq!((of("pod-a").len() + of("pod-b").len()), samples.len());
    assert!(of("pod-a").len() >= 9 && of("pod-b").len() >= 9);
    assert!(of("pod-a").iter().all(|s| s.outcome.is_success()));
    assert!(
        of("pod-b")
            .iter()
            .all(|s| s.outcome == Outcome::Failure(FailureKind::Status))
    );
}

// ---------------------------------------------------------------------------------------------
// TLS

/// A CA and a leaf certificate for 127.0.0.1 made with the `openssl` CLI; `None` (after a loud
/// message, or a failure when tools are required) when it is not installed.
fn make_certificates(dir: &std::path::Path) -> Option<()> {
    let binary = tools::require_tool("openssl")?;
    let openssl = |args: &[&str]| {
        let status = std::process::Command::new(&binary)
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl {args:?} failed");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ca = [
        &[
            "req",
            "-x509",
            "-days",
            "1",
            "-subj",
            "/CN=steadfast-test-ca",
        ][..],
        &ec[..],
    ]
    .concat();
    openssl(&[&ca[..], &["-keyout", "ca.key", "-out", "ca.pem"]].concat());
    let leaf = [&["req", "-subj", "/CN=localhost"][..], &ec[..]].concat();
    openssl(&[&leaf[..], &["-keyout", "leaf.key", "-out", "leaf.csr"]].concat());
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        "leaf.pem",
        "-extfile",
        "leaf.ext",
    ]);
    Some(())
}

async fn serve_tls(listener: TcpListener, acceptor: tokio_rustls::TlsAcceptor) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        while connections.try_join_next().is_some() {}
        let acceptor = acceptor.clone();
        connections.spawn(async move {
            let Ok(stream) = acceptor.accept(stream).await else {
                return;
            };
            let service = service_fn(|_request: Request<Incoming>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"secure ok"))))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_trusts_a_ca_file_or_skips_verification_on_request() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use steadfast::probe::http::TlsOptions;

    let dir = tempfile::tempdir().unwrap();
    if make_certificates(dir.path()).is_none() {
        return;
    }
    let chain = CertificateDer::pem_file_iter(dir.path().join("leaf.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.path().join("leaf.key")).unwrap();
    let server_config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url: http::Uri = format!("https://{}/", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let server = AbortOnDrop(tokio::spawn(serve_tls(
        listener,
        tokio_rustls::TlsAcceptor::from(Arc::new(server_config)),
    )));

    let outcomes = |tls: TlsOptions| {
        let url = url.clone();
        async move {
            let transport = Arc::new(
                DirectTransport::new(DirectTransportConfig {
                    tls,
                    ..Default::default()
                })
                .unwrap(),
            );
            let probe =
                HttpProbe::new(config(url, 20.0, Duration::from_millis(250)), transport).unwrap();
            let sink = Arc::new(Collect::default());
            tokio::time::timeout(
                TEST_BOUND,
                probe.run(Instant::now(), CancellationToken::new(), sink.clone()),
            )
            .await
            .unwrap()
            .unwrap();
            let samples = sink.sorted();
            assert!(samples.len() >= 4, "{}", samples.len());
            samples.into_iter().map(|s| s.outcome).collect::<Vec<_>>()
        }
    };
    let trusted = outcomes(TlsOptions {
        ca_file: Some(dir.path().join("ca.pem")),
        insecure_skip_verify: false,
    })
    .await;
    assert!(trusted.iter().all(|o| o.is_success()), "{trusted:?}");
    let insecure = outcomes(TlsOptions {
        ca_file: None,
        insecure_skip_verify: true,
    })
    .await;
    assert!(insecure.iter().all(|o| o.is_success()), "{insecure:?}");
    // The system roots do not know the test CA: the handshake fails as a connect failure.
    let untrusted = outcomes(TlsOptions::default()).await;
    assert!(
        untrusted
            .iter()
            .all(|o| *o == Outcome::Failure(FailureKind::Connect)),
        "{untrusted:?}"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_run_reports_its_own_stats() {
    // The engine runs one probe per phase (before, during, after); counts must not carry over.
    let server = TestServer::start("b1").await;
    let mut config = config(server.url("/slow"), 20.0, Duration::from_millis(500));
    config.max_in_flight = 2;
    let probe = HttpProbe::new(config, transport(ConnectionMode::KeepAlive)).unwrap();
    let origin = Instant::now();
    for phase in 0..2 {
        let sink = Arc::new(Collect::default());
        let stats = tokio::time::timeout(
            TEST_BOUND,
            probe.run(origin, CancellationToken::new(), sink.clone()),
        )
        .await
        .unwrap()
        .unwrap();
        let samples = sink.sorted();
        assert_eq!(samples.len() as u64, stats.scheduled, "phase {phase}");
        assert!(
            (9..=11).contains(&stats.scheduled),
            "phase {phase}: {}",
            stats.scheduled
        );
        assert_eq!(
            stats.lag_micros.len(),
            stats.scheduled - stats.dropped,
            "phase {phase}"
        );
        assert!(stats.dropped >= 5, "phase {phase}: {}", stats.dropped);
        // Later phases continue the same timeline.
        if phase == 1 {
            assert!(
                samples[0].intended >= Duration::from_millis(500),
                "{:?}",
                samples[0]
            );
        }
    }
}

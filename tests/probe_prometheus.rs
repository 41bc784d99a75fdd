//! The Prometheus probe against a real Prometheus (backfilled and live-scraped data) and against
//! a fake API server that shows what the probe sends.

mod support;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use steadfast::probe::prometheus::{
    CompareOp, Comparison, EmptyResult, Evaluation, PrometheusAuth, PrometheusProbe,
    PrometheusProbeConfig, PrometheusProbeError, SeriesEvaluation,
};
use support::prometheus::{PrometheusOptions, PrometheusServer, serve_gauge};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

fn probe(url: &str, query: &str, op: CompareOp, threshold: f64) -> PrometheusProbe {
    PrometheusProbe::new(PrometheusProbeConfig {
        url: url.to_owned(),
        query: query.to_owned(),
        comparison: Comparison { op, threshold },
        on_empty: EmptyResult::Fail,
        auth: None,
        headers: HeaderMap::new(),
        timeout: Duration::from_secs(10),
    })
    .unwrap()
}

fn series<'a>(evaluation: &'a Evaluation, instance: &str) -> &'a SeriesEvaluation {
    evaluation
        .series
        .iter()
        .find(|s| s.labels.get("instance").map(String::as_str) == Some(instance))
        .unwrap_or_else(|| panic!("no series for {instance} in {evaluation:#?}"))
}

fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

/// Two series every 15 s from base−40m to base−10m: `i1` steady at 0.01, `i2` at 0.02 with a
/// spike to 0.5 from base−25m to base−20m inclusive.
fn backfill_text(base: DateTime<Utc>) -> String {
    let mut text = String::from(
        "# HELP backfill_error_ratio Errors per request.\n# TYPE backfill_error_ratio gauge\n",
    );
    let mut time = base - minutes(40);
    while time <= base - minutes(10) {
        let spike = time >= base - minutes(25) && time <= base - minutes(20);
        let i2 = if spike { 0.5 } else { 0.02 };
        let seconds = time.timestamp();
        text.push_str(&format!(
            "backfill_error_ratio{{instance=\"i1\"}} 0.01 {seconds}\nbackfill_error_ratio{{instance=\"i2\"}} {i2} {seconds}\n"
        ));
        time += TimeDelta::seconds(15);
    }
    text.push_str("# EOF\n");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instant_and_range_queries_over_backfilled_data() {
    let base = Utc::now().duration_trunc(TimeDelta::minutes(1)).unwrap();
    let options = PrometheusOptions {
        backfill_openmetrics: Some(backfill_text(base)),
        ..PrometheusOptions::default()
    };
    let Some(prometheus) = PrometheusServer::start(options).await.unwrap() else {
        return;
    };
    let url = prometheus.url.as_str();

    // The spike lies inside [base−25m, base−15m]: i2 fails, i1 passes.
    let max = probe(
        url,
        "max_over_time(backfill_error_ratio[$window])",
        CompareOp::Lt,
        0.1,
    );
    let evaluation = max
        .instant(base - minutes(15), Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(
        evaluation.query,
        "max_over_time(backfill_error_ratio[600s])"
    );
    assert_eq!(
        evaluation.series.len(),
        2,
        "{evaluation:#?}\n{}",
        prometheus.log()
    );
    assert_eq!(series(&evaluation, "i1").points[0].value, 0.01);
    assert!(series(&evaluation, "i1").passed);
    assert_eq!(series(&evaluation, "i2").points[0].value, 0.5);
    assert!(!series(&evaluation, "i2").passed);
    assert!(!evaluation.passed && !evaluation.empty);
    assert_eq!(evaluation.time, base - minutes(15));

    // After the spike, both pass.
    let evaluation = max
        .instant(base - minutes(12), Duration::from_secs(300))
        .await
        .unwrap();
    assert!(evaluation.passed, "{evaluation:#?}");
    assert_eq!(series(&evaluation, "i2").points[0].value, 0.02);

    // `$start` moves the evaluation: `@ $start` looks at [base−25m, base−20m], the spike.
    let at_start = probe(
        url,
        "max_over_time(backfill_error_ratio{instance=\"i2\"}[5m] @ $start)",
        CompareOp::Lt,
        0.1,
    );
    let evaluation = at_start
        .instant(base - minutes(12), Duration::from_secs(480))
        .await
        .unwrap();
    assert_eq!(
        evaluation.query,
        format!(
            "max_over_time(backfill_error_ratio{{instance=\"i2\"}}[5m] @ {})",
            (base - minutes(20)).timestamp()
        )
    );
    assert_eq!(evaluation.series[0].points[0].value, 0.5);
    assert!(!evaluation.passed);

    // Range: one point a minute over 30 minutes; i2 fails exactly at the six spike minutes.
    let raw = probe(url, "backfill_error_ratio", CompareOp::Lt, 0.1);
    let evaluation = raw
        .range(
            base - minutes(40),
            base - minutes(10),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let i1 = series(&evaluation, "i1");
    let i2 = series(&evaluation, "i2");
    assert_eq!(i1.points.len(), 31);
    assert!(i1.passed && i1.points.iter().all(|p| p.value == 0.01));
    let failing: Vec<DateTime<Utc>> = i2
        .points
        .iter()
        .filter(|p| !p.passed)
        .map(|p| p.time)
        .collect();
    let expected: Vec<DateTime<Utc>> = (20..=25).rev().map(|m| base - minutes(m)).collect();
    assert_eq!(failing, expected);
    assert!(!evaluation.passed);
    let json = serde_json::to_value(&evaluation).unwrap();
    assert_eq!(json["kind"], "range");
    assert_eq!(json["comparison"]["op"], "<");

    // Empty results follow the configured policy.
    let config = |on_empty| PrometheusProbeConfig {
        url: url.to_owned(),
        query: "backfill_error_ratio{instance=\"nope\"}".into(),
        comparison: Comparison {
            op: CompareOp::Lt,
            threshold: 0.1,
        },
        on_empty,
        auth: None,
        headers: HeaderMap::new(),
        timeout: Duration::from_secs(10),
    };
    let at = base - minutes(15);
    let window = Duration::from_secs(60);
    let strict = PrometheusProbe::new(config(EmptyResult::Fail)).unwrap();
    let evaluation = strict.instant(at, window).await.unwrap();
    assert!(evaluation.empty && !evaluation.passed);
    let lenient = PrometheusProbe::new(config(EmptyResult::Ignore)).unwrap();
    let evaluation = lenient.instant(at, window).await.unwrap();
    assert!(evaluation.empty && evaluation.passed);

    // Bad PromQL is an error, not a failed comparison.
    let broken = probe(url, "sum(", CompareOp::Lt, 1.0);
    assert!(matches!(
        broken.instant(at, window).await,
        Err(PrometheusProbeError::Query { .. })
    ));
}

async fn wait_for_value(probe: &PrometheusProbe, value: f64, prometheus: &PrometheusServer) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    loop {
        if let Ok(evaluation) = probe.instant(Utc::now(), Duration::from_secs(5)).await
            && evaluation
                .series
                .first()
                .is_some_and(|s| s.points[0].value == value)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "live_gauge never reached {value}\n{}",
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instant_probe_follows_live_scraped_metrics() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    let value = Arc::new(AtomicU64::new(42.0_f64.to_bits()));
    let server = tokio::spawn(serve_gauge(listener, "live_gauge", value.clone()));
    let options = PrometheusOptions {
        scrape_targets: vec![target],
        scrape_interval: Duration::from_millis(500),
        ..PrometheusOptions::default()
    };
    let Some(prometheus) = PrometheusServer::start(options).await.unwrap() else {
        server.abort();
        return;
    };
    let equals_42 = probe(&prometheus.url, "live_gauge", CompareOp::Eq, 42.0);
    wait_for_value(&equals_42, 42.0, &prometheus).await;

    // Evaluated every 300 ms during a "run" of about 1.5 s.
    let cancel = CancellationToken::new();
    let stop = async {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        cancel.cancel();
    };
    let (evaluations, ()) = tokio::join!(
        equals_42.run_instant(
            Duration::from_millis(300),
            Duration::from_secs(5),
            cancel.clone()
        ),
        stop
    );
    assert!(
        (3..=7).contains(&evaluations.len()),
        "{}",
        evaluations.len()
    );
    for evaluation in &evaluations {
        assert!(evaluation.passed, "{evaluation:#?}");
        assert_eq!(evaluation.series[0].points[0].value, 42.0);
        assert_eq!(
            evaluation.series[0].labels,
            BTreeMap::from([
                ("__name__".to_owned(), "live_gauge".to_owned()),
                ("instance".to_owned(), target.to_string()),
                ("job".to_owned(), "test".to_owned()),
            ])
        );
    }

    // The value changes; the same probe now fails, and a range query shows both values.
    let changed_at = Utc::now();
    value.store(7.0_f64.to_bits(), Ordering::SeqCst);
    wait_for_value(
        &probe(&prometheus.url, "live_gauge", CompareOp::Eq, 7.0),
        7.0,
        &prometheus,
    )
    .await;
    let evaluation = equals_42
        .instant(Utc::now(), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(!evaluation.passed);
    let evaluation = equals_42
        .range(
            changed_at - TimeDelta::seconds(5),
            Utc::now(),
            Duration::from_millis(500),
        )
        .await
        .unwrap();
    let points = &evaluation.series[0].points;
    assert!(
        points.iter().all(|p| p.value == 42.0 || p.value == 7.0),
        "{points:?}"
    );
    assert!(points.iter().any(|p| p.value == 42.0) && points.iter().any(|p| p.value == 7.0));
    assert!(points.iter().all(|p| p.passed == (p.value == 42.0)));
    assert!(!evaluation.passed);
    server.abort();
}

/// A fake Prometheus API that records the headers and query it receives.
async fn serve_fake_api(listener: TcpListener, seen: Arc<Mutex<Vec<(HeaderMap, String)>>>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        while connections.try_join_next().is_some() {}
        let seen = seen.clone();
        let service = service_fn(move |request: Request<Incoming>| {
            seen.lock().unwrap().push((
                request.headers().clone(),
                request.uri().query().unwrap_or_default().to_owned(),
            ));
            let body = r#"{"status":"success","data":{"resultType":"vector","result":[
                {"metric":{"pod":"a"},"value":[1700000000.5,"0.25"]},
                {"metric":{"pod":"b"},"value":[1700000000.5,"NaN"]}]}}"#;
            async move {
                let response = Response::builder()
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from_static(body.as_bytes())))
                    .unwrap();
                Ok::<_, Infallible>(response)
            }
        });
        connections.spawn(
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service),
        );
    }
}

#[tokio::test]
async fn sends_credentials_headers_and_evaluation_time() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = tokio::spawn(serve_fake_api(listener, seen.clone()));
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("x-scope-orgid"),
        HeaderValue::from_static("team-a"),
    );
    let config = |auth| PrometheusProbeConfig {
        url: url.clone(),
        query: "error_ratio[$window]".into(),
        comparison: Comparison {
            op: CompareOp::Le,
            threshold: 0.5,
        },
        on_empty: EmptyResult::Fail,
        auth: Some(auth),
        headers: headers.clone(),
        timeout: Duration::from_secs(5),
    };
    let at = DateTime::from_timestamp_millis(1_700_000_000_500).unwrap();

    let basic = PrometheusProbe::new(config(PrometheusAuth::Basic {
        username: "user".into(),
        password: "pass".into(),
    }))
    .unwrap();
    let evaluation = basic.instant(at, Duration::from_secs(90)).await.unwrap();
    // NaN fails `<=`; the other series passes.
    assert!(!evaluation.passed);
    assert_eq!(evaluation.series.len(), 2);
    let by_pod = |pod: &str| {
        evaluation
            .series
            .iter()
            .find(|s| s.labels["pod"] == pod)
            .unwrap()
            .clone()
    };
    assert!(by_pod("a").passed && by_pod("a").points[0].value == 0.25);
    assert!(!by_pod("b").passed && by_pod("b").points[0].value.is_nan());
    assert_eq!(by_pod("a").points[0].time, at);

    let bearer = PrometheusProbe::new(config(PrometheusAuth::Bearer("s3cret".into()))).unwrap();
    bearer.instant(at, Duration::from_secs(90)).await.unwrap();

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].0["authorization"], "Basic dXNlcjpwYXNz");
    assert_eq!(seen[1].0["authorization"], "Bearer s3cret");
    for (headers, query) in &seen {
        assert_eq!(headers["x-scope-orgid"], "team-a");
        assert!(query.contains("query=error_ratio%5B90s%5D"), "{query}");
        assert!(query.contains("time=1700000000.500"), "{query}");
    }
    server.abort();
}

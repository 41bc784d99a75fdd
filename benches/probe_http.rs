//! Benchmark of the HTTP probe against a loopback server in a child process.
//!
//! 1. Sustained rate (default 1,000/s for 60 s): scheduling lag (actual − intended start) p50/p99
//!    and the probe process's CPU use. Goals: p99 ≤ 1 ms, ≤ 10 % of one core.
//! 2. Raw ceiling at N connections (default 16) for 10 s, compared with `oha` at the same N in
//!    the same run when `oha` is on PATH. Goal: ≥ 0.5 of oha.
//!
//! `cargo bench --bench probe_http`; tune with `BENCH_RATE`, `BENCH_SECS`, `BENCH_CONNECTIONS`,
//! `BENCH_CEILING_SECS`. The server runs in a child process so the CPU figure is the probe's.

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use steadfast::measure::Sample;
use steadfast::probe::http::{DirectTransport, DirectTransportConfig, HttpProbe, HttpProbeConfig};
use steadfast::probe::{SampleSink, SinkError};

const SERVER_ENV: &str = "STEADFAST_BENCH_SERVER";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    if std::env::var_os(SERVER_ENV).is_some() {
        return serve();
    }
    let rate: f64 = env_or("BENCH_RATE", 1_000.0);
    let seconds: u64 = env_or("BENCH_SECS", 60);
    let connections: usize = env_or("BENCH_CONNECTIONS", 16);
    let ceiling_seconds: u64 = env_or("BENCH_CEILING_SECS", 10);

    let mut server = Command::new(std::env::current_exe()?)
        .env(SERVER_ENV, "1")
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(
        server
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?,
    )
    .read_line(&mut line)?;
    let url = format!("http://{}/", line.trim());

    let result = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(async {
            sustained(&url, rate, Duration::from_secs(seconds)).await?;
            ceiling(&url, connections, Duration::from_secs(ceiling_seconds)).await
        });
    let _ = server.kill();
    let _ = server.wait();
    result
}

/// Counts samples without keeping them.
#[derive(Default)]
struct Count {
    total: AtomicU64,
    success: AtomicU64,
    latency_micros: std::sync::Mutex<Vec<u64>>,
}

impl SampleSink for Count {
    fn record(&self, sample: Sample) -> Result<(), SinkError> {
        self.total.fetch_add(1, Ordering::Relaxed);
        if sample.outcome.is_success() {
            self.success.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut latencies) = self.latency_micros.lock()
            && latencies.len() < 1_000_000
        {
            latencies.push(sample.latency.as_micros() as u64);
        }
        Ok(())
    }
}

/// CPU seconds (user + system) of this process so far, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let clock_ticks_per_second = 100.0;
    (ticks(11) + ticks(12)) / clock_ticks_per_second
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn sustained(url: &str, rate: f64, duration: Duration) -> anyhow::Result<()> {
    let mut config = HttpProbeConfig::get(url.parse()?, rate);
    config.duration = Some(duration);
    let transport = Arc::new(DirectTransport::new(DirectTransportConfig::default())?);
    let probe = HttpProbe::new(config, transport)?;
    let sink = Arc::new(Count::default());
    let cpu_before = cpu_seconds();
    let wall = Instant::now();
    let stats = probe
        .run(
            Instant::now(),
            tokio_util::sync::CancellationToken::new(),
            sink.clone(),
        )
        .await?;
    let wall = wall.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let mut latencies = sink
        .latency_micros
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    latencies.sort_unstable();
    let lag = &stats.lag_micros;
    println!(
        "== sustained: {rate}/s for {:.0} s, keep-alive ==",
        duration.as_secs_f64()
    );
    println!(
        "attempts {} (success {}, dropped {}, lost {})",
        stats.scheduled,
        sink.success.load(Ordering::Relaxed),
        stats.dropped,
        stats.lost
    );
    println!(
        "scheduling lag: p50 {} µs, p99 {} µs, p99.9 {} µs, max {} µs   (goal p99 <= 1000 µs)",
        lag.value_at_quantile(0.5),
        lag.value_at_quantile(0.99),
        lag.value_at_quantile(0.999),
        lag.max()
    );
    println!(
        "latency from intended start: p50 {} µs, p99 {} µs",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    println!(
        "CPU: {cpu:.2} s over {wall:.1} s = {:.1} % of one core   (goal <= 10 %)",
        100.0 * cpu / wall
    );
    Ok(())
}

async fn ceiling(url: &str, connections: usize, duration: Duration) -> anyhow::Result<()> {
    println!(
        "== ceiling at {connections} connections, {} s each ==",
        duration.as_secs()
    );
    let oha_rps = oha(url, connections, duration);
    match oha_rps {
        Some(rps) => println!("oha:             {rps:.0} requests/s"),
        None => {
            println!("oha:             not found on PATH (cargo install oha); ratio not measured")
        }
    }
    // Offered a little above what oha reached (or far above capacity without oha): the cap of N
    // in flight is then the limit, and successes per second are the probe's ceiling at N
    // connections. Offering much more would only spend CPU on recording dropped starts.
    let offered = oha_rps.map_or(50_000.0, |rps| (rps * 1.2).min(100_000.0));
    let mut config = HttpProbeConfig::get(url.parse()?, offered);
    config.duration = Some(duration);
    config.max_in_flight = connections;
    let transport = Arc::new(DirectTransport::new(DirectTransportConfig::default())?);
    let probe = HttpProbe::new(config, transport)?;
    let sink = Arc::new(Count::default());
    let wall = Instant::now();
    let stats = probe
        .run(
            Instant::now(),
            tokio_util::sync::CancellationToken::new(),
            sink.clone(),
        )
        .await?;
    let probe_rps = sink.success.load(Ordering::Relaxed) as f64 / wall.elapsed().as_secs_f64();
    println!(
        "steadfast probe: {probe_rps:.0} successful requests/s (offered {offered:.0}/s, {} dropped at the cap)",
        stats.dropped
    );
    if let Some(oha_rps) = oha_rps {
        println!(
            "ratio probe/oha: {:.2}   (goal >= 0.5)",
            probe_rps / oha_rps
        );
    }
    Ok(())
}

/// Runs `oha` at `connections` for `duration` and returns its requests per second.
fn oha(url: &str, connections: usize, duration: Duration) -> Option<f64> {
    let output = Command::new("oha")
        .args(["--no-tui", "--output-format", "json", "-c"])
        .arg(connections.to_string())
        .arg("-z")
        .arg(format!("{}s", duration.as_secs()))
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    json["summary"]["requestsPerSec"].as_f64()
}

/// The loopback server, in the child process: prints its address, answers `ok` until killed.
fn serve() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("{}", listener.local_addr()?);
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            while connections.try_join_next().is_some() {}
            connections.spawn(async move {
                let service = service_fn(|_request| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

//! A real Prometheus for tests: a temp data dir, a generated config, a free loopback port, and
//! optional backfilled data, with the process killed on drop.
//!
//! ```ignore
//! let Some(prometheus) = PrometheusServer::start(PrometheusOptions::default()).await? else {
//!     return; // not installed; `start` already said so loudly
//! };
//! ```

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// How long Prometheus may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `promtool` may take to backfill.
const BACKFILL_TIMEOUT: Duration = Duration::from_secs(120);

/// What the test Prometheus should hold.
#[derive(Debug, Clone)]
pub struct PrometheusOptions {
    /// `host:port` targets scraped at `/metrics`.
    pub scrape_targets: Vec<SocketAddr>,
    /// Scrape (and evaluation) interval.
    pub scrape_interval: Duration,
    /// OpenMetrics text (ending with `# EOF`) turned into TSDB blocks before start.
    pub backfill_openmetrics: Option<String>,
    /// A rule file (YAML) to load, e.g. alerting rules, evaluated every `scrape_interval`.
    pub rules: Option<String>,
}

impl Default for PrometheusOptions {
    fn default() -> Self {
        PrometheusOptions {
            scrape_targets: Vec::new(),
            scrape_interval: Duration::from_secs(1),
            backfill_openmetrics: None,
            rules: None,
        }
    }
}

/// A running Prometheus; killed when dropped.
pub struct PrometheusServer {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    child: Child,
    dir: tempfile::TempDir,
}

/// The `prometheus` binary: `$PROMETHEUS_BIN`, `/usr/bin/prometheus`, or on `PATH`.
pub fn prometheus_binary() -> Option<PathBuf> {
    binary("PROMETHEUS_BIN", "prometheus")
}

/// The `promtool` binary: `$PROMTOOL_BIN`, `/usr/bin/promtool`, or on `PATH`.
pub fn promtool_binary() -> Option<PathBuf> {
    binary("PROMTOOL_BIN", "promtool")
}

fn binary(variable: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable).map(PathBuf::from) {
        return path.is_file().then_some(path);
    }
    let default = Path::new("/usr/bin").join(name);
    if default.is_file() {
        return Some(default);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

impl PrometheusServer {
    /// Starts Prometheus with `options` and waits until `/-/ready` answers.
    ///
    /// Returns `Ok(None)` after a loud message on stderr when Prometheus is not installed, so a
    /// test can return (it panics instead when tools are required, see `support::tools`);
    /// every other problem is an error.
    pub async fn start(options: PrometheusOptions) -> anyhow::Result<Option<PrometheusServer>> {
        let Some(prometheus) = super::tools::require("prometheus", prometheus_binary()) else {
            return Ok(None);
        };
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data)?;
        if let Some(text) = &options.backfill_openmetrics {
            backfill(text, dir.path(), &data).await?;
        }
        let rules = match &options.rules {
            Some(text) => {
                let path = dir.path().join("rules.yml");
                std::fs::write(&path, text)?;
                Some(path)
            }
            None => None,
        };
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, config_yaml(&options, rules.as_deref()))?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
        let child = Command::new(&prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", prometheus.display()))?;
        let mut server = PrometheusServer {
            url: format!("http://127.0.0.1:{port}"),
            child,
            dir,
        };
        server.wait_ready().await?;
        Ok(Some(server))
    }

    /// The server's log so far, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let ready = format!("{}/-/ready", self.url);
        let client = prometheus_http_query::Client::try_from(self.url.as_str())?;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("prometheus exited with {status}:\n{}", self.log());
            }
            let answer =
                tokio::time::timeout(Duration::from_secs(2), client.inner().get(&ready).send())
                    .await;
            if let Ok(Ok(response)) = answer
                && response.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "prometheus not ready within {READY_TIMEOUT:?}:\n{}",
            self.log()
        )
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn backfill(text: &str, dir: &Path, data: &Path) -> anyhow::Result<()> {
    let promtool = promtool_binary().context("promtool not found next to prometheus")?;
    let input = dir.join("backfill.om");
    std::fs::write(&input, text)?;
    let output = tokio::time::timeout(
        BACKFILL_TIMEOUT,
        Command::new(&promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&input)
            .arg(data)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("promtool backfill timed out")??;
    if !output.status.success() {
        bail!(
            "promtool backfill failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

fn config_yaml(options: &PrometheusOptions, rules: Option<&Path>) -> String {
    let interval = format!("{}ms", options.scrape_interval.as_millis().max(1));
    let mut yaml =
        format!("global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\n");
    if let Some(rules) = rules {
        yaml.push_str(&format!("rule_files: ['{}']\n", rules.display()));
    }
    yaml.push_str("scrape_configs:\n");
    if !options.scrape_targets.is_empty() {
        let targets = options
            .scrape_targets
            .iter()
            .map(|target| format!("'{target}'"))
            .collect::<Vec<_>>()
            .join(", ");
        yaml.push_str(&format!(
            "  - job_name: test\n    scrape_interval: {interval}\n    scrape_timeout: {interval}\n    static_configs:\n      - targets: [{targets}]\n"
        ));
    } else {
        yaml.push_str("  []\n");
    }
    yaml
}

fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Serves one gauge, `NAME VALUE` in the Prometheus text format, for Prometheus to scrape. The
/// value is an `f64` kept as its bits, so a test changes it while Prometheus scrapes.
pub async fn serve_gauge(
    listener: tokio::net::TcpListener,
    name: &'static str,
    value: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    use http_body_util::Full;
    use hyper::body::{Bytes, Incoming};
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        while connections.try_join_next().is_some() {}
        let value = value.clone();
        let service = service_fn(move |_request: hyper::Request<Incoming>| {
            let current = f64::from_bits(value.load(std::sync::atomic::Ordering::SeqCst));
            let body = format!("# TYPE {name} gauge\n{name} {current}\n");
            async move {
                Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from(
                    body,
                ))))
            }
        });
        connections.spawn(
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service),
        );
    }
}

//! Shared helpers: a fast topology, a kube client on the sandbox, fresh-connection HTTP GETs.

use std::future::Future;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use steadfast::sandbox::{Sandbox, SandboxOptions, Topology};

/// Timings scaled down so node outages play out in a few seconds.
pub const FAST_TOPOLOGY: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: SandboxTopology
region: us-east-1
zones:
  - {name: us-east-1a, nodes: 2}
  - {name: us-east-1b, nodes: 2}
  - {name: us-east-1c, nodes: 2}
timing:
  podStartupDelay: 300ms
  nodeBootDelay: 500ms
  terminationGracePeriod: 2s
  nodeMonitorGracePeriod: 2s
  toleration: 2s
  leaseRenewInterval: 300ms
  preStopDelay: 200ms
deployments:
  - {name: web, namespace: shop, replicas: 6, service: {port: 80}, disruptionBudget: {minAvailable: 5}}
  - {name: api, namespace: shop, replicas: 3, service: {port: 80}}
"#;

/// A started sandbox with its temp dir (kept alive alongside).
pub struct Running {
    pub sandbox: Sandbox,
    pub _dir: tempfile::TempDir,
}

/// Starts the fast topology and waits until it is ready.
pub async fn start() -> Running {
    start_with(FAST_TOPOLOGY, steadfast::sandbox::DEFAULT_WATCH_HISTORY).await
}

/// Starts a topology with a given watch history and waits until it is ready.
pub async fn start_with(yaml: &str, history: usize) -> Running {
    let topology = Topology::parse(yaml, "test topology").expect("test topology is valid");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = SandboxOptions::new(dir.path());
    options.watch_history = history;
    let sandbox = Sandbox::start(&topology, options)
        .await
        .expect("sandbox starts");
    sandbox
        .wait_ready(Duration::from_secs(30))
        .await
        .expect("sandbox becomes ready");
    Running { sandbox, _dir: dir }
}

/// A kube-rs client built from the sandbox's kubeconfig, as any user would.
pub async fn kube_client(sb: &Sandbox) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(sb.kubeconfig_path()).expect("kubeconfig reads");
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("kubeconfig loads");
    kube::Client::try_from(config).expect("client builds")
}

/// Result of one HTTP exchange.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub pod: Option<String>,
    pub zone: Option<String>,
    pub body: String,
}

/// GET on a new connection (no keep-alive), so each call is balanced anew, like kube-proxy.
pub async fn get_fresh(url: &str) -> Result<Reply, String> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http();
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let fut = async {
        let resp = client.get(uri).await.map_err(|e| format!("{e}"))?;
        let status = resp.status().as_u16();
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        let pod = header("x-steadfast-pod");
        let zone = header("x-steadfast-zone");
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{e}"))?
            .to_bytes();
        Ok(Reply {
            status,
            pod,
            zone,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .map_err(|_| "timeout".to_string())?
}

/// POSTs JSON on a new connection and returns the status and the JSON reply.
pub async fn post_json(url: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let client: Client<_, http_body_util::Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let req = hyper::Request::post(url)
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(Bytes::from(body.to_string())))
        .expect("request builds");
    let resp = tokio::time::timeout(Duration::from_secs(5), client.request(req))
        .await
        .expect("no timeout")
        .expect("request succeeds");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

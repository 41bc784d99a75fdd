//! HTTP probes of a Service through the API server's service proxy, against the sandbox: the
//! request carries the kubeconfig's credentials through the kube client, reaches the backends,
//! and a backend failure shows as a failure, not as the proxy's success.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::{Patch, PatchParams};
use steadfast::engine::Probes;
use steadfast::infra::wiring::{ClusterArgs, connect, probes};
use steadfast::measure::TimeWindow;
use steadfast::sandbox::{BackendBehaviour, Sandbox, SandboxOptions, Topology};
use steadfast::spec::parse_experiment;

const EXPERIMENT: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: Experiment
metadata: {name: service-proxy}
spec:
  duration: 10s
  steadyState:
    probes:
      - name: via-api
        http:
          service: {namespace: shop, name: web, path: /, access: apiProxy}
          rate: 40/s
          timeout: 1s
          backendHeader: x-steadfast-pod
      - name: via-annotation
        http:
          service: {namespace: shop, name: web, path: /}
          rate: 40/s
          timeout: 1s
  faults: []
  targets: []
"#;

fn window(from_ms: u64, to_ms: u64) -> TimeWindow {
    TimeWindow::new(Duration::from_millis(from_ms), Duration::from_millis(to_ms))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_proxy_probe_reaches_the_backends_with_the_kubeconfig_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let topology = Topology::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/sandbox/topology.yaml"),
    )
    .unwrap();
    let sandbox = Sandbox::start(&topology, SandboxOptions::new(dir.path()))
        .await
        .unwrap();
    sandbox.wait_ready(Duration::from_secs(60)).await.unwrap();
    let cluster = ClusterArgs {
        kubeconfig: Some(sandbox.kubeconfig_path().to_owned()),
        context: None,
    };
    let (spec, _) = parse_experiment("service-proxy.yaml", EXPERIMENT).unwrap();
    let connected = connect(&spec, &cluster).await.unwrap();

    // Point the sandbox's direct address at a closed port: only the proxy path still works.
    let services: Api<Service> =
        Api::namespaced(connected.cluster().unwrap().proxy.clone(), "shop");
    let patch = serde_json::json!({"metadata": {"annotations": {
        "sandbox.steadfast.dev/url": "http://127.0.0.1:9"
    }}});
    services
        .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();

    let origin = Instant::now();
    let set = probes(&spec, &connected, origin).await.unwrap();
    set.start().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sandbox.set_backend_behaviour(
        "shop",
        "web",
        BackendBehaviour {
            latency: Duration::ZERO,
            error_rate: 1.0,
        },
    );
    let failing_from = origin.elapsed();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    set.stop().await;
    let data = set.report_data();

    let proxied = data.http["via-api"];
    let healthy = proxied.window(window(0, 1400));
    assert!(healthy.attempts >= 40, "{healthy:?}");
    assert!(
        healthy.availability.unwrap() >= 0.95,
        "through the proxy the healthy Service answers: {healthy:?}"
    );
    let shares = proxied.backend_shares(window(0, 1400));
    assert!(
        !shares.backends.is_empty(),
        "backend identity travels back through the proxy: {shares:?}"
    );
    let from = failing_from.as_millis() as u64 + 200;
    let failing = proxied.window(window(from, from + 1000));
    assert!(failing.attempts >= 20, "{failing:?}");
    assert!(
        failing.availability.unwrap() <= 0.05,
        "backend errors come back through the proxy as failures: {failing:?}"
    );

    let direct = data.http["via-annotation"].window(window(0, 1400));
    assert_eq!(
        direct.availability,
        Some(0.0),
        "the direct address was closed, so the proxied probe's successes came through the API server: {direct:?}"
    );
    sandbox.shutdown().await;
}

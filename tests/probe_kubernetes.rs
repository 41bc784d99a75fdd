//! The watch-based Kubernetes probe against the sandbox: a deleted pod is seen within well under
//! a second, and a flap shorter than the one-second heartbeat is recorded with its length.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;
use steadfast::engine::Probes;
use steadfast::infra::kube::ReadinessWatch;
use steadfast::infra::kube::readiness_watch::Counted;
use steadfast::probe::set::{ConditionSource, ProbeSet};
use steadfast::sandbox::Sandbox;
use steadfast::spec::probe::KubernetesProbeSpec;
use steadfast::verdict::TimeWindow;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Bound on every wait for a watch to report.
const WAIT: Duration = Duration::from_secs(10);

async fn client(sandbox: &Sandbox) -> kube::Client {
    let kubeconfig =
        kube::config::Kubeconfig::read_from(sandbox.kubeconfig_path()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("config");
    kube::Client::try_from(config).expect("client")
}

fn spec(yaml: &str) -> KubernetesProbeSpec {
    serde_yaml::from_str(yaml).expect("a kubernetes probe")
}

type Seen = mpsc::UnboundedReceiver<(Instant, Counted)>;

/// Starts a watch whose every count arrives on the returned channel with the instant it came.
fn watch(client: &kube::Client, yaml: &str, cancel: &CancellationToken) -> Seen {
    let (tx, rx) = mpsc::unbounded_channel();
    let watch = ReadinessWatch::with_client(client.clone(), spec(yaml));
    let cancel = cancel.clone();
    tokio::spawn(async move {
        let report = move |counted: Counted| {
            let _ = tx.send((Instant::now(), counted));
        };
        watch.run(cancel, &report).await;
    });
    rx
}

/// The first count for which `wanted` holds, and when it arrived.
async fn until(seen: &mut Seen, wanted: impl Fn(u64) -> bool) -> Instant {
    tokio::time::timeout(WAIT, async {
        loop {
            let (at, counted) = seen.recv().await.expect("the watch runs");
            if let Ok(count) = counted
                && wanted(count.ready)
            {
                return at;
            }
        }
    })
    .await
    .expect("the watch reported in time")
}

async fn ready_web_pod(api: &Api<Pod>) -> String {
    let pods = api
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("pods listed");
    pods.items
        .iter()
        .find(|p| steadfast::fault::targets::is_running_and_ready(p))
        .and_then(|p| p.metadata.name.clone())
        .expect("a ready web pod")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_pod_is_seen_well_under_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = support::sandbox::start_in(dir.path()).await;
    let client = client(&sandbox).await;
    let cancel = CancellationToken::new();
    let mut pods = watch(
        &client,
        "pods: {namespace: shop, selector: app=web}",
        &cancel,
    );
    let mut deployment = watch(
        &client,
        "workload: {kind: Deployment, namespace: shop, name: web}",
        &cancel,
    );
    until(&mut pods, |n| n == 6).await;
    until(&mut deployment, |n| n == 6).await;

    let api: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let victim = ready_web_pod(&api).await;
    // Counted from before the request leaves: the latency includes the API call itself.
    let deleted = Instant::now();
    api.delete(&victim, &DeleteParams::default())
        .await
        .expect("pod deleted");
    let pod_seen = until(&mut pods, |n| n < 6).await - deleted;
    let replicas_seen = until(&mut deployment, |n| n < 6).await - deleted;
    eprintln!(
        "watch latency after deleting {victim}: pods probe {pod_seen:?}, Deployment probe {replicas_seen:?}"
    );
    assert!(
        pod_seen < Duration::from_millis(500),
        "pods probe saw it after {pod_seen:?}"
    );
    // The Deployment's count waits for its controller to update the status.
    assert!(
        replicas_seen < Duration::from_millis(900),
        "Deployment probe saw it after {replicas_seen:?}"
    );
    // The replacement becomes Ready and the watch sees that too.
    until(&mut pods, |n| n == 6).await;
    cancel.cancel();
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flap_shorter_than_the_heartbeat_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = support::sandbox::start_in(dir.path()).await;
    let client = client(&sandbox).await;
    let origin = Instant::now();
    let mut set = ProbeSet::new(origin);
    // A label outside the ReplicaSet's selector takes a pod out of the probe's count without
    // any controller reacting: a clean, timed flap.
    let probe = ReadinessWatch::with_client(
        client.clone(),
        spec("pods: {namespace: shop, selector: 'app=web,!flap'}\nready: '>= 6'"),
    );
    set.add_condition(
        "web-pods",
        steadfast::spec::ProbeKind::Kubernetes,
        ConditionSource::Watch {
            condition: Arc::new(probe),
            heartbeat: Duration::from_secs(1),
        },
    );
    set.start().await.expect("probes start");
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    let api: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let pod = ready_web_pod(&api).await;
    let label =
        |value: serde_json::Value| Patch::Merge(json!({"metadata": {"labels": {"flap": value}}}));
    let flap_start = origin.elapsed();
    api.patch(&pod, &PatchParams::default(), &label(json!("1")))
        .await
        .expect("labelled");
    tokio::time::sleep(Duration::from_millis(300)).await;
    api.patch(
        &pod,
        &PatchParams::default(),
        &label(serde_json::Value::Null),
    )
    .await
    .expect("unlabelled");
    let flap_end = origin.elapsed();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let end = origin.elapsed();
    set.stop().await;

    let data = set.report_data();
    let (_, log) = data.conditions["web-pods"];
    let spans = log.failed_spans();
    assert_eq!(spans.len(), 1, "{:#?}", log.evaluations());
    let span = spans[0];
    let recorded = span.length().expect("the flap ended");
    let requested = flap_end - flap_start;
    eprintln!(
        "flap of {requested:?} (label on to label off) recorded as {recorded:?}, seen {:?} after it began",
        span.start.saturating_sub(flap_start)
    );
    assert!(span.start >= flap_start, "{span:?} before {flap_start:?}");
    assert!(
        span.start - flap_start < Duration::from_millis(500),
        "seen late: {span:?}"
    );
    assert!(
        recorded >= Duration::from_millis(150) && recorded < Duration::from_secs(1),
        "recorded {recorded:?} for a flap of {requested:?}"
    );
    let failed = log.evaluations().iter().filter(|e| !e.held).count();
    assert!(failed >= 1);
    let lowest = log
        .evaluations()
        .iter()
        .filter_map(|e| e.value)
        .fold(f64::MAX, f64::min);
    assert_eq!(lowest, 5.0, "{:#?}", log.evaluations());
    // The steady-state check over a window holding the flap fails, after stop as well.
    let check = set.steady(TimeWindow::new(Duration::ZERO, end));
    assert!(!check.holds);
    assert!(
        check.reasons[0].contains("5 pods app=web,!flap in shop ready"),
        "{check:?}"
    );
    // Before the flap it held.
    assert!(
        set.steady(TimeWindow::new(Duration::ZERO, flap_start))
            .holds
    );
    sandbox.shutdown().await;
}

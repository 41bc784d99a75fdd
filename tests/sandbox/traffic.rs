//! The data path: load balancers spread connections over ready pods, traffic drains from a
//! deleted pod to its replacement, behaviour changes apply at once, proxy and metrics work.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, ResourceExt};
use steadfast::sandbox::BackendBehaviour;

use crate::support::{eventually, get_fresh, kube_client, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_spreads_connections_over_every_ready_pod() {
    let run = start().await;
    let url = run
        .sandbox
        .service_url("shop", "web")
        .expect("web has a load balancer");
    let mut pods = BTreeMap::<String, u32>::new();
    let mut zones = BTreeSet::new();
    for _ in 0..120 {
        let r = get_fresh(&format!("{url}/"))
            .await
            .expect("request succeeds");
        assert_eq!(r.status, 200);
        *pods.entry(r.pod.expect("pod header")).or_default() += 1;
        zones.insert(r.zone.expect("zone header"));
    }
    assert_eq!(
        pods.len(),
        6,
        "120 connections reach all six pods: {pods:?}"
    );
    assert_eq!(zones.len(), 3);
    run.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_pod_moves_traffic_to_its_replacement() {
    let run = start().await;
    let client = kube_client(&run.sandbox).await;
    let pods: Api<Pod> = Api::namespaced(client, "shop");
    let before: BTreeSet<String> = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    let victim = before.iter().next().unwrap().clone();
    let url = run.sandbox.service_url("shop", "web").unwrap();
    let started = Instant::now();
    let mut deleted_at = None;
    let mut failures = 0;
    let mut total = 0;
    let mut victim_after_removal = 0;
    let mut new_pods = BTreeSet::new();
    let mut victim_gone_at = None;
    // Bounded: at most 2,000 requests or 20 s.
    while total < 2000 && started.elapsed() < Duration::from_secs(20) {
        if deleted_at.is_none() && started.elapsed() > Duration::from_millis(300) {
            pods.delete(&victim, &DeleteParams::default())
                .await
                .unwrap();
            deleted_at = Some(Instant::now());
        }
        total += 1;
        match get_fresh(&format!("{url}/")).await {
            Ok(r) if r.status == 200 => {
                let pod = r.pod.unwrap_or_default();
                if !before.contains(&pod) {
                    new_pods.insert(pod.clone());
                }
                if pod == victim && victim_gone_at.is_some() {
                    victim_after_removal += 1;
                }
            }
            _ => failures += 1,
        }
        if deleted_at.is_some() && victim_gone_at.is_none() && pods.get(&victim).await.is_err() {
            victim_gone_at = Some(Instant::now());
        }
        if victim_gone_at.is_some() && !new_pods.is_empty() && total > 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let deleted_at = deleted_at.expect("the pod was deleted");
    assert!(
        victim_gone_at.is_some(),
        "the deleted pod finished terminating"
    );
    assert_eq!(
        victim_after_removal, 0,
        "no request reached the pod once it was gone"
    );
    assert_eq!(
        new_pods.len(),
        1,
        "traffic reached exactly one new pod: {new_pods:?}"
    );
    assert!(
        failures <= 3,
        "{failures} of {total} requests failed; only endpoint lag may cost any"
    );
    let replacement = new_pods.into_iter().next().unwrap();
    let ready_in = eventually("replacement ready", Duration::from_secs(10), || async {
        let p = pods.get(&replacement).await.ok()?;
        let ready = p
            .status?
            .conditions?
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        ready.then(|| deleted_at.elapsed())
    })
    .await;
    assert!(
        ready_in < Duration::from_secs(10),
        "replacement Ready after {ready_in:?}"
    );
    run.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_behaviour_changes_at_run_time() {
    let run = start().await;
    let url = run.sandbox.service_url("shop", "api").unwrap();
    run.sandbox.set_backend_behaviour(
        "shop",
        "api",
        BackendBehaviour {
            latency: Duration::ZERO,
            error_rate: 1.0,
        },
    );
    for _ in 0..10 {
        assert_eq!(get_fresh(&url).await.unwrap().status, 500);
    }
    run.sandbox.set_backend_behaviour(
        "shop",
        "api",
        BackendBehaviour {
            latency: Duration::from_millis(150),
            error_rate: 0.0,
        },
    );
    for _ in 0..5 {
        let t = Instant::now();
        assert_eq!(get_fresh(&url).await.unwrap().status, 200);
        assert!(
            t.elapsed() >= Duration::from_millis(150),
            "latency applied: {:?}",
            t.elapsed()
        );
    }
    // The other Deployment is untouched.
    let web = run.sandbox.service_url("shop", "web").unwrap();
    assert_eq!(get_fresh(&web).await.unwrap().status, 200);
    run.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_proxy_and_metrics_are_served() {
    let run = start().await;
    let api = run.sandbox.api_url();
    let r = get_fresh(&format!(
        "{api}/api/v1/namespaces/shop/services/web:http/proxy/hello?x=1"
    ))
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.pod.unwrap().starts_with("web-"));
    assert!(r.body.contains("\"path\":\"/hello\""), "{}", r.body);
    let missing = get_fresh(&format!(
        "{api}/api/v1/namespaces/shop/services/nope/proxy/"
    ))
    .await
    .unwrap();
    assert_eq!(missing.status, 404);
    let url = run.sandbox.service_url("shop", "web").unwrap();
    for _ in 0..5 {
        get_fresh(&url).await.unwrap();
    }
    let metrics = get_fresh(&run.sandbox.metrics_url()).await.unwrap().body;
    assert!(
        metrics.contains(
            "steadfast_sandbox_lb_requests_total{namespace=\"shop\",service=\"web\",pod=\"web-"
        ),
        "{metrics}"
    );
    let backend = get_fresh(&format!("{url}/metrics")).await.unwrap();
    assert!(
        backend
            .body
            .contains("steadfast_sandbox_backend_requests_total{"),
        "{}",
        backend.body
    );
    run.sandbox.shutdown().await;
}

//! perEndpoint end to end through the run wiring: while a web pod is deleted, the Service keeps
//! answering (failover) and only that pod's own probe fails (backend failure), and the
//! steady-state check judges the Service alone.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};
use steadfast::engine::Probes;
use steadfast::infra::wiring::{self, ClusterArgs};
use steadfast::spec::load_file;
use steadfast::verdict::TimeWindow;
use support::sandbox::{repo, start_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_backend_fails_its_own_probe_while_the_service_fails_over() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start_in(dir.path()).await;
    let spec = load_file(&repo().join("experiments/sandbox/steady-state.yaml"))
        .expect("the example validates")
        .spec;
    let cluster = ClusterArgs {
        kubeconfig: Some(sandbox.kubeconfig_path().to_owned()),
        context: None,
    };
    let connected = wiring::connect(&spec, &cluster).await.expect("connected");
    let origin = Instant::now();
    let probes = wiring::probes(&spec, &connected, origin)
        .await
        .expect("probes built");
    probes.start().await.expect("probes start");
    tokio::time::sleep(Duration::from_secs(1)).await;

    let pods: Api<Pod> = Api::namespaced(connected.cluster().unwrap().kube.raw().clone(), "shop");
    let listed = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("pods listed");
    let victim = listed.items[0].metadata.name.clone().expect("a name");
    let deleted = origin.elapsed();
    pods.delete(&victim, &DeleteParams::default())
        .await
        .expect("deleted");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let end = origin.elapsed();
    probes.stop().await;

    let data = probes.report_data();
    let window = TimeWindow::new(deleted, end);
    let service = data.http["web"].window(window);
    let own = data.http[format!("web@{victim}").as_str()].window(window);
    let others: Vec<f64> = data
        .http
        .iter()
        .filter(|(name, _)| name.starts_with("web@") && !name.ends_with(&victim))
        .filter_map(|(_, store)| store.window(window).availability)
        .collect();
    eprintln!(
        "after deleting {victim}: Service {}/{} ok, its own probe {}/{} ok, other endpoints {others:?}",
        service.successes, service.attempts, own.successes, own.attempts
    );
    assert!(service.availability.unwrap() >= 0.99, "{service:?}");
    assert!(own.availability.unwrap() < 0.9, "{own:?}");
    assert_eq!(others.len(), 5);
    assert!(others.iter().all(|a| *a >= 0.99), "{others:?}");
    // The steady-state check judges the Service, not the deleted backend; the replicas probe
    // rightly saw the Deployment one short until the replacement was Ready.
    let check = probes.steady(TimeWindow::new(deleted, end));
    assert!(
        check
            .reasons
            .iter()
            .all(|r| r.starts_with("web-replicas: ")),
        "{check:?}"
    );
    assert_eq!(check.reasons.len(), 1, "{check:?}");
    sandbox.shutdown().await;
}

//! Node lifecycle: a silent node turns Unknown and loses its pods after the toleration, cordon
//! adds its taint, NoExecute taints evict, a partitioned node leaves the Services.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::support::{eventually, get_fresh, kube_client, start};

fn ready_status(n: &Node) -> String {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

fn has_taint(n: &Node, key: &str, effect: &str) -> bool {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| t.iter().any(|t| t.key == key && t.effect == effect))
}

async fn web_pods_on(pods: &Api<Pod>, node: &str) -> Vec<Pod> {
    pods.list(
        &ListParams::default()
            .labels("app=web")
            .fields(&format!("spec.nodeName={node}")),
    )
    .await
    .unwrap()
    .items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_node_goes_unknown_and_its_pods_move_after_the_toleration() {
    let run = start().await;
    let client = kube_client(&run.sandbox).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let node = run.sandbox.node_names()[0].clone();
    let victims: BTreeSet<String> = web_pods_on(&pods, &node)
        .await
        .iter()
        .map(|p| p.name_any())
        .collect();
    assert!(!victims.is_empty(), "the first node runs a web pod");
    run.sandbox.set_node_reporting(&node, false).unwrap();
    eventually(
        "node Unknown with unreachable taint",
        Duration::from_secs(10),
        || async {
            let n = nodes.get(&node).await.ok()?;
            (ready_status(&n) == "Unknown"
                && has_taint(&n, "node.kubernetes.io/unreachable", "NoExecute"))
            .then_some(())
        },
    )
    .await;
    // After the 2 s toleration the pods are deleted; the dead kubelet leaves them Terminating.
    eventually(
        "pods marked for deletion",
        Duration::from_secs(10),
        || async {
            let on = web_pods_on(&pods, &node).await;
            on.iter()
                .all(|p| p.metadata.deletion_timestamp.is_some())
                .then_some(())
        },
    )
    .await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    eventually(
        "web back to six available elsewhere",
        Duration::from_secs(15),
        || async {
            let d = deployments.get("web").await.ok()?;
            (d.status?.available_replicas == Some(6)).then_some(())
        },
    )
    .await;
    for p in pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
    {
        if p.metadata.deletion_timestamp.is_none() {
            assert_ne!(
                p.spec.unwrap().node_name.unwrap(),
                node,
                "no live web pod on the silent node"
            );
        }
    }
    run.sandbox.set_node_reporting(&node, true).unwrap();
    eventually(
        "node Ready again, taint gone, old pods removed",
        Duration::from_secs(10),
        || async {
            let n = nodes.get(&node).await.ok()?;
            let clean = ready_status(&n) == "True"
                && !has_taint(&n, "node.kubernetes.io/unreachable", "NoExecute");
            let leftovers = web_pods_on(&pods, &node)
                .await
                .iter()
                .filter(|p| victims.contains(&p.name_any()))
                .count();
            (clean && leftovers == 0).then_some(())
        },
    )
    .await;
    run.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cordon_taints_and_noexecute_taints_evict() {
    let run = start().await;
    let client = kube_client(&run.sandbox).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let names = run.sandbox.node_names();
    let (cordoned, outage) = (names[0].clone(), names[1].clone());
    let original: BTreeSet<String> = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    nodes
        .patch(
            &cordoned,
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"unschedulable": true}})),
        )
        .await
        .unwrap();
    eventually("unschedulable taint", Duration::from_secs(5), || async {
        has_taint(
            &nodes.get(&cordoned).await.ok()?,
            "node.kubernetes.io/unschedulable",
            "NoSchedule",
        )
        .then_some(())
    })
    .await;
    let victims = web_pods_on(&pods, &outage).await;
    assert!(!victims.is_empty());
    nodes
        .patch(
            &outage,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": [{"key": "steadfast.dev/zone-outage", "value": "true", "effect": "NoExecute"}]}})),
        )
        .await
        .unwrap();
    eventually(
        "pods leave the NoExecute node",
        Duration::from_secs(15),
        || async {
            let live = web_pods_on(&pods, &outage).await;
            live.is_empty().then_some(())
        },
    )
    .await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    eventually(
        "web recovers on the other nodes",
        Duration::from_secs(15),
        || async {
            let d = deployments.get("web").await.ok()?;
            (d.status?.available_replicas == Some(6)).then_some(())
        },
    )
    .await;
    let web = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    let mut replacements = 0;
    for p in web.items {
        let n = p.spec.as_ref().unwrap().node_name.clone().unwrap();
        assert_ne!(n, outage, "no web pod on the NoExecute node");
        if !original.contains(&p.name_any()) {
            replacements += 1;
            assert_ne!(n, cordoned, "no replacement scheduled on the cordoned node");
        }
    }
    assert_eq!(replacements, victims.len());
    run.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_node_leaves_the_service_after_the_monitor_grace() {
    let run = start().await;
    let client = kube_client(&run.sandbox).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let node = run.sandbox.node_names()[2].clone();
    let cut: BTreeSet<String> = web_pods_on(&pods, &node)
        .await
        .iter()
        .map(|p| p.name_any())
        .collect();
    run.sandbox.set_node_partitioned(&node, true).unwrap();
    let url = run.sandbox.service_url("shop", "web").unwrap();
    // Once the node is Unknown its pods are not ready and leave the endpoints.
    eventually(
        "pods on the partitioned node not ready",
        Duration::from_secs(10),
        || async {
            let on = web_pods_on(&pods, &node).await;
            let ready = on.iter().any(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            });
            (!ready).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..30 {
        let r = get_fresh(&url)
            .await
            .expect("traffic avoids the partitioned node");
        assert_eq!(r.status, 200);
        assert!(!cut.contains(&r.pod.unwrap()));
    }
    run.sandbox.set_node_partitioned(&node, false).unwrap();
    run.sandbox.shutdown().await;
}

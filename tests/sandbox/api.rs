//! The API through kube-rs: discovery, lists with pagination, watches, patches, optimistic
//! concurrency, eviction against a budget, graceful deletion.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, EvictParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::support::{FAST_TOPOLOGY, eventually, kube_client, post_json, start, start_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_objects_exist_with_zones_and_owners() {
    let run = start().await;
    let client = kube_client(&run.sandbox).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 6);
    for n in &list.items {
        let labels = n.labels();
        assert!(labels["topology.kubernetes.io/zone"].starts_with("us-east-1"));
        assert_eq!(labels["topology.kubernetes.io/region"], "us-east-1");
        let provider = n.spec.as_ref().and_then(|s| s.provider_id.clone()).unwrap();
        assert!(
            provider.starts_with(&format!(
                "aws:///{}/i-",
                labels["topology.kubernetes.io/zone"]
            )),
            "{provider}"
        );
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let web = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(web.items.len(), 6);
    let zones: std::collections::BTreeSet<String> = web
        .items
        .iter()
        .map(|p| {
            let node = p.spec.as_ref().unwrap().node_name.clone().unwrap();
            list.items
                .iter()
                .find(|n| n.name_any() == node)
                .unwrap()
                .labels()["topology.kubernetes.io/zone"]
                .clone()
        })
        .collect();
    assert_eq!(zones.len(), 3, "replicas spread over every zone");
    let rs: Api<ReplicaSet> = Api::namespaced(client.clone(), "shop");
    let owner = web.items[0].owner_references()[0].clone();
    assert_eq!(owner.kind, "ReplicaSet");
    let set = rs.get(&owner.name).await.unwrap();
    assert_eq!(set.owner_references()[0].kind, "Deployment");
    let field = pods
        .list(&ListParams::default().fields(&format!(
                "spec.nodeName={}",
                web.items[0]
                    .spec
                    .as_ref()
                    .unwrap()
                    .node_name
                    .clone()
                    .unwrap()
            )))
        .await
        .unwrap();
    assert!(!field.items.is_empty());
    let sel = pods
        .list(&ListParams::default().labels("app in (web,api),app!=api"))
        .await
        .unwrap();
    assert_eq!(sel.items.len(), 6);
    let disc = kube::discovery::Discovery::new(client.clone())
        .run()
        .await
        .unwrap();
    assert!(disc.groups().any(|g| g.name() == "policy"));
    run.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_pages_the_initial_list_then_streams_changes() {
    let run = start().await;
    let client = kube_client(&run.sandbox).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let cfg = watcher::Config::default().labels("app=web").page_size(2);
    let mut stream = watcher(pods.clone(), cfg).boxed();
    let mut initial = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .unwrap()
            .unwrap()
        {
            Some(watcher::Event::InitApply(_)) => initial += 1,
            Some(watcher::Event::InitDone) => break,
            _ => {}
        }
    }
    assert_eq!(initial, 6, "paged initial list returns every web pod");
    let victim = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items[0]
        .name_any();
    pods.delete(&victim, &DeleteParams::default())
        .await
        .unwrap();
    let mut saw_terminating = false;
    let mut saw_new = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !(saw_terminating && saw_new) && tokio::time::Instant::now() < deadline {
        let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .unwrap()
        else {
            continue;
        };
        if let watcher::Event::Apply(p) = ev {
            if p.name_any() == victim && p.metadata.deletion_timestamp.is_some() {
                saw_terminating = true;
            } else if p.name_any() != victim {
                saw_new = true;
            }
        }
    }
    assert!(saw_terminating, "watch shows the pod terminating");
    assert!(saw_new, "watch shows the replacement");
    run.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_resource_version_answers_gone_and_watcher_relists() {
    let run = start_with(FAST_TOPOLOGY, 64).await;
    let client = kube_client(&run.sandbox).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let first = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    for i in 0..100 {
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": format!("c{i}")}})).unwrap(),
        )
        .await
        .unwrap();
    }
    let gone = match cms.watch(&kube::api::WatchParams::default(), &first).await {
        Err(kube::Error::Api(e)) => e.code == 410 && e.reason == "Expired",
        Ok(stream) => matches!(
            stream.boxed().try_next().await,
            Ok(Some(kube::core::WatchEvent::Error(ref e))) if e.code == 410
        ),
        Err(other) => panic!("expected 410 Gone, got {other:?}"),
    };
    assert!(gone);
    run.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_enforce_optimistic_concurrency() {
    let run = start().await;
    let client = kube_client(&run.sandbox).await;
    let leases: Api<Lease> = Api::namespaced(client, "default");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "steadfast-run-lock"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 30}
    }))
    .unwrap();
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    let dup = leases
        .create(&PostParams::default(), &lease)
        .await
        .unwrap_err();
    assert!(
        matches!(dup, kube::Error::Api(ref e) if e.code == 409 && e.reason == "AlreadyExists"),
        "{dup:?}"
    );
    let mut mine = created.clone();
    mine.spec.as_mut().unwrap().holder_identity = Some("b".into());
    let updated = leases
        .replace("steadfast-run-lock", &PostParams::default(), &mine)
        .await
        .unwrap();
    assert_ne!(updated.resource_version(), created.resource_version());
    let mut stale = created.clone();
    stale.spec.as_mut().unwrap().holder_identity = Some("c".into());
    let conflict = leases
        .replace("steadfast-run-lock", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert!(
        matches!(conflict, kube::Error::Api(ref e) if e.code == 409 && e.reason == "Conflict"),
        "{conflict:?}"
    );
    leases
        .delete("steadfast-run-lock", &DeleteParams::default())
        .await
        .unwrap();
    let missing = leases.get("steadfast-run-lock").await.unwrap_err();
    assert!(
        matches!(missing, kube::Error::Api(ref e) if e.code == 404),
        "{missing:?}"
    );
    run.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmaps_take_every_patch_kind() {
    let run = start().await;
    let client = kube_client(&run.sandbox).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "journal"}, "data": {"a": "1"}}))
            .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let pp = PatchParams::default();
    cms.patch("journal", &pp, &Patch::Merge(json!({"data": {"b": "2"}})))
        .await
        .unwrap();
    cms.patch(
        "journal",
        &pp,
        &Patch::Strategic(json!({"metadata": {"labels": {"x": "y"}}})),
    )
    .await
    .unwrap();
    let req = http::Request::patch("/api/v1/namespaces/default/configmaps/journal")
        .header("content-type", "application/json-patch+json")
        .body(br#"[{"op": "remove", "path": "/data/a"}]"#.to_vec())
        .unwrap();
    client.request_text(req).await.unwrap();
    let got = cms.get("journal").await.unwrap();
    assert_eq!(
        got.data.unwrap(),
        BTreeMap::from([("b".to_string(), "2".to_string())])
    );
    assert_eq!(got.metadata.labels.unwrap()["x"], "y");
    let applied = cms
        .patch("halt", &PatchParams::apply("steadfast"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "halt"}, "data": {"halt": "false"}})))
        .await
        .unwrap();
    assert_eq!(applied.data.unwrap()["halt"], "false");
    let bad = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "Not_Valid"}})).unwrap(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(bad, kube::Error::Api(ref e) if e.code == 422),
        "{bad:?}"
    );
    run.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_respects_the_disruption_budget() {
    let run = start().await;
    let client = kube_client(&run.sandbox).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "shop");
    eventually("budget status", Duration::from_secs(10), || async {
        let p = pdbs.get("web").await.ok()?;
        (p.status?.disruptions_allowed == Some(1)).then_some(())
    })
    .await;
    let web = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    pods.evict(&web.items[0].name_any(), &EvictParams::default())
        .await
        .unwrap();
    // kube-rs retries 429 by itself; a raw request shows the answer.
    let victim = web.items[1].name_any();
    let url = format!(
        "{}/api/v1/namespaces/shop/pods/{victim}/eviction",
        run.sandbox.api_url()
    );
    let body = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": victim}});
    let (code, reply) = post_json(&url, &body).await;
    assert_eq!(code, 429, "{reply}");
    assert_eq!(reply["reason"], "TooManyRequests");
    let cause = reply["details"]["causes"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(cause.contains("disruption budget web"), "{reply}");
    // Once the replacement is Ready the budget allows one more.
    eventually(
        "second eviction allowed",
        Duration::from_secs(15),
        || async {
            pods.evict(&web.items[1].name_any(), &EvictParams::default())
                .await
                .ok()
        },
    )
    .await;
    let events: Api<Event> = Api::namespaced(client, "shop");
    let evs = events.list(&ListParams::default()).await.unwrap();
    assert!(
        evs.items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Evicted"))
    );
    run.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_delete_replaces_at_once_and_removes_after_termination() {
    let run = start().await;
    let client = kube_client(&run.sandbox).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let web = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    let victim = web.items[0].name_any();
    let deleted = pods
        .delete(&victim, &DeleteParams::default().grace_period(1))
        .await
        .unwrap();
    let terminating = deleted.left().expect("a graceful delete returns the pod");
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(terminating.metadata.deletion_grace_period_seconds, Some(1));
    // The ReplicaSet does not count a terminating pod: six others exist while it terminates.
    eventually("replacement created", Duration::from_secs(5), || async {
        let list = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .ok()?;
        let still = list.items.iter().any(|p| p.name_any() == victim);
        let others = list.items.iter().filter(|p| p.name_any() != victim).count();
        (still && others == 6).then_some(())
    })
    .await;
    eventually(
        "terminated pod removed",
        Duration::from_secs(10),
        || async {
            matches!(pods.get(&victim).await, Err(kube::Error::Api(ref e)) if e.code == 404)
                .then_some(())
        },
    )
    .await;
    // gracePeriodSeconds=0 removes at once.
    let other = web.items[1].name_any();
    pods.delete(&other, &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert!(matches!(pods.get(&other).await, Err(kube::Error::Api(ref e)) if e.code == 404));
    // Deleting the Deployment garbage-collects its ReplicaSet and pods.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    deployments
        .delete("api", &DeleteParams::default())
        .await
        .unwrap();
    eventually("api pods collected", Duration::from_secs(15), || async {
        let list = pods
            .list(&ListParams::default().labels("app=api"))
            .await
            .ok()?;
        list.items.is_empty().then_some(())
    })
    .await;
    run.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_subresource_resizes_a_deployment() {
    let run = start().await;
    let client = kube_client(&run.sandbox).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let scale = deployments.get_scale("api").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(3));
    deployments
        .patch_scale(
            "api",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "shop");
    eventually("five api pods ready", Duration::from_secs(15), || async {
        let d = deployments.get("api").await.ok()?;
        (d.status?.available_replicas == Some(5)).then_some(())
    })
    .await;
    assert_eq!(
        pods.list(&ListParams::default().labels("app=api"))
            .await
            .unwrap()
            .items
            .len(),
        5
    );
    run.sandbox.shutdown().await;
}

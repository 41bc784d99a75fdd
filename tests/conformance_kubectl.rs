//! Conformance: real kubectl binaries (the oldest and newest installed, and the default one)
//! against the sandbox, asserting the outputs and exit codes a real API server gives them.
//!
//! Each test starts its own sandbox. Without kubectl a test fails under `CI=true` and is
//! skipped loudly otherwise.

#[path = "support/tools.rs"]
#[allow(dead_code)]
mod shared_tools;

#[path = "support/tls.rs"]
mod shared_tls;

#[path = "conformance/tools.rs"]
mod tools;

#[path = "conformance/kubectl_workflow.rs"]
mod kubectl_workflow;

use std::time::Duration;

use tools::{Kubectl, eventually, start};

/// A pod with a bare readiness probe, and one that opts out of the API token.
const PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: probed, namespace: shop}
spec:
  containers:
    - name: app
      image: app:v1
      readinessProbe:
        httpGet: {path: /healthz, port: 8080}
      livenessProbe:
        tcpSocket: {port: 8080}
        periodSeconds: 5
---
apiVersion: v1
kind: Pod
metadata: {name: tokenless, namespace: shop}
spec:
  automountServiceAccountToken: false
  containers:
    - {name: app, image: app:v1}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_service_proxy_honours_the_port() {
    let run = start().await;
    let Some(k) = Kubectl::new(None, &run.sandbox) else {
        return;
    };
    for target in ["web:80", "web:http", "http:web:80"] {
        let body = k
            .ok(&[
                "get",
                "--raw",
                &format!("/api/v1/namespaces/shop/services/{target}/proxy/healthz"),
            ])
            .await;
        assert!(
            body.contains("\"path\":\"/healthz\"") && body.contains("\"pod\":\"web-"),
            "{target}: {body}"
        );
    }
    // kube-apiserver's ServiceREST.ResourceLocation: a port number the Service does not have,
    // and a port name no endpoint carries, are both 503 ServiceUnavailable.
    let cases = [
        ("web:9999", "no service port 9999 found for service \"web\""),
        (
            "web:nosuchport",
            "no endpoints available for service \"web:nosuchport\"",
        ),
        // The Service's only port is named, so no port means no endpoint port.
        ("web", "no endpoints available for service \"web\""),
    ];
    for (target, message) in cases {
        let out = k
            .run(&[
                "get",
                "--raw",
                &format!("/api/v1/namespaces/shop/services/{target}/proxy/healthz"),
            ])
            .await;
        assert_eq!(out.code, Some(1), "{target}: {}", out.both());
        assert!(
            out.stderr.contains("ServiceUnavailable") && out.stderr.contains(message),
            "{target}: {}",
            out.both()
        );
    }
    let out = k
        .run(&[
            "get",
            "--raw",
            "/api/v1/namespaces/shop/services/nope:80/proxy/",
        ])
        .await;
    assert_eq!(out.code, Some(1), "{}", out.both());
    assert!(
        out.stderr.contains("services \"nope\" not found"),
        "{}",
        out.both()
    );
    run.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_undo_restores_the_previous_template() {
    let run = start().await;
    let Some(k) = Kubectl::new(None, &run.sandbox) else {
        return;
    };
    let status = [
        "rollout",
        "status",
        "deploy/web",
        "-n",
        "shop",
        "--timeout=30s",
    ];
    k.ok(&status).await;
    let revision = k
        .ok(&[
            "get",
            "deploy/web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
        ])
        .await;
    assert_eq!(revision, "1", "the Deployment carries its revision");
    let before = k
        .ok(&[
            "get",
            "deploy/web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ])
        .await;
    k.ok(&["set", "image", "deploy/web", "-n", "shop", "web=web:v2"])
        .await;
    k.ok(&status).await;
    let history = k
        .ok(&["rollout", "history", "deploy/web", "-n", "shop"])
        .await;
    assert!(
        history.contains("REVISION")
            && history
                .lines()
                .filter(|l| l.starts_with(['1', '2']))
                .count()
                == 2,
        "{history}"
    );
    let undo = k
        .ok(&["rollout", "undo", "deployment/web", "-n", "shop"])
        .await;
    assert!(undo.contains("deployment.apps/web rolled back"), "{undo}");
    k.ok(&status).await;
    let image = k
        .ok(&[
            "get",
            "deploy/web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ])
        .await;
    assert_eq!(image, before, "undo restores the first template");
    let revision = k
        .ok(&[
            "get",
            "deploy/web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
        ])
        .await;
    assert_eq!(revision, "3", "the restored template becomes revision 3");
    // The first ReplicaSet is reused (upstream keeps one ReplicaSet per template).
    let sets = k
        .ok(&["get", "rs", "-n", "shop", "-l", "app=web", "-o", "name"])
        .await;
    assert_eq!(sets.lines().count(), 2, "{sets}");
    let again = k
        .run(&[
            "rollout",
            "undo",
            "deployment/web",
            "-n",
            "shop",
            "--to-revision=9",
        ])
        .await;
    assert_eq!(again.code, Some(1), "{}", again.both());
    assert!(
        again.stderr.contains("unable to find specified revision 9"),
        "{}",
        again.both()
    );
    run.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sees_service_account_volumes_and_probe_defaults() {
    let run = start().await;
    let Some(k) = Kubectl::new(None, &run.sandbox) else {
        return;
    };
    for ns in ["default", "shop", "kube-system"] {
        let sa = k
            .ok(&["get", "serviceaccount", "default", "-n", ns, "-o", "name"])
            .await;
        assert_eq!(sa.trim(), "serviceaccount/default", "{ns}");
    }
    k.ok(&["create", "namespace", "later"]).await;
    eventually(
        "a default ServiceAccount in a new namespace",
        Duration::from_secs(10),
        || async {
            let out = k.run(&["get", "sa", "default", "-n", "later"]).await;
            (out.code == Some(0)).then_some(())
        },
    )
    .await;

    let file = k.manifest("pods.yaml", PODS);
    k.ok(&["create", "-f", &file]).await;
    let volume = k
        .ok(&[
            "get",
            "pod",
            "probed",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.volumes[0].name} {.spec.volumes[0].projected.sources[*].serviceAccountToken.path} {.spec.volumes[0].projected.sources[*].configMap.name} {.spec.volumes[0].projected.sources[*].downwardAPI.items[0].fieldRef.fieldPath} {.spec.containers[0].volumeMounts[0].name} {.spec.containers[0].volumeMounts[0].mountPath} {.spec.containers[0].volumeMounts[0].readOnly}",
        ])
        .await;
    let parts: Vec<&str> = volume.split(' ').collect();
    assert_eq!(parts.len(), 7, "{volume}");
    let suffix = parts[0]
        .strip_prefix("kube-api-access-")
        .unwrap_or_default();
    assert_eq!(suffix.len(), 5, "{volume}");
    assert_eq!(
        &parts[1..],
        &[
            "token",
            "kube-root-ca.crt",
            "metadata.namespace",
            parts[0],
            "/var/run/secrets/kubernetes.io/serviceaccount",
            "true"
        ],
        "{volume}"
    );
    let tokenless = k
        .ok(&[
            "get",
            "pod",
            "tokenless",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.volumes}|{.spec.containers[0].volumeMounts}",
        ])
        .await;
    assert_eq!(
        tokenless, "|",
        "automountServiceAccountToken: false opts out"
    );

    let described = k.ok(&["describe", "pod", "probed", "-n", "shop"]).await;
    let line = |label: &str| {
        described
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .map(|l| l.split_once(':').map_or("", |(_, v)| v.trim()).to_string())
            .unwrap_or_default()
    };
    assert_eq!(
        line("Readiness:"),
        "http-get http://:8080/healthz delay=0s timeout=1s period=10s #success=1 #failure=3",
        "{described}"
    );
    assert_eq!(
        line("Liveness:"),
        "tcp-socket :8080 delay=0s timeout=1s period=5s #success=1 #failure=3",
        "{described}"
    );
    assert!(described.contains("kube-api-access-"), "{described}");
    run.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_auth_can_i_answers() {
    let run = start().await;
    let Some(k) = Kubectl::new(None, &run.sandbox) else {
        return;
    };
    let yes = k
        .run(&["auth", "can-i", "delete", "pods", "-n", "shop"])
        .await;
    assert_eq!(
        (yes.code, yes.stdout.trim()),
        (Some(0), "yes"),
        "{}",
        yes.both()
    );
    let sub = k
        .run(&["auth", "can-i", "create", "pods/eviction", "-n", "shop"])
        .await;
    assert_eq!(
        (sub.code, sub.stdout.trim()),
        (Some(0), "yes"),
        "{}",
        sub.both()
    );
    run.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_typed_create_sends_protobuf() {
    let run = start().await;
    let Some(k) = Kubectl::new(None, &run.sandbox) else {
        return;
    };
    let out = k.ok(&["create", "namespace", "typed"]).await;
    assert_eq!(out.trim(), "namespace/typed created");
    let label = k
        .ok(&[
            "get",
            "ns",
            "typed",
            "-o",
            "jsonpath={.metadata.labels.kubernetes\\.io/metadata\\.name} {.status.phase}",
        ])
        .await;
    assert_eq!(label, "typed Active");
    let out = k
        .ok(&[
            "create",
            "deployment",
            "d",
            "--image=nginx:1.27",
            "--replicas=2",
            "-n",
            "typed",
        ])
        .await;
    assert_eq!(out.trim(), "deployment.apps/d created");
    let ready = k
        .ok(&[
            "rollout",
            "status",
            "deploy/d",
            "-n",
            "typed",
            "--timeout=30s",
        ])
        .await;
    assert!(ready.contains("successfully rolled out"), "{ready}");
    let shown = k
        .ok(&["get", "deploy/d", "-n", "typed", "-o", "jsonpath={.spec.selector.matchLabels.app} {.spec.template.spec.containers[0].name} {.spec.template.spec.containers[0].image}"])
        .await;
    assert_eq!(shown, "d nginx nginx:1.27");
    let out = k
        .ok(&[
            "create",
            "configmap",
            "c",
            "--from-literal=k=v",
            "-n",
            "typed",
        ])
        .await;
    assert_eq!(out.trim(), "configmap/c created");
    let value = k
        .ok(&["get", "cm", "c", "-n", "typed", "-o", "jsonpath={.data.k}"])
        .await;
    assert_eq!(value, "v");
    let again = k.run(&["create", "namespace", "typed"]).await;
    assert_eq!(again.code, Some(1), "{}", again.both());
    assert!(again.stderr.contains("AlreadyExists"), "{}", again.both());
    run.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_oldest_installed_runs_the_workflow() {
    let run = start().await;
    let Some(k) = Kubectl::new(Some("1.27"), &run.sandbox) else {
        return;
    };
    kubectl_workflow::run(&k, &run.sandbox).await;
    run.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_newest_installed_runs_the_workflow() {
    let run = start().await;
    let Some(k) = Kubectl::new(Some("1.33"), &run.sandbox) else {
        return;
    };
    kubectl_workflow::run(&k, &run.sandbox).await;
    run.sandbox.shutdown().await;
}

/// With `rbac: enforce`: `auth can-i` answers from the caller's rules (yes → 0, no → 1),
/// `--list` prints them, and a forbidden delete prints upstream's Forbidden text.
async fn auth_can_i_follows_rbac(minor: &str) {
    let Some((run, reader)) = tools::start_with_rbac().await else {
        return;
    };
    let Some(admin) = Kubectl::new(Some(minor), &run.sandbox) else {
        return;
    };
    let Some(k) = Kubectl::with_kubeconfig(Some(minor), &run.sandbox, &reader) else {
        return;
    };
    let no = k
        .run(&["auth", "can-i", "list", "pods", "-n", "shop"])
        .await;
    assert_eq!(
        (no.code, no.stdout.trim()),
        (Some(1), "no"),
        "{}",
        no.both()
    );
    let manifest = admin.manifest("reader.yaml", tools::READER_RBAC);
    admin.ok(&["apply", "-f", &manifest]).await;
    let yes = k
        .run(&["auth", "can-i", "list", "pods", "-n", "shop"])
        .await;
    assert_eq!(
        (yes.code, yes.stdout.trim()),
        (Some(0), "yes"),
        "{}",
        yes.both()
    );
    let delete = k
        .run(&["auth", "can-i", "delete", "pods", "-n", "shop"])
        .await;
    assert_eq!(
        (delete.code, delete.stdout.trim()),
        (Some(1), "no"),
        "{}",
        delete.both()
    );
    let elsewhere = k
        .run(&["auth", "can-i", "list", "pods", "-n", "default"])
        .await;
    assert_eq!(elsewhere.code, Some(1), "{}", elsewhere.both());
    let masters = admin.run(&["auth", "can-i", "delete", "nodes"]).await;
    assert_eq!(
        (masters.code, masters.stdout.trim()),
        (Some(0), "yes"),
        "{}",
        masters.both()
    );

    let list = k.ok(&["auth", "can-i", "--list", "-n", "shop"]).await;
    let pods_row = list
        .lines()
        .find(|l| l.starts_with("pods "))
        .unwrap_or_else(|| panic!("a pods row: {list}"));
    assert!(pods_row.trim_end().ends_with("[get list]"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("selfsubjectaccessreviews.authorization.k8s.io ")),
        "{list}"
    );

    let pods = k.ok(&["get", "pods", "-n", "shop", "-o", "name"]).await;
    let pod = pods
        .lines()
        .next()
        .expect("a pod")
        .trim_start_matches("pod/")
        .to_owned();
    let denied = k.run(&["delete", "pod", &pod, "-n", "shop"]).await;
    assert_eq!(denied.code, Some(1), "{}", denied.both());
    assert_eq!(
        denied.stderr.trim(),
        format!(
            "Error from server (Forbidden): pods \"{pod}\" is forbidden: User \"system:serviceaccount:shop:reader\" cannot delete resource \"pods\" in API group \"\" in the namespace \"shop\""
        ),
        "{}",
        denied.both()
    );
    run.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_oldest_auth_can_i_follows_rbac() {
    auth_can_i_follows_rbac("1.27").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_newest_auth_can_i_follows_rbac() {
    auth_can_i_follows_rbac("1.33").await;
}

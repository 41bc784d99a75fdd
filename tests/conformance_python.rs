//! Conformance: the official Python client (`kubernetes` package in `.venv`) against the
//! sandbox, through its generated methods, exactly as Chaos Toolkit and scripts call them.
//!
//! Without the client a test fails under `CI=true` and is skipped loudly otherwise.

#[path = "support/tools.rs"]
#[allow(dead_code)]
mod shared_tools;

#[path = "support/tls.rs"]
mod shared_tls;

#[path = "conformance/tools.rs"]
mod tools;

use std::path::PathBuf;

use tools::{Running, require_tool, start};

fn python() -> Option<PathBuf> {
    require_tool(
        "the Python kubernetes client",
        tools::python_client(),
        "run `make setup` (creates .venv with scripts/requirements-test.txt)",
    )
}

/// Runs `script` with the sandbox's kubeconfig as `sys.argv[1]`; returns stdout, asserting exit 0.
async fn run_script(py: &std::path::Path, running: &Running, script: &str) -> String {
    let kubeconfig = running
        .sandbox
        .kubeconfig_path()
        .to_string_lossy()
        .into_owned();
    let out = tools::run(py, &["-c", script, &kubeconfig], &[]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

const PROXY: &str = r#"
import json, sys
from kubernetes import client, config
from kubernetes.client.rest import ApiException
config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
for target in ["web:80", "web:http", "http:web:80"]:
    body = v1.connect_get_namespaced_service_proxy_with_path(target, "shop", "healthz")
    reply = json.loads(body.replace("'", '"')) if isinstance(body, str) else body
    print("OK", target, reply["path"], reply["pod"].startswith("web-"))
for target in ["web:9999", "web:nosuchport", "nope:80"]:
    try:
        v1.connect_get_namespaced_service_proxy_with_path(target, "shop", "healthz")
        print("UNEXPECTED", target)
    except ApiException as e:
        print("ERR", target, e.status, json.loads(e.body)["message"])
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_service_proxy_decodes_the_target_and_checks_the_port() {
    let Some(py) = python() else { return };
    let running = start().await;
    let out = run_script(&py, &running, PROXY).await;
    for target in ["web:80", "web:http", "http:web:80"] {
        assert!(out.contains(&format!("OK {target} /healthz True")), "{out}");
    }
    assert!(
        out.contains("ERR web:9999 503 no service port 9999 found for service \"web\""),
        "{out}"
    );
    assert!(
        out.contains(
            "ERR web:nosuchport 503 no endpoints available for service \"web:nosuchport\""
        ),
        "{out}"
    );
    assert!(
        out.contains("ERR nope:80 404 services \"nope\" not found"),
        "{out}"
    );
    assert!(!out.contains("UNEXPECTED"), "{out}");
    running.sandbox.shutdown().await;
}

const WATCH: &str = r#"
import sys
from kubernetes import client, config, watch
config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
apps = client.AppsV1Api()
listed = v1.list_namespaced_pod("shop", label_selector="app=web")
print("LISTED", len(listed.items))
apps.patch_namespaced_deployment_scale("web", "shop", {"spec": {"replicas": 4}})
w = watch.Watch()
added = set()
ready = set()
for ev in w.stream(v1.list_namespaced_pod, "shop", label_selector="app=web",
                   resource_version=listed.metadata.resource_version, timeout_seconds=20):
    pod = ev["object"]
    if ev["type"] == "ADDED":
        added.add(pod.metadata.name)
    conditions = pod.status.conditions or []
    if ev["type"] == "MODIFIED" and any(c.type == "Ready" and c.status == "True" for c in conditions):
        ready.add(pod.metadata.name)
    if added and added <= ready:
        w.stop()
print("ADDED", len(added), "READY", len(added & ready))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_watch_streams_changes_from_a_resource_version() {
    let Some(py) = python() else { return };
    let running = start().await;
    let out = run_script(&py, &running, WATCH).await;
    assert!(out.contains("LISTED 3"), "{out}");
    assert!(
        out.contains("ADDED 1 READY 1"),
        "only the new pod is added: {out}"
    );
    running.sandbox.shutdown().await;
}

const LEASE: &str = r#"
import sys
from kubernetes import client, config
from kubernetes.client.rest import ApiException
config.load_kube_config(config_file=sys.argv[1])
coord = client.CoordinationV1Api()
body = client.V1Lease(metadata=client.V1ObjectMeta(name="leader"),
                      spec=client.V1LeaseSpec(holder_identity="a", lease_duration_seconds=15))
created = coord.create_namespaced_lease("shop", body)
first = coord.read_namespaced_lease("leader", "shop")
print("HOLDER", first.spec.holder_identity)
first.spec.holder_identity = "b"
taken = coord.replace_namespaced_lease("leader", "shop", first)
print("TAKEN", taken.spec.holder_identity, taken.metadata.resource_version != first.metadata.resource_version)
stale = first
stale.spec.holder_identity = "c"
try:
    coord.replace_namespaced_lease("leader", "shop", stale)
    print("UNEXPECTED stale write accepted")
except ApiException as e:
    print("CONFLICT", e.status, e.reason)
print("NOW", coord.read_namespaced_lease("leader", "shop").spec.holder_identity)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_lease_write_with_a_stale_resource_version_conflicts() {
    let Some(py) = python() else { return };
    let running = start().await;
    let out = run_script(&py, &running, LEASE).await;
    assert!(out.contains("HOLDER a"), "{out}");
    assert!(out.contains("TAKEN b True"), "{out}");
    assert!(out.contains("CONFLICT 409 Conflict"), "{out}");
    assert!(out.contains("NOW b"), "{out}");
    assert!(!out.contains("UNEXPECTED"), "{out}");
    running.sandbox.shutdown().await;
}

const DRY_RUN: &str = r#"
import sys
from kubernetes import client, config
config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
before = len(v1.list_namespaced_pod("shop", label_selector="app=web").items)
v1.delete_collection_namespaced_pod("shop", label_selector="app=web", dry_run="All")
pod = v1.list_namespaced_pod("shop", label_selector="app=web").items[0]
v1.delete_namespaced_pod(pod.metadata.name, "shop", dry_run="All")
left = v1.list_namespaced_pod("shop", label_selector="app=web").items
print("BEFORE", before, "AFTER", len(left), "TERMINATING", sum(1 for p in left if p.metadata.deletion_timestamp))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_dry_run_deletes_delete_nothing() {
    let Some(py) = python() else { return };
    let running = start().await;
    let out = run_script(&py, &running, DRY_RUN).await;
    assert!(out.contains("BEFORE 3 AFTER 3 TERMINATING 0"), "{out}");
    running.sandbox.shutdown().await;
}

const FORBIDDEN: &str = r#"
import json, sys
from kubernetes import client, config
from kubernetes.client.rest import ApiException
config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
name = v1.list_namespaced_pod("shop").items[0].metadata.name
try:
    v1.delete_namespaced_pod(name, "shop")
    print("UNEXPECTED")
except ApiException as e:
    body = json.loads(e.body)
    print(json.dumps({"status": e.status, "name": name, "body": body}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_forbidden_call_returns_the_upstream_status() {
    let Some(py) = python() else { return };
    let Some((running, reader)) = tools::start_with_rbac().await else {
        return;
    };
    let admin_cfg = running
        .sandbox
        .kubeconfig_path()
        .to_string_lossy()
        .into_owned();
    let grant = format!(
        r#"
import sys, yaml
from kubernetes import client, config, utils
config.load_kube_config(config_file=sys.argv[1])
utils.create_from_yaml(client.ApiClient(), yaml_objects=list(yaml.safe_load_all({:?})))
"#,
        tools::READER_RBAC
    );
    let granted = tools::run(&py, &["-c", &grant, &admin_cfg], &[]).await;
    assert!(
        granted.status.success(),
        "{}",
        String::from_utf8_lossy(&granted.stderr)
    );
    let reader_cfg = reader.to_string_lossy().into_owned();
    let out = tools::run(&py, &["-c", FORBIDDEN, &reader_cfg], &[]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    let name = v["name"].as_str().expect("a pod name");
    assert_eq!(v["status"], 403);
    assert_eq!(
        v["body"],
        serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": format!("pods \"{name}\" is forbidden: User \"system:serviceaccount:shop:reader\" cannot delete resource \"pods\" in API group \"\" in the namespace \"shop\""),
            "reason": "Forbidden",
            "details": {"name": name, "kind": "pods"},
            "code": 403,
        })
    );
    running.sandbox.shutdown().await;
}

//! Conformance: Chaos Toolkit (`chaostoolkit` + `chaostoolkit-kubernetes` in `.venv`) runs a
//! real experiment against the sandbox through its kubeconfig, as a user of that tool would.
//!
//! Without the tools a test fails under `CI=true` and is skipped loudly otherwise.

#[path = "support/tools.rs"]
#[allow(dead_code)]
mod shared_tools;

#[path = "support/tls.rs"]
#[allow(dead_code)]
mod shared_tls;

#[path = "conformance/tools.rs"]
mod tools;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::{Value, json};
use tools::{Running, eventually, require_tool, start};

/// `.venv/bin/chaos` when Chaos Toolkit and its Kubernetes extension are installed.
fn chaos() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin");
    let usable = std::process::Command::new(venv.join("python"))
        .args(["-c", "import chaoslib, chaosk8s"])
        .output()
        .is_ok_and(|o| o.status.success());
    require_tool(
        "Chaos Toolkit with chaostoolkit-kubernetes",
        usable.then(|| venv.join("chaos")),
        "run `scripts/setup` (installs scripts/requirements-test.txt into .venv)",
    )
}

async fn client(running: &Running) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(running.sandbox.kubeconfig_path())
        .expect("kubeconfig reads");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("kubeconfig loads");
    kube::Client::try_from(config).expect("client builds")
}

/// The API server's base URL, read back from the kubeconfig the sandbox wrote.
fn api_server(running: &Running) -> String {
    let kubeconfig = std::fs::read_to_string(running.sandbox.kubeconfig_path()).expect("reads");
    kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("kubeconfig names a server")
        .trim()
        .to_string()
}

/// Names of the `app=web` pods on `node`, terminating ones included.
async fn web_pods_on(kube: &kube::Client, node: &str) -> Vec<String> {
    let pods: kube::Api<Pod> = kube::Api::namespaced(kube.clone(), "shop");
    let params = kube::api::ListParams::default()
        .labels("app=web")
        .fields(&format!("spec.nodeName={node}"));
    pods.list(&params)
        .await
        .expect("pods list")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect()
}

/// A `chaosk8s` Python activity.
fn python_activity(kind: &str, name: &str, module: &str, func: &str, args: Value) -> Value {
    json!({
        "type": kind, "name": name,
        "provider": {"type": "python", "module": module, "func": func, "arguments": args},
    })
}

/// The experiment: kill a pod, drain a node (refused by a budget, then allowed after the
/// budget is relaxed), with the pods, the Deployment and the Service checked before and after.
fn experiment(python: &Path, api: &str, node: &str) -> Value {
    let proxy = format!("{api}/api/v1/namespaces/shop/services/web:80/proxy/healthz");
    let http_probe = |name: &str| {
        json!({
            "type": "probe", "name": name, "tolerance": 200,
            "provider": {"type": "http", "url": proxy, "timeout": 5},
        })
    };
    let mut pods_running = python_activity(
        "probe",
        "web-pods-running",
        "chaosk8s.pod.probes",
        "pods_in_phase",
        json!({"label_selector": "app=web", "phase": "Running", "ns": "shop"}),
    );
    pods_running["tolerance"] = json!(true);
    let mut available = python_activity(
        "probe",
        "web-available-and-healthy",
        "chaosk8s.deployment.probes",
        "deployment_available_and_healthy",
        json!({"name": "web", "ns": "shop"}),
    );
    available["tolerance"] = json!(true);
    let drain = |name: &str| {
        python_activity(
            "action",
            name,
            "chaosk8s.node.actions",
            "drain_nodes",
            json!({"name": node, "timeout": 60}),
        )
    };
    let mut terminate = python_activity(
        "action",
        "terminate-one-web-pod",
        "chaosk8s.pod.actions",
        "terminate_pods",
        json!({"label_selector": "app=web", "ns": "shop", "qty": 1}),
    );
    terminate["pauses"] = json!({"after": 3});
    let relax = json!({
        "type": "action", "name": "relax-budget",
        "provider": {
            "type": "process", "path": python,
            "arguments": ["-c", RELAX_BUDGET],
        },
    });
    let mut allowed = drain("drain-allowed");
    allowed["pauses"] = json!({"after": 4});
    json!({
        "version": "1.0.0",
        "title": "web survives a pod kill and a node drain",
        "description": "Chaos Toolkit against the steadfast sandbox",
        "steady-state-hypothesis": {
            "title": "web is whole and answers",
            "probes": [pods_running, available, http_probe("web-answers")],
        },
        "method": [terminate, drain("drain-refused"), relax, allowed, http_probe("web-answers-after-drain")],
        "rollbacks": [python_activity(
            "action", "uncordon", "chaosk8s.node.actions", "uncordon_node", json!({"name": node}),
        )],
    })
}

/// Lets every web pod be disrupted (the budget first demanded all three).
const RELAX_BUDGET: &str = r#"
from kubernetes import client, config
config.load_kube_config()
client.PolicyV1Api().patch_namespaced_pod_disruption_budget(
    "web", "shop", {"spec": {"minAvailable": 0}})
"#;

/// Runs `chaos run` on `experiment` with the sandbox's kubeconfig; returns the journal.
async fn chaos_run(chaos: &Path, running: &Running, experiment: &Value) -> Value {
    let dir = running.dir.path();
    let file = dir.join("experiment.json");
    std::fs::write(&file, serde_json::to_vec_pretty(experiment).expect("json")).expect("write");
    let journal = dir.join("journal.json");
    let args = [
        "--no-version-check",
        "--settings",
        &dir.join("settings.yaml").to_string_lossy(),
        "--log-file",
        &dir.join("chaostoolkit.log").to_string_lossy(),
        "run",
        "--journal-path",
        &journal.to_string_lossy(),
        &file.to_string_lossy(),
    ]
    .map(|s| s.to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = tools::run(
        chaos,
        &args,
        &[("KUBECONFIG", running.sandbox.kubeconfig_path())],
    )
    .await;
    let text = std::fs::read_to_string(&journal).unwrap_or_else(|e| {
        panic!(
            "no journal ({e}); chaos said:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    serde_json::from_str(&text).expect("the journal is JSON")
}

/// Each activity's status in the method, by name, and its exception text.
fn statuses(journal: &Value, part: &str) -> BTreeMap<String, (String, String)> {
    journal[part]
        .as_array()
        .into_iter()
        .flatten()
        .map(|run| {
            let exception = run["exception"]
                .as_array()
                .map(|l| l.iter().filter_map(Value::as_str).collect::<String>())
                .unwrap_or_default();
            (
                run["activity"]["name"].as_str().unwrap_or("").to_string(),
                (run["status"].as_str().unwrap_or("").to_string(), exception),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaostoolkit_kills_drains_and_probes_the_sandbox() {
    let Some(chaos) = chaos() else { return };
    let python = chaos.with_file_name("python");
    let running = start().await;
    let kube = client(&running).await;
    let budgets: kube::Api<PodDisruptionBudget> = kube::Api::namespaced(kube.clone(), "shop");
    let budget: PodDisruptionBudget = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"minAvailable": 3, "selector": {"matchLabels": {"app": "web"}}},
    }))
    .expect("budget");
    budgets
        .create(&Default::default(), &budget)
        .await
        .expect("budget created");
    let pods: kube::Api<Pod> = kube::Api::namespaced(kube.clone(), "shop");
    let node = eventually("a web pod bound to a node", Duration::from_secs(20), || {
        let pods = pods.clone();
        async move {
            let list = pods
                .list(&kube::api::ListParams::default().labels("app=web"))
                .await
                .ok()?;
            list.items
                .iter()
                .find_map(|p| p.spec.as_ref()?.node_name.clone())
        }
    })
    .await;

    let exp = experiment(&python, &api_server(&running), &node);
    let journal = chaos_run(&chaos, &running, &exp).await;
    let dump = serde_json::to_string_pretty(&journal).unwrap_or_default();
    assert_eq!(journal["status"], "completed", "{dump}");
    assert_eq!(journal["deviated"], false, "{dump}");
    for phase in ["before", "after"] {
        let state = &journal["steady_states"][phase];
        assert_eq!(state["steady_state_met"], true, "{phase}: {dump}");
        for probe in state["probes"].as_array().expect("probes") {
            assert_eq!(probe["status"], "succeeded", "{phase}: {probe}");
            assert_eq!(probe["tolerance_met"], true, "{phase}: {probe}");
        }
    }

    let method = statuses(&journal, "run");
    let status = |name: &str| method.get(name).map(|(s, _)| s.as_str());
    assert_eq!(status("terminate-one-web-pod"), Some("succeeded"), "{dump}");
    assert_eq!(status("drain-refused"), Some("failed"), "{dump}");
    let refused = &method["drain-refused"].1;
    assert!(
        refused.contains("429") || refused.contains("TooManyRequests"),
        "the budget refuses with 429: {refused}"
    );
    assert!(
        refused.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{refused}"
    );
    assert_eq!(status("relax-budget"), Some("succeeded"), "{dump}");
    assert_eq!(status("drain-allowed"), Some("succeeded"), "{dump}");
    assert_eq!(
        status("web-answers-after-drain"),
        Some("succeeded"),
        "{dump}"
    );
    let killed = journal["run"][0]["output"]
        .as_array()
        .expect("terminate_pods names the pods it deleted");
    assert_eq!(killed.len(), 1, "{dump}");
    let rollbacks = statuses(&journal, "rollbacks");
    assert_eq!(
        rollbacks.get("uncordon").map(|(s, _)| s.as_str()),
        Some("succeeded"),
        "{dump}"
    );

    // The drained node holds no web pod, the killed pod is gone, and the rollback uncordoned.
    assert_eq!(web_pods_on(&kube, &node).await, Vec::<String>::new());
    let killed = killed[0].as_str().expect("a pod name");
    assert!(
        pods.get_opt(killed).await.expect("get").is_none(),
        "{killed}"
    );
    let nodes: kube::Api<Node> = kube::Api::all(kube.clone());
    let unschedulable = nodes
        .get(&node)
        .await
        .expect("node")
        .spec
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    assert!(!unschedulable, "the rollback uncordons {node}");
    running.sandbox.shutdown().await;
}

/// `chaosk8s.event.probes.get_events` with one `events.k8s.io/v1` field label and one
/// core-v1 label; prints how each ended.
const GET_EVENTS: &str = r#"
import json
from chaosk8s.event.probes import get_events
from kubernetes.client.rest import ApiException
for selector in ["regarding.kind=Pod,type=Normal", "involvedObject.kind=Pod"]:
    try:
        events = get_events(field_selector=selector, limit=500)
        kinds = {e["regarding"]["kind"] for e in events["items"]}
        print("OK", selector, len(events["items"]) > 0, sorted(kinds))
    except ApiException as e:
        print("ERR", selector, e.status, json.loads(e.body)["message"])
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaostoolkit_get_events_field_labels_are_the_events_v1_ones() {
    let Some(chaos) = chaos() else { return };
    let python = chaos.with_file_name("python");
    let running = start().await;
    let out = tools::run(
        &python,
        &["-c", GET_EVENTS],
        &[("KUBECONFIG", running.sandbox.kubeconfig_path())],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("OK regarding.kind=Pod,type=Normal True ['Pod']"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "ERR involvedObject.kind=Pod 400 field label not supported: involvedObject.kind"
        ),
        "{stdout}"
    );
    running.sandbox.shutdown().await;
}

//! Unmodified third-party clients against the sandbox: real kubectl and the Python client.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::support::{eventually, kube_client, start};

const KUBECTL: &str = "/usr/bin/kubectl";

struct Kubectl {
    kubeconfig: PathBuf,
    cache: tempfile::TempDir,
}

impl Kubectl {
    fn find(kubeconfig: &Path) -> Option<Self> {
        crate::tools::require(KUBECTL, Some(KUBECTL).filter(|k| Path::new(k).exists()))?;
        Some(Self {
            kubeconfig: kubeconfig.to_path_buf(),
            cache: tempfile::tempdir().ok()?,
        })
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(KUBECTL);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.cache.path())
            .args(args);
        cmd.env_remove("KUBECONFIG").kill_on_drop(true);
        cmd
    }

    async fn run(&self, args: &[&str]) -> Output {
        tokio::time::timeout(Duration::from_secs(60), self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} timed out"))
            .expect("kubectl runs")
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

fn ready_running(line: &str) -> bool {
    line.contains("1/1") && line.contains("Running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_deletes_cordons_drains() {
    let run = start().await;
    let Some(kubectl) = Kubectl::find(run.sandbox.kubeconfig_path()) else {
        return;
    };
    let nodes = kubectl.ok(&["get", "nodes", "-o", "wide"]).await;
    assert!(
        nodes.contains("INTERNAL-IP") && nodes.contains("CONTAINER-RUNTIME"),
        "{nodes}"
    );
    assert_eq!(
        nodes.lines().filter(|l| l.contains(" Ready ")).count(),
        6,
        "{nodes}"
    );

    let pods = kubectl
        .ok(&["get", "pods", "-n", "shop", "-l", "app=web"])
        .await;
    assert!(pods.starts_with("NAME"), "{pods}");
    assert_eq!(
        pods.lines().filter(|l| ready_running(l)).count(),
        6,
        "{pods}"
    );
    let victim = pods
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();

    kubectl.ok(&["delete", "pod", "-n", "shop", &victim]).await;
    let client = kube_client(&run.sandbox).await;
    let api: Api<Pod> = Api::namespaced(client.clone(), "shop");
    eventually(
        "six Ready web pods via kubectl",
        Duration::from_secs(15),
        || async {
            let out = kubectl
                .ok(&["get", "pods", "-n", "shop", "-l", "app=web"])
                .await;
            let ready = out.lines().filter(|l| ready_running(l)).count();
            (ready == 6 && !out.contains(&victim)).then_some(())
        },
    )
    .await;

    let node = run.sandbox.node_names()[0].clone();
    kubectl.ok(&["cordon", &node]).await;
    let shown = kubectl.ok(&["get", "node", &node]).await;
    assert!(shown.contains("SchedulingDisabled"), "{shown}");
    kubectl.ok(&["uncordon", &node]).await;
    let shown = kubectl.ok(&["get", "node", &node]).await;
    assert!(!shown.contains("SchedulingDisabled"), "{shown}");

    // Drain against a budget that allows nothing: evictions are refused with 429 and retried;
    // relaxing the budget lets the drain finish.
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "shop");
    pdbs.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"minAvailable": 6}})),
    )
    .await
    .unwrap();
    eventually("budget allows nothing", Duration::from_secs(5), || async {
        (pdbs.get("web").await.ok()?.status?.disruptions_allowed == Some(0)).then_some(())
    })
    .await;
    // A DaemonSet puts a daemon on every node; drain must leave it alone.
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), "shop");
    let ds: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "node-agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "node-agent"}},
            "template": {"metadata": {"labels": {"app": "node-agent"}},
                         "spec": {"containers": [{"name": "agent", "image": "steadfast/agent:v1"}]}}
        }
    }))
    .unwrap();
    daemonsets
        .create(&PostParams::default(), &ds)
        .await
        .unwrap();
    eventually("a daemon on each node", Duration::from_secs(15), || async {
        let d = daemonsets.get("node-agent").await.ok()?;
        let st = d.status?;
        (st.desired_number_scheduled == 6 && st.number_ready == 6).then_some(())
    })
    .await;
    let drain_node = api
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
        .into_iter()
        .find_map(|p| p.spec.and_then(|s| s.node_name))
        .unwrap();
    let drain = kubectl
        .command(&[
            "drain",
            &drain_node,
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=60s",
        ])
        .output();
    let relax = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        pdbs.patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"minAvailable": 5}})),
        )
        .await
        .unwrap();
    };
    let (out, ()) = tokio::join!(tokio::time::timeout(Duration::from_secs(90), drain), relax);
    let out = out.expect("drain finishes").expect("kubectl runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "drain failed: {stderr}\n{stdout}");
    assert!(
        stderr.contains("disruption budget"),
        "a blocked eviction was retried: {stderr}"
    );
    assert!(stdout.contains("drained"), "{stdout}");
    assert!(
        stderr.contains("ignoring DaemonSet-managed Pods"),
        "{stderr}"
    );
    let left = api
        .list(&ListParams::default().fields(&format!("spec.nodeName={drain_node}")))
        .await
        .unwrap();
    for p in &left.items {
        let daemon = p
            .metadata
            .owner_references
            .as_ref()
            .is_some_and(|o| o.iter().any(|o| o.kind == "DaemonSet"));
        assert!(
            daemon || p.metadata.deletion_timestamp.is_some(),
            "only the daemon stays on the drained node"
        );
    }
    assert!(
        left.items
            .iter()
            .any(|p| p.metadata.deletion_timestamp.is_none()),
        "the daemon stays"
    );

    // `get -w` streams Table rows: the initial list, then changes.
    let watch = kubectl
        .command(&[
            "get",
            "pods",
            "-n",
            "shop",
            "-l",
            "app=api",
            "-w",
            "--request-timeout=3s",
        ])
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), watch)
        .await
        .expect("watch ends")
        .expect("kubectl runs");
    let rows = String::from_utf8_lossy(&out.stdout);
    assert!(
        rows.starts_with("NAME") && rows.lines().filter(|l| l.starts_with("api-")).count() >= 3,
        "{rows}"
    );

    let events = kubectl.ok(&["get", "events", "-n", "shop"]).await;
    assert!(
        events.contains("LAST SEEN") && events.contains("Scheduled") && events.contains("Evicted"),
        "{events}"
    );
    // Client-side apply (with kubectl's validation on) and a rolling update.
    let manifest = kubectl.cache.path().join("ui.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ui, namespace: shop}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: ui}}\n  template:\n    metadata: {labels: {app: ui}}\n    spec: {containers: [{name: ui, image: 'ui:v1'}]}\n",
    )
    .unwrap();
    let manifest = manifest.to_string_lossy().into_owned();
    kubectl.ok(&["apply", "-f", &manifest]).await;
    kubectl
        .ok(&[
            "rollout",
            "status",
            "deploy/ui",
            "-n",
            "shop",
            "--timeout=30s",
        ])
        .await;
    kubectl
        .ok(&["set", "image", "deploy/ui", "-n", "shop", "ui=ui:v2"])
        .await;
    let rolled = kubectl
        .ok(&[
            "rollout",
            "status",
            "deploy/ui",
            "-n",
            "shop",
            "--timeout=30s",
        ])
        .await;
    assert!(rolled.contains("successfully rolled out"), "{rolled}");
    let sets = kubectl
        .ok(&["get", "rs", "-n", "shop", "-l", "app=ui"])
        .await;
    assert_eq!(sets.lines().count(), 3, "old and new ReplicaSet: {sets}");

    let other = kubectl
        .ok(&["get", "deploy,svc,pdb,rs,endpointslices", "-n", "shop"])
        .await;
    assert!(
        other.contains("deployment.apps/web") && other.contains("service/web"),
        "{other}"
    );
    run.sandbox.shutdown().await;
}

fn python() -> Option<PathBuf> {
    crate::tools::require_venv_python("the Python kubernetes client", &["kubernetes"])
}

const PY_SCRIPT: &str = r#"
import sys
from kubernetes import client, config, watch
config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
pods = v1.list_namespaced_pod("shop", label_selector="app=web", limit=4)
print("LIST", len(pods.items), "MORE", bool(pods.metadata._continue))
rest = v1.list_namespaced_pod("shop", label_selector="app=web", limit=4, _continue=pods.metadata._continue)
print("PAGE2", len(rest.items))
w = watch.Watch()
seen = 0
for ev in w.stream(v1.list_namespaced_pod, "shop", label_selector="app=web", timeout_seconds=10):
    if ev["type"] == "ADDED":
        seen += 1
    if seen >= 6:
        w.stop()
print("WATCH", seen)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_lists_and_watches_pods() {
    let Some(py) = python() else { return };
    let run = start().await;
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(py)
            .args(["-c", PY_SCRIPT])
            .arg(run.sandbox.kubeconfig_path())
            .env_remove("KUBECONFIG")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("python finishes")
    .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("LIST 4 MORE True"), "{stdout}");
    assert!(stdout.contains("PAGE2 2"), "{stdout}");
    assert!(stdout.contains("WATCH 6"), "{stdout}");
    run.sandbox.shutdown().await;
}

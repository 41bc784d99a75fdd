//! The environment a scenario runs in: a recording steadfast client for the faults, a plain
//! kube client for setting up and checking, and the namespace holding the `web` (6 replicas,
//! budget `web` with minAvailable 5) and `api` (3 replicas) Deployments.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use steadfast::fault::kube_context::KubeFaultContext;
use steadfast::fault::kube_undo::KubeUndoer;
use steadfast::fault::targets::{ZONE_LABEL, is_running_and_ready};
use steadfast::fault::{Fault, FaultPlan, Injection, RollbackOutcome, Undoer};
use steadfast::infra::kube::{KubeClient, KubeOptions};
use steadfast::sandbox::{Sandbox, SandboxOptions, Topology};
use steadfast::spec::Percent;
use steadfast::spec::safety::SafetySpec;

/// Timings scaled down so evictions and replacements play out in about a second.
pub const TOPOLOGY: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: SandboxTopology
region: us-east-1
zones:
  - {name: us-east-1a, nodes: 2}
  - {name: us-east-1b, nodes: 2}
  - {name: us-east-1c, nodes: 2}
timing:
  podStartupDelay: 300ms
  nodeBootDelay: 500ms
  terminationGracePeriod: 1s
  nodeMonitorGracePeriod: 5s
  toleration: 5s
  leaseRenewInterval: 500ms
  preStopDelay: 100ms
deployments:
  - {name: web, namespace: shop, replicas: 6, labels: {app: web}, service: {port: 80}, disruptionBudget: {minAvailable: 5}}
  - {name: api, namespace: shop, replicas: 3, labels: {app: api}, service: {port: 80}}
"#;

/// Where a scenario runs.
pub struct Env {
    /// The client the faults use; records every request's RBAC triple.
    pub kube: KubeClient,
    /// A plain client for setup and checks (not recorded).
    pub raw: kube::Client,
    /// The namespace of the workloads.
    pub ns: String,
    /// Whether this is the sandbox (which can hold fake DaemonSet pods).
    pub is_sandbox: bool,
    sandbox: Option<(Sandbox, tempfile::TempDir)>,
}

fn options(kubeconfig: Option<std::path::PathBuf>) -> KubeOptions {
    KubeOptions {
        kubeconfig,
        qps: 50,
        burst: 100,
        record_access: true,
        ..KubeOptions::default()
    }
}

impl Env {
    /// A fresh sandbox with the test topology, ready.
    pub async fn sandbox() -> Env {
        let topology = Topology::parse(TOPOLOGY, "kube faults topology").expect("topology");
        let dir = tempfile::tempdir().expect("temp dir");
        let sandbox = Sandbox::start(&topology, SandboxOptions::new(dir.path()))
            .await
            .expect("sandbox starts");
        sandbox
            .wait_ready(Duration::from_secs(30))
            .await
            .expect("sandbox ready");
        let path = sandbox.kubeconfig_path().to_path_buf();
        let kube = KubeClient::connect(&options(Some(path.clone())))
            .await
            .expect("steadfast client");
        let kc = kube::config::Kubeconfig::read_from(&path).expect("kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .expect("config");
        let raw = kube::Client::try_from(config).expect("raw client");
        let env = Env {
            kube,
            raw,
            ns: "shop".into(),
            is_sandbox: true,
            sandbox: Some((sandbox, dir)),
        };
        env.wait_ready("app=web", 6).await;
        env.wait_ready("app=api", 3).await;
        env
    }

    /// A fresh namespace on the cluster `KUBECONFIG` points at, with the same workloads.
    pub async fn cluster() -> Env {
        let kube = KubeClient::connect(&options(None))
            .await
            .expect("steadfast client");
        let raw = kube::Client::try_default().await.expect("raw client");
        let suffix = format!(
            "{:08x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        );
        let ns = format!("steadfast-e2e-{suffix}");
        let env = Env {
            kube,
            raw,
            ns,
            is_sandbox: false,
            sandbox: None,
        };
        env.create_workloads().await;
        env.wait_ready("app=web", 6).await;
        env.wait_ready("app=api", 3).await;
        env
    }

    async fn create_workloads(&self) {
        let pp = PostParams::default();
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.raw.clone());
        namespaces
            .create(
                &pp,
                &serde_json::from_value(json!({"metadata": {"name": self.ns}})).expect("ns"),
            )
            .await
            .expect("namespace created");
        let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
            Api::namespaced(self.raw.clone(), &self.ns);
        for (name, replicas) in [("web", 6), ("api", 3)] {
            let d = json!({
                "metadata": {"name": name},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {
                            "terminationGracePeriodSeconds": 1,
                            "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.9"}]
                        }
                    }
                }
            });
            deployments
                .create(&pp, &serde_json::from_value(d).expect("deployment"))
                .await
                .expect("deployment created");
        }
        self.create_budget("web", "app=web", 5).await;
    }

    /// The sandbox's kubeconfig, or `None` (the default lookup) on a cluster.
    pub fn kubeconfig(&self) -> Option<std::path::PathBuf> {
        self.sandbox
            .as_ref()
            .map(|(sb, _)| sb.kubeconfig_path().to_path_buf())
    }

    /// Removes what the environment created.
    pub async fn teardown(self) {
        if let Some((sandbox, _dir)) = self.sandbox {
            sandbox.shutdown().await;
        } else {
            let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.raw.clone());
            let _ = namespaces.delete(&self.ns, &DeleteParams::default()).await;
        }
    }

    /// Safety rules confined to the test namespace, wide enough for the scenarios.
    pub fn safety(&self) -> SafetySpec {
        SafetySpec {
            allow_namespaces: vec![self.ns.clone()],
            max_pods: 10,
            max_nodes: 2,
            max_percent: Percent::new(100.0),
            ..SafetySpec::default()
        }
    }

    /// The fault context for `safety`.
    pub fn context(&self, safety: SafetySpec) -> KubeFaultContext {
        KubeFaultContext {
            kube: self.kube.clone(),
            safety,
            run_seed: 7,
            own_pod: None,
        }
    }

    /// Pods of the namespace matching `label`, Running, Ready and not terminating.
    pub async fn ready_pods(&self, label: &str) -> Vec<Pod> {
        self.pods(label)
            .await
            .into_iter()
            .filter(is_running_and_ready)
            .collect()
    }

    /// Every pod of the namespace matching `label`.
    pub async fn pods(&self, label: &str) -> Vec<Pod> {
        let api: Api<Pod> = Api::namespaced(self.raw.clone(), &self.ns);
        api.list(&ListParams::default().labels(label))
            .await
            .map(|l| l.items)
            .unwrap_or_default()
    }

    /// Waits until `n` pods matching `label` are Ready.
    pub async fn wait_ready(&self, label: &str, n: usize) {
        eventually(
            &format!("{n} ready pods {label}"),
            Duration::from_secs(120),
            || async { (self.ready_pods(label).await.len() == n).then_some(()) },
        )
        .await;
    }

    /// A node by name.
    pub async fn node(&self, name: &str) -> Node {
        let api: Api<Node> = Api::all(self.raw.clone());
        api.get(name).await.expect("node exists")
    }

    /// Merge-patches a node (test setup).
    pub async fn patch_node(&self, name: &str, patch: serde_json::Value) {
        let api: Api<Node> = Api::all(self.raw.clone());
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("node patched");
    }

    /// Rewrites a node's taints with `edit` (test setup; keeps whatever else is there).
    pub async fn edit_taints(
        &self,
        name: &str,
        edit: impl Fn(&mut Vec<k8s_openapi::api::core::v1::Taint>),
    ) {
        // Optimistic concurrency: the node's own status updates may race the edit, so a 409
        // means read again and retry, as any controller would.
        let api: Api<Node> = Api::all(self.raw.clone());
        for _ in 0..20 {
            let node = self.node(name).await;
            let mut taints = node.spec.and_then(|s| s.taints).unwrap_or_default();
            edit(&mut taints);
            let patch = json!({
                "metadata": {"resourceVersion": node.metadata.resource_version},
                "spec": {"taints": taints},
            });
            match api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return,
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(err) => panic!("node taints edited: {err}"),
            }
        }
        panic!("node {name}: taints kept conflicting");
    }

    /// A zone hosting pods of the namespace, and all its nodes (sorted).
    pub async fn zone_with_pods(&self) -> (String, Vec<String>) {
        let nodes: Api<Node> = Api::all(self.raw.clone());
        let nodes = nodes
            .list(&ListParams::default())
            .await
            .expect("nodes")
            .items;
        let hosts: BTreeSet<String> = self
            .pods("app")
            .await
            .into_iter()
            .filter_map(|p| p.spec.and_then(|s| s.node_name))
            .collect();
        let mut zones: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for node in &nodes {
            if let (Some(name), Some(zone)) = (
                node.metadata.name.clone(),
                node.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(ZONE_LABEL)),
            ) {
                zones.entry(zone.clone()).or_default().push(name);
            }
        }
        zones
            .into_iter()
            .find(|(_, names)| names.iter().any(|n| hosts.contains(n)))
            .map(|(zone, mut names)| {
                names.sort();
                (zone, names)
            })
            .expect("a zone hosting pods")
    }

    /// The node of one Ready pod matching `label`.
    pub async fn node_of(&self, label: &str) -> String {
        self.ready_pods(label)
            .await
            .into_iter()
            .find_map(|p| p.spec.and_then(|s| s.node_name))
            .expect("a ready pod with a node")
    }

    /// Creates a PodDisruptionBudget.
    pub async fn create_budget(&self, name: &str, label: &str, min_available: i32) {
        let (k, v) = label.split_once('=').expect("k=v");
        let api: Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> =
            Api::namespaced(self.raw.clone(), &self.ns);
        let pdb = json!({
            "metadata": {"name": name},
            "spec": {"minAvailable": min_available, "selector": {"matchLabels": {k: v}}}
        });
        api.create(
            &PostParams::default(),
            &serde_json::from_value(pdb).expect("pdb"),
        )
        .await
        .expect("budget created");
    }

    /// Deletes a PodDisruptionBudget.
    pub async fn delete_budget(&self, name: &str) {
        let api: Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> =
            Api::namespaced(self.raw.clone(), &self.ns);
        api.delete(name, &DeleteParams::default())
            .await
            .expect("budget deleted");
    }
}

/// Plans and injects, as the engine does (the records would be journaled in between).
pub async fn plan_and_inject(fault: &dyn Fault, run_id: &str) -> (FaultPlan, Injection) {
    let plan = fault.plan(run_id, 0).await.expect("plan");
    let injection = fault.inject(&plan).await.expect("inject");
    (plan, injection)
}

/// Applies every undo record of `plan` in reverse order with a fresh undoer, as a rollback
/// from the journal alone would.
pub async fn rollback(env: &Env, plan: &FaultPlan) -> Vec<RollbackOutcome> {
    let undoer = KubeUndoer::new(env.kube.clone());
    let mut outcomes = Vec::new();
    for record in plan.undo.iter().rev() {
        assert!(undoer.handles(&record.action), "{record:?}");
        outcomes.push(undoer.undo(record).await.expect("undo"));
    }
    outcomes
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

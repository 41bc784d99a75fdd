//! `rbac: enforce`: steadfast runs as its own ServiceAccount with exactly the chart's rules, and
//! a missing verb stops a run before any fault acts, with the API server's 403 wording.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use steadfast::sandbox::{RbacMode, Sandbox, SandboxOptions, Topology};
use support::sandbox::{both, command, repo};

const RUN_LIMIT: Duration = Duration::from_secs(120);

async fn client(kubeconfig: &Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(kubeconfig).expect("the kubeconfig reads");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("the kubeconfig is usable");
    Client::try_from(config).expect("a client")
}

/// The chart's release and namespace in this test: the ServiceAccount is `steadfast/steadfast`
/// and the cluster-scope ClusterRole and binding are `steadfast-steadfast`, as `helm install
/// steadfast charts/steadfast -n steadfast` would create them.
const RELEASE: &str = "steadfast";
const ROLE: &str = "steadfast-steadfast";

/// Renders the chart with Helm's own library (`scripts/chart_check.py`, in `.venv`) and returns
/// its ServiceAccount, ClusterRole and ClusterRoleBinding, or `None` when the tools are missing
/// on a developer's machine (a failure under CI).
fn rendered_rbac() -> Option<Vec<serde_json::Value>> {
    let python = support::tools::require_venv_python(
        "helm-python-sdk and kubernetes-validate",
        &["helm_python", "kubernetes_validate", "yaml"],
    )?;
    let output = std::process::Command::new(python)
        .arg(repo().join("scripts/chart_check.py"))
        .args(["render", "charts/steadfast", "--name", RELEASE])
        .args(["--namespace", RELEASE])
        .current_dir(repo())
        .output()
        .expect("the chart checker starts");
    assert!(
        output.status.success(),
        "helm render failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rendered: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the checker prints JSON");
    let wanted = ["ServiceAccount", "ClusterRole", "ClusterRoleBinding"];
    let objects: Vec<serde_json::Value> = rendered["manifests"]
        .as_array()
        .expect("rendered manifests")
        .iter()
        .map(|m| m["object"].clone())
        .filter(|o| wanted.contains(&o["kind"].as_str().unwrap_or_default()))
        .collect();
    let kinds: BTreeSet<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(wanted),
        "the chart grants through these"
    );
    Some(objects)
}

/// Creates the namespace and the chart's RBAC objects through `admin`.
async fn apply_chart_rbac(admin: &Client, objects: Vec<serde_json::Value>) {
    let pp = PostParams::default();
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some(RELEASE.to_owned());
    Api::<Namespace>::all(admin.clone())
        .create(&pp, &namespace)
        .await
        .expect("namespace created");
    for value in objects {
        match value["kind"].as_str() {
            Some("ServiceAccount") => {
                let sa: ServiceAccount = serde_json::from_value(value).expect("a ServiceAccount");
                Api::<ServiceAccount>::namespaced(admin.clone(), RELEASE)
                    .create(&pp, &sa)
                    .await
                    .expect("service account created");
            }
            Some("ClusterRole") => {
                let role: ClusterRole = serde_json::from_value(value).expect("a ClusterRole");
                Api::<ClusterRole>::all(admin.clone())
                    .create(&pp, &role)
                    .await
                    .expect("role created");
            }
            Some("ClusterRoleBinding") => {
                let b: ClusterRoleBinding = serde_json::from_value(value).expect("a binding");
                Api::<ClusterRoleBinding>::all(admin.clone())
                    .create(&pp, &b)
                    .await
                    .expect("binding created");
            }
            other => panic!("unexpected kind {other:?}"),
        }
    }
}

async fn pod_uids(admin: &Client) -> BTreeSet<String> {
    Api::<Pod>::namespaced(admin.clone(), "shop")
        .list(&ListParams::default())
        .await
        .expect("pods list")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.uid)
        .collect()
}

async fn run_as(kubeconfig: &Path, dir: &Path) -> std::process::Output {
    let journal = dir.join("journal.jsonl");
    let reports = dir.join("reports");
    let env: [(&str, &Path); 5] = [
        ("KUBECONFIG", kubeconfig),
        ("STEADFAST_NAMESPACE", Path::new("steadfast")),
        ("STEADFAST_JOURNAL", &journal),
        ("STEADFAST_REPORTS_DIR", &reports),
        ("STEADFAST_LOG", Path::new("warn")),
    ];
    let child = command(
        &["run", "experiments/sandbox/pod-kill.yaml", "--seed", "3"],
        &env,
    )
    .output();
    tokio::time::timeout(RUN_LIMIT, child)
        .await
        .unwrap_or_else(|_| panic!("the run took longer than {RUN_LIMIT:?}"))
        .expect("the binary starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_charts_rbac_lets_runs_through_and_a_missing_verb_stops_them_before_any_fault() {
    let Some(chart_rbac) = rendered_rbac() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut topology = Topology::load(&repo().join("experiments/sandbox/topology.yaml"))
        .expect("the topology loads");
    topology.rbac = RbacMode::Enforce;
    let sandbox = Sandbox::start(&topology, SandboxOptions::new(dir.path()))
        .await
        .expect("the sandbox starts");
    sandbox
        .wait_ready(Duration::from_secs(60))
        .await
        .expect("ready");
    let admin = client(sandbox.kubeconfig_path()).await;
    apply_chart_rbac(&admin, chart_rbac).await;
    let kubeconfig = sandbox
        .write_service_account_kubeconfig(RELEASE, RELEASE)
        .expect("the ServiceAccount kubeconfig is written");

    let granted = run_as(&kubeconfig, &dir.path().join("granted")).await;
    assert_eq!(granted.status.code(), Some(0), "{}", both(&granted));

    // Take `delete` off pods, as a chart with a stale rule would.
    let roles = Api::<ClusterRole>::all(admin.clone());
    let mut role = roles.get(ROLE).await.expect("the ClusterRole");
    for rule in role.rules.iter_mut().flatten() {
        if rule.resources.as_deref() == Some(&["pods".to_owned()][..]) {
            rule.verbs.retain(|v| v != "delete");
        }
    }
    roles
        .replace(ROLE, &PostParams::default(), &role)
        .await
        .expect("the ClusterRole is replaced");
    let before = pod_uids(&admin).await;
    let denied_dir = dir.path().join("denied");
    let denied = run_as(&kubeconfig, &denied_dir).await;
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert_eq!(denied.status.code(), Some(2), "{}", both(&denied));
    assert!(
        stderr.contains("missing permission: delete pods in namespace shop (hint: "),
        "{}",
        both(&denied)
    );
    assert!(
        stderr.contains("pods is forbidden: User \"system:serviceaccount:steadfast:steadfast\" cannot delete resource \"pods\" in API group \"\" in the namespace \"shop\""),
        "{}",
        both(&denied)
    );
    assert_eq!(pod_uids(&admin).await, before, "no pod was touched");
    let journal = std::fs::read_to_string(denied_dir.join("journal.jsonl")).unwrap_or_default();
    assert!(
        journal.trim().is_empty(),
        "no fault was journalled: {journal}"
    );
    assert!(
        !denied_dir.join("reports").exists(),
        "no report of a run that never started"
    );

    // The server itself answers the same request with that 403.
    let sa = client(&kubeconfig).await;
    let name = before.iter().next().cloned().unwrap_or_default();
    let pods = Api::<Pod>::namespaced(admin.clone(), "shop")
        .list(&ListParams::default())
        .await
        .expect("pods");
    let pod = pods
        .items
        .first()
        .and_then(|p| p.metadata.name.clone())
        .unwrap_or(name);
    let err = Api::<Pod>::namespaced(sa, "shop")
        .delete(&pod, &Default::default())
        .await
        .expect_err("delete is forbidden");
    let kube::Error::Api(status) = err else {
        panic!("an API error: {err:?}")
    };
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        status.message,
        format!(
            "pods \"{pod}\" is forbidden: User \"system:serviceaccount:steadfast:steadfast\" cannot delete resource \"pods\" in API group \"\" in the namespace \"shop\""
        )
    );
    sandbox.shutdown().await;
}

/// Reads `sandbox up` stdout until the `then:` line; returns the lines.
async fn banner(stdout: tokio::process::ChildStdout) -> Vec<String> {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let read = async {
        while let Ok(Some(line)) = lines.next_line().await {
            let last = line.starts_with("then:");
            seen.push(line);
            if last {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("sandbox up prints its banner within 60 s");
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_up_enforces_rbac_and_writes_service_account_kubeconfigs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir_arg = dir.path().to_str().expect("utf-8 path");
    let mut child = command(
        &[
            "sandbox",
            "up",
            "--enforce-rbac",
            "--service-account",
            "steadfast/steadfast",
            "--service-account",
            "shop/reader",
            "--dir",
            dir_arg,
        ],
        &[],
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .expect("sandbox up starts");
    let lines = banner(child.stdout.take().expect("stdout")).await;
    let text = lines.join("\n");
    assert!(text.contains("rbac:          enforced"), "{text}");
    let account_config = |account: &str| -> PathBuf {
        let line = lines
            .iter()
            .find(|l| l.ends_with(&format!("(ServiceAccount {account})")))
            .unwrap_or_else(|| panic!("a kubeconfig line for {account}: {text}"));
        let path = line.trim_start_matches("kubeconfig:").trim();
        PathBuf::from(path.split("  (").next().unwrap_or_default())
    };
    let steadfast = account_config("steadfast/steadfast");
    let reader = account_config("shop/reader");
    assert_eq!(steadfast, dir.path().join("kubeconfig-steadfast-steadfast"));
    assert_eq!(reader, dir.path().join("kubeconfig-shop-reader"));

    // The admin kubeconfig is system:masters; the accounts, bound to nothing, may do nothing.
    let admin = client(&dir.path().join("kubeconfig")).await;
    assert!(!pod_uids(&admin).await.is_empty(), "the admin lists pods");
    let err = Api::<Pod>::namespaced(client(&reader).await, "shop")
        .list(&ListParams::default())
        .await
        .expect_err("an unbound account cannot list pods");
    let kube::Error::Api(status) = err else {
        panic!("an API error: {err:?}")
    };
    assert_eq!(status.code, 403, "{status:?}");
    assert_eq!(
        status.message,
        "pods is forbidden: User \"system:serviceaccount:shop:reader\" cannot list resource \"pods\" in API group \"\" in the namespace \"shop\""
    );
    let err = Api::<Namespace>::all(client(&steadfast).await)
        .get("shop")
        .await
        .expect_err("an unbound account cannot read namespaces");
    let kube::Error::Api(status) = err else {
        panic!("an API error: {err:?}")
    };
    assert_eq!(
        status.message,
        "namespaces \"shop\" is forbidden: User \"system:serviceaccount:steadfast:steadfast\" cannot get resource \"namespaces\" in API group \"\" in the namespace \"shop\""
    );

    // Without a token, or with an unknown one: 401 as upstream.
    let text = std::fs::read_to_string(&steadfast).expect("kubeconfig");
    let forged = dir.path().join("forged");
    let token = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .expect("a token line");
    std::fs::write(&forged, text.replace(token, "\"not-a-token\"")).expect("written");
    let err = Api::<Pod>::namespaced(client(&forged).await, "shop")
        .list(&ListParams::default())
        .await
        .expect_err("an unknown token is refused");
    let kube::Error::Api(status) = err else {
        panic!("an API error: {err:?}")
    };
    assert_eq!((status.code, status.reason.as_str()), (401, "Unauthorized"));
    child.kill().await.expect("sandbox up stops");
}

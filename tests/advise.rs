//! `steadfast advise` end to end: the real binary against the sandbox running a topology with
//! planted HA problems, against an unreachable cluster, and with moto answering for AWS.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use steadfast::sandbox::cloud::CloudOptions;
use steadfast::sandbox::{Sandbox, SandboxOptions, Topology};
use support::moto::Moto;
use support::sandbox::{both, command, repo};

const LIMIT: Duration = Duration::from_secs(90);

async fn start(
    dir: &Path,
    moto: Option<&Moto>,
) -> (Sandbox, Option<steadfast::sandbox::cloud::CloudLink>) {
    let topology = Topology::load(&repo().join("tests/fixtures/advise/topology.yaml"))
        .expect("the fixture topology loads");
    let sandbox = Sandbox::start(&topology, SandboxOptions::new(dir))
        .await
        .expect("the sandbox starts");
    let link = match moto {
        Some(moto) => Some(
            sandbox
                .link_cloud(CloudOptions::new(&moto.endpoint, "advise"))
                .await
                .expect("the sandbox links to moto"),
        ),
        None => None,
    };
    sandbox
        .wait_ready(Duration::from_secs(60))
        .await
        .expect("the sandbox becomes ready");
    (sandbox, link)
}

/// Runs `steadfast advise ARGS` with `kubeconfig` and, when given, AWS pointed at `aws`.
async fn advise(args: &[&str], kubeconfig: &Path, aws: Option<&str>) -> Output {
    let mut all = vec!["advise"];
    all.extend_from_slice(args);
    let mut cmd = command(&all, &[("KUBECONFIG", kubeconfig)]);
    cmd.env_remove("AWS_PROFILE").env_remove("AWS_REGION");
    match aws {
        Some(endpoint) => {
            cmd.env("AWS_ENDPOINT_URL", endpoint)
                .env("AWS_REGION", support::moto::REGION)
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing");
        }
        None => {
            cmd.env_remove("AWS_ENDPOINT_URL");
        }
    }
    tokio::time::timeout(LIMIT, cmd.output())
        .await
        .expect("advise finished in time")
        .expect("the binary runs")
}

/// Every (rule, objects joined by `+`) pair of a JSON answer.
fn pairs(output: &Output) -> BTreeSet<(String, String)> {
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("advise prints JSON ({e}): {}", both(output)));
    doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let objects: Vec<&str> = f["objects"]
                .as_array()
                .expect("objects")
                .iter()
                .map(|o| o.as_str().expect("object string"))
                .collect();
            assert!(
                f["experiment"]["kind"].is_string() && f["fix"].is_string(),
                "{f}"
            );
            (
                f["rule"].as_str().expect("rule").to_owned(),
                objects.join("+"),
            )
        })
        .collect()
}

fn expected(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(r, o)| ((*r).to_owned(), (*o).to_owned()))
        .collect()
}

/// The shipped part of the topology: `web` (budget allows one disruption) and `api` (no
/// budget), neither asking for a zone spread.
const SHOP: &[(&str, &str)] = &[
    ("no-disruption-budget", "Deployment/shop/api"),
    ("no-zone-spread", "Deployment/shop/api"),
    ("no-zone-spread", "Deployment/shop/web"),
];

/// The planted problems and what else those Deployments really lack.
const PLANTED: &[(&str, &str)] = &[
    (
        "single-replica",
        "Deployment/planted/solo+Service/planted/solo",
    ),
    ("no-disruption-budget", "Deployment/planted/solo"),
    (
        "replicas-in-one-zone",
        "Deployment/planted/pinned+Zone/us-east-1a",
    ),
    ("no-zone-spread", "Deployment/planted/pinned"),
    (
        "budget-allows-no-disruption",
        "PodDisruptionBudget/planted/locked+Deployment/planted/locked",
    ),
    ("no-zone-spread", "Deployment/planted/locked"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advise_reports_exactly_the_topologys_ha_problems_and_exits_by_fail_on() {
    let dir = tempfile::tempdir().unwrap();
    let (sandbox, _) = start(dir.path(), None).await;
    let kubeconfig = sandbox.kubeconfig_path().to_path_buf();

    let all = advise(&["-A", "-o", "json", "--no-aws"], &kubeconfig, None).await;
    let mut want = expected(SHOP);
    want.extend(expected(PLANTED));
    assert_eq!(pairs(&all), want, "{}", both(&all));
    // single-replica is an error, so the default --fail-on error fails.
    assert_eq!(all.status.code(), Some(1), "{}", both(&all));

    let warn = advise(
        &["-A", "-o", "json", "--no-aws", "--fail-on", "warning"],
        &kubeconfig,
        None,
    )
    .await;
    assert_eq!(warn.status.code(), Some(1), "{}", both(&warn));

    // The shop alone has warnings and infos but no error: exit 0 by default, 1 from warning.
    let shop = advise(&["-n", "shop", "-o", "json", "--no-aws"], &kubeconfig, None).await;
    assert_eq!(pairs(&shop), expected(SHOP), "{}", both(&shop));
    assert_eq!(shop.status.code(), Some(0), "{}", both(&shop));
    let shop_warn = advise(
        &["-n", "shop", "--no-aws", "--fail-on", "warning"],
        &kubeconfig,
        None,
    )
    .await;
    assert_eq!(shop_warn.status.code(), Some(1), "{}", both(&shop_warn));
    let text = String::from_utf8_lossy(&shop_warn.stdout);
    assert!(
        text.contains("3 finding(s): 0 error, 1 warning, 2 info"),
        "{}",
        both(&shop_warn)
    );
    let md = advise(&["-n", "shop", "--no-aws", "-o", "md"], &kubeconfig, None).await;
    assert!(
        String::from_utf8_lossy(&md.stdout)
            .contains("| warning | `no-disruption-budget` | `Deployment/shop/api` |"),
        "{}",
        both(&md)
    );
    // Read-only, and granted: every request advise made is a list the RBAC rules allow.
    let granted = steadfast::infra::kube::rbac::all_accesses();
    let accesses = sandbox.api_accesses();
    assert!(
        accesses
            .iter()
            .any(|a| a.resource == "services" && a.verb == "list"),
        "the API server recorded advise's requests: {accesses:?}"
    );
    for access in accesses {
        assert_eq!(
            access.verb, "list",
            "advise made a non-list request: {access:?}"
        );
        assert!(
            granted.contains(&access),
            "{access:?} is not in the RBAC rules"
        );
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn advise_exits_2_when_the_cluster_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    // A loopback port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster: {{server: \"http://127.0.0.1:{port}\"}}\n\
             contexts:\n- name: gone\n  context: {{cluster: gone, user: nobody}}\ncurrent-context: gone\n\
             users:\n- name: nobody\n  user: {{}}\n"
        ),
    )
    .unwrap();
    let out = advise(&["-A", "--no-aws"], &kubeconfig, None).await;
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(out.stdout.is_empty(), "{}", both(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("cannot read the cluster"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advise_reads_node_groups_from_auto_scaling_when_aws_answers() {
    let Some(moto) = Moto::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (sandbox, link) = start(dir.path(), Some(&moto)).await;
    let link = link.expect("linked");
    let kubeconfig = sandbox.kubeconfig_path().to_path_buf();

    let out = advise(
        &["-n", "shop", "-o", "json"],
        &kubeconfig,
        Some(&moto.endpoint),
    )
    .await;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON ({e}): {}", both(&out)));
    assert_eq!(doc["nodeGroupsRead"], true, "{}", both(&out));
    // The link makes one group per zone: each is a single-AZ node group.
    let mut want = expected(SHOP);
    for group in link.resources.groups.values() {
        want.insert((
            "node-group-in-one-zone".into(),
            format!("NodeGroup/{group}"),
        ));
    }
    assert_eq!(link.resources.groups.len(), 3);
    assert_eq!(pairs(&out), want, "{}", both(&out));

    // Without AWS the same cluster yields no node-group finding and says why on stderr.
    let without = advise(&["-n", "shop", "-o", "json", "--no-aws"], &kubeconfig, None).await;
    assert_eq!(pairs(&without), expected(SHOP), "{}", both(&without));
    link.stop().await;
    sandbox.shutdown().await;
}

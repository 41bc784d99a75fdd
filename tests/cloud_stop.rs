//! A stopped EC2 instance (moto) against the linked sandbox: its node is kept, turns Unknown
//! within the monitor grace period and gets the unreachable and shutdown taints, its backends
//! refuse connections; starting the instance brings the node back Ready after the boot delay,
//! with its backends answering again, and removes the taints.
//!
//! Skips loudly without moto (as the other moto tests do).

mod support;

use std::time::{Duration, Instant};

use steadfast::sandbox::cloud::CloudOptions;
use steadfast::sandbox::{Sandbox, SandboxOptions, Topology};
use support::moto::Moto;

/// Short timings so Unknown comes within seconds.
const TOPOLOGY: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: SandboxTopology
region: us-east-1
zones:
  - {name: us-east-1a, nodes: 1}
  - {name: us-east-1b, nodes: 1}
timing:
  podStartupDelay: 200ms
  nodeBootDelay: 500ms
  terminationGracePeriod: 1s
  nodeMonitorGracePeriod: 2s
  toleration: 60s
  leaseRenewInterval: 300ms
  preStopDelay: 0s
deployments:
  - {name: web, namespace: shop, replicas: 2, labels: {app: web}, service: {port: 80}}
"#;

const SHUTDOWN_TAINT: &str = "node.cloudprovider.kubernetes.io/shutdown";
const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";
/// `timing.nodeMonitorGracePeriod` and `timing.nodeBootDelay` of [`TOPOLOGY`].
const MONITOR_GRACE: Duration = Duration::from_secs(2);
const BOOT_DELAY: Duration = Duration::from_millis(500);

/// The node's Ready status and whether it carries the shutdown taint; `None` when it is gone.
async fn node_state(kube: &kube::Client, node: &str) -> Option<(String, bool)> {
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(kube.clone());
    let n = nodes.get_opt(node).await.ok()??;
    let ready = n
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?
        .status
        .clone();
    let tainted = n
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| t.iter().any(|t| t.key == SHUTDOWN_TAINT));
    Some((ready, tainted))
}

/// Whether the backend on `port` answers a GET within 500 ms.
async fn answers(port: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await?;
        stream
            .write_all(b"GET / HTTP/1.0\r\nHost: backend\r\n\r\n")
            .await?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await?;
        Ok::<_, std::io::Error>(reply.starts_with("HTTP/1."))
    };
    tokio::time::timeout(Duration::from_millis(500), exchange)
        .await
        .is_ok_and(|r| r.unwrap_or(false))
}

/// Whether a connection to the backend on `port` is refused (nothing listens there).
async fn refuses(port: &str) -> bool {
    let connect = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"));
    matches!(
        tokio::time::timeout(Duration::from_millis(500), connect).await,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

async fn wait_for(kube: &kube::Client, node: &str, ready: &str, tainted: bool, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let state = node_state(kube, node).await;
        if state == Some((ready.to_string(), tainted)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node {node} never reached Ready={ready} tainted={tainted}: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A sandbox linked to its own moto, with one node's instance and a backend port on it.
struct Stage {
    _moto: Moto,
    _dir: tempfile::TempDir,
    sandbox: Sandbox,
    link: steadfast::sandbox::cloud::CloudLink,
    kube: kube::Client,
    ec2: aws_sdk_ec2::Client,
    node: String,
    instance: String,
    port: String,
}

async fn stage() -> Option<Stage> {
    let moto = Moto::start()?;
    let dir = tempfile::tempdir().expect("temp dir");
    let topology = Topology::parse(TOPOLOGY, "stop topology").expect("topology parses");
    let sandbox = Sandbox::start(&topology, SandboxOptions::new(dir.path()))
        .await
        .expect("sandbox starts");
    sandbox
        .wait_ready(Duration::from_secs(30))
        .await
        .expect("sandbox ready");
    let link = sandbox
        .link_cloud(CloudOptions {
            poll: Duration::from_millis(100),
            ..CloudOptions::new(&moto.endpoint, "stop")
        })
        .await
        .expect("linked to moto");
    let kubeconfig =
        kube::config::Kubeconfig::read_from(sandbox.kubeconfig_path()).expect("kubeconfig reads");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("kubeconfig loads");
    let kube = kube::Client::try_from(config).expect("client builds");

    let node = sandbox.nodes_in_zone("us-east-1a")[0].clone();
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(kube.clone());
    let provider = nodes
        .get(&node)
        .await
        .expect("node reads")
        .spec
        .and_then(|s| s.provider_id)
        .unwrap_or_default();
    let instance = provider.rsplit('/').next().unwrap_or_default().to_string();
    assert!(instance.starts_with("i-"), "{provider}");
    wait_for(&kube, &node, "True", false, Duration::from_secs(10)).await;
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(kube.clone(), "shop");
    let on_node = pods
        .list(&kube::api::ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await
        .expect("pods list");
    let port = on_node
        .items
        .iter()
        .find_map(|p| {
            p.metadata
                .annotations
                .as_ref()?
                .get("sandbox.steadfast.dev/backend-port")
                .cloned()
        })
        .expect("a web pod on the node");
    assert!(answers(&port).await, "the backend answers before the stop");
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk_config().await);
    Some(Stage {
        _moto: moto,
        _dir: dir,
        sandbox,
        link,
        kube,
        ec2,
        node,
        instance,
        port,
    })
}

impl Stage {
    async fn stop(&self) {
        self.ec2
            .stop_instances()
            .instance_ids(&self.instance)
            .send()
            .await
            .expect("moto stops the instance");
    }

    async fn start(&self) {
        self.ec2
            .start_instances()
            .instance_ids(&self.instance)
            .send()
            .await
            .expect("moto starts the instance");
    }

    async fn finish(self) {
        self.link.stop().await;
        self.sandbox.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_instance_keeps_its_node_tainted_until_started() {
    let Some(stage) = stage().await else { return };
    let (kube, node, port) = (&stage.kube, &stage.node, &stage.port);
    stage.stop().await;
    // Monitor grace 2 s, plus a poll and a lease interval.
    wait_for(kube, node, "Unknown", true, Duration::from_secs(10)).await;
    let kept = node_state(kube, node).await;
    assert!(kept.is_some(), "a stopped instance keeps its node");
    assert!(
        refuses(port).await,
        "a stopped machine's backend refuses connections"
    );

    stage.start().await;
    wait_for(kube, node, "True", false, Duration::from_secs(10)).await;
    assert!(
        answers(port).await,
        "the backend answers again after the start"
    );
    stage.finish().await;
}

/// `kubectl get node NODE -o jsonpath=EXPR` against the sandbox; `None` when kubectl fails.
async fn kubectl_jsonpath(kubectl: &std::path::Path, stage: &Stage, expr: &str) -> Option<String> {
    let out = tokio::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(stage.sandbox.kubeconfig_path())
        .args([
            "get",
            "node",
            &stage.node,
            "-o",
            &format!("jsonpath={expr}"),
        ])
        .env_remove("KUBECONFIG")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .ok()?
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_instance_node_is_unknown_within_grace_and_kubectl_sees_the_taint() {
    let Some(kubectl) = support::tools::require_tool("kubectl") else {
        return;
    };
    let Some(stage) = stage().await else { return };
    let (kube, node, port) = (&stage.kube, &stage.node, &stage.port);

    let stopped = Instant::now();
    stage.stop().await;
    let limit = MONITOR_GRACE + Duration::from_secs(1);
    loop {
        let ready = node_state(kube, node).await.map(|(r, _)| r);
        if ready.as_deref() == Some("Unknown") {
            break;
        }
        assert!(
            stopped.elapsed() <= limit,
            "{node} still {ready:?} {:?} after the stop (limit {limit:?})",
            stopped.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let unknown_after = stopped.elapsed();
    eprintln!("node Unknown {unknown_after:?} after the stop (grace {MONITOR_GRACE:?})");
    assert!(
        refuses(port).await,
        "the backend of a pod on the stopped machine refuses connections"
    );

    // kubectl sees what the node lifecycle controllers did.
    let deadline = Instant::now() + Duration::from_secs(10);
    let taints = loop {
        let taints = kubectl_jsonpath(&kubectl, &stage, "{.spec.taints[*].key}")
            .await
            .unwrap_or_default();
        if taints.contains(UNREACHABLE_TAINT) && taints.contains(SHUTDOWN_TAINT) {
            break taints;
        }
        assert!(Instant::now() < deadline, "kubectl sees taints {taints:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(taints.contains(UNREACHABLE_TAINT), "{taints}");
    let ready = kubectl_jsonpath(
        &kubectl,
        &stage,
        r#"{.status.conditions[?(@.type=="Ready")].status}"#,
    )
    .await;
    assert_eq!(ready.as_deref(), Some("Unknown"));
    let effects = kubectl_jsonpath(
        &kubectl,
        &stage,
        r#"{.spec.taints[?(@.key=="node.kubernetes.io/unreachable")].effect}"#,
    )
    .await
    .unwrap_or_default();
    assert!(effects.contains("NoExecute"), "{effects}");

    // Started, the machine boots first: the backend answers only after the boot delay.
    let started = Instant::now();
    stage.start().await;
    let deadline = started + Duration::from_secs(10);
    while !answers(port).await {
        assert!(
            Instant::now() < deadline,
            "the backend never answered again after the start"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let back_after = started.elapsed();
    eprintln!("backend answers {back_after:?} after the start (boot delay {BOOT_DELAY:?})");
    assert!(
        back_after >= BOOT_DELAY,
        "the backend answered {back_after:?} after the start, before the boot delay"
    );
    wait_for(kube, node, "True", false, Duration::from_secs(10)).await;
    let taints = kubectl_jsonpath(&kubectl, &stage, "{.spec.taints[*].key}")
        .await
        .unwrap_or_default();
    assert!(!taints.contains(UNREACHABLE_TAINT), "{taints}");
    stage.finish().await;
}

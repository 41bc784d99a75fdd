//! A stopped EC2 instance (moto) against the linked sandbox: its node is kept, turns Unknown
//! and gets the cloud provider's shutdown taint, its backends stop answering; starting the
//! instance brings the node back Ready and removes the taint.
//!
//! Skips loudly without moto (as the other moto tests do).

mod support;

use std::time::Duration;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_instance_keeps_its_node_tainted_until_started() {
    let Some(moto) = Moto::start() else { return };
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
    ec2.stop_instances()
        .instance_ids(&instance)
        .send()
        .await
        .expect("moto stops the instance");
    // Monitor grace 2 s, plus a poll and a lease interval.
    wait_for(&kube, &node, "Unknown", true, Duration::from_secs(10)).await;
    let kept = node_state(&kube, &node).await;
    assert!(kept.is_some(), "a stopped instance keeps its node");
    assert!(
        !answers(&port).await,
        "a stopped machine's backend does not answer"
    );

    ec2.start_instances()
        .instance_ids(&instance)
        .send()
        .await
        .expect("moto starts the instance");
    wait_for(&kube, &node, "True", false, Duration::from_secs(10)).await;
    assert!(
        answers(&port).await,
        "the backend answers again after the start"
    );

    link.stop().await;
    sandbox.shutdown().await;
}

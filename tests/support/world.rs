//! A sandbox (optionally linked to its own moto) that `steadfast` child processes run against,
//! and the one question the safety tests ask of it: is everything as it was before the run?
//!
//! Included with `#[path]` by the tests that need it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::Api;
use kube::api::ListParams;
use steadfast::journal::{pending, read_entries};
use steadfast::sandbox::cloud::{CloudLink, CloudOptions};
use steadfast::sandbox::{Sandbox, SandboxOptions, Topology};

use crate::support::moto::{Moto, REGION};

/// The sandbox topology of the safety tests: Kubernetes timings scaled down so a partitioned
/// node turns Unknown, loses its pods and comes back within seconds.
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
  nodeMonitorGracePeriod: 2s
  toleration: 2s
  leaseRenewInterval: 300ms
  preStopDelay: 100ms
deployments:
  - {name: web, namespace: shop, replicas: 6, labels: {app: web}, service: {port: 80}}
"#;

/// Replicas of `shop/web` in [`TOPOLOGY`].
pub const WEB_REPLICAS: i32 = 6;
/// Nodes in [`TOPOLOGY`].
pub const NODES: usize = 6;

/// The cloud side of a world: moto, the link, and each subnet's ACL before any run.
pub struct Cloud {
    /// The emulator.
    pub moto: Moto,
    /// EC2 on it.
    pub ec2: aws_sdk_ec2::Client,
    /// The sandbox's link to it.
    pub link: CloudLink,
    /// Subnet id → its ACL before any run.
    pub original: BTreeMap<String, String>,
}

/// A started sandbox, its client, its cloud and a directory for journals and reports.
pub struct World {
    /// The sandbox.
    pub sandbox: Sandbox,
    /// A client on it.
    pub kube: kube::Client,
    /// moto and the link, when asked for.
    pub cloud: Option<Cloud>,
    /// Journal and reports.
    pub dir: tempfile::TempDir,
}

/// Starts [`TOPOLOGY`], linked to a fresh moto when `cloud`; `None` when moto is missing.
pub async fn start_world(cloud: bool) -> Option<World> {
    start_world_with(TOPOLOGY, cloud).await
}

/// Starts `topology` (YAML with the same workloads as [`TOPOLOGY`]), linked to a fresh moto
/// when `cloud`; `None` when moto is missing.
pub async fn start_world_with(topology: &str, cloud: bool) -> Option<World> {
    let dir = tempfile::tempdir().unwrap();
    let topology = Topology::parse(topology, "test topology").unwrap();
    let sandbox = Sandbox::start(&topology, SandboxOptions::new(dir.path()))
        .await
        .expect("the sandbox starts");
    let cloud = if cloud {
        let moto = Moto::start()?;
        let link = sandbox
            .link_cloud(CloudOptions::new(&moto.endpoint, "crash"))
            .await
            .expect("the sandbox links to moto");
        let ec2 = aws_sdk_ec2::Client::new(&moto.sdk_config().await);
        let mut original = BTreeMap::new();
        for subnet in link.resources.subnets.values() {
            original.insert(subnet.clone(), acl_of(&ec2, subnet).await);
        }
        Some(Cloud {
            moto,
            ec2,
            link,
            original,
        })
    } else {
        None
    };
    sandbox
        .wait_ready(Duration::from_secs(60))
        .await
        .expect("the sandbox becomes ready");
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(sandbox.kubeconfig_path()).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let kube = kube::Client::try_from(config).unwrap();
    Some(World {
        sandbox,
        kube,
        cloud,
        dir,
    })
}

/// The ACL a subnet is associated with.
pub async fn acl_of(ec2: &aws_sdk_ec2::Client, subnet: &str) -> String {
    crate::support::moto::subnet_acl(ec2, subnet).await.0
}

impl World {
    /// Creates namespace `name` unless it exists (state namespaces of the tests).
    pub async fn namespace(&self, name: &str) {
        let api: Api<Namespace> = Api::all(self.kube.clone());
        if api
            .get_opt(name)
            .await
            .expect("namespaces readable")
            .is_none()
        {
            let namespace = Namespace {
                metadata: kube::api::ObjectMeta {
                    name: Some(name.to_owned()),
                    ..Default::default()
                },
                ..Default::default()
            };
            api.create(&Default::default(), &namespace)
                .await
                .expect("namespace created");
        }
    }

    /// The journal every command of this world uses.
    pub fn journal(&self) -> PathBuf {
        self.dir.path().join("journal.jsonl")
    }

    /// `steadfast ARGS` against this world, with its own state namespace (a killed run's lease
    /// lapses only after its TTL; each trial takes a fresh one instead of waiting for that).
    pub fn command(&self, args: &[&str], namespace: &str) -> tokio::process::Command {
        let mut command = crate::support::sandbox::command(args, &[]);
        command
            .arg("--kubeconfig")
            .arg(self.sandbox.kubeconfig_path())
            .env("STEADFAST_JOURNAL", self.journal())
            .env("STEADFAST_NAMESPACE", namespace)
            .env("STEADFAST_LOG", "warn");
        if let Some(cloud) = &self.cloud {
            command
                .env("AWS_ENDPOINT_URL", &cloud.moto.endpoint)
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env("AWS_REGION", REGION)
                .env("AWS_EC2_METADATA_DISABLED", "true");
        }
        command
    }

    /// Runs a command to its end (at most 60 s).
    pub async fn output(&self, args: &[&str], namespace: &str) -> Output {
        let child = self.command(args, namespace).output();
        tokio::time::timeout(Duration::from_secs(60), child)
            .await
            .unwrap_or_else(|_| panic!("steadfast {args:?} ran longer than 60s"))
            .expect("the binary starts")
    }

    /// What is still not as it was, or nothing.
    pub async fn damage(&self) -> Vec<String> {
        let mut damage = Vec::new();
        let nodes: Api<Node> = Api::all(self.kube.clone());
        match nodes.list(&ListParams::default()).await {
            Ok(list) => {
                for node in &list.items {
                    let name = node.metadata.name.clone().unwrap_or_default();
                    let spec = node.spec.clone().unwrap_or_default();
                    if spec.unschedulable == Some(true) {
                        damage.push(format!("{name} is cordoned"));
                    }
                    for taint in spec.taints.unwrap_or_default() {
                        damage.push(format!("{name} has taint {}:{}", taint.key, taint.effect));
                    }
                    let ready = node
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                        .map(|c| c.status.clone())
                        .unwrap_or_default();
                    if ready != "True" {
                        damage.push(format!("{name} is Ready={ready}"));
                    }
                }
                if list.items.len() != NODES {
                    damage.push(format!("{} nodes, not {NODES}", list.items.len()));
                }
            }
            Err(err) => damage.push(format!("nodes: {err}")),
        }
        let deployments: Api<Deployment> = Api::namespaced(self.kube.clone(), "shop");
        match deployments.get("web").await {
            Ok(web) => {
                let status = web.status.unwrap_or_default();
                let ready = status.ready_replicas.unwrap_or(0);
                let total = status.replicas.unwrap_or(0);
                if ready != WEB_REPLICAS || total != WEB_REPLICAS {
                    damage.push(format!(
                        "web has {ready} ready of {total} pods, not {WEB_REPLICAS}"
                    ));
                }
            }
            Err(err) => damage.push(format!("deployment web: {err}")),
        }
        if let Some(cloud) = &self.cloud {
            for (subnet, acl) in &cloud.original {
                let now = acl_of(&cloud.ec2, subnet).await;
                if &now != acl {
                    damage.push(format!("{subnet} is on {now}, not its original {acl}"));
                }
            }
            for acl in crate::support::moto::steadfast_acls(&cloud.ec2, None).await {
                damage.push(format!("steadfast ACL {acl} is left"));
            }
        }
        match read_entries(&self.journal()) {
            Ok(entries) => {
                let left = pending(&entries);
                if !left.is_empty() {
                    damage.push(format!("{} undo record(s) still pending", left.len()));
                }
            }
            Err(err) => damage.push(format!("journal: {err}")),
        }
        damage
    }

    /// Waits (bounded) until nothing is damaged.
    pub async fn restored(&self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            let damage = self.damage().await;
            if damage.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(damage.join("; "));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

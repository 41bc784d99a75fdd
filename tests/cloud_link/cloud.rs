//! The world of the cloud link tests: a moto server, the shipped sandbox topology linked to
//! it, clients for both, and a sink keeping one measurement store per probed backend.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use steadfast::infra::aws::{AwsClients, AwsContext};
use steadfast::infra::kube::{KubeClient, KubeOptions};
use steadfast::infra::nodes::{DEFAULT_LIST_TIMEOUT, KubeNodes};
use steadfast::measure::{MeasurementStore, Sample, StoreConfig};
use steadfast::probe::http::Endpoint;
use steadfast::probe::{SampleSink, SinkError};
use steadfast::sandbox::cloud::{CloudLink, CloudOptions};
use steadfast::sandbox::{Sandbox, SandboxOptions};

use crate::support;
use crate::support::moto::Moto;

/// How often the cloud link mirrors moto into the sandbox, in ms.
pub const MIRROR_POLL_MS: u64 = 100;

/// moto, a sandbox linked to it, and clients for both.
pub struct Cloud {
    pub moto: Moto,
    pub sandbox: Sandbox,
    pub link: CloudLink,
    pub kube: KubeClient,
    pub clients: AwsClients,
    pub ec2: aws_sdk_ec2::Client,
    _dir: tempfile::TempDir,
}

impl Cloud {
    /// Starts both, or `None` (after a loud message) when moto is not installed.
    pub async fn start() -> Option<Cloud> {
        let moto = Moto::start()?;
        let dir = tempfile::tempdir().unwrap();
        let sandbox = support::sandbox::start(SandboxOptions::new(dir.path())).await;
        let link = sandbox
            .link_cloud(CloudOptions {
                poll: Duration::from_millis(MIRROR_POLL_MS),
                ..CloudOptions::new(&moto.endpoint, "cloud-link")
            })
            .await
            .expect("the sandbox links to moto");
        let kube = KubeClient::connect(&KubeOptions {
            kubeconfig: Some(PathBuf::from(sandbox.kubeconfig_path())),
            qps: 50,
            burst: 100,
            ..KubeOptions::default()
        })
        .await
        .expect("a client for the sandbox");
        let clients = moto.clients().await;
        let ec2 = aws_sdk_ec2::Client::new(&moto.sdk_config().await);
        Some(Cloud {
            moto,
            sandbox,
            link,
            kube,
            clients,
            ec2,
            _dir: dir,
        })
    }

    /// What the AWS faults act through: moto, the sandbox's nodes, the sandbox's VPC.
    pub fn context(&self) -> AwsContext {
        AwsContext {
            nodes: Some(Arc::new(KubeNodes::new(
                self.kube.raw().clone(),
                DEFAULT_LIST_TIMEOUT,
            ))),
            vpc_id: Some(self.link.resources.vpc_id.clone()),
            poll_interval: Duration::from_millis(200),
            ..AwsContext::new(self.clients.clone())
        }
    }

    /// Every sandbox subnet with the ACL it is on.
    pub async fn subnet_acls(&self) -> BTreeMap<String, String> {
        let mut acls = BTreeMap::new();
        for subnet in self.link.resources.subnets.values() {
            let (acl, _) = crate::support::moto::subnet_acl(&self.ec2, subnet).await;
            acls.insert(subnet.clone(), acl);
        }
        acls
    }

    /// The network ACLs steadfast created in the sandbox's VPC.
    pub async fn steadfast_acls(&self) -> Vec<String> {
        crate::support::moto::steadfast_acls(&self.ec2, Some(&self.link.resources.vpc_id)).await
    }

    /// The ready `shop/web` pods: (zone, node, endpoint reaching that pod's backend alone).
    pub async fn web_backends(&self) -> Vec<(String, String, Endpoint)> {
        let pods: Api<Pod> = Api::namespaced(self.kube.raw().clone(), "shop");
        let listed = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap();
        let zone_of: BTreeMap<String, String> = ["us-east-1a", "us-east-1b", "us-east-1c"]
            .iter()
            .flat_map(|zone| {
                self.sandbox
                    .nodes_in_zone(zone)
                    .into_iter()
                    .map(move |node| (node, (*zone).to_owned()))
            })
            .collect();
        let mut backends = Vec::new();
        for pod in listed.items {
            let name = pod.metadata.name.clone().unwrap();
            let node = pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap();
            let port = pod
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("sandbox.steadfast.dev/backend-port"))
                .unwrap_or_else(|| panic!("{name} has no backend port"))
                .clone();
            backends.push((
                zone_of[&node].clone(),
                node,
                Endpoint {
                    name: Arc::from(name.as_str()),
                    uri: format!("http://127.0.0.1:{port}/").parse().unwrap(),
                },
            ));
        }
        backends.sort_by(|a, b| (&a.0, &a.2.name).cmp(&(&b.0, &b.2.name)));
        backends
    }

    pub async fn nodes(&self) -> Vec<Node> {
        let nodes: Api<Node> = Api::all(self.kube.raw().clone());
        nodes.list(&ListParams::default()).await.unwrap().items
    }

    pub async fn stop(self) {
        self.link.stop().await;
        self.sandbox.shutdown().await;
        drop(self.moto);
    }
}

pub fn ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// One measurement store per backend, as the per-endpoint probe tags them.
#[derive(Default)]
pub struct PerBackend(pub Mutex<BTreeMap<String, MeasurementStore>>);

impl SampleSink for PerBackend {
    fn record(&self, sample: Sample) -> Result<(), SinkError> {
        let name = sample.backend.as_deref().unwrap_or("untagged").to_owned();
        let mut stores = self.0.lock().unwrap();
        let store = stores.entry(name).or_insert_with(|| {
            MeasurementStore::new(StoreConfig::default()).expect("the default store")
        });
        store.record(&sample).map_err(|_| SinkError::Full)
    }
}

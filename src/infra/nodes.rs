//! Where the zone model and the self-healing check learn about Kubernetes nodes: their zone,
//! the EC2 instance behind them and whether they are Ready.
//!
//! A narrow trait, so the AWS faults need no Kubernetes client to be tested: [`KubeNodes`]
//! reads a real API server, [`StaticNodes`] holds a list in memory.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

use crate::plan::zones::{NodeFacts, ZONE_LABEL, parse_provider_id};

/// How long one node list may take unless told otherwise.
pub const DEFAULT_LIST_TIMEOUT: Duration = Duration::from_secs(30);

/// Most pages one listing follows; a cluster with more than 500 × 100 nodes is beyond the tool.
const MAX_PAGES: usize = 100;

/// Why the nodes could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum NodeSourceError {
    /// The API server refused or failed the list.
    #[error("listing nodes: {0}")]
    Api(String),
    /// The list did not answer in time.
    #[error("listing nodes timed out after {0:?}")]
    Timeout(Duration),
}

/// Lists the cluster's nodes.
#[async_trait]
pub trait NodeSource: Send + Sync {
    /// Every node, with zone, instance id and readiness.
    async fn list_nodes(&self) -> Result<Vec<NodeFacts>, NodeSourceError>;
}

/// Reads a node object into the facts the zone model needs.
pub fn node_facts(node: &Node) -> NodeFacts {
    let labels: BTreeMap<String, String> = node.metadata.labels.clone().unwrap_or_default();
    let provider = node
        .spec
        .as_ref()
        .and_then(|s| s.provider_id.as_deref())
        .and_then(parse_provider_id);
    let (provider_zone, instance_id) = provider.unzip();
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        });
    NodeFacts {
        name: node.metadata.name.clone().unwrap_or_default(),
        zone: labels.get(ZONE_LABEL).cloned().or(provider_zone.flatten()),
        instance_id,
        ready,
        labels,
    }
}

/// Nodes from a Kubernetes API server.
#[derive(Clone)]
pub struct KubeNodes {
    api: Api<Node>,
    timeout: Duration,
}

impl KubeNodes {
    /// Lists through `client`, each page bounded by `timeout`.
    pub fn new(client: kube::Client, timeout: Duration) -> Self {
        Self {
            api: Api::all(client),
            timeout,
        }
    }
}

#[async_trait]
impl NodeSource for KubeNodes {
    async fn list_nodes(&self) -> Result<Vec<NodeFacts>, NodeSourceError> {
        let mut facts = Vec::new();
        let mut params = ListParams::default().limit(500);
        for _ in 0..MAX_PAGES {
            let page = tokio::time::timeout(self.timeout, self.api.list(&params))
                .await
                .map_err(|_| NodeSourceError::Timeout(self.timeout))?
                .map_err(|err| NodeSourceError::Api(err.to_string()))?;
            facts.extend(page.items.iter().map(node_facts));
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
        facts.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(facts)
    }
}

/// Nodes held in memory: for tests, and for runs against clouds without a cluster at hand.
#[derive(Debug, Default)]
pub struct StaticNodes {
    nodes: Mutex<Vec<NodeFacts>>,
}

impl StaticNodes {
    /// A source answering `nodes`.
    pub fn new(nodes: Vec<NodeFacts>) -> Self {
        Self {
            nodes: Mutex::new(nodes),
        }
    }

    /// Replaces the answer, e.g. when a test's replacement node joins.
    pub fn set(&self, nodes: Vec<NodeFacts>) {
        *self
            .nodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = nodes;
    }
}

#[async_trait]
impl NodeSource for StaticNodes {
    async fn list_nodes(&self) -> Result<Vec<NodeFacts>, NodeSourceError> {
        Ok(self
            .nodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_object_yields_zone_instance_and_readiness() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "ip-10-0-1-5", "labels": {"pool": "general"}},
            "spec": {"providerID": "aws:///eu-west-1b/i-0123456789abcdef0"},
            "status": {"conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True"}
            ]}
        }))
        .unwrap();
        let facts = node_facts(&node);
        assert_eq!(facts.name, "ip-10-0-1-5");
        assert_eq!(facts.zone.as_deref(), Some("eu-west-1b"));
        assert_eq!(facts.instance_id.as_deref(), Some("i-0123456789abcdef0"));
        assert!(facts.ready);

        let not_ready: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n", "labels": {ZONE_LABEL: "eu-west-1c"}},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}
        }))
        .unwrap();
        let facts = node_facts(&not_ready);
        assert_eq!(facts.zone.as_deref(), Some("eu-west-1c"));
        assert_eq!(facts.instance_id, None);
        assert!(!facts.ready);
    }
}

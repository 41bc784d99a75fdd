//! What the AWS faults share: the clients of a region, where the cluster's nodes come from,
//! the VPC, and how often to poll while waiting; plus gathering the zone map through them.

use std::sync::Arc;
use std::time::Duration;

use super::config::AwsClients;
use super::error::AwsError;
use crate::infra::nodes::NodeSource;
use crate::plan::zones::{Inventory, ZoneMap, discover_vpc};

/// How often waiting loops poll AWS unless told otherwise.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// The clients and settings the AWS faults act through.
#[derive(Clone)]
pub struct AwsContext {
    /// The clients of the region.
    pub clients: AwsClients,
    /// The cluster's nodes; without them node selectors match nothing and the self-healing
    /// check looks at the groups only.
    pub nodes: Option<Arc<dyn NodeSource>>,
    /// The VPC from the spec; discovered from the nodes' instances when absent.
    pub vpc_id: Option<String>,
    /// How often waiting loops poll.
    pub poll_interval: Duration,
}

impl AwsContext {
    /// A context over `clients`, with no node source and no fixed VPC.
    pub fn new(clients: AwsClients) -> Self {
        Self {
            clients,
            nodes: None,
            vpc_id: None,
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }

    /// Reads the cloud and the cluster and joins them into the zone map. Limited to the VPC
    /// of the spec, else of the nodes' instances, else the whole region.
    ///
    /// # Errors
    /// When a call fails or the nodes span several VPCs.
    pub async fn zone_map(&self) -> Result<ZoneMap, AwsError> {
        let nodes = match &self.nodes {
            Some(source) => source.list_nodes().await?,
            None => Vec::new(),
        };
        let ec2 = &self.clients.ec2;
        let (vpc_id, instances) = match &self.vpc_id {
            Some(vpc) => (
                Some(vpc.clone()),
                ec2.describe_instances(Some(vpc), &[]).await?,
            ),
            None => {
                let all = ec2.describe_instances(None, &[]).await?;
                (discover_vpc(&nodes, &all)?, all)
            }
        };
        let subnets = ec2.describe_subnets(vpc_id.as_deref()).await?;
        let groups = self.clients.autoscaling.describe_groups(&[]).await?;
        Ok(ZoneMap::build(
            vpc_id,
            Inventory {
                instances,
                subnets,
                groups,
                nodes,
            },
        ))
    }
}

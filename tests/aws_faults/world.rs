//! The AWS topology the fault tests run against, built in a private moto server: a VPC with
//! one subnet, one launch template and one Auto Scaling group per zone (moto would put every
//! instance of a multi-subnet group in the first subnet), an extra subnet tagged to be kept
//! out of partitions, a subnet on a custom ACL, and one standalone instance.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_autoscaling::types::Tag as GroupTag;
use aws_sdk_ec2::types::{RequestLaunchTemplateData, ResourceType, Tag, TagSpecification};
use steadfast::infra::aws::{AwsClients, AwsContext, Ec2};
use steadfast::infra::nodes::{NodeSource, NodeSourceError};
use steadfast::plan::Caps;
use steadfast::plan::zones::{NodeFacts, ZONE_LABEL};
use steadfast::spec::Percent;

use crate::support::moto::Moto;

/// The zones of the topology.
pub const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
/// An image moto knows.
const AMI: &str = "ami-12c6146b";
/// Instances per group.
pub const GROUP_SIZE: i32 = 2;
/// Tag that keeps a subnet out of partitions in these tests.
pub const KEEP_TAG: (&str, &str) = ("steadfast.dev/keep", "true");
/// Node label carrying the node's group, for node-selector targets.
pub const POOL_LABEL: &str = "test.steadfast.dev/pool";

/// A topology in its own moto server.
pub struct World {
    /// The server; dropping the world stops it.
    pub moto: Moto,
    /// Raw EC2 client, for building and inspecting.
    pub ec2: aws_sdk_ec2::Client,
    /// Raw Auto Scaling client.
    pub asg: aws_sdk_autoscaling::Client,
    /// steadfast's clients.
    pub clients: AwsClients,
    /// The VPC.
    pub vpc_id: String,
    /// Zone → its group's subnet.
    pub subnets: BTreeMap<String, String>,
    /// A second subnet in the first zone, tagged [`KEEP_TAG`].
    pub kept_subnet: String,
    /// An instance in no group.
    pub standalone: String,
}

/// The name of a zone's group.
pub fn group(zone: &str) -> String {
    format!("nodes-{zone}")
}

/// Caps allowing `n` instances, any share.
pub fn caps(n: u32) -> Caps {
    Caps {
        max_objects: n,
        max_percent: Percent::new(100.0),
    }
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

impl World {
    /// Starts moto and builds the topology; `None` when moto is not installed.
    pub async fn build() -> Option<World> {
        let moto = Moto::start()?;
        let sdk = moto.sdk_config().await;
        let ec2 = aws_sdk_ec2::Client::new(&sdk);
        let asg = aws_sdk_autoscaling::Client::new(&sdk);
        let vpc_id = ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await
            .unwrap()
            .vpc()
            .and_then(|v| v.vpc_id())
            .unwrap()
            .to_owned();
        let mut subnets = BTreeMap::new();
        for (i, zone) in ZONES.iter().enumerate() {
            let subnet = create_subnet(&ec2, &vpc_id, zone, &format!("10.0.{i}.0/24"), None).await;
            let template = format!("template-{zone}");
            ec2.create_launch_template()
                .launch_template_name(&template)
                .launch_template_data(
                    RequestLaunchTemplateData::builder()
                        .image_id(AMI)
                        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                        .build(),
                )
                .send()
                .await
                .unwrap();
            asg.create_auto_scaling_group()
                .auto_scaling_group_name(group(zone))
                .launch_template(
                    aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                        .launch_template_name(&template)
                        .build(),
                )
                .min_size(GROUP_SIZE)
                .max_size(GROUP_SIZE + 1)
                .desired_capacity(GROUP_SIZE)
                .vpc_zone_identifier(&subnet)
                .tags(
                    GroupTag::builder()
                        .key("team")
                        .value("web")
                        .propagate_at_launch(true)
                        .build(),
                )
                .tags(
                    GroupTag::builder()
                        .key("steadfast.dev/allowed")
                        .value("true")
                        .propagate_at_launch(true)
                        .build(),
                )
                .send()
                .await
                .unwrap();
            subnets.insert((*zone).to_owned(), subnet);
        }
        let kept_subnet =
            create_subnet(&ec2, &vpc_id, ZONES[0], "10.0.100.0/24", Some(KEEP_TAG)).await;

        // Zone b's subnet sits on a custom ACL, so restoring must not mean "the default".
        let custom = ec2
            .create_network_acl()
            .vpc_id(&vpc_id)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::NetworkAcl)
                    .tags(tag("Name", "custom"))
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .network_acl()
            .and_then(|a| a.network_acl_id())
            .unwrap()
            .to_owned();
        let world_ec2 = ec2.clone();
        let standalone = ec2
            .run_instances()
            .image_id(AMI)
            .min_count(1)
            .max_count(1)
            .subnet_id(&subnets[ZONES[0]])
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .tags(tag("role", "bastion"))
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .instances()[0]
            .instance_id()
            .unwrap()
            .to_owned();
        let clients = moto.clients().await;
        let world = World {
            moto,
            ec2: world_ec2,
            asg,
            clients,
            vpc_id,
            subnets,
            kept_subnet,
            standalone,
        };
        let (_, association) = world.subnet_acl(&world.subnets[ZONES[1]]).await;
        world
            .ec2
            .replace_network_acl_association()
            .association_id(association)
            .network_acl_id(&custom)
            .send()
            .await
            .unwrap();
        Some(world)
    }

    /// A context over this world, polling fast.
    pub fn context(&self, nodes: Option<Arc<dyn NodeSource>>) -> AwsContext {
        AwsContext {
            clients: self.clients.clone(),
            nodes,
            vpc_id: Some(self.vpc_id.clone()),
            poll_interval: Duration::from_millis(100),
        }
    }

    /// A node source mirroring this world's running instances as Ready nodes.
    pub fn mirror_nodes(&self) -> Arc<dyn NodeSource> {
        Arc::new(MirrorNodes {
            ec2: self.clients.ec2.clone(),
            vpc_id: self.vpc_id.clone(),
        })
    }

    /// The in-service members of a group.
    pub async fn in_service(&self, group_name: &str) -> Vec<String> {
        let out = self
            .asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(group_name)
            .send()
            .await
            .unwrap();
        out.auto_scaling_groups()[0]
            .instances()
            .iter()
            .filter(|i| i.lifecycle_state().map(|s| s.as_str()) == Some("InService"))
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect()
    }

    /// An instance's EC2 state.
    pub async fn state(&self, instance_id: &str) -> String {
        let out = self
            .ec2
            .describe_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .unwrap();
        out.reservations()[0].instances()[0]
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_owned())
            .unwrap()
    }

    /// The ACL a subnet is on and the association id.
    pub async fn subnet_acl(&self, subnet_id: &str) -> (String, String) {
        crate::support::moto::subnet_acl(&self.ec2, subnet_id).await
    }

    /// Every subnet of the VPC with its ACL.
    pub async fn all_subnet_acls(&self) -> BTreeMap<String, String> {
        let mut all = BTreeMap::new();
        for subnet in self.subnets.values().chain([&self.kept_subnet]) {
            all.insert(subnet.clone(), self.subnet_acl(subnet).await.0);
        }
        all
    }

    /// The ids of the ACLs tagged `managed-by=steadfast` in the VPC.
    pub async fn steadfast_acls(&self) -> Vec<String> {
        crate::support::moto::steadfast_acls(&self.ec2, Some(&self.vpc_id)).await
    }
}

async fn create_subnet(
    ec2: &aws_sdk_ec2::Client,
    vpc_id: &str,
    zone: &str,
    cidr: &str,
    extra_tag: Option<(&str, &str)>,
) -> String {
    let mut tags = TagSpecification::builder()
        .resource_type(ResourceType::Subnet)
        .tags(tag("Name", &format!("{zone}-{cidr}")));
    if let Some((k, v)) = extra_tag {
        tags = tags.tags(tag(k, v));
    }
    ec2.create_subnet()
        .vpc_id(vpc_id)
        .cidr_block(cidr)
        .availability_zone(zone)
        .tag_specifications(tags.build())
        .send()
        .await
        .unwrap()
        .subnet()
        .and_then(|s| s.subnet_id())
        .unwrap()
        .to_owned()
}

/// Nodes as a cluster on this VPC would show them: one Ready node per running instance, named
/// after it, labelled with its zone and group, as a kubelet joining at boot would.
struct MirrorNodes {
    ec2: Ec2,
    vpc_id: String,
}

#[async_trait]
impl NodeSource for MirrorNodes {
    async fn list_nodes(&self) -> Result<Vec<NodeFacts>, NodeSourceError> {
        let instances = self
            .ec2
            .describe_instances(Some(&self.vpc_id), &[])
            .await
            .map_err(|e| NodeSourceError::Api(e.to_string()))?;
        Ok(instances
            .into_iter()
            .filter(|i| i.state == "running")
            .map(|i| {
                let mut labels = BTreeMap::from([(ZONE_LABEL.to_owned(), i.zone.clone())]);
                if let Some(group) = i.tags.get("aws:autoscaling:groupName") {
                    labels.insert(POOL_LABEL.to_owned(), group.clone());
                }
                NodeFacts {
                    name: format!("node-{}", i.instance_id),
                    zone: Some(i.zone.clone()),
                    instance_id: Some(i.instance_id.clone()),
                    ready: true,
                    labels,
                }
            })
            .collect())
    }
}

//! The cloud link: ties sandbox nodes to EC2 instances of an AWS-compatible endpoint (moto on
//! loopback in tests), so AWS faults steadfast injects there show up in the cluster.
//!
//! At link time the sandbox adopts or creates a VPC, one subnet and one Auto Scaling group per
//! zone, and gives each node the `aws:///<zone>/<instance-id>` provider id of one InService
//! instance. A loop then mirrors the cloud: a terminated instance silences its node, which turns
//! Unknown after the monitor grace and is then deleted (as the cloud node lifecycle controller
//! does); a stopped instance silences and cuts off its node, which is kept and tainted
//! `node.cloudprovider.kubernetes.io/shutdown` while not Ready, until the instance runs again;
//! a new group instance joins as a node after the boot delay; a subnet associated with an
//! ACL that allows nothing partitions that zone's nodes until the association is restored.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, LifecycleState};
use aws_sdk_ec2::types::{
    Filter, InstanceStateName, RequestLaunchTemplateData, ResourceType, Tag, TagSpecification,
};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use super::SandboxError;
use super::cloud_shutdown as shutdown;
use super::cluster::Shared;
use super::nodes::NodeFactory;

/// Tag marking the cloud resources of a sandbox.
pub const SANDBOX_TAG: &str = "steadfast.dev/sandbox";
/// Time allowed for one cloud API call.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the cloud is and how often to look at it.
#[derive(Debug, Clone)]
pub struct CloudOptions {
    /// Endpoint URL of the EC2 and Auto Scaling APIs (e.g. `http://127.0.0.1:5000` for moto).
    pub endpoint: String,
    /// Value of the `steadfast.dev/sandbox` tag that marks (and finds) the resources.
    pub name: String,
    /// Polling interval of the mirror loop.
    pub poll: Duration,
    /// AMI of the launch template (the emulator does not check it).
    pub image_id: String,
}

impl CloudOptions {
    /// Options for an endpoint, with a 500 ms poll.
    pub fn new(endpoint: &str, name: &str) -> Self {
        Self {
            endpoint: endpoint.to_string(),
            name: name.to_string(),
            poll: Duration::from_millis(500),
            image_id: "ami-0123456789abcdef0".into(),
        }
    }
}

/// What the link created or adopted.
#[derive(Debug, Clone)]
pub struct CloudResources {
    /// VPC id.
    pub vpc_id: String,
    /// Subnet id per zone.
    pub subnets: BTreeMap<String, String>,
    /// Auto Scaling group name per zone.
    pub groups: BTreeMap<String, String>,
}

/// A running cloud link; dropping it stops the mirror loop.
pub struct CloudLink {
    /// The cloud resources of the sandbox.
    pub resources: CloudResources,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for CloudLink {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl CloudLink {
    /// Stops the mirror loop and waits for it.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            // The loop ends at its next await; a panic inside it has been logged already.
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

fn cloud_err(what: &str) -> impl Fn(String) -> SandboxError + '_ {
    move |message| SandboxError::Cloud {
        what: what.to_string(),
        message,
    }
}

async fn call<T, E: std::fmt::Display>(
    what: &str,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, SandboxError> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(cloud_err(what)(format!("{e}"))),
        Err(_) => Err(cloud_err(what)(format!(
            "no answer within {CALL_TIMEOUT:?}"
        ))),
    }
}

struct Clients {
    ec2: aws_sdk_ec2::Client,
    asg: aws_sdk_autoscaling::Client,
}

fn clients(endpoint: &str, region: &str) -> Clients {
    let creds = aws_sdk_ec2::config::Credentials::new("testing", "testing", None, None, "sandbox");
    let ec2 = aws_sdk_ec2::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_ec2::config::Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(creds.clone())
        .build();
    let asg = aws_sdk_autoscaling::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_autoscaling::config::Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .build();
    Clients {
        ec2: aws_sdk_ec2::Client::from_conf(ec2),
        asg: aws_sdk_autoscaling::Client::from_conf(asg),
    }
}

fn tagged(resource: ResourceType, name: &str) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .tags(Tag::builder().key(SANDBOX_TAG).value(name).build())
        .build()
}

async fn ensure_vpc(c: &Clients, name: &str) -> Result<String, SandboxError> {
    let found = call(
        "DescribeVpcs",
        c.ec2
            .describe_vpcs()
            .filters(
                Filter::builder()
                    .name(format!("tag:{SANDBOX_TAG}"))
                    .values(name)
                    .build(),
            )
            .send(),
    )
    .await?;
    if let Some(id) = found.vpcs().first().and_then(|v| v.vpc_id()) {
        return Ok(id.to_string());
    }
    let created = call(
        "CreateVpc",
        c.ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .tag_specifications(tagged(ResourceType::Vpc, name))
            .send(),
    )
    .await?;
    created
        .vpc()
        .and_then(|v| v.vpc_id())
        .map(String::from)
        .ok_or_else(|| cloud_err("CreateVpc")("no VPC id in the answer".into()))
}

async fn ensure_subnet(
    c: &Clients,
    name: &str,
    vpc: &str,
    zone: &str,
    index: usize,
) -> Result<String, SandboxError> {
    let found = call(
        "DescribeSubnets",
        c.ec2
            .describe_subnets()
            .filters(Filter::builder().name("vpc-id").values(vpc).build())
            .filters(
                Filter::builder()
                    .name("availability-zone")
                    .values(zone)
                    .build(),
            )
            .send(),
    )
    .await?;
    if let Some(id) = found.subnets().first().and_then(|s| s.subnet_id()) {
        return Ok(id.to_string());
    }
    let created = call(
        "CreateSubnet",
        c.ec2
            .create_subnet()
            .vpc_id(vpc)
            .availability_zone(zone)
            .cidr_block(format!("10.0.{}.0/20", 16 * (index + 1)))
            .tag_specifications(tagged(ResourceType::Subnet, name))
            .send(),
    )
    .await?;
    created
        .subnet()
        .and_then(|s| s.subnet_id())
        .map(String::from)
        .ok_or_else(|| cloud_err("CreateSubnet")("no subnet id in the answer".into()))
}

async fn ensure_template(
    c: &Clients,
    name: &str,
    options: &CloudOptions,
    instance_type: &str,
) -> Result<String, SandboxError> {
    let template = format!("steadfast-sandbox-{name}");
    let exists = call(
        "DescribeLaunchTemplates",
        c.ec2
            .describe_launch_templates()
            .launch_template_names(&template)
            .send(),
    )
    .await
    .is_ok_and(|r| !r.launch_templates().is_empty());
    if !exists {
        call(
            "CreateLaunchTemplate",
            c.ec2
                .create_launch_template()
                .launch_template_name(&template)
                .launch_template_data(
                    RequestLaunchTemplateData::builder()
                        .image_id(&options.image_id)
                        .instance_type(instance_type.into())
                        .build(),
                )
                .send(),
        )
        .await?;
    }
    Ok(template)
}

async fn ensure_group(
    c: &Clients,
    group: &str,
    template: &str,
    subnet: &str,
    size: i32,
) -> Result<(), SandboxError> {
    let found = call(
        "DescribeAutoScalingGroups",
        c.asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(group)
            .send(),
    )
    .await?;
    if !found.auto_scaling_groups().is_empty() {
        return Ok(());
    }
    call(
        "CreateAutoScalingGroup",
        c.asg
            .create_auto_scaling_group()
            .auto_scaling_group_name(group)
            .min_size(0)
            .max_size(size.max(1) * 2)
            .desired_capacity(size)
            .vpc_zone_identifier(subnet)
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_name(template)
                    .version("$Latest")
                    .build(),
            )
            .send(),
    )
    .await?;
    Ok(())
}

/// InService instance ids of a group, in a stable order.
async fn group_instances(c: &Clients, group: &str) -> Result<Vec<String>, SandboxError> {
    let out = call(
        "DescribeAutoScalingGroups",
        c.asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(group)
            .send(),
    )
    .await?;
    let mut ids: Vec<String> = out
        .auto_scaling_groups()
        .iter()
        .flat_map(|g| g.instances())
        .filter(|i| i.lifecycle_state() == Some(&LifecycleState::InService))
        .filter_map(|i| i.instance_id().map(String::from))
        .collect();
    ids.sort();
    Ok(ids)
}

/// What became of an instance, as the cloud node lifecycle controller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Machine {
    /// Pending or running.
    Up,
    /// Stopping or stopped: the node stays, silent and unreachable, until started again.
    Stopped,
}

/// Instances that exist and are not shutting down or terminated, with their state.
async fn running(c: &Clients, ids: &[String]) -> Result<HashMap<String, Machine>, SandboxError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let out = call(
        "DescribeInstances",
        c.ec2
            .describe_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send(),
    )
    .await?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| {
            let machine = match i.state().and_then(|s| s.name()) {
                Some(InstanceStateName::ShuttingDown | InstanceStateName::Terminated) => {
                    return None;
                }
                Some(InstanceStateName::Stopping | InstanceStateName::Stopped) => Machine::Stopped,
                _ => Machine::Up,
            };
            Some((i.instance_id()?.to_string(), machine))
        })
        .collect())
}

/// Whether the ACL associated with `subnet` allows any inbound traffic.
async fn subnet_open(c: &Clients, subnet: &str) -> Result<bool, SandboxError> {
    let out = call(
        "DescribeNetworkAcls",
        c.ec2
            .describe_network_acls()
            .filters(
                Filter::builder()
                    .name("association.subnet-id")
                    .values(subnet)
                    .build(),
            )
            .send(),
    )
    .await?;
    let Some(acl) = out.network_acls().first() else {
        // No explicit association: the VPC default ACL applies, which allows everything.
        return Ok(true);
    };
    Ok(acl
        .entries()
        .iter()
        .any(|e| e.egress() == Some(false) && e.rule_action().map(|a| a.as_str()) == Some("allow")))
}

/// Adopts or creates the cloud resources and starts the mirror loop.
pub(crate) async fn link(
    shared: Arc<Shared>,
    factory: NodeFactory,
    zones: Vec<(String, u32)>,
    options: CloudOptions,
) -> Result<CloudLink, SandboxError> {
    let c = clients(&options.endpoint, &shared.region);
    let vpc_id = ensure_vpc(&c, &options.name).await?;
    let template = ensure_template(&c, &options.name, &options, &shared.instance_type).await?;
    let mut subnets = BTreeMap::new();
    let mut groups = BTreeMap::new();
    for (i, (zone, size)) in zones.iter().enumerate() {
        let subnet = ensure_subnet(&c, &options.name, &vpc_id, zone, i).await?;
        let group = format!("steadfast-sandbox-{}-{zone}", options.name);
        ensure_group(&c, &group, &template, &subnet, *size as i32).await?;
        subnets.insert(zone.clone(), subnet);
        groups.insert(zone.clone(), group);
    }
    // Pair the nodes of each zone with the group's instances.
    let mut by_instance: HashMap<String, String> = HashMap::new();
    for (zone, group) in &groups {
        let instances = group_instances(&c, group).await?;
        let nodes = factory.nodes_in_zone(zone);
        for (node, instance) in nodes.iter().zip(instances.iter()) {
            factory.set_provider_id(node, zone, instance);
            by_instance.insert(instance.clone(), node.clone());
        }
    }
    info!(vpc = %vpc_id, groups = groups.len(), "cloud link established");
    let resources = CloudResources {
        vpc_id,
        subnets,
        groups,
    };
    let cancel = CancellationToken::new();
    let task = tokio::spawn(
        mirror(
            c,
            shared,
            factory,
            resources.clone(),
            by_instance,
            options.poll,
            cancel.clone(),
        )
        .instrument(info_span!("cloud_link")),
    );
    Ok(CloudLink {
        resources,
        cancel,
        task: Some(task),
    })
}

async fn mirror(
    c: Clients,
    shared: Arc<Shared>,
    factory: NodeFactory,
    res: CloudResources,
    mut by_instance: HashMap<String, String>,
    poll: Duration,
    cancel: CancellationToken,
) {
    let mut silenced = HashSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(poll) => {}
        }
        let pass = mirror_once(&c, &shared, &factory, &res, &mut by_instance, &mut silenced);
        if let Err(e) = pass.await {
            warn!(error = %e, "cloud poll failed; retrying");
        }
    }
}

async fn mirror_once(
    c: &Clients,
    shared: &Arc<Shared>,
    factory: &NodeFactory,
    res: &CloudResources,
    by_instance: &mut HashMap<String, String>,
    silenced: &mut HashSet<String>,
) -> Result<(), SandboxError> {
    let known: Vec<String> = by_instance.keys().cloned().collect();
    let alive = running(c, &known).await?;
    for (id, machine) in &alive {
        let Some(node) = by_instance.get(id) else {
            continue;
        };
        shutdown::mirror(
            shared,
            factory,
            silenced,
            node,
            *machine == Machine::Stopped,
        );
    }
    for id in known.iter().filter(|id| !alive.contains_key(*id)) {
        let Some(node) = by_instance.get(id).cloned() else {
            continue;
        };
        // The machine is gone: its kubelet falls silent at once; the node object is deleted
        // once the node lifecycle controller has marked it Unknown.
        factory.set_reporting(&node, false);
        let unknown = shared
            .store
            .get("nodes", "", &node)
            .is_none_or(|n| super::controllers::util::condition(&n, "Ready") == Some("Unknown"));
        if unknown {
            factory.remove(&node);
            by_instance.remove(id);
            info!(instance = %id, %node, "instance terminated; node removed");
        }
    }
    for (zone, group) in &res.groups {
        for id in group_instances(c, group).await? {
            if by_instance.contains_key(&id) {
                continue;
            }
            match factory.join(zone, &id) {
                Ok(node) => {
                    info!(instance = %id, %node, "instance launched; node joining");
                    by_instance.insert(id, node);
                }
                Err(e) => warn!(error = %e, "cannot add node"),
            }
        }
        let open = subnet_open(c, &res.subnets[zone]).await?;
        for node in factory.nodes_in_zone(zone) {
            factory.set_partitioned(&node, !open);
        }
    }
    Ok(())
}

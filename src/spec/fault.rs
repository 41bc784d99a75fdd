//! Fault specs: what to break, when, and which objects may be chosen.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::quantity::{DurationSpec, Percent};

/// One fault on the timeline: timing and exactly one kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct FaultSpec {
    /// Unique within the experiment; reports and recovery targets refer to it.
    pub name: String,
    /// Offset from the start of the fault phase. Default 0s.
    #[serde(default)]
    pub at: DurationSpec,
    /// How long the fault lasts before it is rolled back, counted from its first action (a
    /// control plane that makes the injection retry delays the rollback as much). Instant
    /// faults (podKill, podEvict, ec2Terminate) use it as the window in which `every` repeats
    /// them. Default 30s.
    #[serde(rename = "for", default = "default_for")]
    pub for_: DurationSpec,
    /// Repeat the fault this often within its window (instant faults only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<DurationSpec>,
    /// Delete pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_kill: Option<PodKillSpec>,
    /// Evict pods through the Eviction API, honouring PodDisruptionBudgets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_evict: Option<PodEvictSpec>,
    /// Cordon nodes and evict their pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_drain: Option<NodeDrainSpec>,
    /// Cordon nodes (no new pods), without evicting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_cordon: Option<NodeCordonSpec>,
    /// Cordon and taint (NoExecute) every node of a zone: a zone outage on any cloud.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_outage: Option<ZoneOutageSpec>,
    /// Terminate EC2 instances; in an Auto Scaling group the group replaces them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ec2_terminate: Option<Ec2TerminateSpec>,
    /// Stop EC2 instances; they are started again on rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ec2_stop: Option<Ec2StopSpec>,
    /// Cut an availability zone off the network by swapping its subnets to a deny-all ACL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub az_partition: Option<AzPartitionSpec>,
    /// Delay a pod's network traffic (`tc netem delay`) from an ephemeral container that takes
    /// the rule away itself when the window ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_network_latency: Option<PodNetworkLatencySpec>,
    /// Drop a share of a pod's packets (`tc netem loss`), healed the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_network_loss: Option<PodNetworkLossSpec>,
    /// Drop all of a pod's traffic in one direction, or to one port (`iptables ... -j DROP`),
    /// healed the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_network_blackhole: Option<PodNetworkBlackholeSpec>,
    /// How long the fault's change may take to show through the API (pod terminating, node
    /// cordoned, instance stopping, subnet on the deny-all ACL) before it counts as `noEffect`.
    /// Default 30s.
    #[serde(default = "default_effect_timeout")]
    pub effect_timeout: DurationSpec,
    /// Let the run pass when the fault changed nothing (`noEffect`): a fault that may find its
    /// targets already down. Default false: a fault that missed fails the run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_no_effect: bool,
}

fn default_for() -> DurationSpec {
    DurationSpec::from_secs(30)
}

fn default_effect_timeout() -> DurationSpec {
    DurationSpec(crate::fault::effect::DEFAULT_EFFECT_TIMEOUT)
}

/// The fault kind keys, in schema order.
pub const FAULT_KINDS: &[&str] = &[
    "podKill",
    "podEvict",
    "nodeDrain",
    "nodeCordon",
    "zoneOutage",
    "ec2Terminate",
    "ec2Stop",
    "azPartition",
    "podNetworkLatency",
    "podNetworkLoss",
    "podNetworkBlackhole",
];

/// Which kind a fault is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FaultKind {
    /// `podKill`
    PodKill,
    /// `podEvict`
    PodEvict,
    /// `nodeDrain`
    NodeDrain,
    /// `nodeCordon`
    NodeCordon,
    /// `zoneOutage`
    ZoneOutage,
    /// `ec2Terminate`
    Ec2Terminate,
    /// `ec2Stop`
    Ec2Stop,
    /// `azPartition`
    AzPartition,
    /// `podNetworkLatency`
    PodNetworkLatency,
    /// `podNetworkLoss`
    PodNetworkLoss,
    /// `podNetworkBlackhole`
    PodNetworkBlackhole,
}

impl FaultKind {
    /// The key as written in experiment files.
    pub fn key(self) -> &'static str {
        match self {
            FaultKind::PodKill => "podKill",
            FaultKind::PodEvict => "podEvict",
            FaultKind::NodeDrain => "nodeDrain",
            FaultKind::NodeCordon => "nodeCordon",
            FaultKind::ZoneOutage => "zoneOutage",
            FaultKind::Ec2Terminate => "ec2Terminate",
            FaultKind::Ec2Stop => "ec2Stop",
            FaultKind::AzPartition => "azPartition",
            FaultKind::PodNetworkLatency => "podNetworkLatency",
            FaultKind::PodNetworkLoss => "podNetworkLoss",
            FaultKind::PodNetworkBlackhole => "podNetworkBlackhole",
        }
    }

    /// Instant faults act once per firing and have nothing to hold; `every` repeats them.
    pub fn is_instant(self) -> bool {
        matches!(
            self,
            FaultKind::PodKill | FaultKind::PodEvict | FaultKind::Ec2Terminate
        )
    }
}

impl FaultSpec {
    /// The kinds that are set; valid faults have exactly one.
    pub fn kinds(&self) -> Vec<FaultKind> {
        let mut kinds = Vec::new();
        let set = [
            (self.pod_kill.is_some(), FaultKind::PodKill),
            (self.pod_evict.is_some(), FaultKind::PodEvict),
            (self.node_drain.is_some(), FaultKind::NodeDrain),
            (self.node_cordon.is_some(), FaultKind::NodeCordon),
            (self.zone_outage.is_some(), FaultKind::ZoneOutage),
            (self.ec2_terminate.is_some(), FaultKind::Ec2Terminate),
            (self.ec2_stop.is_some(), FaultKind::Ec2Stop),
            (self.az_partition.is_some(), FaultKind::AzPartition),
            (
                self.pod_network_latency.is_some(),
                FaultKind::PodNetworkLatency,
            ),
            (self.pod_network_loss.is_some(), FaultKind::PodNetworkLoss),
            (
                self.pod_network_blackhole.is_some(),
                FaultKind::PodNetworkBlackhole,
            ),
        ];
        for (is_set, kind) in set {
            if is_set {
                kinds.push(kind);
            }
        }
        kinds
    }

    /// The kind of a validated fault.
    pub fn kind(&self) -> Option<FaultKind> {
        match self.kinds()[..] {
            [kind] => Some(kind),
            _ => None,
        }
    }
}

/// How many of the matching objects a fault chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SelectionMode {
    /// One, at random.
    #[default]
    One,
    /// `count` of them, at random.
    Count,
    /// `percent` of them (rounded up), at random.
    Percent,
    /// All of them.
    All,
    /// Exactly the objects listed in `names`.
    Names,
}

/// Which pods a pod fault may choose, and how many.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct PodTargetSpec {
    /// Namespaces to choose from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Namespaces by label selector, in addition to `namespaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<String>,
    /// Pod label selector, e.g. `app=web`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Pod field selector, e.g. `spec.nodeName=node-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_selector: Option<String>,
    /// Only pods on nodes matching this label selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<String>,
    /// Only pods on nodes in this zone (`topology.kubernetes.io/zone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Only pods owned by this kind (e.g. `ReplicaSet`, `StatefulSet`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_kind: Option<String>,
    /// Also choose pods that are not Running and Ready. Default false.
    #[serde(default)]
    pub include_not_ready: bool,
    /// How many to choose. Default `one`.
    #[serde(default)]
    pub mode: SelectionMode,
    /// With mode `count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// With mode `percent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<Percent>,
    /// With mode `names`: pod names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}

/// Which nodes a node fault may choose, and how many.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct NodeTargetSpec {
    /// Node label selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Only nodes in this zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// How many to choose. Default `one`.
    #[serde(default)]
    pub mode: SelectionMode,
    /// With mode `count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// With mode `percent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<Percent>,
    /// With mode `names`: node names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}

/// Delete pods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct PodKillSpec {
    /// Which pods.
    pub target: PodTargetSpec,
    /// Grace period of the delete; `0s` kills at once. Default 0s.
    #[serde(default)]
    pub grace_period: DurationSpec,
}

/// What a disruption budget blocking an eviction means for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BlockedPolicy {
    /// Recorded in the report as a finding; the run goes on. Default.
    #[default]
    Finding,
    /// The run fails.
    Fail,
}

/// Evict pods through the Eviction API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct PodEvictSpec {
    /// Which pods.
    pub target: PodTargetSpec,
    /// What a PodDisruptionBudget refusing the eviction means. Default `finding`.
    #[serde(default)]
    pub on_blocked: BlockedPolicy,
}

/// Cordon nodes and evict their pods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct NodeDrainSpec {
    /// Which nodes.
    pub target: NodeTargetSpec,
    /// Give up evicting after this long (blocked evictions are retried until then). Default 2m.
    #[serde(default = "default_drain_timeout")]
    pub timeout: DurationSpec,
    /// What a PodDisruptionBudget blocking the drain means. Default `finding`.
    #[serde(default)]
    pub on_blocked: BlockedPolicy,
}

fn default_drain_timeout() -> DurationSpec {
    DurationSpec::from_secs(120)
}

/// Cordon nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct NodeCordonSpec {
    /// Which nodes.
    pub target: NodeTargetSpec,
}

/// Cordon and taint every node of a zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct ZoneOutageSpec {
    /// The zone (`topology.kubernetes.io/zone`).
    pub zone: String,
    /// Only nodes matching this label selector within the zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<String>,
}

/// Which EC2 instances an EC2 fault may choose.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct InstanceTargetSpec {
    /// Instance ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_ids: Vec<String>,
    /// Instances carrying all of these tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Instances of these Auto Scaling groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auto_scaling_groups: Vec<String>,
    /// Instances in this availability zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// The instances behind Kubernetes nodes matching this label selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<String>,
    /// How many to choose. Default `one`.
    #[serde(default)]
    pub mode: SelectionMode,
    /// With mode `count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// With mode `percent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<Percent>,
}

/// Terminate instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Ec2TerminateSpec {
    /// Which instances.
    pub target: InstanceTargetSpec,
    /// Allow terminating instances outside any Auto Scaling group: nothing replaces them and
    /// the step cannot be undone. Default false.
    #[serde(default)]
    pub allow_standalone: bool,
    /// Wait until every touched group is back to its desired capacity and the replacement nodes
    /// are Ready. Default 10m; `0s` to skip the check.
    #[serde(default = "default_replacement_timeout")]
    pub replacement_timeout: DurationSpec,
}

fn default_replacement_timeout() -> DurationSpec {
    DurationSpec::from_secs(600)
}

/// Stop instances, start them on rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Ec2StopSpec {
    /// Which instances.
    pub target: InstanceTargetSpec,
}

/// Partition a zone with a deny-all network ACL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct AzPartitionSpec {
    /// The availability zone, e.g. `eu-west-1a`.
    pub zone: String,
    /// Subnets carrying any of these tags stay untouched (e.g. the ones of a bastion).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exclude_subnet_tags: BTreeMap<String, String>,
}

/// The image of the ephemeral container of pod network faults: it must carry `sh`, `sleep`,
/// `tc` (iproute2) and `iptables`. nicolaka/netshoot is a widely used network toolbox image.
pub const DEFAULT_NETWORK_IMAGE: &str = "nicolaka/netshoot:v0.13";

fn default_network_image() -> String {
    DEFAULT_NETWORK_IMAGE.to_owned()
}

/// Destinations a pod network rule is restricted to (`to:`): the union of the addresses of
/// `pods`, `service`, `zone` and `cidrs`, each narrowed to `ports` when given. Resolved to
/// CIDRs and ports when the fault is planned, and recorded in its undo record.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct DestinationSpec {
    /// Pods, by namespaces and label selector: their pod IPs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<DestinationPodsSpec>,
    /// A Service: its ClusterIP on its ports, and its ready endpoints' IPs on their ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceRefSpec>,
    /// A zone (`topology.kubernetes.io/zone`): the `spec.podCIDRs` of its Ready nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// IPv4 ranges, e.g. `10.0.0.0/16`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<String>,
    /// Destination ports; alone, any address on these ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
}

/// Destination pods of a `to:`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct DestinationPodsSpec {
    /// Namespaces to look in.
    pub namespaces: Vec<String>,
    /// Pod label selector, e.g. `app=db`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

/// A Service by namespace and name.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct ServiceRefSpec {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// Add latency to pods' traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct PodNetworkLatencySpec {
    /// Which pods (chosen as for podKill).
    pub target: PodTargetSpec,
    /// Added to every packet, e.g. `200ms`.
    pub delay: DurationSpec,
    /// Uniform spread around `delay`. Default 0s.
    #[serde(default)]
    pub jitter: DurationSpec,
    /// How much each jitter draw depends on the previous one, e.g. `25%`. Default 0%.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation: Option<Percent>,
    /// Only traffic to these destinations; all of it if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DestinationSpec>,
    /// Image of the ephemeral container; needs sh, sleep, tc and iptables.
    /// Default `nicolaka/netshoot:v0.13`.
    #[serde(default = "default_network_image")]
    pub image: String,
}

/// Drop a share of pods' packets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct PodNetworkLossSpec {
    /// Which pods (chosen as for podKill).
    pub target: PodTargetSpec,
    /// Share of packets lost, e.g. `30%`.
    pub percent: Percent,
    /// Only traffic to these destinations; all of it if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DestinationSpec>,
    /// Image of the ephemeral container; needs sh, sleep, tc and iptables.
    /// Default `nicolaka/netshoot:v0.13`.
    #[serde(default = "default_network_image")]
    pub image: String,
}

/// Which of a pod's traffic a blackhole drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TrafficDirection {
    /// Packets to the pod (iptables INPUT). Default.
    #[default]
    Ingress,
    /// Packets from the pod (iptables OUTPUT).
    Egress,
}

/// Drop pods' traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct PodNetworkBlackholeSpec {
    /// Which pods (chosen as for podKill).
    pub target: PodTargetSpec,
    /// Which direction. Default `ingress`.
    #[serde(default)]
    pub direction: TrafficDirection,
    /// Only this TCP port (the pod's own port: destination for ingress, source for egress).
    /// Default: all traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Only traffic to these destinations; all of it if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DestinationSpec>,
    /// Image of the ephemeral container; needs sh, sleep, tc and iptables.
    /// Default `nicolaka/netshoot:v0.13`.
    #[serde(default = "default_network_image")]
    pub image: String,
}

//! The zone model: one map from availability zone to the subnets, Auto Scaling groups, EC2
//! instances and Kubernetes nodes in it, built from what the cloud and the cluster report.
//!
//! Pure: the adapters in `infra` gather the facts, this module only joins them, so the same
//! map serves `steadfast plan` (it serialises to JSON) and the AWS faults (which choose their
//! targets from it), and tests build it from literals.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::select::{Caps, Selection, SelectionError, select};
use crate::spec::fault::{InstanceTargetSpec, SelectionMode};
use crate::spec::safety::SafetySpec;
use crate::spec::selector::{LabelSelector, SelectorError};

/// The well-known label holding a node's availability zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// The tag AWS puts on every instance an Auto Scaling group launches.
pub const GROUP_NAME_TAG: &str = "aws:autoscaling:groupName";

/// A Kubernetes node as the zone model needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeFacts {
    /// The node's name.
    pub name: String,
    /// Its zone: the zone label, else the zone in its provider id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// The EC2 instance behind it, from `spec.providerID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// Whether its `Ready` condition is `True`.
    pub ready: bool,
    /// Its labels, for node selectors.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// The zone and instance id in an AWS provider id, `aws:///<zone>/<instance-id>`.
///
/// Returns `None` for provider ids of other clouds or of unexpected shape.
pub fn parse_provider_id(provider_id: &str) -> Option<(Option<String>, String)> {
    let path = provider_id.strip_prefix("aws://")?;
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let (last, rest) = parts.split_last()?;
    if !last.starts_with("i-") {
        return None;
    }
    let zone = rest.last().map(|z| (*z).to_owned());
    Some((zone, (*last).to_owned()))
}

/// An EC2 instance as the zone model needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceFacts {
    /// The instance id.
    pub instance_id: String,
    /// Its availability zone.
    pub zone: String,
    /// Its subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    /// Its VPC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    /// EC2's state name: `pending`, `running`, `stopping`, `stopped`, ...
    pub state: String,
    /// Its tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The Auto Scaling group it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The Kubernetes node it backs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl InstanceFacts {
    /// True for states from which the instance will not come back.
    pub fn is_gone(&self) -> bool {
        matches!(self.state.as_str(), "terminated" | "shutting-down")
    }
}

/// A VPC subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetFacts {
    /// The subnet id.
    pub subnet_id: String,
    /// Its availability zone.
    pub zone: String,
    /// Its VPC.
    pub vpc_id: String,
    /// Its tags (azPartition excludes subnets by tag).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// One instance as its Auto Scaling group sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupMember {
    /// The instance id.
    pub instance_id: String,
    /// Its zone.
    pub zone: String,
    /// The group's lifecycle state, e.g. `InService`, `Pending`, `Terminating`.
    pub lifecycle_state: String,
    /// Whether the group considers it healthy.
    pub healthy: bool,
}

impl GroupMember {
    /// In service and healthy: counts towards the desired capacity.
    pub fn in_service(&self) -> bool {
        self.lifecycle_state == "InService" && self.healthy
    }
}

/// An Auto Scaling group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupFacts {
    /// The group's name.
    pub name: String,
    /// How many instances it keeps.
    pub desired_capacity: u32,
    /// Its minimum size.
    pub min_size: u32,
    /// Its maximum size.
    pub max_size: u32,
    /// The zones it launches into.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    /// The subnets it launches into.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subnet_ids: Vec<String>,
    /// Its instances.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<GroupMember>,
    /// Its tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl GroupFacts {
    /// Members in service and healthy.
    pub fn in_service(&self) -> usize {
        self.members.iter().filter(|m| m.in_service()).count()
    }
}

/// Everything the adapters gathered, before it is joined into a [`ZoneMap`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// EC2 instances.
    pub instances: Vec<InstanceFacts>,
    /// Subnets.
    pub subnets: Vec<SubnetFacts>,
    /// Auto Scaling groups.
    pub groups: Vec<GroupFacts>,
    /// Kubernetes nodes (empty when no cluster is reachable or needed).
    pub nodes: Vec<NodeFacts>,
}

/// What one zone holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneView {
    /// Subnets in the zone.
    pub subnets: Vec<SubnetFacts>,
    /// Names of the groups that launch into the zone or have instances there.
    pub groups: Vec<String>,
    /// Instances in the zone (terminated ones left out).
    pub instances: Vec<InstanceFacts>,
    /// Nodes in the zone.
    pub nodes: Vec<NodeFacts>,
}

/// The zone map: zone → subnets, groups, instances, nodes; groups by name beside it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneMap {
    /// The VPC the map is limited to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    /// Per zone, sorted by name.
    pub zones: BTreeMap<String, ZoneView>,
    /// The groups, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, GroupFacts>,
    /// Nodes whose zone is unknown (no zone label, no AWS provider id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unzoned_nodes: Vec<NodeFacts>,
}

/// Why the zone model could not answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ZoneError {
    /// The nodes' instances sit in more than one VPC; the spec must name one.
    #[error("the cluster's nodes are in several VPCs ({}); set spec.aws.vpcId", .0.join(", "))]
    AmbiguousVpc(Vec<String>),
    /// An instance target names no criterion and would match every instance of the region.
    #[error(
        "the instance target names nothing; give instanceIds, tags, autoScalingGroups, zone or nodeSelector"
    )]
    EmptyTarget,
    /// The node selector does not parse.
    #[error(transparent)]
    Selector(#[from] SelectorError),
    /// The choice among the candidates failed (none matched, or over the caps).
    #[error(transparent)]
    Selection(#[from] SelectionError),
}

/// The blast-radius caps of instance faults: `safety.maxNodes` counts instances too.
pub fn instance_caps(safety: &SafetySpec) -> Caps {
    Caps {
        max_objects: safety.max_nodes,
        max_percent: safety.max_percent,
    }
}

/// The VPC the cluster runs in: the single VPC of the instances behind the nodes.
///
/// `Ok(None)` when no node maps to a known instance.
///
/// # Errors
/// [`ZoneError::AmbiguousVpc`] when the nodes span several VPCs.
pub fn discover_vpc(
    nodes: &[NodeFacts],
    instances: &[InstanceFacts],
) -> Result<Option<String>, ZoneError> {
    let by_id: HashMap<&str, &InstanceFacts> = instances
        .iter()
        .map(|i| (i.instance_id.as_str(), i))
        .collect();
    let vpcs: BTreeSet<String> = nodes
        .iter()
        .filter_map(|n| n.instance_id.as_deref())
        .filter_map(|id| by_id.get(id))
        .filter_map(|i| i.vpc_id.clone())
        .collect();
    match vpcs.len() {
        0 => Ok(None),
        1 => Ok(vpcs.into_iter().next()),
        _ => Err(ZoneError::AmbiguousVpc(vpcs.into_iter().collect())),
    }
}

impl ZoneMap {
    /// Joins the inventory into one map, limited to `vpc_id` when given. Terminated instances
    /// are left out; instances learn their group (from the groups, else from the group tag)
    /// and their node (through the nodes' provider ids).
    pub fn build(vpc_id: Option<String>, inventory: Inventory) -> Self {
        let Inventory {
            instances,
            subnets,
            groups,
            nodes,
        } = inventory;
        let in_vpc = |vpc: Option<&str>| match (&vpc_id, vpc) {
            (Some(wanted), Some(actual)) => wanted == actual,
            _ => true,
        };
        let member_of: HashMap<&str, &str> = groups
            .iter()
            .flat_map(|g| {
                g.members
                    .iter()
                    .map(move |m| (m.instance_id.as_str(), g.name.as_str()))
            })
            .collect();
        let node_of: HashMap<&str, &str> = nodes
            .iter()
            .filter_map(|n| n.instance_id.as_deref().map(|id| (id, n.name.as_str())))
            .collect();

        let mut map = ZoneMap {
            vpc_id: vpc_id.clone(),
            ..ZoneMap::default()
        };
        let subnets: Vec<SubnetFacts> = subnets
            .into_iter()
            .filter(|s| in_vpc(Some(&s.vpc_id)))
            .collect();
        let subnet_ids: BTreeSet<&str> = subnets.iter().map(|s| s.subnet_id.as_str()).collect();

        let mut kept_instances = Vec::new();
        for mut instance in instances {
            if instance.is_gone() || !in_vpc(instance.vpc_id.as_deref()) {
                continue;
            }
            instance.group = member_of
                .get(instance.instance_id.as_str())
                .map(|g| (*g).to_owned())
                .or_else(|| instance.tags.get(GROUP_NAME_TAG).cloned());
            instance.node = node_of
                .get(instance.instance_id.as_str())
                .map(|n| (*n).to_owned());
            kept_instances.push(instance);
        }
        let instance_ids: BTreeSet<&str> = kept_instances
            .iter()
            .map(|i| i.instance_id.as_str())
            .collect();

        for group in groups {
            let belongs = vpc_id.is_none()
                || group
                    .members
                    .iter()
                    .any(|m| instance_ids.contains(m.instance_id.as_str()))
                || group
                    .subnet_ids
                    .iter()
                    .any(|s| subnet_ids.contains(s.as_str()));
            if belongs {
                map.groups.insert(group.name.clone(), group);
            }
        }
        drop(instance_ids);
        drop(subnet_ids);

        for subnet in subnets {
            map.zone_mut(&subnet.zone).subnets.push(subnet);
        }
        for instance in kept_instances {
            map.zone_mut(&instance.zone.clone())
                .instances
                .push(instance);
        }
        for node in nodes {
            match node.zone.clone() {
                Some(zone) => map.zone_mut(&zone).nodes.push(node),
                None => map.unzoned_nodes.push(node),
            }
        }
        let group_zones: Vec<(String, BTreeSet<String>)> = map
            .groups
            .values()
            .map(|g| {
                let zones = g
                    .zones
                    .iter()
                    .cloned()
                    .chain(g.members.iter().map(|m| m.zone.clone()))
                    .collect();
                (g.name.clone(), zones)
            })
            .collect();
        for (name, zones) in group_zones {
            for zone in zones {
                map.zone_mut(&zone).groups.push(name.clone());
            }
        }
        for view in map.zones.values_mut() {
            view.subnets.sort_by(|a, b| a.subnet_id.cmp(&b.subnet_id));
            view.instances
                .sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
            view.nodes.sort_by(|a, b| a.name.cmp(&b.name));
            view.groups.sort();
            view.groups.dedup();
        }
        map
    }

    fn zone_mut(&mut self, zone: &str) -> &mut ZoneView {
        self.zones.entry(zone.to_owned()).or_default()
    }

    /// Every instance, zone by zone, each zone sorted by id.
    pub fn instances(&self) -> impl Iterator<Item = &InstanceFacts> {
        self.zones.values().flat_map(|z| z.instances.iter())
    }

    /// The instance with this id.
    pub fn instance(&self, instance_id: &str) -> Option<&InstanceFacts> {
        self.instances().find(|i| i.instance_id == instance_id)
    }

    /// Every node with a zone.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeFacts> {
        self.zones
            .values()
            .flat_map(|z| z.nodes.iter())
            .chain(self.unzoned_nodes.iter())
    }

    /// The subnets of a zone (none for an unknown zone).
    pub fn subnets_in(&self, zone: &str) -> &[SubnetFacts] {
        self.zones.get(zone).map_or(&[], |z| z.subnets.as_slice())
    }

    /// The instances an instance target matches, sorted by id. Every criterion given must hold;
    /// a target with no criterion is refused rather than matching the whole region.
    ///
    /// # Errors
    /// An empty target or a node selector that does not parse.
    pub fn instance_candidates(
        &self,
        target: &InstanceTargetSpec,
    ) -> Result<Vec<&InstanceFacts>, ZoneError> {
        if target.instance_ids.is_empty()
            && target.tags.is_empty()
            && target.auto_scaling_groups.is_empty()
            && target.zone.is_none()
            && target.node_selector.is_none()
        {
            return Err(ZoneError::EmptyTarget);
        }
        let node_selector = target
            .node_selector
            .as_deref()
            .map(LabelSelector::parse)
            .transpose()?;
        let nodes: HashMap<&str, &NodeFacts> = self.nodes().map(|n| (n.name.as_str(), n)).collect();
        let mut matched: Vec<&InstanceFacts> = self
            .instances()
            .filter(|i| {
                target.instance_ids.is_empty() || target.instance_ids.contains(&i.instance_id)
            })
            .filter(|i| target.tags.iter().all(|(k, v)| i.tags.get(k) == Some(v)))
            .filter(|i| {
                target.auto_scaling_groups.is_empty()
                    || i.group
                        .as_ref()
                        .is_some_and(|g| target.auto_scaling_groups.contains(g))
            })
            .filter(|i| target.zone.as_ref().is_none_or(|z| &i.zone == z))
            .filter(|i| {
                node_selector.as_ref().is_none_or(|sel| {
                    i.node
                        .as_deref()
                        .and_then(|n| nodes.get(n))
                        .is_some_and(|n| sel.matches(&n.labels))
                })
            })
            .collect();
        matched.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        Ok(matched)
    }

    /// Chooses instances for a fault: the candidates that also pass `usable` (e.g. only
    /// running ones), then the seeded choice within the caps. Returns the chosen instances and
    /// how many candidates there were.
    ///
    /// # Errors
    /// As [`ZoneMap::instance_candidates`], plus no usable candidate or a choice over the caps.
    pub fn choose_instances(
        &self,
        target: &InstanceTargetSpec,
        usable: impl Fn(&InstanceFacts) -> bool,
        caps: Caps,
        seed: u64,
    ) -> Result<(Vec<InstanceFacts>, usize), ZoneError> {
        let candidates: Vec<&InstanceFacts> = self
            .instance_candidates(target)?
            .into_iter()
            .filter(|i| usable(i))
            .collect();
        let selection = Selection {
            mode: target.mode,
            count: target.count,
            percent: target.percent,
            names: if target.mode == SelectionMode::Names {
                target.instance_ids.clone()
            } else {
                Vec::new()
            },
        };
        let chosen = select(
            &candidates,
            |i| i.instance_id.as_str(),
            &selection,
            caps,
            seed,
        )?;
        Ok((
            chosen.into_iter().map(|i| candidates[i].clone()).collect(),
            candidates.len(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Percent;

    fn instance(id: &str, zone: &str, vpc: &str, tags: &[(&str, &str)]) -> InstanceFacts {
        InstanceFacts {
            instance_id: id.into(),
            zone: zone.into(),
            subnet_id: Some(format!("subnet-{zone}")),
            vpc_id: Some(vpc.into()),
            state: "running".into(),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            group: None,
            node: None,
        }
    }

    fn node(name: &str, provider: &str, labels: &[(&str, &str)]) -> NodeFacts {
        let (zone, instance_id) = parse_provider_id(provider).unzip();
        NodeFacts {
            name: name.into(),
            zone: labels
                .iter()
                .find(|(k, _)| *k == ZONE_LABEL)
                .map(|(_, v)| (*v).to_owned())
                .or(zone.flatten()),
            instance_id,
            ready: true,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        }
    }

    fn inventory() -> Inventory {
        let mut gone = instance("i-dead", "eu-west-1a", "vpc-1", &[]);
        gone.state = "terminated".into();
        Inventory {
            instances: vec![
                instance("i-a1", "eu-west-1a", "vpc-1", &[("team", "web")]),
                instance("i-a2", "eu-west-1a", "vpc-1", &[(GROUP_NAME_TAG, "tagged")]),
                instance("i-b1", "eu-west-1b", "vpc-1", &[("team", "web")]),
                instance("i-other", "eu-west-1b", "vpc-2", &[("team", "web")]),
                gone,
            ],
            subnets: vec![
                SubnetFacts {
                    subnet_id: "subnet-b".into(),
                    zone: "eu-west-1b".into(),
                    vpc_id: "vpc-1".into(),
                    tags: BTreeMap::new(),
                },
                SubnetFacts {
                    subnet_id: "subnet-a".into(),
                    zone: "eu-west-1a".into(),
                    vpc_id: "vpc-1".into(),
                    tags: BTreeMap::new(),
                },
                SubnetFacts {
                    subnet_id: "subnet-x".into(),
                    zone: "eu-west-1a".into(),
                    vpc_id: "vpc-2".into(),
                    tags: BTreeMap::new(),
                },
            ],
            groups: vec![GroupFacts {
                name: "nodes-a".into(),
                desired_capacity: 1,
                min_size: 1,
                max_size: 2,
                zones: vec!["eu-west-1a".into()],
                subnet_ids: vec!["subnet-a".into()],
                members: vec![GroupMember {
                    instance_id: "i-a1".into(),
                    zone: "eu-west-1a".into(),
                    lifecycle_state: "InService".into(),
                    healthy: true,
                }],
                tags: BTreeMap::new(),
            }],
            nodes: vec![
                node(
                    "node-a1",
                    "aws:///eu-west-1a/i-a1",
                    &[(ZONE_LABEL, "eu-west-1a"), ("pool", "general")],
                ),
                node("node-b1", "aws:///eu-west-1b/i-b1", &[("pool", "spot")]),
                node("kind-node", "kind://docker/kind/kind-worker", &[]),
            ],
        }
    }

    #[test]
    fn instance_caps_come_from_max_nodes() {
        let caps = instance_caps(&SafetySpec::default());
        assert_eq!(caps.max_objects, 1);
        assert_eq!(caps.max_percent, Percent::new(50.0));
    }

    #[test]
    fn provider_ids_yield_zone_and_instance() {
        assert_eq!(
            parse_provider_id("aws:///eu-west-1a/i-0abc"),
            Some((Some("eu-west-1a".into()), "i-0abc".into()))
        );
        assert_eq!(
            parse_provider_id("aws:////i-0abc"),
            Some((None, "i-0abc".into()))
        );
        assert_eq!(parse_provider_id("gce://project/zone/vm"), None);
        assert_eq!(parse_provider_id("aws:///eu-west-1a/fargate-ip"), None);
    }

    #[test]
    fn the_map_joins_zones_groups_instances_and_nodes() {
        let map = ZoneMap::build(Some("vpc-1".into()), inventory());
        assert_eq!(
            map.zones.keys().collect::<Vec<_>>(),
            vec!["eu-west-1a", "eu-west-1b"]
        );
        let a = &map.zones["eu-west-1a"];
        assert_eq!(
            a.instances
                .iter()
                .map(|i| i.instance_id.as_str())
                .collect::<Vec<_>>(),
            vec!["i-a1", "i-a2"],
            "terminated instances and other VPCs are left out"
        );
        assert_eq!(a.instances[0].group.as_deref(), Some("nodes-a"));
        assert_eq!(a.instances[0].node.as_deref(), Some("node-a1"));
        assert_eq!(
            a.instances[1].group.as_deref(),
            Some("tagged"),
            "group from the tag"
        );
        assert_eq!(a.groups, vec!["nodes-a".to_owned()]);
        assert_eq!(a.subnets.len(), 1);
        let b = &map.zones["eu-west-1b"];
        assert_eq!(
            b.nodes[0].name, "node-b1",
            "zone from the provider id when the label is missing"
        );
        assert_eq!(map.unzoned_nodes[0].name, "kind-node");
        let json = serde_json::to_value(&map).unwrap();
        assert_eq!(
            json["zones"]["eu-west-1a"]["instances"][0]["instanceId"],
            "i-a1"
        );
        assert_eq!(json["groups"]["nodes-a"]["desiredCapacity"], 1);
    }

    #[test]
    fn the_vpc_is_discovered_from_the_nodes_instances() {
        let inv = inventory();
        assert_eq!(
            discover_vpc(&inv.nodes, &inv.instances).unwrap(),
            Some("vpc-1".into())
        );
        let mut nodes = inv.nodes.clone();
        nodes.push(node("other", "aws:///eu-west-1b/i-other", &[]));
        assert_eq!(
            discover_vpc(&nodes, &inv.instances).unwrap_err(),
            ZoneError::AmbiguousVpc(vec!["vpc-1".into(), "vpc-2".into()])
        );
        assert_eq!(discover_vpc(&[], &inv.instances).unwrap(), None);
    }

    fn ids(found: &[&InstanceFacts]) -> Vec<String> {
        found.iter().map(|i| i.instance_id.clone()).collect()
    }

    #[test]
    fn instance_targets_combine_their_criteria() {
        let map = ZoneMap::build(Some("vpc-1".into()), inventory());
        let by_tag = InstanceTargetSpec {
            tags: [("team".to_owned(), "web".to_owned())].into(),
            ..InstanceTargetSpec::default()
        };
        assert_eq!(
            ids(&map.instance_candidates(&by_tag).unwrap()),
            vec!["i-a1", "i-b1"]
        );
        let tag_and_zone = InstanceTargetSpec {
            zone: Some("eu-west-1b".into()),
            ..by_tag.clone()
        };
        assert_eq!(
            ids(&map.instance_candidates(&tag_and_zone).unwrap()),
            vec!["i-b1"]
        );
        let by_group = InstanceTargetSpec {
            auto_scaling_groups: vec!["nodes-a".into(), "tagged".into()],
            ..InstanceTargetSpec::default()
        };
        assert_eq!(
            ids(&map.instance_candidates(&by_group).unwrap()),
            vec!["i-a1", "i-a2"]
        );
        let by_node = InstanceTargetSpec {
            node_selector: Some("pool=spot".into()),
            ..InstanceTargetSpec::default()
        };
        assert_eq!(
            ids(&map.instance_candidates(&by_node).unwrap()),
            vec!["i-b1"]
        );
        assert_eq!(
            map.instance_candidates(&InstanceTargetSpec::default())
                .unwrap_err(),
            ZoneError::EmptyTarget
        );
        let bad = InstanceTargetSpec {
            node_selector: Some("a in b".into()),
            ..InstanceTargetSpec::default()
        };
        assert!(matches!(
            map.instance_candidates(&bad),
            Err(ZoneError::Selector(_))
        ));
    }

    #[test]
    fn choosing_respects_the_caps_and_the_seed() {
        let map = ZoneMap::build(Some("vpc-1".into()), inventory());
        let all_zone_a = InstanceTargetSpec {
            zone: Some("eu-west-1a".into()),
            mode: SelectionMode::All,
            ..InstanceTargetSpec::default()
        };
        let caps = Caps {
            max_objects: 1,
            max_percent: Percent::new(100.0),
        };
        assert!(matches!(
            map.choose_instances(&all_zone_a, |_| true, caps, 7),
            Err(ZoneError::Selection(SelectionError::OverCaps {
                chosen: 2,
                ..
            }))
        ));
        let one = InstanceTargetSpec {
            mode: SelectionMode::One,
            ..all_zone_a.clone()
        };
        let (first, candidates) = map.choose_instances(&one, |_| true, caps, 7).unwrap();
        let (again, _) = map.choose_instances(&one, |_| true, caps, 7).unwrap();
        assert_eq!(candidates, 2);
        assert_eq!(first, again);
        let (only_grouped, candidates) = map
            .choose_instances(&one, |i| i.group.as_deref() == Some("nodes-a"), caps, 7)
            .unwrap();
        assert_eq!(candidates, 1);
        assert_eq!(only_grouped[0].instance_id, "i-a1");
    }
}

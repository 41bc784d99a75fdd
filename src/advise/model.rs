//! The snapshot the rules read: just the facts about workloads, pods, nodes, budgets,
//! Services and node groups that decide high availability, with no SDK type in sight.

use std::collections::BTreeMap;

/// The label every node carries with its availability zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Everything the rules look at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Deployments and StatefulSets.
    pub workloads: Vec<Workload>,
    /// Pods, for where replicas really run.
    pub pods: Vec<PodFacts>,
    /// Nodes, for zones and capacity.
    pub nodes: Vec<NodeFacts>,
    /// PodDisruptionBudgets.
    pub budgets: Vec<Budget>,
    /// Services.
    pub services: Vec<ServiceFacts>,
    /// Node groups or Auto Scaling groups; empty when AWS was not read.
    pub node_groups: Vec<NodeGroup>,
}

/// The kind of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WorkloadKind {
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` StatefulSet.
    StatefulSet,
}

impl WorkloadKind {
    /// The Kubernetes kind.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
        }
    }
}

/// Resource requests or allocatable capacity: CPU in millicores, memory in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU in millicores.
    pub cpu_millis: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
}

impl Resources {
    /// Whether both are zero (nothing requested).
    pub fn is_zero(self) -> bool {
        self.cpu_millis == 0 && self.memory_bytes == 0
    }

    /// The sum of two.
    pub fn plus(self, other: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_add(other.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_add(other.memory_bytes),
        }
    }

    /// `self` times `n`.
    pub fn times(self, n: u32) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_mul(u64::from(n)),
            memory_bytes: self.memory_bytes.saturating_mul(u64::from(n)),
        }
    }

    /// Whether either dimension of `self` is below `need`.
    pub fn short_of(self, need: Resources) -> bool {
        self.cpu_millis < need.cpu_millis || self.memory_bytes < need.memory_bytes
    }
}

/// A Deployment or StatefulSet and its pod template.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Deployment or StatefulSet.
    pub kind: WorkloadKind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Desired replicas (`spec.replicas`, 1 when unset).
    pub replicas: u32,
    /// Labels of the pod template, which Services and budgets select.
    pub pod_labels: BTreeMap<String, String>,
    /// The selector's `matchLabels`, to find the workload's pods.
    pub selector: BTreeMap<String, String>,
    /// Containers without a readiness probe.
    pub containers_without_readiness: Vec<String>,
    /// `terminationGracePeriodSeconds` (30 when unset).
    pub termination_grace_seconds: u64,
    /// Longest `preStop` sleep, when one is derivable (a `sleep` action or `sleep N` exec).
    pub pre_stop_seconds: Option<u64>,
    /// Whether a topology spread constraint or pod anti-affinity spreads it across zones.
    pub spreads_across_zones: bool,
    /// The pod template's `nodeSelector`.
    pub node_selector: BTreeMap<String, String>,
    /// Summed requests of one pod's containers.
    pub requests: Resources,
    /// Port and HTTP path of the first readiness probe, when it is an `httpGet`.
    pub readiness_http: Option<(String, String)>,
}

impl Workload {
    /// `Kind/namespace/name`.
    pub fn object(&self) -> String {
        format!("{}/{}/{}", self.kind.as_str(), self.namespace, self.name)
    }
}

/// A pod and where it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct PodFacts {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The node it is bound to, if any.
    pub node: Option<String>,
    /// Whether it is terminating (its place no longer counts).
    pub terminating: bool,
}

/// A node, its zone and what it can hold.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeFacts {
    /// Name.
    pub name: String,
    /// `topology.kubernetes.io/zone`.
    pub zone: Option<String>,
    /// All labels, for `nodeSelector`s.
    pub labels: BTreeMap<String, String>,
    /// The EC2 instance behind it (from `spec.providerID`), to find its node group.
    pub instance_id: Option<String>,
    /// `status.allocatable`.
    pub allocatable: Resources,
}

/// A count or a percentage, as `minAvailable` and `maxUnavailable` take them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntOrPercent {
    /// An absolute count.
    Count(u32),
    /// A percentage of the expected pods.
    Percent(u32),
}

impl IntOrPercent {
    /// The value against `total` pods; percentages round up as the disruption controller does
    /// for `minAvailable` and `maxUnavailable`.
    pub fn of(&self, total: u32) -> u32 {
        match self {
            IntOrPercent::Count(n) => *n,
            IntOrPercent::Percent(p) => (u64::from(total) * u64::from(*p)).div_ceil(100) as u32,
        }
    }
}

/// A PodDisruptionBudget.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The selector's `matchLabels`; `None` when it uses expressions the rules do not read.
    pub selector: Option<BTreeMap<String, String>>,
    /// `spec.minAvailable`.
    pub min_available: Option<IntOrPercent>,
    /// `spec.maxUnavailable`.
    pub max_unavailable: Option<IntOrPercent>,
    /// `status.disruptionsAllowed`.
    pub disruptions_allowed: Option<i64>,
}

impl Budget {
    /// `PodDisruptionBudget/namespace/name`.
    pub fn object(&self) -> String {
        format!("PodDisruptionBudget/{}/{}", self.namespace, self.name)
    }
}

/// A Service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceFacts {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `spec.selector`; empty for Services whose endpoints are managed by hand.
    pub selector: BTreeMap<String, String>,
    /// Ready endpoints over all its EndpointSlices.
    pub ready_endpoints: u32,
    /// First port.
    pub port: Option<u16>,
}

impl ServiceFacts {
    /// `Service/namespace/name`.
    pub fn object(&self) -> String {
        format!("Service/{}/{}", self.namespace, self.name)
    }
}

/// A node group or Auto Scaling group.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeGroup {
    /// Name.
    pub name: String,
    /// Availability zones it launches into.
    pub zones: Vec<String>,
}

/// Whether `selector` (non-empty) selects `labels`.
pub fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

impl Snapshot {
    /// The pods of `w` that are not terminating.
    pub fn pods_of<'a>(&'a self, w: &'a Workload) -> impl Iterator<Item = &'a PodFacts> + 'a {
        self.pods.iter().filter(move |p| {
            p.namespace == w.namespace && !p.terminating && selects(&w.selector, &p.labels)
        })
    }

    /// The Services that select `w`'s pods.
    pub fn services_of<'a>(
        &'a self,
        w: &'a Workload,
    ) -> impl Iterator<Item = &'a ServiceFacts> + 'a {
        self.services
            .iter()
            .filter(move |s| s.namespace == w.namespace && selects(&s.selector, &w.pod_labels))
    }

    /// The budgets that cover `w`'s pods.
    pub fn budgets_of<'a>(&'a self, w: &'a Workload) -> impl Iterator<Item = &'a Budget> + 'a {
        self.budgets.iter().filter(move |b| {
            b.namespace == w.namespace
                && b.selector
                    .as_ref()
                    .is_some_and(|s| selects(s, &w.pod_labels))
        })
    }

    /// The zone of a node, by name.
    pub fn zone_of(&self, node: &str) -> Option<&str> {
        self.nodes
            .iter()
            .find(|n| n.name == node)
            .and_then(|n| n.zone.as_deref())
    }
}

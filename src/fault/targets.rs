//! Which pods and nodes a Kubernetes fault may choose: the spec's selection narrowed by the
//! safety rules, in a stable order so a recorded seed picks the same objects again.
//!
//! Pure: the callers list objects through the API and hand them in. The rules that protect the
//! cluster live here so they can be tested object by object:
//! - `kube-system` is never chosen unless `safety.allowNamespaces` names it;
//! - `safety.denyNamespaces` always wins, `safety.allowNamespaces` (when set) is exhaustive;
//! - steadfast's own pod (`POD_NAMESPACE`/`POD_NAME`) is never chosen;
//! - `safety.optInLabel`, when set, must be on every target;
//! - only Running and Ready pods, unless the spec says `includeNotReady`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector as KubeSelector, OwnerReference,
};

use crate::fault::{FaultError, TargetKind, TargetRef};
use crate::plan::{Caps, Selection, SelectionError, select};
use crate::spec::fault::{NodeTargetSpec, PodTargetSpec};
use crate::spec::safety::SafetySpec;
use crate::spec::selector::{FieldSelector, LabelSelector};

/// The zone label every cloud provider sets on nodes.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// The namespace that is off limits unless allowed by name.
pub const KUBE_SYSTEM: &str = "kube-system";
/// The annotation the kubelet puts on static (mirror) pods.
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// steadfast's own pod, which no fault may choose.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OwnPod {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl OwnPod {
    /// Reads `POD_NAMESPACE` and `POD_NAME` (set through the downward API in the Helm chart);
    /// `None` outside a pod.
    pub fn from_env() -> Option<Self> {
        let namespace = std::env::var("POD_NAMESPACE").ok()?;
        let name = std::env::var("POD_NAME").ok()?;
        (!namespace.is_empty() && !name.is_empty()).then_some(Self { namespace, name })
    }
}

/// A pod that may be chosen, with what the report and the healing watch need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodCandidate {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The node it runs on.
    pub node: Option<String>,
    /// The zone of that node.
    pub zone: Option<String>,
    /// `namespace/name`, the stable sort key and the name `names` mode matches.
    pub key: String,
}

impl PodCandidate {
    /// The target reference of a chosen pod.
    pub fn target(&self) -> TargetRef {
        TargetRef {
            kind: TargetKind::Pod,
            name: self.name.clone(),
            namespace: Some(self.namespace.clone()),
            node: self.node.clone(),
            zone: self.zone.clone(),
        }
    }
}

/// A node that may be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCandidate {
    /// Name.
    pub name: String,
    /// Its zone.
    pub zone: Option<String>,
    /// Whether it was `spec.unschedulable` when read.
    pub unschedulable: bool,
}

impl NodeCandidate {
    /// The target reference of a chosen node.
    pub fn target(&self) -> TargetRef {
        TargetRef {
            kind: TargetKind::Node,
            name: self.name.clone(),
            namespace: None,
            node: None,
            zone: self.zone.clone(),
        }
    }

    /// Reads a node object.
    pub fn of(node: &Node) -> Self {
        Self {
            name: node.metadata.name.clone().unwrap_or_default(),
            zone: zone_of(node),
            unschedulable: node
                .spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false),
        }
    }
}

/// Whether the safety rules let a fault touch objects in `namespace`.
pub fn namespace_allowed(namespace: &str, safety: &SafetySpec) -> bool {
    if safety.deny_namespaces.iter().any(|n| n == namespace) {
        return false;
    }
    let listed = safety.allow_namespaces.iter().any(|n| n == namespace);
    if namespace == KUBE_SYSTEM && !listed {
        return false;
    }
    safety.allow_namespaces.is_empty() || listed
}

/// Parses the spec's selectors, which validation has already checked.
fn parse_label(text: Option<&str>) -> Result<Option<LabelSelector>, FaultError> {
    text.map(LabelSelector::parse)
        .transpose()
        .map_err(|e| FaultError::Refused(e.to_string()))
}

fn labels_of(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

/// The zone label of a node.
pub fn zone_of(node: &Node) -> Option<String> {
    node.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(ZONE_LABEL))
        .cloned()
}

/// The controlling owner of a pod (`controller: true`).
pub fn controller_of(pod: &Pod) -> Option<&OwnerReference> {
    pod.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
}

/// True for pods a drain leaves alone: DaemonSet pods (their controller would recreate them on
/// the same node) and static pods (the kubelet owns them, the API only mirrors them).
pub fn is_daemon_or_mirror(pod: &Pod) -> bool {
    let daemon = controller_of(pod).is_some_and(|o| o.kind == "DaemonSet");
    let mirror = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION));
    daemon || mirror
}

/// Running, Ready and not terminating.
pub fn is_running_and_ready(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    let ready = status
        .conditions
        .as_ref()
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    pod.metadata.deletion_timestamp.is_none() && status.phase.as_deref() == Some("Running") && ready
}

/// Reads a dotted field of a pod, for the field selectors the API server supports.
fn pod_field(pod: &Pod, field: &str) -> Option<String> {
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    match field {
        "metadata.name" => pod.metadata.name.clone(),
        "metadata.namespace" => pod.metadata.namespace.clone(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.restartPolicy" => spec.and_then(|s| s.restart_policy.clone()),
        "spec.schedulerName" => spec.and_then(|s| s.scheduler_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
        "spec.hostNetwork" => Some(
            spec.and_then(|s| s.host_network)
                .unwrap_or(false)
                .to_string(),
        ),
        "status.phase" => status.and_then(|s| s.phase.clone()),
        "status.podIP" => status.and_then(|s| s.pod_ip.clone()),
        "status.nominatedNodeName" => status.and_then(|s| s.nominated_node_name.clone()),
        _ => None,
    }
}

fn field_matches(pod: &Pod, selector: &FieldSelector) -> bool {
    selector.requirements.iter().all(|r| {
        let value = pod_field(pod, &r.field).unwrap_or_default();
        (value == r.value) == r.equals
    })
}

/// Filters listed pods down to the candidates of a pod fault, sorted by `namespace/name`.
///
/// `scope` is the set of namespaces the spec resolved to (`namespaces` plus those matching
/// `namespaceSelector`); `None` means every namespace. `nodes` are used for the node selector and the zone. The API server has usually applied the
/// label and field selectors already; they are checked again so fixtures and servers that
/// ignore a selector cannot widen the blast radius.
///
/// # Errors
/// [`FaultError::Refused`] when a selector does not parse.
pub fn pod_candidates(
    pods: &[Pod],
    nodes: &[Node],
    scope: Option<&[String]>,
    spec: &PodTargetSpec,
    safety: &SafetySpec,
    own: Option<&OwnPod>,
) -> Result<Vec<PodCandidate>, FaultError> {
    let selector = parse_label(spec.selector.as_deref())?;
    let field = spec
        .field_selector
        .as_deref()
        .map(FieldSelector::parse)
        .transpose()
        .map_err(|e| FaultError::Refused(e.to_string()))?;
    let node_selector = parse_label(spec.node_selector.as_deref())?;
    let opt_in = parse_label(safety.opt_in_label.as_deref())?;
    let nodes: BTreeMap<&str, &Node> = nodes
        .iter()
        .filter_map(|n| n.metadata.name.as_deref().map(|name| (name, n)))
        .collect();
    let mut out = Vec::new();
    for pod in pods {
        let (Some(namespace), Some(name)) = (&pod.metadata.namespace, &pod.metadata.name) else {
            continue;
        };
        if !namespace_allowed(namespace, safety) {
            continue;
        }
        if scope.is_some_and(|scope| !scope.contains(namespace)) {
            continue;
        }
        if own.is_some_and(|o| &o.namespace == namespace && &o.name == name) {
            continue;
        }
        let labels = labels_of(&pod.metadata);
        if selector.as_ref().is_some_and(|s| !s.matches(&labels))
            || opt_in.as_ref().is_some_and(|s| !s.matches(&labels))
            || field.as_ref().is_some_and(|f| !field_matches(pod, f))
        {
            continue;
        }
        if !spec.include_not_ready && !is_running_and_ready(pod) {
            continue;
        }
        if let Some(kind) = &spec.owner_kind
            && controller_of(pod).is_none_or(|o| &o.kind != kind)
        {
            continue;
        }
        let node_name = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let node = node_name.as_deref().and_then(|n| nodes.get(n).copied());
        let zone = node.and_then(zone_of);
        if let Some(sel) = &node_selector
            && node.is_none_or(|n| !sel.matches(&labels_of(&n.metadata)))
        {
            continue;
        }
        if let Some(wanted) = &spec.zone
            && zone.as_ref() != Some(wanted)
        {
            continue;
        }
        out.push(PodCandidate {
            namespace: namespace.clone(),
            name: name.clone(),
            node: node_name,
            zone,
            key: format!("{namespace}/{name}"),
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// Filters listed nodes down to the candidates of a node fault, sorted by name.
///
/// # Errors
/// [`FaultError::Refused`] when a selector does not parse.
pub fn node_candidates(
    nodes: &[Node],
    spec: &NodeTargetSpec,
    safety: &SafetySpec,
) -> Result<Vec<NodeCandidate>, FaultError> {
    nodes_matching(
        nodes,
        spec.selector.as_deref(),
        spec.zone.as_deref(),
        safety,
    )
}

/// Nodes matching a label selector and zone that carry the opt-in label, sorted by name.
///
/// # Errors
/// [`FaultError::Refused`] when a selector does not parse.
pub fn nodes_matching(
    nodes: &[Node],
    selector: Option<&str>,
    zone: Option<&str>,
    safety: &SafetySpec,
) -> Result<Vec<NodeCandidate>, FaultError> {
    let selector = parse_label(selector)?;
    let opt_in = parse_label(safety.opt_in_label.as_deref())?;
    let mut out: Vec<NodeCandidate> = nodes
        .iter()
        .filter(|n| {
            let labels = labels_of(&n.metadata);
            selector.as_ref().is_none_or(|s| s.matches(&labels))
                && opt_in.as_ref().is_none_or(|s| s.matches(&labels))
                && zone.is_none_or(|z| zone_of(n).as_deref() == Some(z))
        })
        .map(NodeCandidate::of)
        .filter(|c| !c.name.is_empty())
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The pod selection of a spec.
pub fn pod_selection(spec: &PodTargetSpec) -> Selection {
    Selection {
        mode: spec.mode,
        count: spec.count,
        percent: spec.percent,
        names: spec.names.clone(),
    }
}

/// The node selection of a spec.
pub fn node_selection(spec: &NodeTargetSpec) -> Selection {
    Selection {
        mode: spec.mode,
        count: spec.count,
        percent: spec.percent,
        names: spec.names.clone(),
    }
}

/// Chooses pods under the pod caps. Names in `names` mode may be `name` (when unambiguous) or
/// `namespace/name`.
///
/// # Errors
/// [`FaultError::NoTargets`], [`FaultError::OverCaps`] with the numbers, or missing names.
pub fn choose_pods(
    candidates: &[PodCandidate],
    selection: &Selection,
    safety: &SafetySpec,
    seed: u64,
) -> Result<Vec<PodCandidate>, FaultError> {
    let caps = Caps {
        max_objects: safety.max_pods,
        max_percent: safety.max_percent,
    };
    let qualified = selection.names.iter().all(|n| n.contains('/'));
    let chosen = select(
        candidates,
        |c| if qualified { &c.key } else { &c.name },
        selection,
        caps,
        seed,
    )
    .map_err(|e| selection_error(e, "pods"))?;
    Ok(chosen.into_iter().map(|i| candidates[i].clone()).collect())
}

/// Chooses nodes under the node caps.
///
/// # Errors
/// [`FaultError::NoTargets`], [`FaultError::OverCaps`] with the numbers, or missing names.
pub fn choose_nodes(
    candidates: &[NodeCandidate],
    selection: &Selection,
    safety: &SafetySpec,
    seed: u64,
) -> Result<Vec<NodeCandidate>, FaultError> {
    let caps = Caps {
        max_objects: safety.max_nodes,
        max_percent: safety.max_percent,
    };
    let chosen = select(candidates, |c| &c.name, selection, caps, seed)
        .map_err(|e| selection_error(e, "nodes"))?;
    Ok(chosen.into_iter().map(|i| candidates[i].clone()).collect())
}

fn selection_error(error: SelectionError, what: &str) -> FaultError {
    match error {
        SelectionError::NoCandidates => {
            FaultError::NoTargets(format!("no {what} match the target and the safety rules"))
        }
        SelectionError::MissingNames(names) => FaultError::NoTargets(format!(
            "{what} not found among the candidates: {}",
            names.join(", ")
        )),
        over @ SelectionError::OverCaps { .. } => FaultError::OverCaps(format!("{what}: {over}")),
    }
}

/// Whether a PodDisruptionBudget's selector selects `labels` (matchLabels and
/// matchExpressions; an empty selector selects every pod of the namespace, as in policy/v1).
pub fn kube_selector_matches(selector: &KubeSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .as_ref()
        .is_none_or(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let expressions_ok = selector.match_expressions.as_ref().is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            let value = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
    });
    labels_ok && expressions_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Percent;
    use crate::spec::fault::SelectionMode;

    fn pods(yaml: &str) -> Vec<Pod> {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn nodes() -> Vec<Node> {
        serde_yaml::from_str(
            r#"
- metadata: {name: n-a1, labels: {topology.kubernetes.io/zone: zone-a, pool: web}}
- metadata: {name: n-b1, labels: {topology.kubernetes.io/zone: zone-b, pool: web}}
  spec: {unschedulable: true}
- metadata: {name: n-b2, labels: {topology.kubernetes.io/zone: zone-b, pool: batch}}
"#,
        )
        .unwrap()
    }

    fn pod(ns: &str, name: &str, node: &str, labels: &str, ready: bool) -> String {
        let ready = if ready { "True" } else { "False" };
        format!(
            r#"
- metadata:
    namespace: {ns}
    name: {name}
    labels: {labels}
    ownerReferences: [{{apiVersion: apps/v1, kind: ReplicaSet, name: rs, uid: u1, controller: true}}]
  spec: {{nodeName: {node}, containers: [{{name: c}}]}}
  status: {{phase: Running, conditions: [{{type: Ready, status: "{ready}"}}]}}
"#
        )
    }

    fn fixture() -> Vec<Pod> {
        let mut text = String::new();
        text += &pod("shop", "web-2", "n-b1", "{app: web}", true);
        text += &pod("shop", "web-1", "n-a1", "{app: web}", true);
        text += &pod("shop", "web-3", "n-b2", "{app: web}", false);
        text += &pod("shop", "api-1", "n-a1", "{app: api}", true);
        text += &pod("kube-system", "coredns-1", "n-a1", "{app: web}", true);
        text += &pod("steadfast", "steadfast-0", "n-a1", "{app: web}", true);
        text += &pod("other", "web-9", "n-b2", "{app: web, chaos: ok}", true);
        pods(&text)
    }

    fn keys(c: &[PodCandidate]) -> Vec<&str> {
        c.iter().map(|c| c.key.as_str()).collect()
    }

    fn web() -> PodTargetSpec {
        PodTargetSpec {
            selector: Some("app=web".into()),
            ..PodTargetSpec::default()
        }
    }

    #[test]
    fn kube_system_own_pod_and_not_ready_pods_are_never_candidates_by_default() {
        let own = OwnPod {
            namespace: "steadfast".into(),
            name: "steadfast-0".into(),
        };
        let c = pod_candidates(
            &fixture(),
            &nodes(),
            None,
            &web(),
            &SafetySpec::default(),
            Some(&own),
        )
        .unwrap();
        assert_eq!(keys(&c), ["other/web-9", "shop/web-1", "shop/web-2"]);
        assert_eq!(c[1].zone.as_deref(), Some("zone-a"));
        assert_eq!(c[1].node.as_deref(), Some("n-a1"));
    }

    #[test]
    fn kube_system_needs_an_explicit_allow_and_deny_wins() {
        let safety = SafetySpec {
            allow_namespaces: vec!["kube-system".into(), "shop".into()],
            deny_namespaces: vec!["shop".into()],
            ..SafetySpec::default()
        };
        let c = pod_candidates(&fixture(), &nodes(), None, &web(), &safety, None).unwrap();
        assert_eq!(keys(&c), ["kube-system/coredns-1"]);
    }

    #[test]
    fn include_not_ready_namespaces_zone_and_node_selector_narrow_as_asked() {
        let spec = PodTargetSpec {
            include_not_ready: true,
            zone: Some("zone-b".into()),
            ..web()
        };
        let shop = ["shop".to_string()];
        let c = pod_candidates(
            &fixture(),
            &nodes(),
            Some(&shop),
            &spec,
            &SafetySpec::default(),
            None,
        )
        .unwrap();
        assert_eq!(keys(&c), ["shop/web-2", "shop/web-3"]);
        let spec = PodTargetSpec {
            node_selector: Some("pool=web".into()),
            ..spec
        };
        let c = pod_candidates(
            &fixture(),
            &nodes(),
            Some(&shop),
            &spec,
            &SafetySpec::default(),
            None,
        )
        .unwrap();
        assert_eq!(keys(&c), ["shop/web-2"]);
    }

    #[test]
    fn opt_in_label_field_selector_and_owner_kind_are_enforced() {
        let safety = SafetySpec {
            opt_in_label: Some("chaos=ok".into()),
            ..SafetySpec::default()
        };
        let c = pod_candidates(&fixture(), &nodes(), None, &web(), &safety, None).unwrap();
        assert_eq!(keys(&c), ["other/web-9"]);
        let spec = PodTargetSpec {
            field_selector: Some("spec.nodeName=n-a1".into()),
            ..web()
        };
        let c = pod_candidates(
            &fixture(),
            &nodes(),
            None,
            &spec,
            &SafetySpec::default(),
            None,
        )
        .unwrap();
        assert_eq!(keys(&c), ["shop/web-1", "steadfast/steadfast-0"]);
        let spec = PodTargetSpec {
            owner_kind: Some("StatefulSet".into()),
            ..web()
        };
        let c = pod_candidates(
            &fixture(),
            &nodes(),
            None,
            &spec,
            &SafetySpec::default(),
            None,
        )
        .unwrap();
        assert!(c.is_empty());
    }

    #[test]
    fn choices_are_repeatable_and_over_caps_refuse_with_numbers() {
        let c = pod_candidates(
            &fixture(),
            &nodes(),
            None,
            &web(),
            &SafetySpec::default(),
            None,
        )
        .unwrap();
        let mut shuffled = fixture();
        shuffled.reverse();
        let c2 = pod_candidates(
            &shuffled,
            &nodes(),
            None,
            &web(),
            &SafetySpec::default(),
            None,
        )
        .unwrap();
        assert_eq!(c, c2, "list order does not change the candidates' order");
        let one = pod_selection(&web());
        let a = choose_pods(&c, &one, &SafetySpec::default(), 9).unwrap();
        let b = choose_pods(&c2, &one, &SafetySpec::default(), 9).unwrap();
        assert_eq!(a, b);
        let all = Selection {
            mode: SelectionMode::All,
            ..one
        };
        let err = choose_pods(&c, &all, &SafetySpec::default(), 9).unwrap_err();
        assert!(
            matches!(&err, FaultError::OverCaps(m) if m.contains("4 of 4") && m.contains("50%")),
            "{err}"
        );
    }

    #[test]
    fn names_may_be_qualified_or_bare() {
        let c = pod_candidates(
            &fixture(),
            &nodes(),
            None,
            &web(),
            &SafetySpec::default(),
            None,
        )
        .unwrap();
        let safety = SafetySpec {
            max_percent: Percent::new(100.0),
            ..SafetySpec::default()
        };
        let by_name = Selection {
            mode: SelectionMode::Names,
            count: None,
            percent: None,
            names: vec!["web-9".into()],
        };
        assert_eq!(
            keys(&choose_pods(&c, &by_name, &safety, 0).unwrap()),
            ["other/web-9"]
        );
        let qualified = Selection {
            names: vec!["shop/web-2".into()],
            ..by_name
        };
        assert_eq!(
            keys(&choose_pods(&c, &qualified, &safety, 0).unwrap()),
            ["shop/web-2"]
        );
    }

    #[test]
    fn nodes_by_zone_selector_and_opt_in() {
        let spec = NodeTargetSpec {
            zone: Some("zone-b".into()),
            ..NodeTargetSpec::default()
        };
        let c = node_candidates(&nodes(), &spec, &SafetySpec::default()).unwrap();
        let names: Vec<&str> = c.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["n-b1", "n-b2"]);
        assert!(c[0].unschedulable && !c[1].unschedulable);
        let safety = SafetySpec {
            opt_in_label: Some("pool=web".into()),
            ..SafetySpec::default()
        };
        let c = node_candidates(&nodes(), &spec, &safety).unwrap();
        assert_eq!(c.len(), 1);
        let err = choose_nodes(
            &node_candidates(&nodes(), &NodeTargetSpec::default(), &SafetySpec::default()).unwrap(),
            &Selection {
                mode: SelectionMode::Count,
                count: Some(2),
                percent: None,
                names: vec![],
            },
            &SafetySpec::default(),
            1,
        )
        .unwrap_err();
        assert!(
            matches!(&err, FaultError::OverCaps(m) if m.contains("2 of 3")),
            "{err}"
        );
    }

    #[test]
    fn daemonset_and_mirror_pods_are_recognised() {
        let p = pods(
            r#"
- metadata:
    name: ds-1
    ownerReferences: [{apiVersion: apps/v1, kind: DaemonSet, name: ds, uid: u, controller: true}]
- metadata:
    name: static-1
    annotations: {kubernetes.io/config.mirror: abc}
- metadata:
    name: plain
"#,
        );
        assert!(is_daemon_or_mirror(&p[0]));
        assert!(is_daemon_or_mirror(&p[1]));
        assert!(!is_daemon_or_mirror(&p[2]));
    }

    #[test]
    fn budget_selectors_match_labels_and_expressions() {
        let sel: KubeSelector = serde_yaml::from_str(
            "{matchLabels: {app: web}, matchExpressions: [{key: tier, operator: NotIn, values: [db]}]}",
        )
        .unwrap();
        let mut labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
        assert!(kube_selector_matches(&sel, &labels));
        labels.insert("tier".into(), "db".into());
        assert!(!kube_selector_matches(&sel, &labels));
        assert!(kube_selector_matches(&KubeSelector::default(), &labels));
    }
}

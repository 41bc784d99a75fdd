//! Rules about the cluster as a whole: node groups, zone capacity, Services.

use std::collections::BTreeSet;

use crate::advise::finding::{Finding, Severity, experiments};
use crate::advise::model::{Resources, Snapshot};

/// Every cluster rule.
pub fn check(s: &Snapshot) -> Vec<Finding> {
    let mut out = single_az_groups(s);
    out.extend(zone_capacity(s));
    out.extend(services_without_endpoints(s));
    out
}

/// Node groups launching into one AZ lose all their nodes with it.
pub fn single_az_groups(s: &Snapshot) -> Vec<Finding> {
    s.node_groups
        .iter()
        .filter(|g| g.zones.len() == 1)
        .map(|g| Finding {
            rule: "node-group-in-one-zone",
            severity: Severity::Warning,
            objects: vec![format!("NodeGroup/{}", g.name)],
            why: format!(
                "the group launches only into {}: a zone outage takes all its nodes and it cannot replace them elsewhere",
                g.zones[0]
            ),
            fix: "give the group subnets in two or more zones (or add a group per zone)".into(),
            experiment: experiments::ZONE_OUTAGE,
        })
        .collect()
}

/// Zones whose loss leaves less allocatable capacity than every workload's replicas request.
pub fn zone_capacity(s: &Snapshot) -> Vec<Finding> {
    let need = s.workloads.iter().fold(Resources::default(), |acc, w| {
        acc.plus(w.requests.times(w.replicas))
    });
    if need.is_zero() {
        return Vec::new();
    }
    let zones: BTreeSet<&str> = s.nodes.iter().filter_map(|n| n.zone.as_deref()).collect();
    if zones.len() < 2 {
        return Vec::new();
    }
    zones
        .into_iter()
        .filter_map(|zone| {
            let left = s
                .nodes
                .iter()
                .filter(|n| n.zone.as_deref() != Some(zone))
                .fold(Resources::default(), |acc, n| acc.plus(n.allocatable));
            left.short_of(need).then(|| Finding {
                rule: "zone-loss-exceeds-capacity",
                severity: Severity::Error,
                objects: vec![format!("Zone/{zone}")],
                why: format!(
                    "without {zone} the other zones have {} mCPU / {} MiB allocatable but the replicas request {} mCPU / {} MiB: pods stay Pending",
                    left.cpu_millis,
                    left.memory_bytes >> 20,
                    need.cpu_millis,
                    need.memory_bytes >> 20
                ),
                fix: "add nodes (or let the autoscaler add them) in the other zones, or lower requests".into(),
                experiment: experiments::ZONE_OUTAGE,
            })
        })
        .collect()
}

/// Services with a selector but no ready endpoint answer nothing.
pub fn services_without_endpoints(s: &Snapshot) -> Vec<Finding> {
    s.services
        .iter()
        .filter(|svc| !svc.selector.is_empty() && svc.ready_endpoints == 0)
        .map(|svc| Finding {
            rule: "service-without-ready-endpoints",
            severity: Severity::Error,
            objects: vec![svc.object()],
            why: "the Service selects no ready pod: every request to it fails now".into(),
            fix: "check the selector against the pods' labels and why the pods are not ready (`kubectl describe`)".into(),
            experiment: experiments::STEADY_STATE,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::advise::model::{NodeFacts, NodeGroup, ServiceFacts, Workload, WorkloadKind};

    fn node(name: &str, zone: &str, cpu: u64) -> NodeFacts {
        NodeFacts {
            name: name.into(),
            zone: Some(zone.into()),
            labels: BTreeMap::new(),
            instance_id: None,
            allocatable: Resources {
                cpu_millis: cpu,
                memory_bytes: 1 << 30,
            },
        }
    }

    fn workload(replicas: u32, cpu: u64) -> Workload {
        Workload {
            kind: WorkloadKind::Deployment,
            namespace: "shop".into(),
            name: "web".into(),
            replicas,
            pod_labels: BTreeMap::new(),
            selector: BTreeMap::new(),
            containers_without_readiness: Vec::new(),
            termination_grace_seconds: 30,
            pre_stop_seconds: None,
            spreads_across_zones: true,
            node_selector: BTreeMap::new(),
            requests: Resources {
                cpu_millis: cpu,
                memory_bytes: 0,
            },
            readiness_http: None,
        }
    }

    #[test]
    fn single_az_groups_fire_and_multi_az_ones_do_not() {
        let s = Snapshot {
            node_groups: vec![
                NodeGroup {
                    name: "one".into(),
                    zones: vec!["a".into()],
                },
                NodeGroup {
                    name: "two".into(),
                    zones: vec!["a".into(), "b".into()],
                },
            ],
            ..Snapshot::default()
        };
        let f = single_az_groups(&s);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].objects, ["NodeGroup/one"]);
    }

    #[test]
    fn zone_loss_fires_when_the_rest_cannot_hold_the_requests() {
        let mut s = Snapshot {
            nodes: vec![
                node("n1", "a", 2000),
                node("n2", "b", 2000),
                node("n3", "c", 1000),
            ],
            workloads: vec![workload(3, 1000)],
            ..Snapshot::default()
        };
        // 3000m needed; losing a or b leaves 3000m, losing c leaves 4000m.
        assert!(zone_capacity(&s).is_empty());
        s.workloads[0].replicas = 4;
        let f = zone_capacity(&s);
        let zones: Vec<_> = f.iter().map(|f| f.objects[0].as_str()).collect();
        assert_eq!(zones, ["Zone/a", "Zone/b"]);
        s.workloads[0].requests = Resources::default();
        assert!(
            zone_capacity(&s).is_empty(),
            "no requests, nothing to judge"
        );
    }

    #[test]
    fn services_without_ready_endpoints_fire_unless_selectorless() {
        let svc = |ready, selector: &[(&str, &str)]| ServiceFacts {
            namespace: "shop".into(),
            name: "web".into(),
            selector: selector
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            ready_endpoints: ready,
            port: Some(80),
        };
        let s = Snapshot {
            services: vec![
                svc(0, &[("app", "web")]),
                svc(2, &[("app", "web")]),
                svc(0, &[]),
            ],
            ..Snapshot::default()
        };
        let f = services_without_endpoints(&s);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Error);
    }
}

//! Rules about one workload at a time: replicas, budgets, placement, probes, shutdown.

use std::collections::BTreeSet;

use crate::advise::finding::{Finding, Severity, experiments};
use crate::advise::model::{Snapshot, Workload};

/// Every workload rule over every workload with at least one desired replica.
pub fn check(s: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    for w in s.workloads.iter().filter(|w| w.replicas > 0) {
        out.extend(single_replica(s, w));
        out.extend(budget(s, w));
        out.extend(placement(s, w));
        out.extend(zone_spread(w));
        out.extend(readiness(w));
        out.extend(grace_vs_pre_stop(w));
    }
    out
}

/// One replica behind a Service: any restart, eviction or node loss is an outage.
pub fn single_replica(s: &Snapshot, w: &Workload) -> Option<Finding> {
    if w.replicas != 1 {
        return None;
    }
    let mut objects = vec![w.object()];
    objects.extend(s.services_of(w).map(|svc| svc.object()));
    (objects.len() > 1).then(|| Finding {
        rule: "single-replica",
        severity: Severity::Error,
        objects,
        why: "one replica serves the Service: a pod restart, eviction or node loss drops every request until a new pod is ready".into(),
        fix: format!("run at least 2 replicas (`kubectl -n {} scale {} {} --replicas=2`) spread over zones", w.namespace, w.kind.as_str().to_lowercase(), w.name),
        experiment: experiments::POD_KILL,
    })
}

/// No budget (drains take every replica at once) or a budget allowing no disruption (drains
/// hang).
pub fn budget(s: &Snapshot, w: &Workload) -> Option<Finding> {
    let budgets: Vec<_> = s.budgets_of(w).collect();
    if budgets.is_empty() {
        return Some(Finding {
            rule: "no-disruption-budget",
            severity: Severity::Warning,
            objects: vec![w.object()],
            why: "no PodDisruptionBudget: a node drain or cluster upgrade may evict every replica at once".into(),
            fix: format!("add a PodDisruptionBudget selecting the pods with `maxUnavailable: 1`{}",
                if w.replicas == 1 { " after scaling to 2 or more replicas" } else { "" }),
            experiment: experiments::NODE_DRAIN,
        });
    }
    let blocking = budgets.iter().find(|b| {
        let by_max = b.max_unavailable.as_ref().map(|m| m.of(w.replicas) == 0);
        let by_min = b
            .min_available
            .as_ref()
            .map(|m| m.of(w.replicas) >= w.replicas);
        by_max.or(by_min).unwrap_or(false)
    })?;
    Some(Finding {
        rule: "budget-allows-no-disruption",
        severity: Severity::Warning,
        objects: vec![blocking.object(), w.object()],
        why: format!(
            "the budget allows no voluntary disruption of {} replica(s): node drains and upgrades hang until someone deletes it",
            w.replicas
        ),
        fix: "set `maxUnavailable: 1` (or `minAvailable` below the replica count)".into(),
        experiment: experiments::NODE_DRAIN,
    })
}

/// Two or more replicas that in fact run on one node, or in one zone.
pub fn placement(s: &Snapshot, w: &Workload) -> Option<Finding> {
    if w.replicas < 2 {
        return None;
    }
    let nodes: BTreeSet<&str> = s.pods_of(w).filter_map(|p| p.node.as_deref()).collect();
    let placed = s.pods_of(w).filter(|p| p.node.is_some()).count();
    if placed < 2 {
        return None;
    }
    if nodes.len() == 1 {
        let node = nodes.iter().next().copied().unwrap_or_default();
        return Some(Finding {
            rule: "replicas-on-one-node",
            severity: Severity::Error,
            objects: vec![w.object(), format!("Node/{node}")],
            why: format!(
                "all {placed} running replicas are on node {node}: losing it is an outage"
            ),
            fix: "add pod anti-affinity or a topologySpreadConstraint on `kubernetes.io/hostname`"
                .into(),
            experiment: experiments::NODE_DRAIN,
        });
    }
    let zones: BTreeSet<&str> = nodes.iter().filter_map(|n| s.zone_of(n)).collect();
    let known = nodes.iter().all(|n| s.zone_of(n).is_some());
    if known && zones.len() == 1 {
        let zone = zones.iter().next().copied().unwrap_or_default();
        return Some(Finding {
            rule: "replicas-in-one-zone",
            severity: Severity::Warning,
            objects: vec![w.object(), format!("Zone/{zone}")],
            why: format!(
                "all {placed} running replicas are in zone {zone}: a zone outage is a full outage"
            ),
            fix: if w
                .node_selector
                .contains_key(crate::advise::model::ZONE_LABEL)
            {
                "drop the zone from the pod template's nodeSelector and spread with a topologySpreadConstraint on `topology.kubernetes.io/zone`".into()
            } else {
                "spread with a topologySpreadConstraint on `topology.kubernetes.io/zone` (and have nodes in more than one zone)".into()
            },
            experiment: experiments::ZONE_OUTAGE,
        });
    }
    None
}

/// No topology spread constraint or anti-affinity across zones: the scheduler may stack
/// replicas in one zone at the next rollout even if they are spread today.
pub fn zone_spread(w: &Workload) -> Option<Finding> {
    (w.replicas >= 2 && !w.spreads_across_zones).then(|| Finding {
        rule: "no-zone-spread",
        severity: Severity::Info,
        objects: vec![w.object()],
        why: "nothing asks the scheduler to spread replicas across zones; a rollout or rescheduling can leave them in one".into(),
        fix: "add `topologySpreadConstraints` with `topologyKey: topology.kubernetes.io/zone`, `maxSkew: 1`".into(),
        experiment: experiments::ZONE_OUTAGE,
    })
}

/// Containers without readiness probes get traffic before they can serve it.
pub fn readiness(w: &Workload) -> Option<Finding> {
    (!w.containers_without_readiness.is_empty()).then(|| Finding {
        rule: "no-readiness-probe",
        severity: Severity::Warning,
        objects: vec![w.object()],
        why: format!(
            "container(s) {} have no readiness probe: new and restarting pods receive traffic before they can serve it",
            w.containers_without_readiness.join(", ")
        ),
        fix: "add a `readinessProbe` (an `httpGet` on a health path is typical)".into(),
        experiment: experiments::POD_KILL,
    })
}

/// A preStop longer than the grace period: the kubelet kills the container mid-preStop, so
/// in-flight requests fail.
pub fn grace_vs_pre_stop(w: &Workload) -> Option<Finding> {
    let pre_stop = w.pre_stop_seconds?;
    (pre_stop >= w.termination_grace_seconds).then(|| Finding {
        rule: "grace-shorter-than-pre-stop",
        severity: Severity::Error,
        objects: vec![w.object()],
        why: format!(
            "terminationGracePeriodSeconds {} does not exceed the {pre_stop} s preStop: the container is killed before it can finish requests",
            w.termination_grace_seconds
        ),
        fix: format!("set terminationGracePeriodSeconds above {pre_stop} plus the app's own shutdown time"),
        experiment: experiments::POD_KILL,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::advise::model::{
        Budget, IntOrPercent, NodeFacts, PodFacts, Resources, ServiceFacts, WorkloadKind,
    };

    fn labels(app: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("app".to_string(), app.to_string())])
    }

    fn workload(replicas: u32) -> Workload {
        Workload {
            kind: WorkloadKind::Deployment,
            namespace: "shop".into(),
            name: "web".into(),
            replicas,
            pod_labels: labels("web"),
            selector: labels("web"),
            containers_without_readiness: Vec::new(),
            termination_grace_seconds: 30,
            pre_stop_seconds: None,
            spreads_across_zones: true,
            node_selector: BTreeMap::new(),
            requests: Resources::default(),
            readiness_http: None,
        }
    }

    fn service() -> ServiceFacts {
        ServiceFacts {
            namespace: "shop".into(),
            name: "web".into(),
            selector: labels("web"),
            ready_endpoints: 1,
            port: Some(80),
        }
    }

    fn budget_of(min: Option<u32>, max: Option<u32>) -> Budget {
        Budget {
            namespace: "shop".into(),
            name: "web".into(),
            selector: Some(labels("web")),
            min_available: min.map(IntOrPercent::Count),
            max_unavailable: max.map(IntOrPercent::Count),
            disruptions_allowed: None,
        }
    }

    fn placed(s: &mut Snapshot, nodes: &[(&str, &str)]) {
        for (i, (node, zone)) in nodes.iter().enumerate() {
            if !s.nodes.iter().any(|n| n.name == *node) {
                s.nodes.push(NodeFacts {
                    name: (*node).into(),
                    zone: Some((*zone).into()),
                    labels: BTreeMap::new(),
                    instance_id: None,
                    allocatable: Resources::default(),
                });
            }
            s.pods.push(PodFacts {
                namespace: "shop".into(),
                name: format!("web-{i}"),
                labels: labels("web"),
                node: Some((*node).into()),
                terminating: false,
            });
        }
    }

    #[test]
    fn single_replica_fires_only_behind_a_service() {
        let mut s = Snapshot::default();
        let w = workload(1);
        assert!(single_replica(&s, &w).is_none(), "no Service, no finding");
        s.services.push(service());
        let f = single_replica(&s, &w).expect("fires");
        assert_eq!(f.objects, ["Deployment/shop/web", "Service/shop/web"]);
        assert!(single_replica(&s, &workload(2)).is_none());
    }

    #[test]
    fn missing_budget_fires_and_a_covering_budget_silences_it() {
        let mut s = Snapshot::default();
        let w = workload(3);
        assert_eq!(budget(&s, &w).unwrap().rule, "no-disruption-budget");
        s.budgets.push(budget_of(None, Some(1)));
        assert!(budget(&s, &w).is_none());
    }

    #[test]
    fn budget_allowing_no_disruption_fires_for_max_zero_and_min_all() {
        let w = workload(3);
        for b in [budget_of(None, Some(0)), budget_of(Some(3), None)] {
            let s = Snapshot {
                budgets: vec![b],
                ..Snapshot::default()
            };
            let f = budget(&s, &w).expect("fires");
            assert_eq!(f.rule, "budget-allows-no-disruption");
            assert_eq!(f.objects[0], "PodDisruptionBudget/shop/web");
        }
        let s = Snapshot {
            budgets: vec![budget_of(Some(2), None)],
            ..Snapshot::default()
        };
        assert!(budget(&s, &w).is_none());
        let pct = Budget {
            min_available: Some(IntOrPercent::Percent(100)),
            ..budget_of(None, None)
        };
        let s = Snapshot {
            budgets: vec![pct],
            ..Snapshot::default()
        };
        assert!(budget(&s, &w).is_some(), "100% minAvailable blocks too");
    }

    #[test]
    fn replicas_on_one_node_or_in_one_zone_fire_and_spread_ones_do_not() {
        let w = workload(2);
        let mut s = Snapshot::default();
        placed(&mut s, &[("n1", "a"), ("n1", "a")]);
        assert_eq!(placement(&s, &w).unwrap().rule, "replicas-on-one-node");
        let mut s = Snapshot::default();
        placed(&mut s, &[("n1", "a"), ("n2", "a")]);
        let f = placement(&s, &w).unwrap();
        assert_eq!(f.rule, "replicas-in-one-zone");
        assert_eq!(f.objects[1], "Zone/a");
        let mut s = Snapshot::default();
        placed(&mut s, &[("n1", "a"), ("n2", "b")]);
        assert!(placement(&s, &w).is_none());
    }

    #[test]
    fn zone_spread_fires_without_constraint_for_two_or_more_replicas() {
        let mut w = workload(2);
        assert!(zone_spread(&w).is_none());
        w.spreads_across_zones = false;
        assert_eq!(zone_spread(&w).unwrap().severity, Severity::Info);
        w.replicas = 1;
        assert!(zone_spread(&w).is_none());
    }

    #[test]
    fn readiness_fires_for_containers_without_probe() {
        let mut w = workload(2);
        assert!(readiness(&w).is_none());
        w.containers_without_readiness = vec!["app".into()];
        assert!(readiness(&w).unwrap().why.contains("app"));
    }

    #[test]
    fn pre_stop_at_or_above_the_grace_period_fires() {
        let mut w = workload(2);
        w.pre_stop_seconds = Some(10);
        assert!(grace_vs_pre_stop(&w).is_none());
        w.termination_grace_seconds = 10;
        assert_eq!(grace_vs_pre_stop(&w).unwrap().severity, Severity::Error);
        w.pre_stop_seconds = None;
        assert!(grace_vs_pre_stop(&w).is_none());
    }
}

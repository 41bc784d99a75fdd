//! The Kubernetes readiness probe as a pure judgement: a ready count against the experiment's
//! bound. The watch that keeps the count current lives in `infra::kube::readiness_watch`, so
//! this stays testable without a cluster.

use crate::spec::probe::KubernetesProbeSpec;
use crate::spec::quantity::Count;

/// What a readiness watch counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyCount {
    /// Objects ready now: ready replicas, Ready nodes or Ready pods.
    pub ready: u64,
    /// The workload's desired replicas; `None` for nodes and pods.
    pub desired: Option<u64>,
}

/// One observation of a readiness probe: held, the ready count, a line for people.
pub type Judgement = (bool, Option<f64>, String);

/// Judges `count` against the probe's bound: `ready` when given, else every desired replica of a
/// workload, else at least one object.
pub fn judge(spec: &KubernetesProbeSpec, count: ReadyCount) -> Judgement {
    let ready = count.ready;
    let (held, expected) = match (spec.ready, count.desired) {
        (Some(bound), _) => (bound.holds(Count(ready)), bound.to_string()),
        (None, Some(desired)) => (ready >= desired, format!(">= {desired} (desired)")),
        (None, None) => (ready >= 1, ">= 1".to_owned()),
    };
    (
        held,
        Some(ready as f64),
        format!("{ready} {} ready, expected {expected}", subject(spec)),
    )
}

/// What the probe counts, for its detail lines: `replicas of Deployment shop/web`.
pub fn subject(spec: &KubernetesProbeSpec) -> String {
    if let Some(w) = &spec.workload {
        return format!("replicas of {:?} {}/{}", w.kind, w.namespace, w.name);
    }
    if let Some(n) = &spec.nodes {
        let mut what = "nodes".to_owned();
        if let Some(selector) = &n.selector {
            what.push_str(&format!(" {selector}"));
        }
        if let Some(zone) = &n.zone {
            what.push_str(&format!(" in {zone}"));
        }
        return what;
    }
    if let Some(p) = &spec.pods {
        return format!("pods {} in {}", p.selector, p.namespace);
    }
    "objects".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> KubernetesProbeSpec {
        serde_yaml::from_str(yaml).expect("a valid kubernetes probe")
    }

    #[test]
    fn a_workload_without_a_bound_needs_every_desired_replica() {
        let s = spec("workload: {kind: Deployment, namespace: shop, name: web}");
        let full = judge(
            &s,
            ReadyCount {
                ready: 6,
                desired: Some(6),
            },
        );
        assert!(full.0);
        let short = judge(
            &s,
            ReadyCount {
                ready: 5,
                desired: Some(6),
            },
        );
        assert_eq!(short.1, Some(5.0));
        assert!(!short.0, "{}", short.2);
        assert_eq!(
            short.2,
            "5 replicas of Deployment shop/web ready, expected >= 6 (desired)"
        );
    }

    #[test]
    fn an_explicit_bound_wins_over_desired() {
        let s = spec("workload: {kind: Deployment, namespace: shop, name: web}\nready: \">= 5\"");
        let count = ReadyCount {
            ready: 5,
            desired: Some(6),
        };
        assert!(judge(&s, count).0);
    }

    #[test]
    fn pods_and_nodes_need_one_unless_bounded() {
        let pods = spec("pods: {namespace: shop, selector: app=web}");
        let none = ReadyCount {
            ready: 0,
            desired: None,
        };
        assert!(!judge(&pods, none).0);
        let nodes = spec("nodes: {zone: us-east-1a}\nready: \">= 2\"");
        let one = ReadyCount {
            ready: 1,
            desired: None,
        };
        let (held, _, detail) = judge(&nodes, one);
        assert!(!held);
        assert_eq!(detail, "1 nodes in us-east-1a ready, expected >= 2");
    }
}

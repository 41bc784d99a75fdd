//! The Kubernetes permissions steadfast uses, and nothing more: the faults, their rollback and
//! self-healing watches, the probes, the run lock and the halt switch.
//!
//! This list is the source of truth. `charts/steadfast/rbac-rules.yaml` and
//! `deploy/manifests/20-rbac.yaml` must grant exactly these (verb, resource) pairs
//! (`tests/rbac.rs` renders the chart and compares both ways); the tests in
//! `tests/kube_faults.rs` and `tests/rbac.rs` record the requests real runs make against the
//! sandbox and fail when one is not listed here.

use std::collections::BTreeSet;

use super::access::ApiAccess;

/// Which part of steadfast needs a rule, so each test can check the part it exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum UsedBy {
    /// The Kubernetes faults, their rollback and the self-healing watches.
    Faults,
    /// The steady-state probes (`http` through a Service, `kubernetes`).
    Probes,
    /// The run itself: the run lock and the halt switch in the state namespace.
    Run,
    /// `advise` and `init`: read-only lists of what decides high availability.
    Advise,
}

/// One RBAC rule: an API group (empty for core), a resource (with `/subresource`), verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RbacRule {
    /// API group; `""` is the core group.
    pub api_group: &'static str,
    /// Resource, e.g. `pods` or `pods/eviction`.
    pub resource: &'static str,
    /// Verbs, sorted.
    pub verbs: &'static [&'static str],
    /// The part of steadfast that makes these calls.
    pub used_by: UsedBy,
    /// Why, in one line (rendered into `deploy/rbac-verbs.md`).
    pub reason: &'static str,
}

const fn rule(
    used_by: UsedBy,
    api_group: &'static str,
    resource: &'static str,
    verbs: &'static [&'static str],
    reason: &'static str,
) -> RbacRule {
    RbacRule {
        api_group,
        resource,
        verbs,
        used_by,
        reason,
    }
}

/// Everything steadfast's Kubernetes client does. A resource appears once per part that uses
/// it, with disjoint verbs.
pub const RULES: &[RbacRule] = &[
    rule(
        UsedBy::Faults,
        "",
        "pods",
        &["delete", "get", "list", "watch"],
        "choose pods, delete them (podKill), follow their replacements (self-healing)",
    ),
    rule(
        UsedBy::Faults,
        "",
        "pods/eviction",
        &["create"],
        "podEvict and nodeDrain evict through the Eviction API so budgets are honoured",
    ),
    rule(
        UsedBy::Faults,
        "",
        "pods/ephemeralcontainers",
        &["patch"],
        "podNetworkLatency, podNetworkLoss and podNetworkBlackhole add an ephemeral container holding the tc/iptables rule, and one removing it early",
    ),
    rule(
        UsedBy::Faults,
        "",
        "namespaces",
        &["list"],
        "resolve a target's namespaceSelector",
    ),
    rule(
        UsedBy::Faults,
        "",
        "nodes",
        &["get", "list", "patch"],
        "choose nodes, cordon and taint them, undo both; the nodes probe counts ready nodes",
    ),
    rule(
        UsedBy::Faults,
        "policy",
        "poddisruptionbudgets",
        &["list"],
        "name the budget that refused an eviction",
    ),
    rule(
        UsedBy::Faults,
        "apps",
        "replicasets",
        &["get"],
        "find the Deployment behind a replaced pod's ReplicaSet",
    ),
    rule(
        UsedBy::Faults,
        "apps",
        "deployments",
        &["list", "watch"],
        "follow a Deployment's ready replicas while it heals; the kubernetes probe watches them too",
    ),
    rule(
        UsedBy::Probes,
        "apps",
        "statefulsets",
        &["list", "watch"],
        "kubernetes probe: watch ready against desired replicas of a StatefulSet",
    ),
    rule(
        UsedBy::Probes,
        "",
        "nodes",
        &["watch"],
        "kubernetes probe of nodes: watch their Ready condition",
    ),
    rule(
        UsedBy::Probes,
        "discovery.k8s.io",
        "endpointslices",
        &["list", "watch"],
        "http probe with perEndpoint: the ready endpoints of its Service; detection: a lost pod leaving them",
    ),
    rule(
        UsedBy::Probes,
        "",
        "services",
        &["get"],
        "http probe naming a Service: read its port (and the sandbox's load balancer)",
    ),
    rule(
        UsedBy::Probes,
        "",
        "services/proxy",
        &["create", "get"],
        "http probe run outside the cluster: GET and POST requests through the API server's service proxy",
    ),
    rule(
        UsedBy::Run,
        "coordination.k8s.io",
        "leases",
        &["create", "delete", "get", "update"],
        "the run lock: one experiment at a time per cluster, renewed while it runs",
    ),
    rule(
        UsedBy::Run,
        "",
        "configmaps",
        &["create", "delete", "get", "update"],
        "the halt switch: every run reads it; `halt` and `resume` write it",
    ),
    rule(
        UsedBy::Advise,
        "",
        "services",
        &["list"],
        "advise and init: the Services of a namespace (or all), their selectors and ports",
    ),
];

fn expand<'a>(rules: impl Iterator<Item = &'a RbacRule>) -> BTreeSet<ApiAccess> {
    rules
        .flat_map(|rule| {
            rule.verbs.iter().map(|verb| ApiAccess {
                group: rule.api_group.to_owned(),
                resource: rule.resource.to_owned(),
                verb: (*verb).to_owned(),
            })
        })
        .collect()
}

/// The Kubernetes faults' share of [`RULES`] (what `tests/kube_faults.rs` records), one access
/// per verb.
pub fn fault_accesses() -> BTreeSet<ApiAccess> {
    expand(RULES.iter().filter(|r| r.used_by == UsedBy::Faults))
}

/// Every access [`RULES`] grants, one per verb: what the chart's Role must equal.
pub fn all_accesses() -> BTreeSet<ApiAccess> {
    expand(RULES.iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_unique_and_their_verbs_sorted() {
        let mut seen = BTreeSet::new();
        for rule in RULES {
            assert!(
                seen.insert((rule.api_group, rule.resource, rule.used_by)),
                "{rule:?} twice"
            );
            let mut sorted = rule.verbs.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted, rule.verbs, "{rule:?}");
            assert!(!rule.reason.is_empty(), "{rule:?} has no reason");
        }
        // Verbs of one resource are not listed twice across parts.
        assert_eq!(
            all_accesses().len(),
            RULES.iter().map(|r| r.verbs.len()).sum::<usize>()
        );
        assert!(fault_accesses().is_subset(&all_accesses()));
        assert!(fault_accesses().len() < all_accesses().len());
    }
}

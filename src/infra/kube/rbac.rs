//! The Kubernetes permissions steadfast's Kubernetes faults, their rollback and the
//! self-healing watches need, and nothing more.
//!
//! The Helm chart's ClusterRole is generated from (and tested against) this list; the tests in
//! `tests/kube_faults.rs` record every request the faults make against the sandbox and fail
//! when the recording and this list disagree in either direction.

use std::collections::BTreeSet;

use super::access::ApiAccess;

/// One RBAC rule: an API group (empty for core), a resource (with `/subresource`), verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RbacRule {
    /// API group; `""` is the core group.
    pub api_group: &'static str,
    /// Resource, e.g. `pods` or `pods/eviction`.
    pub resource: &'static str,
    /// Verbs, sorted.
    pub verbs: &'static [&'static str],
}

/// Exactly what the Kubernetes faults use.
pub const RULES: &[RbacRule] = &[
    // Choose pods, delete them (podKill), follow their replacements (self-healing).
    RbacRule {
        api_group: "",
        resource: "pods",
        verbs: &["delete", "get", "list", "watch"],
    },
    // podEvict and nodeDrain evict through the Eviction API so budgets are honoured.
    RbacRule {
        api_group: "",
        resource: "pods/eviction",
        verbs: &["create"],
    },
    // Resolve `namespaceSelector`.
    RbacRule {
        api_group: "",
        resource: "namespaces",
        verbs: &["list"],
    },
    // Choose nodes, cordon and taint them, and undo both.
    RbacRule {
        api_group: "",
        resource: "nodes",
        verbs: &["get", "list", "patch"],
    },
    // Name the budget that blocked an eviction.
    RbacRule {
        api_group: "policy",
        resource: "poddisruptionbudgets",
        verbs: &["list"],
    },
    // Find the Deployment behind a replaced pod's ReplicaSet.
    RbacRule {
        api_group: "apps",
        resource: "replicasets",
        verbs: &["get"],
    },
    // Follow the Deployment's ready replicas while it heals.
    RbacRule {
        api_group: "apps",
        resource: "deployments",
        verbs: &["list", "watch"],
    },
];

/// The rules expanded to one access per verb, for comparison with a recording.
pub fn accesses() -> BTreeSet<ApiAccess> {
    RULES
        .iter()
        .flat_map(|rule| {
            rule.verbs.iter().map(|verb| ApiAccess {
                group: rule.api_group.to_owned(),
                resource: rule.resource.to_owned(),
                verb: (*verb).to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_unique_and_their_verbs_sorted() {
        let mut seen = BTreeSet::new();
        for rule in RULES {
            assert!(
                seen.insert((rule.api_group, rule.resource)),
                "{rule:?} twice"
            );
            let mut sorted = rule.verbs.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted, rule.verbs, "{rule:?}");
        }
        assert_eq!(
            accesses().len(),
            RULES.iter().map(|r| r.verbs.len()).sum::<usize>()
        );
    }
}

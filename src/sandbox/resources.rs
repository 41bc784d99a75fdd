//! The table of API resources the sandbox serves.
//!
//! One static row per resource drives routing, discovery documents and storage, so adding a
//! resource is one line here instead of a handler per type.

/// What the API server knows about one resource type.
#[derive(Debug)]
pub(crate) struct ResourceDef {
    /// API group; empty for the core group.
    pub group: &'static str,
    /// API version inside the group.
    pub version: &'static str,
    /// Plural resource name as it appears in URLs.
    pub plural: &'static str,
    /// Singular name shown in discovery.
    pub singular: &'static str,
    /// Object kind.
    pub kind: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names kubectl accepts (`po`, `no`, ...).
    pub short_names: &'static [&'static str],
    /// Subresources served under `<plural>/<name>/<sub>`.
    pub subresources: &'static [&'static str],
    /// Storage bucket; two resources that share one are two views of the same objects.
    pub storage: &'static str,
    /// Whether `.spec` changes bump `metadata.generation`.
    pub has_spec: bool,
    /// Read-only through the API (objects only come from the sandbox itself).
    pub read_only: bool,
}

impl ResourceDef {
    /// `apiVersion` string of objects of this resource.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural` or `plural.group`, as Kubernetes names a resource in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Whether the resource has a status subresource (status is written separately).
    pub fn has_status(&self) -> bool {
        self.subresources.contains(&"status")
    }
}

macro_rules! def {
    ($g:expr, $v:expr, $p:expr, $s:expr, $k:expr, $ns:expr, $short:expr, $sub:expr, $store:expr, $spec:expr) => {
        ResourceDef {
            group: $g,
            version: $v,
            plural: $p,
            singular: $s,
            kind: $k,
            namespaced: $ns,
            short_names: $short,
            subresources: $sub,
            storage: $store,
            has_spec: $spec,
            read_only: false,
        }
    };
}

/// Every resource the sandbox serves.
#[rustfmt::skip]
pub(crate) static RESOURCES: &[ResourceDef] = &[
    def!("", "v1", "namespaces", "namespace", "Namespace", false, &["ns"], &["status"], "namespaces", true),
    def!("", "v1", "nodes", "node", "Node", false, &["no"], &["status", "proxy"], "nodes", true),
    def!("", "v1", "pods", "pod", "Pod", true, &["po"], &["status", "eviction", "binding", "log", "ephemeralcontainers"], "pods", true),
    def!("", "v1", "services", "service", "Service", true, &["svc"], &["status", "proxy"], "services", true),
    def!("", "v1", "configmaps", "configmap", "ConfigMap", true, &["cm"], &[], "configmaps", false),
    def!("", "v1", "secrets", "secret", "Secret", true, &[], &[], "secrets", false),
    def!("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", true, &["sa"], &["token"], "serviceaccounts", false),
    def!("", "v1", "events", "event", "Event", true, &["ev"], &[], "events", false),
    def!("", "v1", "endpoints", "endpoints", "Endpoints", true, &["ep"], &[], "endpoints", false),
    def!("apps", "v1", "deployments", "deployment", "Deployment", true, &["deploy"], &["status", "scale"], "deployments", true),
    def!("apps", "v1", "replicasets", "replicaset", "ReplicaSet", true, &["rs"], &["status", "scale"], "replicasets", true),
    def!("apps", "v1", "daemonsets", "daemonset", "DaemonSet", true, &["ds"], &["status"], "daemonsets", true),
    def!("apps", "v1", "statefulsets", "statefulset", "StatefulSet", true, &["sts"], &["status", "scale"], "statefulsets", true),
    def!("discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", true, &[], &[], "endpointslices", false),
    def!("policy", "v1", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", true, &["pdb"], &["status"], "poddisruptionbudgets", true),
    def!("coordination.k8s.io", "v1", "leases", "lease", "Lease", true, &[], &[], "leases", true),
    def!("events.k8s.io", "v1", "events", "event", "Event", true, &["ev"], &[], "events", false),
    def!("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", false, &[], &[], "clusterroles", false),
    def!("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", false, &[], &[], "clusterrolebindings", false),
    def!("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", true, &[], &[], "roles", false),
    def!("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", true, &[], &[], "rolebindings", false),
];

/// Looks a resource up by group, version and plural.
pub(crate) fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|d| d.group == group && d.version == version && d.plural == plural)
}

/// The canonical definition for a storage bucket (the first row using it).
pub(crate) fn by_storage(storage: &str) -> &'static ResourceDef {
    RESOURCES
        .iter()
        .find(|d| d.storage == storage)
        .unwrap_or(&RESOURCES[0])
}

/// Named groups in a stable order, each with its single served version.
pub(crate) fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for d in RESOURCES.iter().filter(|d| !d.group.is_empty()) {
        if !out.iter().any(|(g, _)| *g == d.group) {
            out.push((d.group, d.version));
        }
    }
    out
}

/// Shortcuts to the definitions controllers use most.
pub(crate) mod well_known {
    use super::{ResourceDef, find};

    macro_rules! getter {
        ($name:ident, $g:expr, $p:expr) => {
            /// The definition of this resource.
            pub fn $name() -> &'static ResourceDef {
                find($g, "v1", $p).unwrap_or(&super::RESOURCES[0])
            }
        };
    }
    getter!(namespaces, "", "namespaces");
    getter!(nodes, "", "nodes");
    getter!(pods, "", "pods");
    getter!(services, "", "services");
    getter!(serviceaccounts, "", "serviceaccounts");
    getter!(events, "", "events");
    getter!(deployments, "apps", "deployments");
    getter!(replicasets, "apps", "replicasets");
    getter!(endpointslices, "discovery.k8s.io", "endpointslices");
    getter!(pdbs, "policy", "poddisruptionbudgets");
    getter!(leases, "coordination.k8s.io", "leases");
    getter!(clusterroles, "rbac.authorization.k8s.io", "clusterroles");
    getter!(
        clusterrolebindings,
        "rbac.authorization.k8s.io",
        "clusterrolebindings"
    );
}

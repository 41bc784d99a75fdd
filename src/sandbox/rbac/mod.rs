//! Optional RBAC, evaluated like kube-apiserver's RBAC authorizer: ClusterRoleBindings first,
//! then the RoleBindings of the request's namespace; the first rule that covers the request
//! allows it, and nothing denies. Off by default, so the demo sandbox lets every request through.

pub(crate) mod attributes;
pub(crate) mod bootstrap;
pub(crate) mod tokens;

use serde_json::{Value, json};

pub(crate) use attributes::{Attributes, UserInfo};

use super::status::ApiError;
use super::store::Store;
use tokens::Tokens;

/// The RBAC API group.
pub(crate) const GROUP: &str = "rbac.authorization.k8s.io";

/// Who may call the API, and how callers prove who they are.
#[derive(Debug, Default)]
pub(crate) struct Auth {
    /// Whether requests are authorized against the stored Roles and bindings.
    pub enforce: bool,
    /// The administrator's bearer token (`system:masters`), when one is required.
    pub admin_token: Option<String>,
    /// Tokens issued to ServiceAccounts.
    pub tokens: Tokens,
}

impl Auth {
    /// Whether callers must present a token at all.
    pub fn requires_token(&self) -> bool {
        self.enforce || self.admin_token.is_some()
    }

    /// The user behind `bearer`, or `None` when the request must be refused with 401.
    /// Without enforcement or a configured token every caller acts as the administrator.
    pub fn authenticate(&self, store: &Store, bearer: Option<&str>) -> Option<UserInfo> {
        if let Some(given) = bearer {
            if self.admin_token.as_deref() == Some(given) {
                return Some(UserInfo::admin());
            }
            if let Some(user) = self.tokens.user(store, given) {
                return Some(user);
            }
        }
        (!self.requires_token()).then(UserInfo::admin)
    }

    /// Whether `user` may do what `attrs` describe; always yes when enforcement is off.
    pub fn authorize(&self, store: &Store, user: &UserInfo, attrs: &Attributes) -> Decision {
        if !self.enforce {
            return Decision {
                allowed: true,
                reason: String::new(),
            };
        }
        Policy::load(store, &attrs.namespace).authorize(user, attrs)
    }
}

/// An authorization outcome, with upstream's reason text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Whether some rule allows the request.
    pub allowed: bool,
    /// `RBAC: allowed by ...` when allowed; the evaluation errors (missing roles), if any, when not.
    pub reason: String,
}

/// The roles and bindings that bear on one namespace.
#[derive(Debug, Default)]
pub(crate) struct Policy {
    /// Every ClusterRole.
    pub cluster_roles: Vec<Value>,
    /// Every ClusterRoleBinding.
    pub cluster_role_bindings: Vec<Value>,
    /// Roles of the namespace.
    pub roles: Vec<Value>,
    /// RoleBindings of the namespace.
    pub role_bindings: Vec<Value>,
    /// The namespace (empty for cluster scope).
    pub namespace: String,
}

fn strs(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Whether `rule` (a `PolicyRule`) covers the request, as upstream's `RuleAllows`.
pub(crate) fn rule_allows(attrs: &Attributes, rule: &Value) -> bool {
    let has = |key: &str, wanted: &str| strs(rule, key).iter().any(|v| v == "*" || v == wanted);
    if !has("verbs", &attrs.verb) {
        return false;
    }
    if !attrs.resource_request {
        return strs(rule, "nonResourceURLs").iter().any(|url| {
            url == "*"
                || *url == attrs.path
                || url
                    .strip_suffix('*')
                    .is_some_and(|prefix| attrs.path.starts_with(prefix))
        });
    }
    if !has("apiGroups", &attrs.api_group) {
        return false;
    }
    let combined = attrs.combined_resource();
    let resource = strs(rule, "resources").iter().any(|r| {
        r == "*"
            || *r == combined
            || (!attrs.subresource.is_empty() && *r == format!("*/{}", attrs.subresource))
    });
    if !resource {
        return false;
    }
    let names = strs(rule, "resourceNames");
    names.is_empty() || names.contains(&attrs.name)
}

/// Whether a binding's subject names `user`; ServiceAccount subjects default to the binding's
/// namespace.
fn subject_matches(subject: &Value, binding_ns: &str, user: &UserInfo) -> bool {
    let name = s(subject, "/name");
    match s(subject, "/kind") {
        "User" => user.name == name,
        "Group" => user.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let ns = match s(subject, "/namespace") {
                "" => binding_ns,
                ns => ns,
            };
            user.name == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

fn describe_subject(subject: &Value, binding_ns: &str) -> String {
    let (kind, name) = (s(subject, "/kind"), s(subject, "/name"));
    if kind == "ServiceAccount" {
        let ns = match s(subject, "/namespace") {
            "" => binding_ns,
            ns => ns,
        };
        return format!("{kind} {:?}", format!("{name}/{ns}"));
    }
    format!("{kind} {name:?}")
}

impl Policy {
    /// Reads the roles and bindings relevant to `namespace` from the store.
    pub fn load(store: &Store, namespace: &str) -> Self {
        let all = |storage: &str, ns: Option<&str>| -> Vec<Value> {
            store
                .list(storage, ns)
                .0
                .iter()
                .map(|o| (**o).clone())
                .collect()
        };
        let namespaced = |storage: &str| {
            if namespace.is_empty() {
                Vec::new()
            } else {
                all(storage, Some(namespace))
            }
        };
        Self {
            cluster_roles: all("clusterroles", None),
            cluster_role_bindings: all("clusterrolebindings", None),
            roles: namespaced("roles"),
            role_bindings: namespaced("rolebindings"),
            namespace: namespace.to_string(),
        }
    }

    /// Calls `visit(source, rule)` for every rule bound to `user` in this namespace, in
    /// upstream's order, until it returns false; collects missing-role errors.
    fn visit(&self, user: &UserInfo, mut visit: impl FnMut(&str, &Value) -> bool) -> Vec<String> {
        let mut errors = Vec::new();
        let find = |list: &[Value], name: &str| {
            list.iter()
                .find(|r| s(r, "/metadata/name") == name)
                .cloned()
        };
        let bindings = self
            .cluster_role_bindings
            .iter()
            .map(|b| (b, "ClusterRoleBinding", ""))
            .chain(
                self.role_bindings
                    .iter()
                    .filter(|b| s(b, "/metadata/namespace") == self.namespace)
                    .map(|b| (b, "RoleBinding", self.namespace.as_str())),
            );
        for (binding, binding_kind, ns) in bindings {
            let subjects = binding
                .get("subjects")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let Some(subject) = subjects.iter().find(|sub| subject_matches(sub, ns, user)) else {
                continue;
            };
            let role_kind = s(binding, "/roleRef/kind");
            let role_name = s(binding, "/roleRef/name");
            let role = if role_kind == "ClusterRole" {
                find(&self.cluster_roles, role_name)
            } else if binding_kind == "RoleBinding" {
                find(&self.roles, role_name)
            } else {
                None
            };
            let Some(role) = role else {
                errors.push(format!(
                    "{}.{GROUP} {role_name:?} not found",
                    role_kind.to_ascii_lowercase()
                ));
                continue;
            };
            let binding_name = s(binding, "/metadata/name");
            let binding_name = if ns.is_empty() {
                binding_name.to_string()
            } else {
                format!("{binding_name}/{ns}")
            };
            let source = format!(
                "{binding_kind} {binding_name:?} of {role_kind} {role_name:?} to {}",
                describe_subject(subject, ns)
            );
            for rule in role
                .get("rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if !visit(&source, rule) {
                    return errors;
                }
            }
        }
        errors
    }

    /// The decision for `user` doing `attrs`.
    pub fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Decision {
        let mut allowed_by = None;
        let errors = self.visit(user, |source, rule| {
            if rule_allows(attrs, rule) {
                allowed_by = Some(source.to_string());
                return false;
            }
            true
        });
        match allowed_by {
            Some(source) => Decision {
                allowed: true,
                reason: format!("RBAC: allowed by {source}"),
            },
            None => Decision {
                allowed: false,
                reason: match errors.as_slice() {
                    [] => String::new(),
                    [one] => format!("RBAC: {one}"),
                    many => format!("RBAC: [{}]", many.join(", ")),
                },
            },
        }
    }

    /// Every rule bound to `user` here, split as a SelfSubjectRulesReview reports them, and
    /// the evaluation error, if any.
    pub fn rules(&self, user: &UserInfo) -> (Vec<Value>, Vec<Value>, String) {
        let (mut resource_rules, mut non_resource_rules) = (Vec::new(), Vec::new());
        let errors = self.visit(user, |_, rule| {
            if !strs(rule, "nonResourceURLs").is_empty() {
                non_resource_rules.push(json!({
                    "verbs": strs(rule, "verbs"),
                    "nonResourceURLs": strs(rule, "nonResourceURLs"),
                }));
            }
            if !strs(rule, "resources").is_empty() {
                let mut r = json!({
                    "verbs": strs(rule, "verbs"),
                    "apiGroups": strs(rule, "apiGroups"),
                    "resources": strs(rule, "resources"),
                });
                let names = strs(rule, "resourceNames");
                if !names.is_empty() {
                    r["resourceNames"] = json!(names);
                }
                resource_rules.push(r);
            }
            true
        });
        (resource_rules, non_resource_rules, errors.join(", "))
    }
}

/// The 403 kube-apiserver answers, worded as its `responsewriters.Forbidden`.
pub(crate) fn forbidden(user: &UserInfo, attrs: &Attributes, reason: &str) -> ApiError {
    let username = &user.name;
    let mut message = if !attrs.resource_request {
        format!(
            "User {username:?} cannot {} path {:?}",
            attrs.verb, attrs.path
        )
    } else {
        let resource = attrs.combined_resource();
        if attrs.namespace.is_empty() {
            format!(
                "User {username:?} cannot {} resource {resource:?} in API group {:?} at the cluster scope",
                attrs.verb, attrs.api_group
            )
        } else {
            format!(
                "User {username:?} cannot {} resource {resource:?} in API group {:?} in the namespace {:?}",
                attrs.verb, attrs.api_group, attrs.namespace
            )
        }
    };
    if !reason.is_empty() {
        message = format!("{message}: {reason}");
    }
    let (group, resource) = if attrs.resource_request {
        (attrs.api_group.as_str(), attrs.resource.as_str())
    } else {
        ("", "")
    };
    ApiError::forbidden(group, resource, &attrs.name, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn sa() -> UserInfo {
        UserInfo::service_account("steadfast", "steadfast")
    }

    fn policy() -> Policy {
        Policy {
            cluster_roles: vec![json!({
                "metadata": {"name": "system:node-reader"},
                "rules": [
                    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]},
                    {"nonResourceURLs": ["/healthz", "/apis/*"], "verbs": ["get"]},
                ],
            })],
            cluster_role_bindings: vec![json!({
                "metadata": {"name": "read-nodes"},
                "roleRef": {"kind": "ClusterRole", "name": "system:node-reader"},
                "subjects": [{"kind": "Group", "name": "system:serviceaccounts:steadfast"}],
            })],
            roles: vec![json!({
                "metadata": {"name": "chaos", "namespace": "shop"},
                "rules": [
                    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "delete"]},
                    {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
                    {"apiGroups": ["apps"], "resources": ["*"], "verbs": ["*"], "resourceNames": ["web"]},
                    {"apiGroups": ["policy"], "resources": ["*/status"], "verbs": ["get"]},
                ],
            })],
            role_bindings: vec![
                json!({
                    "metadata": {"name": "chaos", "namespace": "shop"},
                    "roleRef": {"kind": "Role", "name": "chaos"},
                    "subjects": [{"kind": "ServiceAccount", "name": "steadfast", "namespace": "steadfast"}],
                }),
                json!({
                    "metadata": {"name": "dangling", "namespace": "shop"},
                    "roleRef": {"kind": "Role", "name": "gone"},
                    "subjects": [{"kind": "User", "name": "system:serviceaccount:steadfast:steadfast"}],
                }),
            ],
            namespace: "shop".into(),
        }
    }

    fn allowed(method: Method, path: &str) -> bool {
        let attrs = Attributes::of_request(&method, path, None);
        let mut policy = policy();
        policy.namespace = attrs.namespace.clone();
        policy.authorize(&sa(), &attrs).allowed
    }

    #[test]
    fn rules_match_verbs_groups_resources_subresources_and_names() {
        assert!(allowed(
            Method::DELETE,
            "/api/v1/namespaces/shop/pods/web-1"
        ));
        assert!(allowed(Method::GET, "/api/v1/namespaces/shop/pods"));
        assert!(!allowed(
            Method::PATCH,
            "/api/v1/namespaces/shop/pods/web-1"
        ));
        assert!(allowed(
            Method::POST,
            "/api/v1/namespaces/shop/pods/web-1/eviction"
        ));
        assert!(!allowed(
            Method::POST,
            "/api/v1/namespaces/shop/pods/web-1/binding"
        ));
        assert!(allowed(
            Method::PATCH,
            "/apis/apps/v1/namespaces/shop/deployments/web"
        ));
        assert!(!allowed(
            Method::PATCH,
            "/apis/apps/v1/namespaces/shop/deployments/api"
        ));
        assert!(
            !allowed(Method::GET, "/apis/apps/v1/namespaces/shop/deployments"),
            "resourceNames never cover a list"
        );
        assert!(allowed(
            Method::GET,
            "/apis/policy/v1/namespaces/shop/poddisruptionbudgets/b/status"
        ));
        assert!(!allowed(
            Method::GET,
            "/apis/policy/v1/namespaces/shop/poddisruptionbudgets/b"
        ));
        assert!(allowed(Method::GET, "/api/v1/nodes"));
        assert!(!allowed(
            Method::DELETE,
            "/api/v1/namespaces/other/pods/web-1"
        ));
        assert!(allowed(Method::GET, "/healthz"));
        assert!(allowed(Method::GET, "/apis/apps"));
        assert!(!allowed(Method::GET, "/version"));
    }

    #[test]
    fn a_watch_needs_the_watch_verb() {
        let attrs = Attributes::of_request(
            &Method::GET,
            "/api/v1/namespaces/shop/pods",
            Some("watch=true"),
        );
        let decision = policy().authorize(&sa(), &attrs);
        assert!(!decision.allowed);
        assert_eq!(
            decision.reason,
            "RBAC: role.rbac.authorization.k8s.io \"gone\" not found"
        );
    }

    #[test]
    fn allowed_reasons_name_the_binding_like_upstream() {
        let attrs = Attributes::of_request(&Method::GET, "/api/v1/nodes/n1", None);
        assert_eq!(
            policy().authorize(&sa(), &attrs).reason,
            "RBAC: allowed by ClusterRoleBinding \"read-nodes\" of ClusterRole \"system:node-reader\" to Group \"system:serviceaccounts:steadfast\""
        );
        let attrs = Attributes::of_request(&Method::GET, "/api/v1/namespaces/shop/pods/p", None);
        assert_eq!(
            policy().authorize(&sa(), &attrs).reason,
            "RBAC: allowed by RoleBinding \"chaos/shop\" of Role \"chaos\" to ServiceAccount \"steadfast/steadfast\""
        );
    }

    #[test]
    fn other_users_get_nothing() {
        let other = UserInfo::service_account("shop", "default");
        let attrs = Attributes::of_request(&Method::GET, "/api/v1/namespaces/shop/pods", None);
        assert!(!policy().authorize(&other, &attrs).allowed);
    }

    #[test]
    fn forbidden_messages_match_upstream_wording() {
        let user = sa();
        let msg = |method: Method, path: &str| {
            forbidden(&user, &Attributes::of_request(&method, path, None), "").message
        };
        assert_eq!(
            msg(Method::DELETE, "/api/v1/namespaces/shop/pods/web-1"),
            "pods \"web-1\" is forbidden: User \"system:serviceaccount:steadfast:steadfast\" cannot delete resource \"pods\" in API group \"\" in the namespace \"shop\""
        );
        assert_eq!(
            msg(Method::POST, "/api/v1/namespaces/shop/pods/web-1/eviction"),
            "pods \"web-1\" is forbidden: User \"system:serviceaccount:steadfast:steadfast\" cannot create resource \"pods/eviction\" in API group \"\" in the namespace \"shop\""
        );
        assert_eq!(
            msg(Method::GET, "/api/v1/namespaces/shop/pods"),
            "pods is forbidden: User \"system:serviceaccount:steadfast:steadfast\" cannot list resource \"pods\" in API group \"\" in the namespace \"shop\""
        );
        assert_eq!(
            msg(
                Method::PATCH,
                "/apis/apps/v1/namespaces/shop/deployments/web"
            ),
            "deployments.apps \"web\" is forbidden: User \"system:serviceaccount:steadfast:steadfast\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"shop\""
        );
        assert_eq!(
            msg(Method::GET, "/api/v1/nodes"),
            "nodes is forbidden: User \"system:serviceaccount:steadfast:steadfast\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"
        );
        assert_eq!(
            msg(Method::GET, "/version"),
            "forbidden: User \"system:serviceaccount:steadfast:steadfast\" cannot get path \"/version\""
        );
        let e = forbidden(
            &user,
            &Attributes::of_request(&Method::DELETE, "/api/v1/namespaces/shop/pods/web-1", None),
            "",
        );
        assert_eq!((e.code, e.reason), (403, "Forbidden"));
        assert_eq!(e.details, Some(json!({"name": "web-1", "kind": "pods"})));
    }

    #[test]
    fn rules_reviews_list_what_is_bound() {
        let (resource, non_resource, error) = policy().rules(&sa());
        assert_eq!(resource.len(), 5);
        assert_eq!(
            non_resource,
            vec![json!({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/apis/*"]})]
        );
        assert_eq!(error, "role.rbac.authorization.k8s.io \"gone\" not found");
    }
}

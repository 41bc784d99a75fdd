//! Request attributes as kube-apiserver's `RequestInfoFactory` derives them: what RBAC rules are
//! matched against and what the 403 message names.

use http::Method;

/// Who is asking, as an authenticator reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserInfo {
    /// User name, e.g. `system:serviceaccount:steadfast:steadfast`.
    pub name: String,
    /// Groups, e.g. `system:authenticated`.
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The identity of a ServiceAccount's token, with the groups upstream gives it.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        Self {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        }
    }

    /// The sandbox administrator: in `system:masters`, as a kubeadm admin.conf user is.
    pub fn admin() -> Self {
        Self {
            name: "kubernetes-admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }
}

/// What a request asks to do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Attributes {
    /// Whether the path names an API resource (else it is a non-resource URL).
    pub resource_request: bool,
    /// RBAC verb: get, list, watch, create, update, patch, delete, deletecollection; for
    /// non-resource URLs the lower-cased HTTP method.
    pub verb: String,
    /// API group; empty for the core group.
    pub api_group: String,
    /// API version.
    pub api_version: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource, if any.
    pub subresource: String,
    /// Namespace; empty for cluster scope.
    pub namespace: String,
    /// Object name; empty for collections.
    pub name: String,
    /// The URL path, for non-resource requests.
    pub path: String,
}

/// Subresources of a namespace that stay subresources (`namespaces/x/status`), not resources.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

impl Attributes {
    /// The attributes of `method path?query`, following upstream's `RequestInfoFactory`.
    pub fn of_request(method: &Method, path: &str, query: Option<&str>) -> Self {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut out = Attributes {
            verb: method.as_str().to_ascii_lowercase(),
            path: path.to_string(),
            ..Default::default()
        };
        if parts.len() < 3 || !matches!(parts[0], "api" | "apis") {
            return out;
        }
        let mut rest = &parts[1..];
        if parts[0] == "apis" {
            if rest.len() < 3 {
                return out;
            }
            out.api_group = rest[0].to_string();
            rest = &rest[1..];
        }
        out.resource_request = true;
        out.api_version = rest[0].to_string();
        rest = &rest[1..];
        out.verb = match *method {
            Method::POST => "create",
            Method::GET | Method::HEAD => "get",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            _ => "",
        }
        .to_string();
        // `/api/v1/watch/...` and `/api/v1/proxy/...`: the deprecated verb-in-path forms.
        if let Some(special) = rest.first().filter(|s| matches!(**s, "watch" | "proxy"))
            && rest.len() > 1
        {
            out.verb = special.to_string();
            rest = &rest[1..];
        }
        if rest.first() == Some(&"namespaces")
            && let Some(ns) = rest.get(1)
        {
            out.namespace = ns.to_string();
            if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
                rest = &rest[2..];
            }
        }
        if let Some(resource) = rest.first() {
            out.resource = resource.to_string();
        }
        if let Some(name) = rest.get(1) {
            out.name = name.to_string();
        }
        if rest.len() >= 3 && out.verb != "proxy" && out.verb != "watch" {
            out.subresource = rest[2].to_string();
        }
        let param = |key: &str| {
            query.into_iter().flat_map(|q| q.split('&')).find_map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k == key).then_some(v)
            })
        };
        if out.name.is_empty() && out.verb == "get" {
            let watch = param("watch")
                .is_some_and(|v| matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True"));
            out.verb = if watch { "watch" } else { "list" }.to_string();
        }
        if matches!(out.verb.as_str(), "list" | "watch")
            && let Some(selector) = param("fieldSelector")
        {
            let selector = selector.replace("%3D", "=").replace("%3d", "=");
            if let Some(name) = selector.strip_prefix("metadata.name=")
                && !name.contains(',')
            {
                out.name = name.to_string();
            }
        }
        if out.name.is_empty() && out.verb == "delete" {
            out.verb = "deletecollection".into();
        }
        out
    }

    /// `resource/subresource`, or the resource alone.
    pub fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(method: Method, path: &str, query: Option<&str>) -> Attributes {
        Attributes::of_request(&method, path, query)
    }

    #[test]
    fn verbs_follow_upstream_request_info() {
        let cases = [
            (Method::GET, "/api/v1/namespaces/shop/pods", None, "list"),
            (
                Method::GET,
                "/api/v1/namespaces/shop/pods",
                Some("watch=true"),
                "watch",
            ),
            (
                Method::GET,
                "/api/v1/pods",
                Some("watch=1&labelSelector=a"),
                "watch",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/shop/pods/web-1",
                None,
                "get",
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/shop/pods/web-1",
                None,
                "delete",
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/shop/pods",
                None,
                "deletecollection",
            ),
            (Method::POST, "/api/v1/namespaces/shop/pods", None, "create"),
            (
                Method::PUT,
                "/apis/apps/v1/namespaces/shop/deployments/web",
                None,
                "update",
            ),
            (Method::PATCH, "/api/v1/nodes/n1", None, "patch"),
            (
                Method::GET,
                "/api/v1/watch/namespaces/shop/pods",
                None,
                "watch",
            ),
        ];
        for (method, path, query, verb) in cases {
            assert_eq!(attrs(method, path, query).verb, verb, "{path} {query:?}");
        }
    }

    #[test]
    fn namespaces_names_and_subresources_are_split_like_upstream() {
        let a = attrs(
            Method::POST,
            "/api/v1/namespaces/shop/pods/web-1/eviction",
            None,
        );
        assert!(a.resource_request);
        assert_eq!(
            (
                a.api_group.as_str(),
                a.namespace.as_str(),
                a.resource.as_str()
            ),
            ("", "shop", "pods")
        );
        assert_eq!(
            (a.name.as_str(), a.subresource.as_str()),
            ("web-1", "eviction")
        );
        assert_eq!(a.combined_resource(), "pods/eviction");

        let ns = attrs(Method::GET, "/api/v1/namespaces/shop", None);
        assert_eq!(
            (
                ns.resource.as_str(),
                ns.name.as_str(),
                ns.namespace.as_str()
            ),
            ("namespaces", "shop", "shop")
        );
        let status = attrs(Method::PUT, "/api/v1/namespaces/shop/status", None);
        assert_eq!(status.combined_resource(), "namespaces/status");

        let role = attrs(
            Method::GET,
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:basic-user",
            None,
        );
        assert_eq!(role.api_group, "rbac.authorization.k8s.io");
        assert_eq!(
            (role.resource.as_str(), role.name.as_str()),
            ("clusterroles", "system:basic-user")
        );
        assert_eq!(role.namespace, "");

        let named = attrs(
            Method::GET,
            "/api/v1/namespaces/shop/pods",
            Some("fieldSelector=metadata.name%3Dweb-1&watch=true"),
        );
        assert_eq!(
            (named.verb.as_str(), named.name.as_str()),
            ("watch", "web-1")
        );
    }

    #[test]
    fn discovery_and_health_are_non_resource_urls() {
        for path in [
            "/api",
            "/api/v1",
            "/apis",
            "/apis/apps/v1",
            "/version",
            "/healthz",
        ] {
            let a = attrs(Method::GET, path, None);
            assert!(!a.resource_request, "{path}");
            assert_eq!((a.verb.as_str(), a.path.as_str()), ("get", path));
        }
    }
}

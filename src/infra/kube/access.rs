//! Which API permissions a run actually uses, read off its requests.
//!
//! The Helm chart's Role must grant exactly what steadfast needs. Rather than trust a list kept
//! by hand, the client can record every request as the (API group, resource, verb) triple RBAC
//! authorises ([`RecordLayer`]); the tests compare the recording with [`super::rbac::RULES`].

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tower::{Layer, Service};

/// One authorisation an API request needs, in RBAC's terms.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiAccess {
    /// API group; empty for the core group.
    pub group: String,
    /// Resource, with `/subresource` when there is one (`pods/eviction`).
    pub resource: String,
    /// RBAC verb: get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: String,
}

impl fmt::Display for ApiAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        write!(f, "{} {}/{}", self.verb, group, self.resource)
    }
}

impl ApiAccess {
    /// The access an HTTP request to the API server needs, or `None` for non-resource paths
    /// (`/version`, discovery).
    pub fn of_request(method: &http::Method, uri: &http::Uri) -> Option<Self> {
        let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
        let (group, rest) = match segments.as_slice() {
            ["api", _version, rest @ ..] => ("", rest),
            ["apis", group, _version, rest @ ..] => (*group, rest),
            _ => return None,
        };
        // The run's own permission checks (the preflight) are not permissions it uses.
        if group == "authorization.k8s.io" || group == "authentication.k8s.io" {
            return None;
        }
        let (resource, name, subresource) = match rest {
            [] => return None,
            ["namespaces", _ns, resource, tail @ ..] => (*resource, tail.first(), tail.get(1)),
            [resource, tail @ ..] => (*resource, tail.first(), tail.get(1)),
        };
        let watch = uri
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
        let verb = match *method {
            http::Method::GET if watch => "watch",
            http::Method::GET if name.is_some() => "get",
            http::Method::GET => "list",
            http::Method::POST => "create",
            http::Method::PUT => "update",
            http::Method::PATCH => "patch",
            http::Method::DELETE if name.is_some() => "delete",
            http::Method::DELETE => "deletecollection",
            _ => return None,
        };
        let resource = match subresource {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource.to_owned(),
        };
        Some(Self {
            group: group.to_owned(),
            resource,
            verb: verb.to_owned(),
        })
    }
}

/// A shared set of the accesses seen so far.
#[derive(Debug, Clone, Default)]
pub struct AccessLog {
    seen: Arc<Mutex<BTreeSet<ApiAccess>>>,
}

impl AccessLog {
    /// Every distinct access recorded, sorted.
    pub fn snapshot(&self) -> BTreeSet<ApiAccess> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Adds one access (the client layer and the sandbox's API server both record).
    pub fn record(&self, access: ApiAccess) {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(access);
    }
}

/// Records the access of every request passing through.
#[derive(Debug, Clone)]
pub struct RecordLayer {
    log: AccessLog,
}

impl RecordLayer {
    /// A layer writing into `log`.
    pub fn new(log: AccessLog) -> Self {
        Self { log }
    }
}

impl<S> Layer<S> for RecordLayer {
    type Service = Record<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Record {
            inner,
            log: self.log.clone(),
        }
    }
}

/// The service [`RecordLayer`] makes.
#[derive(Debug, Clone)]
pub struct Record<S> {
    inner: S,
    log: AccessLog,
}

impl<S, B> Service<http::Request<B>> for Record<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if let Some(access) = ApiAccess::of_request(request.method(), request.uri()) {
            self.log.record(access);
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(method: http::Method, uri: &str) -> Option<String> {
        let uri: http::Uri = uri.parse().ok()?;
        ApiAccess::of_request(&method, &uri).map(|a| a.to_string())
    }

    #[test]
    fn requests_map_to_rbac_triples() {
        use http::Method;
        let cases = [
            (Method::GET, "/api/v1/pods?limit=500", "list core/pods"),
            (
                Method::GET,
                "/api/v1/namespaces/shop/pods",
                "list core/pods",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/shop/pods/web-1",
                "get core/pods",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/shop/pods?watch=true&resourceVersion=5",
                "watch core/pods",
            ),
            (
                Method::POST,
                "/api/v1/namespaces/shop/pods/web-1/eviction",
                "create core/pods/eviction",
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/shop/pods/web-1",
                "delete core/pods",
            ),
            (Method::PATCH, "/api/v1/nodes/n1", "patch core/nodes"),
            (Method::PUT, "/api/v1/nodes/n1", "update core/nodes"),
            (Method::GET, "/api/v1/namespaces", "list core/namespaces"),
            (
                Method::GET,
                "/api/v1/namespaces/shop",
                "get core/namespaces",
            ),
            (
                Method::GET,
                "/apis/policy/v1/namespaces/shop/poddisruptionbudgets",
                "list policy/poddisruptionbudgets",
            ),
            (
                Method::GET,
                "/apis/apps/v1/namespaces/shop/replicasets/web-abc",
                "get apps/replicasets",
            ),
        ];
        for (method, uri, want) in cases {
            assert_eq!(access(method, uri).as_deref(), Some(want), "{uri}");
        }
        assert_eq!(access(http::Method::GET, "/version"), None);
        assert_eq!(access(http::Method::GET, "/apis/apps/v1"), None);
    }
}

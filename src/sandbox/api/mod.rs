//! The API server: Kubernetes REST over plain HTTP on loopback.
//!
//! Routing follows kube-apiserver's URL scheme (`/api/v1/...`, `/apis/<group>/<version>/...`,
//! `namespaces/<ns>/<resource>/<name>/<subresource>`), so kube-rs, kubectl and the Python client
//! talk to it unmodified.

mod convert;
mod crud;
mod discovery;
mod ephemeral;
mod field_labels;
mod protobuf;
mod protobuf_schema;
mod proxy;
mod review;
mod secure;
mod table;
mod token;
mod watch;

pub(crate) use secure::{serve_tls, tls_acceptor};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::cluster::Shared;
use super::hostile::{Decision as HostileDecision, Refusal, refusal_status};
use super::rbac::{Attributes, UserInfo};
use super::resources::{self, ResourceDef};
use super::status::ApiError;
use crate::infra::kube::access::{AccessLog, ApiAccess};

/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// What every handler needs.
pub(crate) struct App {
    /// Shared sandbox state.
    pub shared: Arc<Shared>,
    /// Address the server listens on.
    pub addr: SocketAddr,
    /// Fires on shutdown; ends watches.
    pub cancel: CancellationToken,
    /// Every (verb, resource) clients used, for the tests that keep the RBAC rules honest.
    pub accesses: AccessLog,
}

/// A request, read fully (bodies are small JSON documents).
pub(crate) struct Req {
    /// HTTP method.
    pub method: Method,
    /// Decoded query parameters.
    pub query: HashMap<String, String>,
    /// Raw query string, forwarded by the service proxy.
    pub raw_query: Option<String>,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Bytes,
    /// Raw path.
    pub path: String,
    /// Who sent it.
    pub user: UserInfo,
    /// Hostile mode's life for this request when it is a watch.
    pub close_watch_after: Option<std::time::Duration>,
    /// Hostile mode answers this watch resume 410 Gone.
    pub gone: bool,
}

impl Req {
    /// A query parameter, if present and non-empty.
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A boolean query parameter, parsed as Go's `strconv.ParseBool` (Python sends `True`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(
            self.q(key),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True")
        )
    }

    /// Whether the client asked for a `meta.k8s.io` Table.
    pub fn wants_table(&self) -> bool {
        self.headers
            .get_all(http::header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("as=Table"))
    }

    /// The body as JSON (`Null` when empty); protobuf bodies are decoded first.
    pub fn json(&self) -> Result<Value, ApiError> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        let content_type = self
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if content_type.starts_with("application/vnd.kubernetes.protobuf") {
            return protobuf::decode(&self.body);
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
    }
}

/// A JSON response.
pub(crate) fn json_response(code: u16, v: &Value) -> Response<Body> {
    let mut resp = Response::new(Body::from(v.to_string()));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

fn text_response(code: u16, text: String) -> Response<Body> {
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The API as a router, served over plain HTTP or TLS.
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new().fallback(handle).with_state(app)
}

/// Serves plain HTTP until `cancel` fires.
pub(crate) async fn serve(app: Arc<App>, listener: TcpListener) -> std::io::Result<()> {
    let cancel = app.cancel.clone();
    let router = router(app);
    axum::serve(listener, router)
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
}

async fn handle(State(app): State<Arc<App>>, req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let access = ApiAccess::of_request(&parts.method, &parts.uri);
    if let Some(access) = &access {
        app.accesses.record(access.clone());
    }
    // Only resource requests: health checks, discovery and /metrics always answer.
    let decision = match (&access, app.shared.hostile()) {
        (Some(access), Some(hostile)) => {
            hostile.decide(access, access.verb == "watch" && watch::resumes(&parts.uri))
        }
        _ => HostileDecision::default(),
    };
    if let Some(delay) = decision.delay {
        tokio::time::sleep(delay).await;
    }
    let refusal = decision.refusal;
    if let Some(r) = refusal
        && !r.after()
    {
        return refusal_response(r);
    }
    let user = match authenticate(&app, &parts) {
        Some(user) => user,
        None => {
            let e = ApiError::unauthorized();
            return json_response(e.code, &e.to_status());
        }
    };
    if let Ok(path) = percent_decode(parts.uri.path()) {
        let attrs = Attributes::of_request(&parts.method, &path, parts.uri.query());
        let decision = app.shared.auth.authorize(&app.shared.store, &user, &attrs);
        if !decision.allowed {
            let e = super::rbac::forbidden(&user, &attrs, &decision.reason);
            return json_response(e.code, &e.to_status());
        }
    }
    let query = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return json_response(400, &ApiError::bad_request(e.to_string()).to_status()),
    };
    let req = Req {
        method: parts.method,
        query,
        raw_query: parts.uri.query().map(String::from),
        headers: parts.headers,
        body,
        path: parts.uri.path().to_string(),
        user,
        close_watch_after: decision.close_watch_after,
        gone: decision.gone,
    };
    let resp = match route(&app, &req).await {
        Ok(resp) => resp,
        Err(e) => json_response(e.code, &e.to_status()),
    };
    match refusal {
        // Carried out, then answered with a timeout, as a server may do mid-write.
        Some(r) => refusal_response(r),
        None => resp,
    }
}

/// The answer of a hostile-mode refusal, with `Retry-After` when throttled; a reset drops
/// the connection without an answer.
fn refusal_response(r: Refusal) -> Response<Body> {
    if let Refusal::Reset { .. } = r {
        return reset_response();
    }
    let (code, status, retry_after) = refusal_status(r);
    let mut resp = json_response(code, &status);
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
    }
    resp
}

/// A response whose body fails before its first byte: hyper then closes the connection with
/// the status line still unsent, so the client sees the connection dropped without an answer.
fn reset_response() -> Response<Body> {
    let failed = futures::stream::once(async {
        Err::<Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "hostile mode drops this connection",
        ))
    });
    Response::new(Body::from_stream(failed))
}

/// The caller, or `None` for a 401. Health checks are open, as kube-apiserver allows them
/// anonymously; the rest needs a known bearer token when tokens are required.
fn authenticate(app: &App, parts: &http::request::Parts) -> Option<UserInfo> {
    if matches!(parts.uri.path(), "/healthz" | "/livez" | "/readyz") {
        return Some(UserInfo::admin());
    }
    let bearer = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    app.shared.auth.authenticate(&app.shared.store, bearer)
}

/// Decodes `%XX` escapes, as Go's `net/http` does before kube-apiserver routes on the path
/// (clients such as the Python one send `web%3A80` for `web:80`).
fn percent_decode(path: &str) -> Result<String, ApiError> {
    if !path.contains('%') {
        return Ok(path.to_string());
    }
    let bad = || ApiError::bad_request(format!("invalid URL escape in path {path:?}"));
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = path.get(i + 1..i + 3).ok_or_else(bad)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

async fn route(app: &Arc<App>, req: &Req) -> Result<Response<Body>, ApiError> {
    let path = percent_decode(&req.path)?;
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let get = req.method == Method::GET;
    let found = |v: Option<Value>| {
        v.map(|v| json_response(200, &v))
            .ok_or_else(|| ApiError::no_route(&req.path))
    };
    match segs.as_slice() {
        ["version"] if get => Ok(json_response(200, &discovery::version())),
        ["healthz" | "livez" | "readyz"] if get => Ok(text_response(200, "ok".into())),
        ["metrics"] if get => {
            let mut text = app.shared.lb_metrics.render();
            if let Some(hostile) = app.shared.hostile() {
                text.push_str(&hostile.render());
            }
            Ok(text_response(200, text))
        }
        // An empty OpenAPI v2 document (protobuf, all fields default): kubectl finds no schema
        // for any kind and skips client-side validation, as for types without one.
        ["openapi", "v2"] if get => {
            let mut resp = Response::new(Body::empty());
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(
                    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                ),
            );
            Ok(resp)
        }
        ["api"] if get => Ok(json_response(
            200,
            &discovery::api_versions(&app.addr.to_string()),
        )),
        ["apis"] if get => Ok(json_response(200, &discovery::api_groups())),
        ["api", "v1"] if get => found(discovery::resource_list("", "v1")),
        ["apis", g] if get => found(discovery::api_group(g)),
        ["apis", g, v] if get => found(discovery::resource_list(g, v)),
        [
            "apis",
            review::GROUP,
            review::VERSION,
            "selfsubjectaccessreviews",
        ] if req.method == Method::POST => Ok(json_response(
            201,
            &review::self_subject_access_review(app, req)?,
        )),
        [
            "apis",
            review::GROUP,
            review::VERSION,
            "selfsubjectrulesreviews",
        ] if req.method == Method::POST => Ok(json_response(
            201,
            &review::self_subject_rules_review(app, req)?,
        )),
        [
            "apis",
            review::AUTHENTICATION_GROUP,
            review::VERSION,
            "selfsubjectreviews",
        ] if req.method == Method::POST => {
            Ok(json_response(201, &review::self_subject_review(req)))
        }
        ["api", "v1", rest @ ..] => resource(app, req, "", "v1", rest).await,
        ["apis", g, v, rest @ ..] => resource(app, req, g, v, rest).await,
        _ => Err(ApiError::no_route(&req.path)),
    }
}

/// Which object or collection a resource path names.
pub(crate) struct Target<'a> {
    /// The resource.
    pub def: &'static ResourceDef,
    /// Namespace; `None` lists across namespaces, `Some("")` for cluster-scoped resources.
    pub ns: Option<&'a str>,
    /// Object name, if any.
    pub name: Option<&'a str>,
    /// Subresource, if any.
    pub sub: Option<&'a str>,
    /// Path segments after the subresource (service proxy).
    pub tail: &'a [&'a str],
}

async fn resource(
    app: &Arc<App>,
    req: &Req,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Response<Body>, ApiError> {
    let no_route = || ApiError::no_route(&req.path);
    let (def, ns, tail): (&'static ResourceDef, Option<&str>, &[&str]) = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if resources::find(group, version, plural).is_some_and(|d| d.namespaced) =>
        {
            (
                resources::find(group, version, plural).ok_or_else(no_route)?,
                Some(*ns),
                tail,
            )
        }
        [plural, tail @ ..] => {
            let def = resources::find(group, version, plural).ok_or_else(no_route)?;
            if def.namespaced && !tail.is_empty() {
                return Err(no_route());
            }
            (def, if def.namespaced { None } else { Some("") }, tail)
        }
        [] => return Err(no_route()),
    };
    let target = match tail {
        [] => Target {
            def,
            ns,
            name: None,
            sub: None,
            tail: &[],
        },
        [name] => Target {
            def,
            ns,
            name: Some(*name),
            sub: None,
            tail: &[],
        },
        [name, sub, more @ ..] => {
            if !def.subresources.contains(sub) {
                return Err(no_route());
            }
            Target {
                def,
                ns,
                name: Some(*name),
                sub: Some(*sub),
                tail: more,
            }
        }
    };
    crud::dispatch(app, req, target).await
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn path_escapes_are_decoded_before_routing() {
        let decoded = percent_decode("/api/v1/namespaces/shop/services/web%3A80/proxy/a%2fb");
        assert_eq!(
            decoded.ok().as_deref(),
            Some("/api/v1/namespaces/shop/services/web:80/proxy/a/b")
        );
        assert_eq!(percent_decode("/plain").ok().as_deref(), Some("/plain"));
        for bad in ["/a%", "/a%4", "/a%zz", "/a%ff"] {
            assert_eq!(
                percent_decode(bad).err().map(|e| e.code),
                Some(400),
                "{bad}"
            );
        }
    }
}

//! `services/{name}[:{port}]/proxy/{path}`: the API server resolves the port as kube-apiserver
//! does (a number to its Service port name, 503 when unknown) and forwards the request to one ready
//! endpoint of the Service, picked at random, as kube-apiserver does.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::Response;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use serde_json::Value;

use super::{App, Req};
use crate::sandbox::resources::well_known;
use crate::sandbox::status::ApiError;

/// Time allowed for the proxied request, connection included.
const PROXY_TIMEOUT: Duration = Duration::from_secs(30);

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// Forwards one request to a ready endpoint of Service `target` (`name`, `name:port` or
/// `scheme:name:port`).
pub(crate) async fn service_proxy(
    app: &Arc<App>,
    req: &Req,
    ns: &str,
    target: &str,
    tail: &[&str],
) -> Result<Response<Body>, ApiError> {
    let (name, port) = split_scheme_name_port(target)
        .ok_or_else(|| ApiError::bad_request(format!("invalid service request {target:?}")))?;
    let service = app
        .shared
        .store
        .get("services", ns, name)
        .ok_or_else(|| ApiError::not_found(well_known::services(), name))?;
    let port_name = resolve_port(&service, name, port)?;
    let endpoints = app.shared.ready_endpoints(ns, name);
    if endpoints.is_empty() {
        return Err(ApiError::service_unavailable(format!(
            "no endpoints available for service \"{name}\""
        )));
    }
    // Endpoint ports carry the Service port names; every sandbox endpoint serves every port of
    // its Service, so a name the Service has is served by every ready endpoint.
    if !has_port_named(&service, &port_name) {
        return Err(ApiError::service_unavailable(format!(
            "no endpoints available for service \"{target}\""
        )));
    }
    let ep = endpoints[rand::random_range(0..endpoints.len())].clone();
    let mut path = format!("/{}", tail.join("/"));
    if req.path.ends_with('/') && !path.ends_with('/') {
        path.push('/');
    }
    if let Some(q) = &req.raw_query {
        path.push('?');
        path.push_str(q);
    }
    let mut builder = http::Request::builder()
        .method(req.method.clone())
        .uri(&path)
        .header(http::header::HOST, ep.addr.to_string());
    for (k, v) in &req.headers {
        if !HOP_BY_HOP.contains(&k.as_str()) {
            builder = builder.header(k, v);
        }
    }
    let outgoing = builder
        .body(Full::new(req.body.clone()))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let pod = ep.pod.clone();
    let fut = async move {
        let stream = TcpStream::connect(ep.addr).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        let driver = async move {
            // The connection ends with the exchange; its error, if any, shows in the response.
            let _ = conn.await;
        };
        let exchange = async move {
            let resp = sender
                .send_request(outgoing)
                .await
                .map_err(std::io::Error::other)?;
            // Dropping the sender lets the connection finish once the body is read.
            drop(sender);
            let (parts, body) = resp.into_parts();
            let bytes = body
                .collect()
                .await
                .map_err(std::io::Error::other)?
                .to_bytes();
            Ok::<_, std::io::Error>((parts, bytes))
        };
        let (result, ()) = tokio::join!(exchange, driver);
        result
    };
    let (parts, bytes) = tokio::time::timeout(PROXY_TIMEOUT, fut)
        .await
        .map_err(|_| ApiError::service_unavailable(format!("timeout proxying to {pod}")))?
        .map_err(|e| {
            ApiError::service_unavailable(format!("error trying to reach service: {e}"))
        })?;
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = parts.status;
    for (k, v) in &parts.headers {
        if !HOP_BY_HOP.contains(&k.as_str()) {
            resp.headers_mut().insert(k.clone(), v.clone());
        }
    }
    Ok(resp)
}

/// kube-apiserver's `SplitSchemeNamePort`: `name`, `name:port` or `scheme:name:port` with an
/// empty, `http` or `https` scheme; `None` for anything else.
fn split_scheme_name_port(target: &str) -> Option<(&str, &str)> {
    let (name, port) = match target.split(':').collect::<Vec<_>>().as_slice() {
        [name] => (*name, ""),
        [name, port] => (*name, *port),
        [scheme, name, port] if matches!(*scheme, "" | "http" | "https") => (*name, *port),
        _ => return None,
    };
    (!name.is_empty()).then_some((name, port))
}

/// The Service port name a proxy request means, as `ServiceREST.ResourceLocation` resolves it:
/// a number becomes the name of the Service port with that number (503 when there is none); a
/// name (or nothing, meaning the unnamed port) is kept as given.
fn resolve_port(service: &Value, name: &str, port: &str) -> Result<String, ApiError> {
    let Ok(number) = port.parse::<i64>() else {
        return Ok(port.to_string());
    };
    service_ports(service)
        .find(|p| p.get("port").and_then(Value::as_i64) == Some(number))
        .map(|p| port_name(p).to_string())
        .ok_or_else(|| {
            ApiError::service_unavailable(format!(
                "no service port {number} found for service \"{name}\""
            ))
        })
}

fn has_port_named(service: &Value, name: &str) -> bool {
    service_ports(service).any(|p| port_name(p) == name)
}

fn service_ports(service: &Value) -> impl Iterator<Item = &Value> {
    service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn port_name(port: &Value) -> &str {
    port.get("name").and_then(Value::as_str).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn proxy_target_splits_like_kube_apiserver() {
        assert_eq!(split_scheme_name_port("web"), Some(("web", "")));
        assert_eq!(split_scheme_name_port("web:80"), Some(("web", "80")));
        assert_eq!(
            split_scheme_name_port("https:web:http"),
            Some(("web", "http"))
        );
        assert_eq!(split_scheme_name_port(":web:80"), Some(("web", "80")));
        assert_eq!(split_scheme_name_port("ftp:web:80"), None);
        assert_eq!(split_scheme_name_port(":80"), None);
        assert_eq!(split_scheme_name_port("a:b:c:d"), None);
    }

    #[test]
    fn proxy_port_number_resolves_to_the_service_port_name() {
        let svc = json!({"spec": {"ports": [{"name": "http", "port": 80}, {"port": 81}]}});
        assert_eq!(
            resolve_port(&svc, "web", "80").ok().as_deref(),
            Some("http")
        );
        assert_eq!(resolve_port(&svc, "web", "81").ok().as_deref(), Some(""));
        assert_eq!(
            resolve_port(&svc, "web", "metrics").ok().as_deref(),
            Some("metrics")
        );
        let missing = resolve_port(&svc, "web", "9999")
            .err()
            .map(|e| (e.code, e.message));
        assert_eq!(
            missing,
            Some((
                503,
                "no service port 9999 found for service \"web\"".to_string()
            ))
        );
        assert!(has_port_named(&svc, "http") && has_port_named(&svc, ""));
        assert!(!has_port_named(&svc, "metrics"));
    }
}

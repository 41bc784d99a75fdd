//! `services/{name}[:{port}]/proxy/{path}`: the API server forwards the request to one ready
//! endpoint of the Service, picked at random, as kube-apiserver does.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::Response;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

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
    let parts: Vec<&str> = target.split(':').collect();
    let name = match parts.as_slice() {
        [name] | [name, _] => *name,
        [_, name, _] => *name,
        _ => {
            return Err(ApiError::bad_request(format!(
                "invalid service proxy target {target:?}"
            )));
        }
    };
    if app.shared.store.get("services", ns, name).is_none() {
        return Err(ApiError::not_found(well_known::services(), name));
    }
    let endpoints = app.shared.ready_endpoints(ns, name);
    if endpoints.is_empty() {
        return Err(ApiError::service_unavailable(format!(
            "no endpoints available for service \"{name}\""
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

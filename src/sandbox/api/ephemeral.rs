//! The `pods/ephemeralcontainers` subresource, as kube-apiserver serves it.
//!
//! `spec.ephemeralContainers` is writable only here (a plain pod update that changes it is
//! refused with 422), names are unique among all of a pod's containers, and existing ephemeral
//! containers can be neither changed nor removed: the subresource only ever appends. GET returns
//! the whole pod, PUT takes a whole pod, PATCH patches one; only the ephemeral containers of the
//! result are kept.

use std::sync::Arc;

use axum::body::Body;
use http::{Method, Response};
use serde_json::{Value, json};

use super::{App, Req, json_response};
use crate::sandbox::patch::{self, PatchKind};
use crate::sandbox::resources::ResourceDef;
use crate::sandbox::status::ApiError;

/// Serves GET, PUT and PATCH on `pods/<name>/ephemeralcontainers`.
pub(crate) fn serve(
    app: &Arc<App>,
    req: &Req,
    def: &'static ResourceDef,
    ns: &str,
    name: &str,
) -> Result<Response<Body>, ApiError> {
    let store = &app.shared.store;
    let cur = || {
        store
            .get(def.storage, ns, name)
            .map(|v| (*v).clone())
            .ok_or_else(|| ApiError::not_found(def, name))
    };
    let wanted: Value = match req.method {
        Method::GET => return Ok(json_response(200, &cur()?)),
        Method::PUT => {
            let body = req.json()?;
            if body
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .is_some_and(|n| n != name)
            {
                return Err(ApiError::bad_request(
                    "the name of the object does not match the name on the URL",
                ));
            }
            body
        }
        Method::PATCH => {
            let ct = req
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let kind =
                PatchKind::from_content_type(ct).ok_or_else(|| ApiError::unsupported_media(ct))?;
            let body: Value = serde_json::from_slice(&req.body)
                .map_err(|e| ApiError::bad_request(format!("invalid patch: {e}")))?;
            let mut obj = cur()?;
            patch::apply(kind, &mut obj, &body)
                .map_err(|e| ApiError::invalid(def, name, "patch", &e))?;
            if kind == PatchKind::Apply {
                return Err(ApiError::unsupported_media(ct));
            }
            obj
        }
        _ => return Err(ApiError::method_not_allowed()),
    };
    let mut next = containers(&wanted);
    for c in &mut next {
        default_container(c);
    }
    let out = store.update_with(def, ns, name, |p| {
        let old = containers(p);
        check(p, &old, &next).map_err(|(field, why)| ApiError::invalid(def, name, &field, &why))?;
        p["spec"]["ephemeralContainers"] = json!(next);
        Ok(())
    })?;
    Ok(json_response(200, &out))
}

/// A pod's ephemeral containers (none when the field is absent).
pub(crate) fn containers(pod: &Value) -> Vec<Value> {
    pod.pointer("/spec/ephemeralContainers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The defaults kube-apiserver fills in on an ephemeral container.
fn default_container(c: &mut Value) {
    if !c.is_object() {
        return;
    }
    let image = c["image"].as_str().unwrap_or_default().to_string();
    let set = |c: &mut Value, k: &str, v: Value| {
        if c.get(k).is_none_or(Value::is_null) {
            c[k] = v;
        }
    };
    set(c, "terminationMessagePath", json!("/dev/termination-log"));
    set(c, "terminationMessagePolicy", json!("File"));
    let last = image.rsplit('/').next().unwrap_or_default();
    let latest = !last.contains(':') || last.ends_with(":latest");
    let policy = if latest && !image.contains('@') {
        "Always"
    } else {
        "IfNotPresent"
    };
    set(c, "imagePullPolicy", json!(policy));
}

/// Upstream's checks on an ephemeral container update: `Err((field path, reason))`.
fn check(pod: &Value, old: &[Value], new: &[Value]) -> Result<(), (String, String)> {
    for (i, o) in old.iter().enumerate() {
        let oname = o["name"].as_str().unwrap_or_default();
        match new.iter().position(|n| n["name"] == o["name"]) {
            None => {
                return Err((
                    "spec.ephemeralContainers".into(),
                    format!(
                        "Forbidden: existing ephemeral containers \"{oname}\" may not be removed"
                    ),
                ));
            }
            Some(j) if new[j] != *o => {
                return Err((
                    format!("spec.ephemeralContainers[{i}]"),
                    format!(
                        "Forbidden: existing ephemeral containers \"{oname}\" may not be changed"
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    let mut names: Vec<String> = ["/spec/containers", "/spec/initContainers"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c["name"].as_str().map(String::from))
        .collect();
    for (i, c) in new.iter().enumerate() {
        let path = format!("spec.ephemeralContainers[{i}]");
        let Some(n) = c["name"].as_str().filter(|n| !n.is_empty()) else {
            return Err((format!("{path}.name"), "Required value".into()));
        };
        if c["image"].as_str().is_none_or(str::is_empty) {
            return Err((format!("{path}.image"), "Required value".into()));
        }
        if names.iter().any(|m| m == n) {
            return Err((format!("{path}.name"), format!("Duplicate value: \"{n}\"")));
        }
        names.push(n.to_string());
    }
    Ok(())
}

/// A plain pod update must leave `spec.ephemeralContainers` as it was.
pub(crate) fn guard_pod_update(
    def: &ResourceDef,
    name: &str,
    cur: &Value,
    new: &Value,
) -> Result<(), ApiError> {
    if def.storage != "pods" || containers(cur) == containers(new) {
        return Ok(());
    }
    Err(ApiError::invalid(
        def,
        name,
        "spec",
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations), `spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative); ephemeral containers are added through the ephemeralcontainers subresource",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({"spec": {"containers": [{"name": "web", "image": "nginx"}]}})
    }

    fn ec(name: &str) -> Value {
        let mut c = json!({"name": name, "image": "nicolaka/netshoot:v0.13", "command": ["sh"]});
        default_container(&mut c);
        c
    }

    #[test]
    fn ephemeral_containers_only_append_with_unique_names() {
        let p = pod();
        assert!(check(&p, &[], &[ec("a")]).is_ok());
        assert!(check(&p, &[ec("a")], &[ec("a"), ec("b")]).is_ok());
        let removed = check(&p, &[ec("a")], &[ec("b")]).unwrap_err();
        assert!(removed.1.contains("may not be removed"), "{removed:?}");
        let mut changed = ec("a");
        changed["image"] = json!("busybox");
        let err = check(&p, &[ec("a")], &[changed]).unwrap_err();
        assert!(err.1.contains("may not be changed"), "{err:?}");
        let dup = check(&p, &[], &[ec("web")]).unwrap_err();
        assert_eq!(dup.0, "spec.ephemeralContainers[0].name");
        assert!(check(&p, &[], &[ec("x"), ec("x")]).is_err());
        assert!(check(&p, &[], &[json!({"name": "x"})]).is_err());
    }

    #[test]
    fn defaults_follow_the_image_tag() {
        assert_eq!(ec("a")["imagePullPolicy"], json!("IfNotPresent"));
        let mut c = json!({"name": "a", "image": "busybox"});
        default_container(&mut c);
        assert_eq!(c["imagePullPolicy"], json!("Always"));
    }
}

//! Verbs on resources: list, get, create, update, patch, delete, deletecollection, and the
//! `status`, `scale`, `eviction`, `binding`, `log` and `proxy` subresources.

use std::sync::Arc;

use axum::body::Body;
use http::{Method, Response};
use serde_json::{Value, json};

use super::convert::{to_external, to_internal};
use super::{App, Req, Target, json_response, table, text_response};
use crate::sandbox::ops::{self, DeleteOpts, Deleted};
use crate::sandbox::patch::{self, PatchKind};
use crate::sandbox::resources::{ResourceDef, well_known};
use crate::sandbox::selector::{FieldSelector, LabelSelector};
use crate::sandbox::status::ApiError;
use crate::sandbox::store::Continue;
use crate::sandbox::store::Txn;

/// Routes a resource request to its verb.
pub(crate) async fn dispatch(
    app: &Arc<App>,
    req: &Req,
    t: Target<'_>,
) -> Result<Response<Body>, ApiError> {
    let def = t.def;
    if def.read_only && req.method != Method::GET {
        return Err(ApiError::method_not_allowed());
    }
    match (t.name, t.sub) {
        (None, _) => match req.method {
            Method::GET if req.flag("watch") => {
                let (label, field) = selectors(req, def)?;
                super::watch::watch(app, req, def, t.ns, label, field)
            }
            Method::GET => list(app, req, def, t.ns),
            Method::POST => create(
                app,
                req,
                def,
                t.ns.ok_or_else(ApiError::method_not_allowed)?,
            ),
            Method::DELETE => delete_collection(app, req, def, t.ns),
            _ => Err(ApiError::method_not_allowed()),
        },
        (Some(name), None) => {
            let ns = t.ns.unwrap_or_default();
            match req.method {
                Method::GET => get(app, req, def, ns, name),
                Method::PUT => update(app, req, def, ns, name, false),
                Method::PATCH => patch_object(app, req, def, ns, name, false),
                Method::DELETE => delete(app, req, def, ns, name),
                _ => Err(ApiError::method_not_allowed()),
            }
        }
        (Some(name), Some(sub)) => {
            let ns = t.ns.unwrap_or_default();
            match (sub, &req.method) {
                ("status", &Method::GET) => get(app, req, def, ns, name),
                ("status", &Method::PUT) => update(app, req, def, ns, name, true),
                ("status", &Method::PATCH) => patch_object(app, req, def, ns, name, true),
                ("scale", _) => scale(app, req, def, ns, name),
                ("eviction", &Method::POST) => {
                    let body = req.json()?;
                    let out = app
                        .shared
                        .store
                        .transaction(|txn| ops::evict(txn, ns, name, &body))?;
                    Ok(json_response(201, &out))
                }
                ("token", &Method::POST) => Ok(json_response(
                    201,
                    &super::token::request(app, ns, name, req.json()?)?,
                )),
                ("binding", &Method::POST) => bind(app, req, ns, name),
                ("log", &Method::GET) => log(app, ns, name),
                ("ephemeralcontainers", _) => super::ephemeral::serve(app, req, def, ns, name),
                ("proxy", _) if def.plural == "services" => {
                    super::proxy::service_proxy(app, req, ns, name, t.tail).await
                }
                _ => Err(ApiError::method_not_allowed()),
            }
        }
    }
}

fn selectors(
    req: &Req,
    def: &'static ResourceDef,
) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let label = LabelSelector::parse(req.q("labelSelector").unwrap_or_default())
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let field = FieldSelector::parse(req.q("fieldSelector").unwrap_or_default())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    super::field_labels::check(def, &field)?;
    Ok((label, field))
}

/// A `continue` token: opaque to clients, as kube-apiserver's are.
fn encode_continue(from: &Continue) -> String {
    let (ns, name) = &from.after;
    format!("{}/{ns}/{name}", from.snapshot)
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_continue(token: &str) -> Result<Continue, ApiError> {
    let bad = || ApiError::bad_request("continue key is not valid");
    let bytes: Result<Vec<u8>, _> = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .ok_or(())
                .and_then(|h| u8::from_str_radix(h, 16).map_err(|_| ()))
        })
        .collect();
    let text = String::from_utf8(bytes.map_err(|_| bad())?).map_err(|_| bad())?;
    let mut parts = text.splitn(3, '/');
    let (Some(snapshot), Some(ns), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    Ok(Continue {
        snapshot: snapshot.parse().map_err(|_| bad())?,
        after: (ns.to_string(), name.to_string()),
    })
}

fn list(
    app: &Arc<App>,
    req: &Req,
    def: &'static ResourceDef,
    ns: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let (label, field) = selectors(req, def)?;
    let limit = req
        .q("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let after = req.q("continue").map(decode_continue).transpose()?;
    let ns_filter = ns.filter(|n| !n.is_empty());
    let (items, rv, next) = app.shared.store.page(
        def.storage,
        ns_filter,
        after.as_ref(),
        |v| {
            if def.group == "events.k8s.io" {
                let e = to_external(def, v.clone());
                label.matches_object(&e) && field.matches(&e)
            } else {
                label.matches_object(v) && field.matches(v)
            }
        },
        limit,
    )?;
    let items: Vec<Value> = items
        .into_iter()
        .map(|v| to_external(def, std::sync::Arc::unwrap_or_clone(v)))
        .collect();
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(next) = &next {
        meta["continue"] = json!(encode_continue(next));
    }
    if req.wants_table() {
        return Ok(json_response(
            200,
            &table::table(
                def,
                &items,
                req.q("includeObject").unwrap_or("Metadata"),
                meta,
            ),
        ));
    }
    Ok(json_response(
        200,
        &json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": meta, "items": items}),
    ))
}

fn fetch(
    app: &Arc<App>,
    def: &'static ResourceDef,
    ns: &str,
    name: &str,
) -> Result<Value, ApiError> {
    app.shared
        .store
        .get(def.storage, ns, name)
        .map(|v| to_external(def, std::sync::Arc::unwrap_or_clone(v)))
        .ok_or_else(|| ApiError::not_found(def, name))
}

fn get(
    app: &Arc<App>,
    req: &Req,
    def: &'static ResourceDef,
    ns: &str,
    name: &str,
) -> Result<Response<Body>, ApiError> {
    let obj = fetch(app, def, ns, name)?;
    if req.wants_table() {
        let meta = json!({"resourceVersion": obj.pointer("/metadata/resourceVersion")});
        return Ok(json_response(
            200,
            &table::table(
                def,
                &[obj],
                req.q("includeObject").unwrap_or("Metadata"),
                meta,
            ),
        ));
    }
    Ok(json_response(200, &obj))
}

fn check_namespace(body: &Value, ns: &str) -> Result<(), ApiError> {
    match body.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(n) if !n.is_empty() && !ns.is_empty() && n != ns => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => Ok(()),
    }
}

fn create(
    app: &Arc<App>,
    req: &Req,
    def: &'static ResourceDef,
    ns: &str,
) -> Result<Response<Body>, ApiError> {
    let body = req.json()?;
    if !body.is_object() {
        return Err(ApiError::bad_request("the request body must be an object"));
    }
    check_namespace(&body, ns)?;
    let mut obj = to_internal(def, body);
    ops::admit_create(def, &mut obj, app.shared.timing.toleration.as_secs() as i64);
    if req.q("dryRun").is_some() {
        return Ok(json_response(201, &to_external(def, obj)));
    }
    let created = app.shared.store.create(def, ns, obj)?;
    Ok(json_response(201, &to_external(def, created)))
}

/// Completes the deletion of an object whose last finalizer was just removed.
fn finish_if_finalized(txn: &mut Txn<'_>, def: &'static ResourceDef, obj: &Value) {
    if def.storage == "pods" || def.storage == "namespaces" {
        return;
    }
    let deleting = obj.pointer("/metadata/deletionTimestamp").is_some();
    let finalizers = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    if deleting && !finalizers {
        let (ns, name) = crate::sandbox::store::ns_name(obj);
        let _ = txn.remove(def, &ns, &name, None);
    }
}

/// Replaces `cur` with `new` as an update of the main resource or of `status`.
fn merge_update(
    def: &ResourceDef,
    name: &str,
    cur: &mut Value,
    mut new: Value,
    status_only: bool,
) -> Result<(), ApiError> {
    if status_only {
        cur["status"] = new.get("status").cloned().unwrap_or(Value::Null);
        return Ok(());
    }
    super::ephemeral::guard_pod_update(def, name, cur, &new)?;
    if def.has_status() {
        new["status"] = cur.get("status").cloned().unwrap_or(Value::Null);
        if new["status"].is_null()
            && let Some(m) = new.as_object_mut()
        {
            m.remove("status");
        }
    }
    if def.storage == "nodes" {
        ops::admit_node(&mut new);
    }
    ops::admit_write(def, &mut new);
    *cur = new;
    Ok(())
}

fn rv_matches(cur: &Value, wanted: Option<&str>) -> bool {
    wanted.is_none_or(|w| {
        w.is_empty()
            || cur
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                == Some(w)
    })
}

fn update(
    app: &Arc<App>,
    req: &Req,
    def: &'static ResourceDef,
    ns: &str,
    name: &str,
    status_only: bool,
) -> Result<Response<Body>, ApiError> {
    let body = req.json()?;
    check_namespace(&body, ns)?;
    if body
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .is_some_and(|n| n != name)
    {
        return Err(ApiError::bad_request(
            "the name of the object does not match the name on the URL",
        ));
    }
    let wanted = body
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .map(String::from);
    let new = to_internal(def, body);
    let change = |cur: &mut Value| {
        if !rv_matches(cur, wanted.as_deref()) {
            return Err(ApiError::conflict(def, name));
        }
        merge_update(def, name, cur, new, status_only)
    };
    if req.q("dryRun").is_some() {
        return dry_run(app, def, ns, name, change);
    }
    let out = app.shared.store.transaction(|txn| {
        let updated = txn.update_with(def, ns, name, change)?;
        finish_if_finalized(txn, def, &updated);
        Ok::<_, ApiError>(updated)
    })?;
    Ok(json_response(200, &to_external(def, out)))
}

fn patch_object(
    app: &Arc<App>,
    req: &Req,
    def: &'static ResourceDef,
    ns: &str,
    name: &str,
    status_only: bool,
) -> Result<Response<Body>, ApiError> {
    let ct = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let kind = PatchKind::from_content_type(&ct).ok_or_else(|| ApiError::unsupported_media(&ct))?;
    let body: Value = if kind == PatchKind::Apply {
        serde_yaml::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("invalid apply body: {e}")))?
    } else {
        serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("invalid patch: {e}")))?
    };
    let toleration = app.shared.timing.toleration.as_secs() as i64;
    let change = |cur: &mut Value| {
        let mut ext = to_external(def, cur.clone());
        patch::apply(kind, &mut ext, &body)
            .map_err(|e| ApiError::invalid(def, name, "patch", &e))?;
        let wanted = ext
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str);
        if kind != PatchKind::Apply && !rv_matches(cur, wanted) {
            return Err(ApiError::conflict(def, name));
        }
        let new = to_internal(def, ext);
        merge_update(def, name, cur, new, status_only)
    };
    // `kubectl diff` and `--dry-run=server` patch with `dryRun=All`: nothing may be written.
    if req.q("dryRun").is_some() && app.shared.store.get(def.storage, ns, name).is_some() {
        return dry_run(app, def, ns, name, change);
    }
    let out = app.shared.store.transaction(|txn| {
        if kind == PatchKind::Apply && txn.get(def.storage, ns, name).is_none() {
            // Server-side apply of a missing object creates it.
            let mut obj = to_internal(def, body.clone());
            obj["metadata"]["name"] = json!(name);
            ops::admit_create(def, &mut obj, toleration);
            return txn.create(def, ns, obj);
        }
        let updated = txn.update_with(def, ns, name, change)?;
        finish_if_finalized(txn, def, &updated);
        Ok(updated)
    })?;
    Ok(json_response(200, &to_external(def, out)))
}

/// An update or patch with `dryRun`: the object as it would be stored, without storing it.
fn dry_run(
    app: &Arc<App>,
    def: &'static ResourceDef,
    ns: &str,
    name: &str,
    change: impl FnOnce(&mut Value) -> Result<(), ApiError>,
) -> Result<Response<Body>, ApiError> {
    let cur = app
        .shared
        .store
        .get(def.storage, ns, name)
        .ok_or_else(|| ApiError::not_found(def, name))?;
    let mut new = (*cur).clone();
    change(&mut new)?;
    Ok(json_response(200, &to_external(def, new)))
}

fn delete_opts(req: &Req) -> Result<DeleteOpts, ApiError> {
    let opts = DeleteOpts {
        grace: req.q("gracePeriodSeconds").and_then(|g| g.parse().ok()),
        propagation: req.q("propagationPolicy").map(String::from),
        ..DeleteOpts::default()
    };
    Ok(opts.merge_body(&req.json()?))
}

fn delete(
    app: &Arc<App>,
    req: &Req,
    def: &'static ResourceDef,
    ns: &str,
    name: &str,
) -> Result<Response<Body>, ApiError> {
    let opts = delete_opts(req)?;
    if req.q("dryRun").is_some() {
        return dry_run(app, def, ns, name, |_| Ok(()));
    }
    let out = app
        .shared
        .store
        .transaction(|txn| ops::delete(txn, def, ns, name, &opts))?;
    let (code, obj) = match out {
        Deleted::Gone(v) => (200, v),
        Deleted::Pending(v) => (if def.storage == "pods" { 200 } else { 202 }, v),
    };
    Ok(json_response(code, &to_external(def, obj)))
}

fn delete_collection(
    app: &Arc<App>,
    req: &Req,
    def: &'static ResourceDef,
    ns: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let (label, field) = selectors(req, def)?;
    let opts = delete_opts(req)?;
    let ns_filter = ns.filter(|n| !n.is_empty());
    let dry_run = req.q("dryRun").is_some();
    let items = app.shared.store.transaction(|txn| {
        let victims: Vec<_> = txn
            .list(def.storage, ns_filter)
            .into_iter()
            .filter(|v| label.matches_object(v) && field.matches(v))
            .collect();
        if dry_run {
            return victims
                .into_iter()
                .map(|v| to_external(def, (*v).clone()))
                .collect();
        }
        let mut out = Vec::new();
        for v in victims {
            let (vns, vname) = crate::sandbox::store::ns_name(&v);
            match ops::delete(txn, def, &vns, &vname, &opts) {
                Ok(Deleted::Gone(o) | Deleted::Pending(o)) => out.push(to_external(def, o)),
                Err(_) => continue,
            }
        }
        out
    });
    let rv = app.shared.store.current_rv();
    Ok(json_response(
        200,
        &json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
    ))
}

fn scale_of(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": obj.pointer("/metadata/name"), "namespace": obj.pointer("/metadata/namespace"),
            "uid": obj.pointer("/metadata/uid"), "resourceVersion": obj.pointer("/metadata/resourceVersion"),
            "creationTimestamp": obj.pointer("/metadata/creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {"replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)), "selector": selector},
    })
}

fn scale(
    app: &Arc<App>,
    req: &Req,
    def: &'static ResourceDef,
    ns: &str,
    name: &str,
) -> Result<Response<Body>, ApiError> {
    match req.method {
        Method::GET => Ok(json_response(200, &scale_of(&fetch(app, def, ns, name)?))),
        Method::PUT | Method::PATCH => {
            let body = req.json()?;
            let ct = req
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let out = app.shared.store.update_with(def, ns, name, |cur| {
                let mut sc = scale_of(cur);
                if req.method == Method::PUT {
                    sc = body.clone();
                } else {
                    let kind = PatchKind::from_content_type(&ct)
                        .ok_or_else(|| ApiError::unsupported_media(&ct))?;
                    patch::apply(kind, &mut sc, &body)
                        .map_err(|e| ApiError::invalid(def, name, "patch", &e))?;
                }
                let replicas = sc
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| {
                        ApiError::invalid(def, name, "spec.replicas", "Required value")
                    })?;
                if replicas < 0 {
                    return Err(ApiError::invalid(
                        def,
                        name,
                        "spec.replicas",
                        "must be greater than or equal to 0",
                    ));
                }
                cur["spec"]["replicas"] = json!(replicas);
                Ok(())
            })?;
            Ok(json_response(200, &scale_of(&out)))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn bind(app: &Arc<App>, req: &Req, ns: &str, name: &str) -> Result<Response<Body>, ApiError> {
    let body = req.json()?;
    let node = body
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let pods = well_known::pods();
    app.shared.store.update_with(pods, ns, name, |p| {
        if p.pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty())
        {
            return Err(ApiError::conflict(pods, name));
        }
        p["spec"]["nodeName"] = json!(node);
        Ok(())
    })?;
    Ok(json_response(
        201,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

fn log(app: &Arc<App>, ns: &str, name: &str) -> Result<Response<Body>, ApiError> {
    let pod = fetch(app, well_known::pods(), ns, name)?;
    let port = pod
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(crate::sandbox::controllers::PORT_ANNOTATION))
        .and_then(Value::as_str)
        .unwrap_or("none");
    let started = pod
        .pointer("/status/startTime")
        .and_then(Value::as_str)
        .unwrap_or("never");
    Ok(text_response(
        200,
        format!("{started} sandbox backend {ns}/{name} listening on 127.0.0.1:{port}\n"),
    ))
}

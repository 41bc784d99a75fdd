//! Small JSON helpers the controllers share.

use serde_json::{Value, json};

use crate::sandbox::store::now_rfc3339;

/// A string field by JSON pointer, or "".
pub(crate) fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

/// An integer field by JSON pointer, or `default`.
pub(crate) fn i(v: &Value, ptr: &str, default: i64) -> i64 {
    v.pointer(ptr).and_then(Value::as_i64).unwrap_or(default)
}

/// Whether the object is being deleted.
pub(crate) fn terminating(v: &Value) -> bool {
    v.pointer("/metadata/deletionTimestamp").is_some()
}

/// The uid of the controlling owner, if any.
pub(crate) fn controller_uid(v: &Value) -> Option<&str> {
    v.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r["controller"] == json!(true))
        .and_then(|r| r["uid"].as_str())
}

/// The name of the controlling owner of a given kind, if any.
pub(crate) fn controller_name<'a>(v: &'a Value, kind: &str) -> Option<&'a str> {
    v.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r["controller"] == json!(true) && r["kind"] == json!(kind))
        .and_then(|r| r["name"].as_str())
}

/// An ownerReference naming `owner` as controller.
pub(crate) fn owner_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"], "kind": owner["kind"],
        "name": owner.pointer("/metadata/name"), "uid": owner.pointer("/metadata/uid"),
        "controller": true, "blockOwnerDeletion": true,
    })
}

/// The status of a condition type, if present.
pub(crate) fn condition<'a>(v: &'a Value, ty: &str) -> Option<&'a str> {
    v.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c["type"] == json!(ty))
        .and_then(|c| c["status"].as_str())
}

/// Sets a condition, moving `lastTransitionTime` only when the status changes.
pub(crate) fn set_condition(v: &mut Value, ty: &str, status: &str, reason: &str, message: &str) {
    if !v["status"].is_object() {
        v["status"] = json!({});
    }
    if !v["status"]["conditions"].is_array() {
        v["status"]["conditions"] = json!([]);
    }
    let Some(conds) = v["status"]["conditions"].as_array_mut() else {
        return;
    };
    let now = now_rfc3339();
    match conds.iter_mut().find(|c| c["type"] == json!(ty)) {
        Some(c) => {
            if c["status"] != json!(status) {
                c["lastTransitionTime"] = json!(now);
                c["status"] = json!(status);
            }
            c["reason"] = json!(reason);
            c["message"] = json!(message);
        }
        None => conds.push(json!({
            "type": ty, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": now,
        })),
    }
}

/// Whether a pod is Ready.
pub(crate) fn pod_ready(pod: &Value) -> bool {
    condition(pod, "Ready") == Some("True")
}

/// Whether `tolerations` tolerate `taint`.
pub(crate) fn tolerates(tolerations: Option<&Value>, taint: &Value) -> Option<Option<i64>> {
    let list = tolerations.and_then(Value::as_array)?;
    list.iter()
        .find(|t| {
            let key_ok = match t["operator"].as_str() {
                Some("Exists") => t
                    .get("key")
                    .is_none_or(|k| k.is_null() || *k == taint["key"] || k == ""),
                _ => {
                    t["key"] == taint["key"]
                        && t.get("value").unwrap_or(&json!(""))
                            == taint.get("value").unwrap_or(&json!(""))
                }
            };
            let effect_ok = t
                .get("effect")
                .is_none_or(|e| e.is_null() || e == "" || *e == taint["effect"]);
            key_ok && effect_ok
        })
        .map(|t| t.get("tolerationSeconds").and_then(Value::as_i64))
}

/// Seconds since an RFC 3339 timestamp (0 when unparsable).
pub(crate) fn age_secs(ts: &str) -> f64 {
    chrono::DateTime::parse_from_rfc3339(ts)
        .map(|t| {
            (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_milliseconds() as f64 / 1000.0
        })
        .unwrap_or(0.0)
}

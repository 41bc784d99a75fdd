//! Versions of one stored object: `events.k8s.io/v1` Events are a view of core v1 Events, as in
//! kube-apiserver where both share one storage.

use serde_json::{Value, json};

use crate::sandbox::resources::ResourceDef;

fn take(v: &Value, key: &str) -> Value {
    v.get(key).cloned().unwrap_or(Value::Null)
}

fn strip_nulls(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.retain(|_, x| !x.is_null());
    }
    v
}

/// Stored (core) form → the form `def` serves.
pub(crate) fn to_external(def: &ResourceDef, obj: Value) -> Value {
    if def.group != "events.k8s.io" {
        return obj;
    }
    let source = take(&obj, "source");
    strip_nulls(json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": take(&obj, "metadata"),
        "eventTime": take(&obj, "eventTime"), "series": take(&obj, "series"),
        "reportingController": obj.get("reportingComponent").cloned().filter(|v| !v.is_null()).unwrap_or_else(|| take(&source, "component")),
        "reportingInstance": take(&obj, "reportingInstance"), "action": take(&obj, "action"),
        "reason": take(&obj, "reason"), "regarding": take(&obj, "involvedObject"),
        "related": take(&obj, "related"), "note": take(&obj, "message"), "type": take(&obj, "type"),
        "deprecatedSource": source, "deprecatedFirstTimestamp": take(&obj, "firstTimestamp"),
        "deprecatedLastTimestamp": take(&obj, "lastTimestamp"), "deprecatedCount": take(&obj, "count"),
    }))
}

/// The form `def` accepts → stored (core) form.
pub(crate) fn to_internal(def: &ResourceDef, obj: Value) -> Value {
    if def.group != "events.k8s.io" {
        return obj;
    }
    let source = obj
        .get("deprecatedSource")
        .cloned()
        .filter(|v| !v.is_null())
        .unwrap_or_else(|| json!({"component": take(&obj, "reportingController")}));
    strip_nulls(json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": take(&obj, "metadata"),
        "involvedObject": take(&obj, "regarding"), "related": take(&obj, "related"),
        "reason": take(&obj, "reason"), "message": take(&obj, "note"), "type": take(&obj, "type"),
        "source": source, "firstTimestamp": take(&obj, "deprecatedFirstTimestamp"),
        "lastTimestamp": take(&obj, "deprecatedLastTimestamp"), "count": take(&obj, "deprecatedCount"),
        "eventTime": take(&obj, "eventTime"), "series": take(&obj, "series"), "action": take(&obj, "action"),
        "reportingComponent": take(&obj, "reportingController"), "reportingInstance": take(&obj, "reportingInstance"),
    }))
}

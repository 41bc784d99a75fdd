//! The three patch formats clients send: JSON merge patch (RFC 7386), strategic merge patch
//! (the subset built-in types need) and JSON patch (RFC 6902).
//!
//! Strategic merge differs from merge patch only for lists whose schema names a merge key
//! (`containers` by `name`, `conditions` by `type`, ...): those merge element by element.
//! Lists without one (`taints`, `tolerations`, `finalizers` aside) are replaced, as Kubernetes does.

use serde_json::{Map, Value};

/// The patch formats the API server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/json-patch+json`.
    Json,
    /// `application/apply-patch+yaml` (server-side apply, modelled as an upserting merge).
    Apply,
}

impl PatchKind {
    /// Maps a Content-Type to a patch kind.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or_default().trim();
        match base {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/json-patch+json" => Some(Self::Json),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Applies `patch` to `target` in place.
pub(crate) fn apply(kind: PatchKind, target: &mut Value, patch: &Value) -> Result<(), String> {
    match kind {
        PatchKind::Merge | PatchKind::Apply => {
            merge(target, patch);
            Ok(())
        }
        PatchKind::Strategic => {
            strategic(target, patch, "");
            Ok(())
        }
        PatchKind::Json => json_patch(target, patch),
    }
}

/// RFC 7386: objects merge recursively, `null` deletes, anything else replaces.
pub(crate) fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Merge key of a list field under strategic merge, by field name.
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "volumeMounts"
        | "imagePullSecrets" => "name",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "addresses" => "type",
        "ports" => "containerPort",
        _ => return None,
    })
}

fn strategic(target: &mut Value, patch: &Value, _field: &str) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut clean = p.clone();
        clean.remove("$patch");
        *target = Value::Object(clean);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        if k.starts_with("$setElementOrder/") || k.starts_with("$deleteFromPrimitiveList/") {
            if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/")
                && let (Some(Value::Array(cur)), Some(del)) = (t.get_mut(field), v.as_array())
            {
                cur.retain(|x| !del.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match (t.get_mut(k), v, merge_key(k)) {
            (Some(Value::Array(cur)), Value::Array(items), Some(key)) => {
                for item in items {
                    let id = item.get(key).cloned();
                    let pos = id
                        .as_ref()
                        .and_then(|id| cur.iter().position(|c| c.get(key) == Some(id)));
                    let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                    match (pos, delete) {
                        (Some(i), true) => {
                            cur.remove(i);
                        }
                        (Some(i), false) => strategic(&mut cur[i], item, k),
                        (None, false) => cur.push(item.clone()),
                        (None, true) => {}
                    }
                }
            }
            (Some(Value::Array(cur)), Value::Array(items), None) if k == "finalizers" => {
                for item in items {
                    if !cur.contains(item) {
                        cur.push(item.clone());
                    }
                }
            }
            (Some(existing), Value::Object(_), _) => strategic(existing, v, k),
            _ => {
                let mut fresh = Value::Null;
                strategic(&mut fresh, v, k);
                t.insert(k.clone(), fresh);
            }
        }
    }
}

fn unescape(seg: &str) -> String {
    seg.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    let idx = path
        .rfind('/')
        .ok_or_else(|| format!("invalid JSON pointer {path:?}"))?;
    Ok((path[..idx].to_string(), unescape(&path[idx + 1..])))
}

fn add_at(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    let target = doc
        .pointer_mut(&parent)
        .ok_or_else(|| format!("path {parent:?} does not exist"))?;
    match target {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let i: usize = last
                .parse()
                .map_err(|_| format!("invalid array index {last:?}"))?;
            if i > a.len() {
                return Err(format!("array index {i} out of bounds"));
            }
            a.insert(i, value);
            Ok(())
        }
        _ => Err(format!("cannot add below a scalar at {parent:?}")),
    }
}

fn remove_at(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    let target = doc
        .pointer_mut(&parent)
        .ok_or_else(|| format!("path {parent:?} does not exist"))?;
    match target {
        Value::Object(m) => m
            .remove(&last)
            .ok_or_else(|| format!("path {path:?} does not exist")),
        Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| format!("invalid array index {last:?}"))?;
            if i >= a.len() {
                return Err(format!("array index {i} out of bounds"));
            }
            Ok(a.remove(i))
        }
        _ => Err(format!("path {path:?} does not exist")),
    }
}

/// RFC 6902 operations: add, remove, replace, move, copy, test.
fn json_patch(doc: &mut Value, patch: &Value) -> Result<(), String> {
    let ops = patch
        .as_array()
        .ok_or("a JSON patch must be an array of operations")?;
    for op in ops {
        let path = op["path"].as_str().ok_or("operation without a path")?;
        match op["op"].as_str().unwrap_or_default() {
            "add" => add_at(doc, path, op["value"].clone())?,
            "remove" => {
                remove_at(doc, path)?;
            }
            "replace" => {
                let slot = doc
                    .pointer_mut(path)
                    .ok_or_else(|| format!("path {path:?} does not exist"))?;
                *slot = op["value"].clone();
            }
            "move" => {
                let from = op["from"].as_str().ok_or("move without from")?;
                let v = remove_at(doc, from)?;
                add_at(doc, path, v)?;
            }
            "copy" => {
                let from = op["from"].as_str().ok_or("copy without from")?;
                let v = doc
                    .pointer(from)
                    .cloned()
                    .ok_or_else(|| format!("path {from:?} does not exist"))?;
                add_at(doc, path, v)?;
            }
            "test" => {
                if doc.pointer(path) != Some(&op["value"]) {
                    return Err(format!("test operation failed at {path:?}"));
                }
            }
            other => return Err(format!("unknown JSON patch operation {other:?}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_deletes_with_null_and_replaces_lists() {
        let mut v = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"taints": [{"key": "x"}]}});
        merge(
            &mut v,
            &json!({"metadata": {"labels": {"a": null, "c": "3"}}, "spec": {"taints": []}}),
        );
        assert_eq!(
            v,
            json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"taints": []}})
        );
    }

    #[test]
    fn strategic_merge_merges_keyed_lists_and_replaces_taints() {
        let mut v = json!({"spec": {"unschedulable": false, "taints": [{"key": "a", "effect": "NoSchedule"}]},
                           "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "X", "status": "False"}]}});
        let p = json!({"spec": {"unschedulable": true, "taints": [{"key": "b", "effect": "NoExecute"}]},
                       "status": {"conditions": [{"type": "X", "status": "True"}]}});
        apply(PatchKind::Strategic, &mut v, &p).unwrap();
        assert_eq!(v["spec"]["unschedulable"], json!(true));
        assert_eq!(
            v["spec"]["taints"],
            json!([{"key": "b", "effect": "NoExecute"}])
        );
        assert_eq!(v["status"]["conditions"][0]["status"], json!("True"));
        assert_eq!(
            v["status"]["conditions"][1],
            json!({"type": "X", "status": "True"})
        );
    }

    #[test]
    fn json_patch_runs_every_operation() {
        let mut v = json!({"data": {"a": "1"}, "list": [1, 2]});
        let p = json!([
            {"op": "test", "path": "/data/a", "value": "1"},
            {"op": "add", "path": "/data/b", "value": "2"},
            {"op": "replace", "path": "/data/a", "value": "9"},
            {"op": "add", "path": "/list/-", "value": 3},
            {"op": "remove", "path": "/list/0"},
            {"op": "copy", "from": "/data/b", "path": "/data/c"},
            {"op": "move", "from": "/data/c", "path": "/moved"}
        ]);
        apply(PatchKind::Json, &mut v, &p).unwrap();
        assert_eq!(
            v,
            json!({"data": {"a": "9", "b": "2"}, "list": [2, 3], "moved": "2"})
        );
        assert!(
            apply(
                PatchKind::Json,
                &mut v,
                &json!([{"op": "test", "path": "/moved", "value": "x"}])
            )
            .is_err()
        );
    }
}

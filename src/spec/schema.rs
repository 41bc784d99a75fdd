//! The experiment's JSON Schema, derived from the wire structs so it cannot drift from the
//! parser; committed as `experiments/schema.json` for editors, and used here for did-you-mean.

use std::sync::OnceLock;

use serde_json::Value;

use super::experiment::ExperimentSpec;

/// The JSON Schema of an experiment file.
pub fn experiment_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| schemars::schema_for!(ExperimentSpec).to_value())
}

/// The schema as committed: pretty JSON with a trailing newline.
pub fn experiment_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(experiment_schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// The keys allowed in the mapping at `path` (e.g. `spec.faults[0].podKill`), for suggestions.
pub fn allowed_keys(path: &str) -> Vec<String> {
    let root = experiment_schema();
    let mut node = root;
    for segment in segments(path) {
        let next = match segment {
            Segment::Key(key) => object_of(root, node).and_then(|n| n.get("properties")?.get(key)),
            Segment::Index => array_of(root, node).and_then(|n| n.get("items")),
        };
        match next {
            Some(next) => node = next,
            None => return Vec::new(),
        }
    }
    object_of(root, node)
        .and_then(|n| n.get("properties")?.as_object())
        .map(|props| props.keys().cloned().collect())
        .unwrap_or_default()
}

enum Segment<'a> {
    Key(&'a str),
    Index,
}

fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        out.extend(rest.matches(']').map(|_| Segment::Index));
    }
    out
}

/// Follows `$ref` and picks the branch of an `anyOf`/`oneOf` (an `Option<T>`) that has `field`.
fn branch_with<'a>(root: &'a Value, node: &'a Value, field: &str) -> Option<&'a Value> {
    let node = resolve(root, node);
    if node.get(field).is_some() {
        return Some(node);
    }
    ["anyOf", "oneOf", "allOf"]
        .iter()
        .filter_map(|k| node.get(*k)?.as_array())
        .flatten()
        .find_map(|branch| branch_with(root, branch, field))
}

fn object_of<'a>(root: &'a Value, node: &'a Value) -> Option<&'a Value> {
    branch_with(root, node, "properties")
}

fn array_of<'a>(root: &'a Value, node: &'a Value) -> Option<&'a Value> {
    branch_with(root, node, "items")
}

fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .strip_prefix("#/")
            .map(|pointer| format!("/{pointer}"))
            .and_then(|pointer| root.pointer(&pointer))
            .map_or(node, |target| resolve(root, target)),
        None => node,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_through_refs_options_and_arrays() {
        assert!(allowed_keys("").contains(&"apiVersion".to_owned()));
        assert!(allowed_keys("spec").contains(&"steadyState".to_owned()));
        let fault = allowed_keys("spec.faults[3]");
        assert!(fault.contains(&"podKill".to_owned()) && fault.contains(&"for".to_owned()));
        assert!(allowed_keys("spec.faults[0].podKill.target").contains(&"namespaces".to_owned()));
        assert!(
            allowed_keys("spec.steadyState.probes[0].http.expect")
                .contains(&"bodyRegex".to_owned())
        );
    }

    #[test]
    fn structs_forbid_unknown_keys_in_the_schema() {
        let text = experiment_schema_text();
        assert!(text.contains("\"additionalProperties\": false"));
        assert!(text.ends_with('\n'));
    }
}

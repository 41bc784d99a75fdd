//! Label and field selectors with the grammar kube-apiserver accepts.
//!
//! Labels: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, comma = AND.
//! Fields: `path=v`, `path==v`, `path!=v` over dotted paths such as `spec.nodeName`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::spec::selector::{self, Requirement};

/// A label selector: the grammar and matching of experiment files (`spec::selector`), over the
/// JSON objects the sandbox stores, so the sandbox accepts and refuses what steadfast checks.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LabelSelector(selector::LabelSelector);

impl LabelSelector {
    /// Parses the query-string form.
    pub fn parse(s: &str) -> Result<Self, String> {
        selector::LabelSelector::parse(s)
            .map(Self)
            .map_err(|e| e.to_string())
    }

    /// Builds the selector a `matchLabels`/`matchExpressions` object describes.
    pub fn from_object(sel: &Value) -> Self {
        let mut requirements = Vec::new();
        if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in m {
                requirements.push(Requirement::Equals(
                    k.clone(),
                    v.as_str().unwrap_or_default().to_string(),
                ));
            }
        }
        if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e["key"].as_str().unwrap_or_default().to_string();
                let values: Vec<String> = e["values"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                requirements.push(match e["operator"].as_str().unwrap_or_default() {
                    "In" => Requirement::In(key, values),
                    "NotIn" => Requirement::NotIn(key, values),
                    "Exists" => Requirement::Exists(key),
                    _ => Requirement::DoesNotExist(key),
                });
            }
        }
        Self(selector::LabelSelector { requirements })
    }

    /// Builds an equality selector from a label map (a Service's `spec.selector`).
    pub fn from_map(m: &BTreeMap<String, String>) -> Self {
        Self(selector::LabelSelector {
            requirements: m
                .iter()
                .map(|(k, v)| Requirement::Equals(k.clone(), v.clone()))
                .collect(),
        })
    }

    /// Whether the selector has no requirement.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Tests a label map given as the JSON `metadata.labels` object.
    pub fn matches(&self, labels: Option<&Value>) -> bool {
        self.0
            .matches_with(|k| labels.and_then(|l| l.get(k)).and_then(Value::as_str))
    }

    /// Tests an object's labels.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.0.is_empty() || self.matches(obj.pointer("/metadata/labels"))
    }
}

/// A parsed field selector (`path=value` terms, AND-ed).
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// Parses the query-string form; only equality and inequality exist for fields.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (path, eq, value) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(format!("invalid field selector term {part:?}"));
            };
            terms.push((path.trim().to_string(), eq, value.trim().to_string()));
        }
        Ok(Self { terms })
    }

    /// Tests an object; a missing field compares as the empty string.
    pub fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|(path, eq, want)| {
            let mut cur = Some(obj);
            for seg in path.split('.') {
                cur = cur.and_then(|v| v.get(seg));
            }
            let have = match cur {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (have == *want) == *eq
        })
    }

    /// The field labels (paths) the selector names, in order.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|(path, _, _)| path.as_str())
    }

    /// The value a `metadata.name=` term pins, if any (lets a watch skip most objects).
    pub fn pinned_name(&self) -> Option<&str> {
        self.terms
            .iter()
            .find(|(p, eq, _)| *eq && p == "metadata.name")
            .map(|(_, _, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_grammar_covers_every_operator() {
        let labels = json!({"app": "web", "tier": "front", "zone": "a"});
        let yes = [
            "app=web",
            "app==web",
            "app!=api",
            "tier in (front, back)",
            "zone notin (b,c)",
            "app",
            "!missing",
            "app=web,tier in (front),!missing",
            "",
        ];
        for s in yes {
            let sel = LabelSelector::parse(s).unwrap();
            assert!(sel.matches(Some(&labels)), "{s} should match");
        }
        let no = [
            "app=api",
            "app!=web",
            "tier in (back)",
            "zone notin (a)",
            "missing",
            "!app",
        ];
        for s in no {
            let sel = LabelSelector::parse(s).unwrap();
            assert!(!sel.matches(Some(&labels)), "{s} should not match");
        }
        assert!(LabelSelector::parse("app in web").is_err());
    }

    #[test]
    fn field_selector_walks_dotted_paths() {
        let pod = json!({"metadata": {"name": "p", "namespace": "shop"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        assert!(
            FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            !FieldSelector::parse("metadata.namespace==other")
                .unwrap()
                .matches(&pod)
        );
        assert!(FieldSelector::parse("spec.missing=").unwrap().matches(&pod));
        assert_eq!(
            FieldSelector::parse("metadata.name=p")
                .unwrap()
                .pinned_name(),
            Some("p")
        );
    }

    #[test]
    fn match_expressions_are_honoured() {
        let sel = LabelSelector::from_object(
            &json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]}),
        );
        assert!(sel.matches(Some(&json!({"app": "web", "tier": "front"}))));
        assert!(!sel.matches(Some(&json!({"app": "web", "tier": "db"}))));
    }
}

//! Label and field selectors with the grammar kube-apiserver accepts.
//!
//! Labels: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, comma = AND.
//! Fields: `path=v`, `path==v`, `path!=v` over dotted paths such as `spec.nodeName`.

use std::collections::BTreeMap;

use serde_json::Value;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq)]
enum Req {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LabelSelector {
    reqs: Vec<Req>,
}

impl LabelSelector {
    /// Parses the query-string form.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            reqs.push(parse_req(part)?);
        }
        Ok(Self { reqs })
    }

    /// Builds the selector a `matchLabels`/`matchExpressions` object describes.
    pub fn from_object(sel: &Value) -> Self {
        let mut reqs = Vec::new();
        if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in m {
                reqs.push(Req::Eq(
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
                match e["operator"].as_str().unwrap_or_default() {
                    "In" => reqs.push(Req::In(key, values)),
                    "NotIn" => reqs.push(Req::NotIn(key, values)),
                    "Exists" => reqs.push(Req::Exists(key)),
                    _ => reqs.push(Req::NotExists(key)),
                }
            }
        }
        Self { reqs }
    }

    /// Builds an equality selector from a label map (a Service's `spec.selector`).
    pub fn from_map(m: &BTreeMap<String, String>) -> Self {
        Self {
            reqs: m
                .iter()
                .map(|(k, v)| Req::Eq(k.clone(), v.clone()))
                .collect(),
        }
    }

    /// Whether the selector has no requirement.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Tests a label map given as the JSON `metadata.labels` object.
    pub fn matches(&self, labels: Option<&Value>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.reqs.iter().all(|r| match r {
            Req::Eq(k, v) => get(k) == Some(v.as_str()),
            Req::Ne(k, v) => get(k) != Some(v.as_str()),
            Req::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Req::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Req::Exists(k) => get(k).is_some(),
            Req::NotExists(k) => get(k).is_none(),
        })
    }

    /// Tests an object's labels.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.reqs.is_empty() || self.matches(obj.pointer("/metadata/labels"))
    }
}

fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn valid_key(k: &str) -> Result<String, String> {
    let ok = !k.is_empty()
        && k.len() <= 317
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if ok {
        Ok(k.to_string())
    } else {
        Err(format!("invalid label key {k:?}"))
    }
}

fn parse_set(rest: &str) -> Result<Vec<String>, String> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("expected a parenthesised set, found {rest:?}"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

fn parse_req(part: &str) -> Result<Req, String> {
    if let Some(k) = part.strip_prefix('!') {
        return Ok(Req::NotExists(valid_key(k.trim())?));
    }
    if let Some((k, v)) = part.split_once("!=") {
        return Ok(Req::Ne(valid_key(k.trim())?, v.trim().to_string()));
    }
    if let Some((k, v)) = part.split_once("==") {
        return Ok(Req::Eq(valid_key(k.trim())?, v.trim().to_string()));
    }
    if let Some((k, v)) = part.split_once('=') {
        return Ok(Req::Eq(valid_key(k.trim())?, v.trim().to_string()));
    }
    let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
    if words.len() == 2 {
        let key = valid_key(words[0])?;
        let rest = words[1].trim_start();
        if let Some(set) = rest.strip_prefix("notin") {
            return Ok(Req::NotIn(key, parse_set(set)?));
        }
        if let Some(set) = rest.strip_prefix("in") {
            return Ok(Req::In(key, parse_set(set)?));
        }
        return Err(format!("unable to parse requirement {part:?}"));
    }
    Ok(Req::Exists(valid_key(part)?))
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

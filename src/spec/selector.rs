//! Kubernetes label and field selectors, parsed at validation time so a typo fails before a run
//! rather than as an API error halfway through one.
//!
//! The grammar is the API server's: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`,
//! `!k`, joined by commas (AND).

use std::collections::BTreeMap;
use std::fmt;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `k=v` or `k==v`
    Equals(String, String),
    /// `k!=v`
    NotEquals(String, String),
    /// `k in (a,b)`
    In(String, Vec<String>),
    /// `k notin (a,b)`
    NotIn(String, Vec<String>),
    /// `k`
    Exists(String),
    /// `!k`
    DoesNotExist(String),
}

/// A parsed label selector: every requirement must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    /// The requirements, in written order.
    pub requirements: Vec<Requirement>,
}

/// Why a selector did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector `{selector}`: {reason}")]
pub struct SelectorError {
    /// The selector as written.
    pub selector: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The accepted label-selector forms, for hints.
pub const LABEL_SELECTOR_HINT: &str =
    "use k=v, k!=v, k in (a,b), k notin (a,b), k or !k, joined by commas, e.g. app=web,tier!=db";

/// The accepted field-selector forms, for hints.
pub const FIELD_SELECTOR_HINT: &str = "use field=value or field!=value joined by commas, e.g. status.phase=Running,spec.nodeName!=node-1";

impl LabelSelector {
    /// Parses the API server's selector grammar.
    ///
    /// # Errors
    /// When the text is not a valid selector; the error names the offending part.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let fail = |reason: String| SelectorError {
            selector: text.to_owned(),
            reason,
        };
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                if text.trim().is_empty() {
                    break;
                }
                return Err(fail("empty requirement between commas".into()));
            }
            requirements.push(parse_requirement(part).map_err(fail)?);
        }
        Ok(Self { requirements })
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|key| labels.get(key).map(String::as_str))
    }

    /// Whether the labels `label` looks up satisfy every requirement; for label sets that are
    /// not a map of strings, such as a JSON object.
    pub fn matches_with<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.requirements.iter().all(|req| match req {
            Requirement::Equals(k, v) => label(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
            Requirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => label(k).is_none_or(|l| vs.iter().all(|v| v != l)),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::DoesNotExist(k) => label(k).is_none(),
        })
    }

    /// True when the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|req| match req {
                Requirement::Equals(k, v) => format!("{k}={v}"),
                Requirement::NotEquals(k, v) => format!("{k}!={v}"),
                Requirement::In(k, vs) => format!("{k} in ({})", vs.join(",")),
                Requirement::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
                Requirement::Exists(k) => k.clone(),
                Requirement::DoesNotExist(k) => format!("!{k}"),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Splits on commas that are not inside a `( … )` value list.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(label_key(key.trim())?));
    }
    for (symbol, is_eq) in [("==", true), ("!=", false), ("=", true)] {
        if let Some((key, value)) = part.split_once(symbol) {
            let key = label_key(key.trim())?;
            let value = label_value(value.trim())?;
            return Ok(if is_eq {
                Requirement::Equals(key, value)
            } else {
                Requirement::NotEquals(key, value)
            });
        }
    }
    let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
    if let [key, rest] = words[..] {
        let rest = rest.trim_start();
        let (negated, list) = if let Some(list) = rest.strip_prefix("notin") {
            (true, list)
        } else if let Some(list) = rest.strip_prefix("in") {
            (false, list)
        } else {
            return Err(format!("expected `in` or `notin` after `{key}`"));
        };
        let list = list.trim();
        let inner = list
            .strip_prefix('(')
            .and_then(|l| l.strip_suffix(')'))
            .ok_or_else(|| format!("the values of `{key}` must be in parentheses"))?;
        let values = inner
            .split(',')
            .map(|v| label_value(v.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        if values.iter().all(String::is_empty) {
            return Err(format!("`{key}` has an empty value list"));
        }
        let key = label_key(key)?;
        return Ok(if negated {
            Requirement::NotIn(key, values)
        } else {
            Requirement::In(key, values)
        });
    }
    Ok(Requirement::Exists(label_key(part)?))
}

/// Checks a label key: an optional DNS-subdomain prefix and a name of at most 63 characters.
fn label_key(key: &str) -> Result<String, String> {
    let name = match key.rsplit_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty() || prefix.len() > 253 || !prefix.split('.').all(is_dns_label) {
                return Err(format!(
                    "label key prefix `{prefix}` is not a DNS subdomain"
                ));
            }
            name
        }
        None => key,
    };
    if !is_qualified_name(name) {
        return Err(format!(
            "label key `{key}` must be 1-63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
        ));
    }
    Ok(key.to_owned())
}

fn label_value(value: &str) -> Result<String, String> {
    if value.is_empty() || is_qualified_name(value) {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "label value `{value}` must be at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
        ))
    }
}

fn is_qualified_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// True for an RFC 1123 DNS label: lowercase alphanumerics and '-', at most 63 characters.
pub fn is_dns_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// One requirement of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The field path, e.g. `spec.nodeName`.
    pub field: String,
    /// True for `=`/`==`, false for `!=`.
    pub equals: bool,
    /// The value compared with.
    pub value: String,
}

/// Field selectors the API server supports on pods and nodes; others are refused by validation
/// because a real server would refuse them mid-run.
pub const SUPPORTED_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "spec.unschedulable",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];

/// A parsed field selector.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    /// The requirements, all of which must hold.
    pub requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses `field=value,field!=value`.
    ///
    /// # Errors
    /// When a part has no operator or names a field the API server does not index.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let fail = |reason: String| SelectorError {
            selector: text.to_owned(),
            reason,
        };
        let mut requirements = Vec::new();
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        for part in text.split(',') {
            let part = part.trim();
            let (field, equals, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(fail(format!("`{part}` has no `=` or `!=`")));
            };
            let field = field.trim();
            if !SUPPORTED_FIELDS.contains(&field) {
                return Err(fail(format!(
                    "field `{field}` cannot be selected on; supported: {}",
                    SUPPORTED_FIELDS.join(", ")
                )));
            }
            requirements.push(FieldRequirement {
                field: field.to_owned(),
                equals,
                value: value.trim().to_owned(),
            });
        }
        Ok(Self { requirements })
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| {
                format!(
                    "{}{}{}",
                    r.field,
                    if r.equals { "=" } else { "!=" },
                    r.value
                )
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_operator_of_the_grammar_parses_and_matches() {
        let sel = LabelSelector::parse(
            "app=web, tier!=db, zone in (a,b), env notin (dev), team, !legacy",
        )
        .unwrap();
        assert_eq!(sel.requirements.len(), 6);
        let good = labels(&[
            ("app", "web"),
            ("zone", "a"),
            ("env", "prod"),
            ("team", "x"),
        ]);
        assert!(sel.matches(&good));
        let mut bad = good.clone();
        bad.insert("legacy".into(), "1".into());
        assert!(!sel.matches(&bad));
        let mut wrong_zone = good.clone();
        wrong_zone.insert("zone".into(), "c".into());
        assert!(!sel.matches(&wrong_zone));
    }

    #[test]
    fn prefixed_keys_are_accepted() {
        let sel = LabelSelector::parse("app.kubernetes.io/name==web").unwrap();
        assert_eq!(sel.to_string(), "app.kubernetes.io/name=web");
    }

    #[test]
    fn malformed_selectors_name_the_problem() {
        assert!(
            LabelSelector::parse("app=").is_ok(),
            "an empty value is valid"
        );
        let err = LabelSelector::parse("app in web").unwrap_err();
        assert!(err.reason.contains("parentheses"), "{err}");
        assert!(LabelSelector::parse("a,,b").is_err());
        assert!(LabelSelector::parse("-bad=x").is_err());
        assert!(LabelSelector::parse("app=web!").is_err());
    }

    #[test]
    fn field_selectors_only_accept_indexed_fields() {
        let sel = FieldSelector::parse("status.phase=Running,spec.nodeName!=n1").unwrap();
        assert_eq!(sel.requirements.len(), 2);
        assert!(!sel.requirements[1].equals);
        let err = FieldSelector::parse("spec.containers=x").unwrap_err();
        assert!(err.reason.contains("cannot be selected"), "{err}");
    }
}

//! The gate policy file: wire structs (`*Spec`), then [`GatePolicy::parse`] checks every field
//! without I/O and resolves durations, bounds and dates, so evaluation never meets a bad value.
//!
//! ```yaml
//! apiVersion: steadfast.dev/v1alpha1
//! kind: GatePolicy
//! metadata: {name: release}
//! spec:
//!   maxAge: 7d
//!   require:
//!     - experiment: gate-checkout-pod-kill
//!     - labels: {suite: release-gate}
//!       atLeast: 3
//!   thresholds:
//!     - {experiment: gate-search-latency, target: search-p99, atMost: 900ms}
//!   knownFailures:
//!     - {experiment: gate-cart-zone-outage, reason: "CART-12", expires: 2026-12-31}
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::Deserialize;

/// The `apiVersion` of policy files.
pub const API_VERSION: &str = "steadfast.dev/v1alpha1";
/// The `kind` of policy files.
pub const KIND: &str = "GatePolicy";
/// Policy files larger than this are refused: policies are small.
pub const MAX_FILE_BYTES: usize = 256 * 1024;

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatePolicySpecFile {
    /// Must be [`API_VERSION`].
    pub api_version: String,
    /// Must be [`KIND`].
    pub kind: String,
    /// Name and labels.
    pub metadata: MetadataSpec,
    /// The rules.
    pub spec: GateSpec,
}

/// `metadata`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetadataSpec {
    /// Shown in the table and as the JUnit suite.
    pub name: String,
}

/// `spec`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GateSpec {
    /// Oldest acceptable run, e.g. `7d`; absent: any age.
    #[serde(default)]
    pub max_age: Option<String>,
    /// Experiments that must have a report.
    pub require: Vec<RequirementSpec>,
    /// Whether every target not given a threshold must have passed (default true); false
    /// judges only the thresholds.
    #[serde(default)]
    pub require_all_targets: Option<bool>,
    /// Bounds the gate applies to measured values instead of the experiment's own pass/fail.
    #[serde(default)]
    pub thresholds: Vec<ThresholdSpec>,
    /// Failures accepted until a date.
    #[serde(default)]
    pub known_failures: Vec<KnownFailureSpec>,
    /// Targets judged against their own history (see `gate::trend`).
    #[serde(default)]
    pub regressions: Vec<super::trend::RegressionSpec>,
    /// Lowest acceptable resilience score of each run and of the suite, e.g. `">= 90"`.
    #[serde(default)]
    pub score: Option<String>,
}

/// One entry of `spec.require`: an experiment by name, or every experiment with some labels.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequirementSpec {
    /// `metadata.name` of the experiment.
    #[serde(default)]
    pub experiment: Option<String>,
    /// Labels every matching experiment has.
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    /// With `labels`: how many different experiments must match (default 1).
    #[serde(default)]
    pub at_least: Option<u32>,
}

/// One entry of `spec.thresholds`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThresholdSpec {
    /// The experiment.
    pub experiment: String,
    /// The target's name as the report shows it.
    pub target: String,
    /// Lowest acceptable value: `99.5%` or a duration.
    #[serde(default)]
    pub at_least: Option<String>,
    /// Highest acceptable value: `99.5%` or a duration.
    #[serde(default)]
    pub at_most: Option<String>,
}

/// One entry of `spec.knownFailures`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KnownFailureSpec {
    /// The experiment.
    pub experiment: String,
    /// One target; absent: the whole experiment's run.
    #[serde(default)]
    pub target: Option<String>,
    /// Why it is accepted (a ticket), shown in the table.
    pub reason: String,
    /// Last day it is accepted (`2026-12-31`, through the end of that day UTC) or an RFC 3339
    /// instant.
    pub expires: String,
}

/// A resolved policy.
#[derive(Debug, Clone, PartialEq)]
pub struct GatePolicy {
    /// The file, for messages.
    pub file: String,
    /// `metadata.name`.
    pub name: String,
    /// Oldest acceptable run.
    pub max_age: Option<Duration>,
    /// What must be present.
    pub require: Vec<Requirement>,
    /// Whether every target must pass.
    pub require_all_targets: bool,
    /// Gate bounds on targets.
    pub thresholds: Vec<Threshold>,
    /// Accepted failures.
    pub known_failures: Vec<KnownFailure>,
    /// Trend rules.
    pub regressions: Vec<super::trend::Regression>,
    /// Lowest acceptable resilience score (0–100), per run and for the suite.
    pub min_score: Option<f64>,
}

/// What must be present.
#[derive(Debug, Clone, PartialEq)]
pub enum Requirement {
    /// One experiment by name.
    Experiment(String),
    /// At least `at_least` experiments with all these labels.
    Labels {
        /// Label equalities.
        labels: BTreeMap<String, String>,
        /// How many.
        at_least: u32,
    },
}

/// A bound value: a percentage, a duration, or a bare number in the report's own unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// `99.5%`.
    Percent(f64),
    /// `800ms`, kept in seconds.
    Seconds(f64),
    /// `3`: compared with the report's value as it is.
    Number(f64),
}

impl Bound {
    /// The number compared with a target's `value`.
    pub fn value(self) -> f64 {
        match self {
            Bound::Percent(v) | Bound::Seconds(v) | Bound::Number(v) => v,
        }
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::Percent(v) => write!(f, "{v}%"),
            Bound::Seconds(v) => write!(f, "{}", seconds_text(*v)),
            Bound::Number(v) => write!(f, "{v}"),
        }
    }
}

/// Seconds for people: `850ms` below a second, `12.5s` above.
pub fn seconds_text(seconds: f64) -> String {
    if seconds.abs() < 1.0 {
        let ms = format!("{:.3}", seconds * 1000.0);
        format!("{}ms", ms.trim_end_matches('0').trim_end_matches('.'))
    } else {
        let s = format!("{seconds:.3}");
        format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// A gate bound on one target.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// Field path, for messages (`spec.thresholds[0]`).
    pub path: String,
    /// The experiment.
    pub experiment: String,
    /// The target.
    pub target: String,
    /// Lowest acceptable.
    pub at_least: Option<Bound>,
    /// Highest acceptable.
    pub at_most: Option<Bound>,
}

/// An accepted failure.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownFailure {
    /// The experiment.
    pub experiment: String,
    /// The target, or the whole run.
    pub target: Option<String>,
    /// Why.
    pub reason: String,
    /// Accepted while `now < expires`.
    pub expires: DateTime<Utc>,
    /// As written, for messages.
    pub expires_text: String,
}

/// A problem with the policy file: one line naming file, field and fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The file.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Field path, e.g. `spec.knownFailures[0].expires`; empty for the whole file.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {} (hint: {})", self.message, self.hint)
    }
}

impl std::error::Error for PolicyError {}

fn error(
    file: &str,
    path: impl Into<String>,
    message: impl Into<String>,
    hint: &str,
) -> PolicyError {
    PolicyError {
        file: file.to_owned(),
        line: None,
        path: path.into(),
        message: message.into(),
        hint: hint.to_owned(),
    }
}

/// Parses `500ms`, `7d`, `1h30m`.
fn duration(text: &str) -> Option<Duration> {
    humantime::parse_duration(text.trim()).ok()
}

/// Parses a bound: `99.5%`, a duration, or a bare number.
pub fn parse_bound(text: &str) -> Option<Bound> {
    let text = text.trim();
    if let Some(number) = text.strip_suffix('%') {
        return number
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(Bound::Percent);
    }
    if let Ok(number) = text.parse::<f64>() {
        return number.is_finite().then_some(Bound::Number(number));
    }
    duration(text).map(|d| Bound::Seconds(d.as_secs_f64()))
}

/// Parses `2026-12-31` (through the end of that day, UTC) or an RFC 3339 instant.
pub fn parse_expiry(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return day
            .succ_opt()
            .map(|next| next.and_time(NaiveTime::MIN).and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl GatePolicy {
    /// Parses and checks a policy file's text; `file` names it in errors.
    ///
    /// # Errors
    /// Every problem found, each a one-line [`PolicyError`].
    pub fn parse(file: &str, text: &str) -> Result<GatePolicy, Vec<PolicyError>> {
        if text.len() > MAX_FILE_BYTES {
            return Err(vec![error(
                file,
                "",
                format!("the file is larger than {MAX_FILE_BYTES} bytes"),
                "a gate policy is a short YAML file; check that the right file was given",
            )]);
        }
        let deserializer = serde_yaml::Deserializer::from_str(text);
        let wire: GatePolicySpecFile =
            serde_path_to_error::deserialize(deserializer).map_err(|err| {
                let path = err.path().to_string();
                let inner = err.into_inner();
                let line = inner.location().map(|l| l.line());
                let message = inner.to_string();
                // serde_yaml appends " at line N column M"; the line is shown in front instead.
                let message = message
                    .split(" at line ")
                    .next()
                    .unwrap_or(&message)
                    .to_owned();
                vec![PolicyError {
                    file: file.to_owned(),
                    line,
                    path: if path == "." { String::new() } else { path },
                    hint: hint_for(&message),
                    message,
                }]
            })?;
        resolve(file, wire)
    }
}

fn hint_for(message: &str) -> String {
    if message.contains("unknown field") {
        "remove the field or fix its spelling; see experiments/release-gate/gate.yaml".to_owned()
    } else if message.contains("missing field") {
        "add the field; see experiments/release-gate/gate.yaml for a complete policy".to_owned()
    } else {
        "check the value's type against experiments/release-gate/gate.yaml".to_owned()
    }
}

fn resolve(file: &str, wire: GatePolicySpecFile) -> Result<GatePolicy, Vec<PolicyError>> {
    let mut errors = Vec::new();
    if wire.api_version != API_VERSION {
        errors.push(error(
            file,
            "apiVersion",
            format!("`{}` is not supported", wire.api_version),
            &format!("use `{API_VERSION}`"),
        ));
    }
    if wire.kind != KIND {
        errors.push(error(
            file,
            "kind",
            format!("`{}` is not a gate policy", wire.kind),
            &format!("use `{KIND}`; experiments go to `steadfast run`, not `gate`"),
        ));
    }
    if wire.metadata.name.trim().is_empty() {
        errors.push(error(
            file,
            "metadata.name",
            "is empty",
            "name the policy, e.g. `release`",
        ));
    }
    let spec = wire.spec;
    let max_age = match &spec.max_age {
        None => None,
        Some(text) => match duration(text) {
            Some(d) if !d.is_zero() => Some(d),
            _ => {
                errors.push(error(
                    file,
                    "spec.maxAge",
                    format!("`{text}` is not a positive duration"),
                    "write a duration like `7d`, `36h` or `90m`",
                ));
                None
            }
        },
    };
    if spec.require.is_empty() {
        errors.push(error(
            file,
            "spec.require",
            "is empty: the gate would pass on no evidence",
            "list the experiments that must have run, by `experiment:` or `labels:`",
        ));
    }
    let mut require = Vec::new();
    for (i, r) in spec.require.iter().enumerate() {
        let path = format!("spec.require[{i}]");
        match (&r.experiment, &r.labels) {
            (Some(name), None) => {
                if r.at_least.is_some() {
                    errors.push(error(
                        file,
                        format!("{path}.atLeast"),
                        "only applies to `labels`",
                        "drop `atLeast`, or select by `labels` instead of `experiment`",
                    ));
                }
                if name.trim().is_empty() {
                    errors.push(error(
                        file,
                        format!("{path}.experiment"),
                        "is empty",
                        "give the experiment's metadata.name",
                    ));
                }
                require.push(Requirement::Experiment(name.clone()));
            }
            (None, Some(labels)) => {
                if labels.is_empty() {
                    errors.push(error(
                        file,
                        format!("{path}.labels"),
                        "is empty and would match every report",
                        "give at least one label, e.g. `{suite: release-gate}`",
                    ));
                }
                let at_least = r.at_least.unwrap_or(1);
                if at_least == 0 {
                    errors.push(error(
                        file,
                        format!("{path}.atLeast"),
                        "is 0: the requirement would hold with no report",
                        "use 1 or more",
                    ));
                }
                require.push(Requirement::Labels {
                    labels: labels.clone(),
                    at_least,
                });
            }
            (Some(_), Some(_)) => errors.push(error(
                file,
                path,
                "has both `experiment` and `labels`",
                "split it into two entries",
            )),
            (None, None) => errors.push(error(
                file,
                path,
                "names no experiment",
                "set `experiment: NAME` or `labels: {KEY: VALUE}`",
            )),
        }
    }
    let mut thresholds = Vec::new();
    for (i, t) in spec.thresholds.iter().enumerate() {
        let path = format!("spec.thresholds[{i}]");
        let mut bound = |field: &str, text: &Option<String>| {
            let text = text.as_ref()?;
            let parsed = parse_bound(text);
            if parsed.is_none() {
                errors.push(error(
                    file,
                    format!("{path}.{field}"),
                    format!("`{text}` is not a bound"),
                    "write a percentage like `99.5%` or a duration like `800ms`",
                ));
            }
            parsed
        };
        let at_least = bound("atLeast", &t.at_least);
        let at_most = bound("atMost", &t.at_most);
        if t.at_least.is_none() && t.at_most.is_none() {
            errors.push(error(
                file,
                path.clone(),
                "has neither `atLeast` nor `atMost`",
                "add `atLeast: 99.5%` (ratios) or `atMost: 800ms` (durations)",
            ));
        }
        thresholds.push(Threshold {
            path,
            experiment: t.experiment.clone(),
            target: t.target.clone(),
            at_least,
            at_most,
        });
    }
    let mut known_failures = Vec::new();
    for (i, k) in spec.known_failures.iter().enumerate() {
        let path = format!("spec.knownFailures[{i}]");
        if k.reason.trim().is_empty() {
            errors.push(error(
                file,
                format!("{path}.reason"),
                "is empty",
                "say why the failure is accepted, e.g. a ticket id",
            ));
        }
        match parse_expiry(&k.expires) {
            Some(expires) => known_failures.push(KnownFailure {
                experiment: k.experiment.clone(),
                target: k.target.clone(),
                reason: k.reason.clone(),
                expires,
                expires_text: k.expires.trim().to_owned(),
            }),
            None => errors.push(error(
                file,
                format!("{path}.expires"),
                format!("`{}` is not a date", k.expires),
                "write the last accepted day as `2026-12-31` (or an RFC 3339 instant)",
            )),
        }
    }
    let mut regressions = Vec::new();
    for (i, r) in spec.regressions.iter().enumerate() {
        if let Some(rule) = super::trend::resolve(file, i, r, &mut errors) {
            regressions.push(rule);
        }
    }
    let min_score = spec.score.as_ref().and_then(|text| {
        let parsed = text
            .trim()
            .strip_prefix(">=")
            .and_then(|n| n.trim().parse::<f64>().ok())
            .filter(|v| (0.0..=100.0).contains(v));
        if parsed.is_none() {
            errors.push(error(
                file,
                "spec.score",
                format!("`{text}` is not a score bound"),
                "write `\">= 90\"` (quoted): the lowest acceptable score, 0 to 100",
            ));
        }
        parsed
    });
    if errors.is_empty() {
        Ok(GatePolicy {
            file: file.to_owned(),
            name: wire.metadata.name,
            max_age,
            require,
            require_all_targets: spec.require_all_targets.unwrap_or(true),
            thresholds,
            known_failures,
            regressions,
            min_score,
        })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: GatePolicy
metadata: {name: release}
spec:
  maxAge: 7d
  require:
    - experiment: a
    - labels: {suite: release-gate}
      atLeast: 3
  thresholds:
    - {experiment: a, target: p99, atMost: 900ms}
    - {experiment: a, target: avail, atLeast: "99.5%"}
  knownFailures:
    - {experiment: b, reason: "T-1", expires: 2026-12-31}
"#;

    #[test]
    fn a_complete_policy_resolves() {
        let policy = GatePolicy::parse("gate.yaml", GOOD).unwrap();
        assert_eq!(policy.max_age, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(policy.thresholds[0].at_most, Some(Bound::Seconds(0.9)));
        assert_eq!(Bound::Seconds(0.9).to_string(), "900ms");
        assert_eq!(Bound::Seconds(12.5).to_string(), "12.5s");
        assert_eq!(Bound::Percent(99.5).to_string(), "99.5%");
        assert_eq!(policy.thresholds[1].at_least, Some(Bound::Percent(99.5)));
        assert_eq!(
            policy.known_failures[0].expires.to_rfc3339(),
            "2027-01-01T00:00:00+00:00"
        );
        assert!(policy.require_all_targets);
    }

    #[test]
    fn a_bad_date_names_file_field_and_fix_on_one_line() {
        let text = GOOD.replace("2026-12-31", "next week");
        let errors = GatePolicy::parse("gate.yaml", &text).unwrap_err();
        let line = errors[0].to_string();
        assert_eq!(
            line,
            "gate.yaml: spec.knownFailures[0].expires: `next week` is not a date (hint: write the last accepted day as `2026-12-31` (or an RFC 3339 instant))"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn an_unknown_field_is_placed_at_its_line_and_path() {
        let text = GOOD.replace("maxAge: 7d", "maxAge: 7d\n  maxAgee: 1d");
        let errors = GatePolicy::parse("gate.yaml", &text).unwrap_err();
        let line = errors[0].to_string();
        assert!(line.starts_with("gate.yaml:"), "{line}");
        assert!(line.contains("unknown field `maxAgee`"), "{line}");
        assert!(line.contains("hint:"), "{line}");
    }

    #[test]
    fn every_problem_is_reported() {
        let text = GOOD
            .replace("maxAge: 7d", "maxAge: soon")
            .replace("atMost: 900ms", "atMost: fast");
        let errors = GatePolicy::parse("gate.yaml", &text).unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["spec.maxAge", "spec.thresholds[0].atMost"]);
    }
}

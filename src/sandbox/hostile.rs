//! Hostile mode: the API server misbehaves the way real control planes do during a chaos run.
//!
//! EKS throttles with API Priority and Fairness (429 with `Retry-After`), API servers answer
//! 500/503/504 during upgrades and etcd leader changes, add latency, and close watches on their
//! own. A client that only ever met a friendly sandbox has never been tested against any of it,
//! so the sandbox can do all of it on purpose, seeded: decision `n` depends only on the seed,
//! `n` and the request's verb and resource, so the same request sequence meets the same
//! injections. Health checks, discovery and `/metrics` are never touched (they are not resource
//! requests), so readiness and the counters stay trustworthy. Watch resumes may be answered
//! `410 Gone` (an `ERROR` event, as kube-apiserver's watch cache sends it), so clients must relist,
//! and connections may be dropped without an answer. What was injected is counted on
//! `/metrics` as `steadfast_sandbox_hostile_injected_total{kind,verb,resource}`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::topology::{duration, opt_duration};
use crate::infra::kube::access::ApiAccess;
use crate::plan::seeded::SeededRng;

/// RBAC verbs a filter may name.
const VERBS: [&str; 8] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];
/// Status codes `error5xx` may inject.
const CODES: [u16; 4] = [500, 502, 503, 504];

/// The topology's `hostile:` block.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HostileSpec {
    /// Seed of every decision; the same seed and request sequence give the same injections.
    #[serde(default)]
    pub seed: u64,
    /// APF-style throttling: 429 TooManyRequests with `Retry-After` and no cause.
    #[serde(default)]
    pub apf429: Option<Apf429Spec>,
    /// Server errors.
    #[serde(default)]
    pub error5xx: Option<Error5xxSpec>,
    /// Added delay before a request is served.
    #[serde(default)]
    pub latency: Option<LatencySpec>,
    /// Watches end on their own after a random time in this range.
    #[serde(default)]
    pub watch_close_after: Option<WatchCloseSpec>,
    /// A watch resuming from a `resourceVersion` is told it expired (410 Gone).
    #[serde(default)]
    pub gone_on_resume: Option<GoneOnResumeSpec>,
    /// The connection is dropped without an answer.
    #[serde(default)]
    pub connection_reset: Option<ConnectionResetSpec>,
}

/// `hostile.goneOnResume`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GoneOnResumeSpec {
    /// Share of resuming watches answered 410 Expired, 0..=1.
    pub probability: f64,
    /// Resources it applies to; all when empty.
    #[serde(default)]
    pub resources: Vec<String>,
}

/// `hostile.connectionReset`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConnectionResetSpec {
    /// Share of matching requests whose connection is dropped, 0..=1. Half of the drops
    /// happen after the request was carried out, as a connection lost mid-answer does.
    pub probability: f64,
    /// RBAC verbs it applies to; all when empty.
    #[serde(default)]
    pub verbs: Vec<String>,
    /// Resources it applies to; all when empty.
    #[serde(default)]
    pub resources: Vec<String>,
}

/// `hostile.apf429`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Apf429Spec {
    /// Share of matching requests throttled, 0..=1.
    pub probability: f64,
    /// The `Retry-After` the answer asks for, whole seconds (1..=60).
    #[serde(default = "one")]
    pub retry_after_seconds: u32,
    /// RBAC verbs it applies to (`get`, `create`, ...); all when empty.
    #[serde(default)]
    pub verbs: Vec<String>,
    /// Resources it applies to (`nodes`, `pods/eviction`, ...); all when empty.
    #[serde(default)]
    pub resources: Vec<String>,
}

fn one() -> u32 {
    1
}

/// `hostile.error5xx`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Error5xxSpec {
    /// Share of matching requests answered with an error, 0..=1.
    pub probability: f64,
    /// Codes drawn from, uniformly (500, 502, 503, 504). 504 is answered after the request
    /// was carried out, as a real server timing out mid-write may have done.
    #[serde(default = "default_codes")]
    pub codes: Vec<u16>,
    /// RBAC verbs it applies to; all when empty.
    #[serde(default)]
    pub verbs: Vec<String>,
    /// Resources it applies to; all when empty.
    #[serde(default)]
    pub resources: Vec<String>,
}

fn default_codes() -> Vec<u16> {
    vec![500, 503, 504]
}

/// `hostile.latency`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LatencySpec {
    /// Share of matching requests delayed, 0..=1.
    pub probability: f64,
    /// Shortest added delay.
    #[serde(deserialize_with = "duration")]
    pub min: Duration,
    /// Longest added delay.
    #[serde(deserialize_with = "duration")]
    pub max: Duration,
    /// RBAC verbs it applies to; all when empty.
    #[serde(default)]
    pub verbs: Vec<String>,
    /// Resources it applies to; all when empty.
    #[serde(default)]
    pub resources: Vec<String>,
}

/// `hostile.watchCloseAfter`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WatchCloseSpec {
    /// Shortest life of a watch.
    #[serde(deserialize_with = "duration")]
    pub min: Duration,
    /// Longest life of a watch.
    #[serde(default, deserialize_with = "opt_duration")]
    pub max: Option<Duration>,
    /// Resources whose watches are closed; all when empty.
    #[serde(default)]
    pub resources: Vec<String>,
}

impl HostileSpec {
    /// The `sandbox up --hostile` preset: 10% server errors (500/503/504), 5% APF throttling
    /// asking for 1 s, 2% dropped connections, watches closed after 3–8 s and a fifth of
    /// their resumes told 410 Gone.
    pub fn preset(seed: u64) -> Self {
        Self {
            seed,
            apf429: Some(Apf429Spec {
                probability: 0.05,
                retry_after_seconds: 1,
                verbs: Vec::new(),
                resources: Vec::new(),
            }),
            error5xx: Some(Error5xxSpec {
                probability: 0.10,
                codes: default_codes(),
                verbs: Vec::new(),
                resources: Vec::new(),
            }),
            latency: None,
            watch_close_after: Some(WatchCloseSpec {
                min: Duration::from_secs(3),
                max: Some(Duration::from_secs(8)),
                resources: Vec::new(),
            }),
            gone_on_resume: Some(GoneOnResumeSpec {
                probability: 0.2,
                resources: Vec::new(),
            }),
            connection_reset: Some(ConnectionResetSpec {
                probability: 0.02,
                verbs: Vec::new(),
                resources: Vec::new(),
            }),
        }
    }

    /// Every problem of the block, each naming its field under `at` (e.g. `hostile`).
    pub fn validate(&self, at: &str) -> Vec<String> {
        let mut p = Vec::new();
        let mut probability = |field: &str, v: f64| {
            if !(0.0..=1.0).contains(&v) {
                p.push(format!(
                    "{at}.{field}.probability: must be within 0..=1, found {v}"
                ));
            }
        };
        if let Some(a) = &self.apf429 {
            probability("apf429", a.probability);
        }
        if let Some(e) = &self.error5xx {
            probability("error5xx", e.probability);
        }
        if let Some(l) = &self.latency {
            probability("latency", l.probability);
        }
        if let Some(g) = &self.gone_on_resume {
            probability("goneOnResume", g.probability);
        }
        if let Some(r) = &self.connection_reset {
            probability("connectionReset", r.probability);
        }
        if let Some(a) = &self.apf429 {
            if !(1..=60).contains(&a.retry_after_seconds) {
                p.push(format!(
                    "{at}.apf429.retryAfterSeconds: must be 1..=60, found {}",
                    a.retry_after_seconds
                ));
            }
            check_verbs(&mut p, &format!("{at}.apf429.verbs"), &a.verbs);
        }
        if let Some(e) = &self.error5xx {
            if e.codes.is_empty() {
                p.push(format!(
                    "{at}.error5xx.codes: name at least one of 500, 502, 503, 504"
                ));
            }
            for (i, c) in e.codes.iter().enumerate() {
                if !CODES.contains(c) {
                    p.push(format!(
                        "{at}.error5xx.codes[{i}]: {c} is not one of 500, 502, 503, 504"
                    ));
                }
            }
            check_verbs(&mut p, &format!("{at}.error5xx.verbs"), &e.verbs);
        }
        if let Some(l) = &self.latency {
            if l.min > l.max {
                p.push(format!(
                    "{at}.latency.min: {:?} is longer than max {:?}",
                    l.min, l.max
                ));
            }
            check_verbs(&mut p, &format!("{at}.latency.verbs"), &l.verbs);
        }
        if let Some(r) = &self.connection_reset {
            check_verbs(&mut p, &format!("{at}.connectionReset.verbs"), &r.verbs);
        }
        if let Some(w) = &self.watch_close_after {
            if w.min.is_zero() {
                p.push(format!(
                    "{at}.watchCloseAfter.min: must be above zero (hint: 3s)"
                ));
            }
            if w.max.is_some_and(|max| max < w.min) {
                p.push(format!("{at}.watchCloseAfter.max: shorter than min"));
            }
        }
        p
    }
}

fn check_verbs(p: &mut Vec<String>, at: &str, verbs: &[String]) {
    for (i, v) in verbs.iter().enumerate() {
        if !VERBS.contains(&v.as_str()) {
            p.push(format!(
                "{at}[{i}]: `{v}` is not an RBAC verb (hint: one of {})",
                VERBS.join(", ")
            ));
        }
    }
}

fn applies(verbs: &[String], resources: &[String], access: &ApiAccess) -> bool {
    (verbs.is_empty() || verbs.contains(&access.verb))
        && (resources.is_empty() || resources.contains(&access.resource))
}

/// What the server does instead of (or after) answering normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 429 with `Retry-After: seconds`, before the request is carried out.
    Throttle {
        /// The seconds asked for.
        retry_after: u32,
    },
    /// A server error; `after` when the request was carried out first (504).
    ServerError {
        /// The status code.
        code: u16,
        /// Whether the request took effect before the error was sent.
        after: bool,
    },
    /// The connection is dropped without an answer; `after` when the request was carried
    /// out first.
    Reset {
        /// Whether the request took effect before the connection was dropped.
        after: bool,
    },
}

impl Refusal {
    /// Whether the request is carried out before the refusal is sent.
    pub fn after(self) -> bool {
        match self {
            Refusal::Throttle { .. } => false,
            Refusal::ServerError { after, .. } | Refusal::Reset { after } => after,
        }
    }
}

/// The decision for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decision {
    /// Delay before serving.
    pub delay: Option<Duration>,
    /// An error answer.
    pub refusal: Option<Refusal>,
    /// For a watch: end it after this long.
    pub close_watch_after: Option<Duration>,
    /// For a watch resuming from a `resourceVersion`: answer 410 Gone.
    pub gone: bool,
}

/// A uniform draw from `[0, 1)` with 53 bits.
fn unit(rng: &mut SeededRng) -> f64 {
    rng.below(1 << 53) as f64 / (1u64 << 53) as f64
}

/// A uniform duration in `min..=max`, to the millisecond.
fn between(rng: &mut SeededRng, min: Duration, max: Duration) -> Duration {
    let lo = min.as_millis() as u64;
    let hi = (max.as_millis() as u64).max(lo);
    Duration::from_millis(lo + rng.below(hi - lo + 1))
}

impl HostileSpec {
    /// The decision for the `n`th resource request; `resume` when it is a watch resuming from
    /// a `resourceVersion`. Every draw is made whatever the filters say, so a request's
    /// decision does not depend on which rules matched earlier ones. Draws added later come
    /// last, so a seed keeps its earlier decisions.
    pub fn decide(&self, n: u64, access: &ApiAccess, resume: bool) -> Decision {
        let mut rng = SeededRng::new(self.seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let (u_apf, u_err, code_draw, u_lat, lat_draw, watch_draw) = (
            unit(&mut rng),
            unit(&mut rng),
            rng.below(u64::MAX),
            unit(&mut rng),
            rng.below(u64::MAX),
            rng.below(u64::MAX),
        );
        let (u_gone, u_reset, u_reset_after) = (unit(&mut rng), unit(&mut rng), unit(&mut rng));
        let mut d = Decision::default();
        if let Some(l) = &self.latency
            && applies(&l.verbs, &l.resources, access)
            && u_lat < l.probability
        {
            d.delay = Some(between(&mut SeededRng::new(lat_draw), l.min, l.max));
        }
        if let Some(a) = &self.apf429
            && applies(&a.verbs, &a.resources, access)
            && u_apf < a.probability
        {
            d.refusal = Some(Refusal::Throttle {
                retry_after: a.retry_after_seconds,
            });
        } else if let Some(e) = &self.error5xx
            && !e.codes.is_empty()
            && applies(&e.verbs, &e.resources, access)
            && u_err < e.probability
        {
            let code = e.codes[(code_draw % e.codes.len() as u64) as usize];
            d.refusal = Some(Refusal::ServerError {
                code,
                after: code == 504,
            });
        } else if let Some(r) = &self.connection_reset
            && applies(&r.verbs, &r.resources, access)
            && u_reset < r.probability
        {
            d.refusal = Some(Refusal::Reset {
                after: u_reset_after < 0.5,
            });
        }
        if resume
            && d.refusal.is_none()
            && let Some(g) = &self.gone_on_resume
            && applies(&[], &g.resources, access)
            && u_gone < g.probability
        {
            d.gone = true;
        }
        if access.verb == "watch"
            && let Some(w) = &self.watch_close_after
            && (w.resources.is_empty() || w.resources.contains(&access.resource))
        {
            let max = w.max.unwrap_or(w.min);
            d.close_watch_after = Some(between(&mut SeededRng::new(watch_draw), w.min, max));
        }
        d
    }
}

/// The running hostile mode: the spec, the request counter and what was injected.
#[derive(Debug)]
pub(crate) struct Hostile {
    spec: HostileSpec,
    next: AtomicU64,
    injected: Mutex<BTreeMap<(&'static str, String, String), u64>>,
}

impl Hostile {
    /// Hostile mode as `spec` says, from request 0.
    pub fn new(spec: HostileSpec) -> Self {
        Self {
            spec,
            next: AtomicU64::new(0),
            injected: Mutex::new(BTreeMap::new()),
        }
    }

    /// Decides for the next resource request (`resume`: a watch from a `resourceVersion`) and
    /// counts what it injects.
    pub fn decide(&self, access: &ApiAccess, resume: bool) -> Decision {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let d = self.spec.decide(n, access, resume);
        if d.delay.is_some() {
            self.count("latency", access);
        }
        match d.refusal {
            Some(Refusal::Throttle { .. }) => self.count("apf429", access),
            Some(Refusal::ServerError { code: 500, .. }) => self.count("error500", access),
            Some(Refusal::ServerError { code: 502, .. }) => self.count("error502", access),
            Some(Refusal::ServerError { code: 503, .. }) => self.count("error503", access),
            Some(Refusal::ServerError { .. }) => self.count("error504", access),
            Some(Refusal::Reset { .. }) => self.count("connectionReset", access),
            None => {}
        }
        if d.gone {
            self.count("gone410", access);
        }
        if d.close_watch_after.is_some() {
            self.count("watchClose", access);
        }
        d
    }

    fn count(&self, kind: &'static str, access: &ApiAccess) {
        let mut m = self.injected.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((kind, access.verb.clone(), access.resource.clone()))
            .or_default() += 1;
    }

    /// Prometheus text exposition of the injected counts.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP steadfast_sandbox_hostile_injected_total Misbehaviours the sandbox API server injected in hostile mode.\n# TYPE steadfast_sandbox_hostile_injected_total counter\n",
        );
        let m = self.injected.lock().unwrap_or_else(|e| e.into_inner());
        for ((kind, verb, resource), n) in m.iter() {
            out.push_str(&format!(
                "steadfast_sandbox_hostile_injected_total{{kind=\"{kind}\",verb=\"{verb}\",resource=\"{resource}\"}} {n}\n"
            ));
        }
        out.push_str(&format!(
            "# HELP steadfast_sandbox_hostile_requests_total Resource requests hostile mode decided on.\n# TYPE steadfast_sandbox_hostile_requests_total counter\nsteadfast_sandbox_hostile_requests_total {}\n",
            self.next.load(Ordering::Relaxed)
        ));
        out
    }
}

/// The `Status` body and headers of a refusal, worded as kube-apiserver words them.
pub(crate) fn refusal_status(r: Refusal) -> (u16, serde_json::Value, Option<u32>) {
    let status = |code: u16, reason: &str, message: &str, details: serde_json::Value| {
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "code": code, "reason": reason, "message": message, "details": details,
        })
    };
    match r {
        // apiserver's APF filter: `errors.NewTooManyRequests("Too many requests, please try
        // again later.", retryAfter)`, no causes.
        Refusal::Throttle { retry_after } => (
            429,
            status(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.",
                json!({"retryAfterSeconds": retry_after}),
            ),
            Some(retry_after),
        ),
        Refusal::ServerError { code: 504, .. } => (
            504,
            status(
                504,
                "Timeout",
                "the server was unable to return a response in the time allotted, but may still be processing the request",
                json!({}),
            ),
            None,
        ),
        Refusal::ServerError { code: 503, .. } => (
            503,
            status(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
                json!({}),
            ),
            None,
        ),
        Refusal::ServerError { code, .. } => (
            code,
            status(
                code,
                "InternalError",
                "Internal error occurred: the server is injecting errors (hostile mode)",
                json!({}),
            ),
            None,
        ),
        // Never sent: the API server drops the connection instead; a proxy in between would
        // answer this.
        Refusal::Reset { .. } => (
            502,
            status(
                502,
                "InternalError",
                "the connection to the server was reset (hostile mode)",
                json!({}),
            ),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(verb: &str, resource: &str) -> ApiAccess {
        ApiAccess {
            group: String::new(),
            resource: resource.into(),
            verb: verb.into(),
        }
    }

    fn requests() -> Vec<ApiAccess> {
        (0..400)
            .map(|i| match i % 4 {
                0 => access("get", "nodes"),
                1 => access("patch", "nodes"),
                2 => access("create", "pods/eviction"),
                _ => access("watch", "pods"),
            })
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_decisions_and_another_seed_others() {
        let run = |seed| {
            let h = Hostile::new(HostileSpec::preset(seed));
            requests()
                .iter()
                .map(|a| h.decide(a, false))
                .collect::<Vec<_>>()
        };
        let first = run(7);
        assert_eq!(first, run(7));
        assert_ne!(first, run(8));
        let refused = first.iter().filter(|d| d.refusal.is_some()).count();
        // 15% of 400 requests are refused on average; far outside this band means a broken draw.
        assert!((25..=95).contains(&refused), "{refused}");
        for (d, a) in first.iter().zip(requests()) {
            let close = d.close_watch_after;
            assert_eq!(close.is_some(), a.verb == "watch", "{a}");
            assert!(
                close.is_none_or(|c| (3..=8).contains(&c.as_secs())),
                "{c:?}",
                c = close
            );
        }
    }

    #[test]
    fn filters_keep_injections_to_their_verbs_and_resources() {
        let spec = HostileSpec {
            seed: 1,
            apf429: Some(Apf429Spec {
                probability: 1.0,
                retry_after_seconds: 2,
                verbs: vec!["create".into()],
                resources: vec!["pods/eviction".into()],
            }),
            ..HostileSpec::default()
        };
        let h = Hostile::new(spec);
        assert_eq!(
            h.decide(&access("create", "pods/eviction"), false).refusal,
            Some(Refusal::Throttle { retry_after: 2 })
        );
        assert_eq!(h.decide(&access("get", "pods"), false).refusal, None);
        assert_eq!(h.decide(&access("create", "pods"), false).refusal, None);
        let metrics = h.render();
        assert!(
            metrics.contains(
                "steadfast_sandbox_hostile_injected_total{kind=\"apf429\",verb=\"create\",resource=\"pods/eviction\"} 1"
            ),
            "{metrics}"
        );
    }

    #[test]
    fn resumes_are_told_gone_and_connections_dropped_at_the_set_rates_and_counted() {
        let spec = HostileSpec {
            seed: 11,
            gone_on_resume: Some(GoneOnResumeSpec {
                probability: 0.3,
                resources: vec!["pods".into()],
            }),
            connection_reset: Some(ConnectionResetSpec {
                probability: 0.1,
                verbs: vec!["get".into(), "patch".into()],
                resources: Vec::new(),
            }),
            ..HostileSpec::default()
        };
        let h = Hostile::new(spec.clone());
        let (mut gone, mut resets, mut after) = (0, 0, 0);
        for _ in 0..1000 {
            let d = h.decide(&access("watch", "pods"), true);
            gone += u32::from(d.gone);
            assert_eq!(d.refusal, None, "watches are not in the reset filter");
            // A watch that lists first, or another resource, is never told it expired.
            assert!(!h.decide(&access("watch", "pods"), false).gone);
            assert!(!h.decide(&access("watch", "nodes"), true).gone);
            let d = h.decide(&access("patch", "nodes"), false);
            if let Some(Refusal::Reset { after: a }) = d.refusal {
                resets += 1;
                after += u32::from(a);
            }
            assert_eq!(h.decide(&access("create", "pods"), false).refusal, None);
        }
        // 30% of 1000 and 10% of 1000, with a wide band against a broken draw.
        assert!((230..=370).contains(&gone), "{gone}");
        assert!((60..=140).contains(&resets), "{resets}");
        assert!(after > 0 && after < resets, "{after} of {resets}");
        // Seeded: the same spec decides the same way.
        let again = Hostile::new(spec.clone());
        let first: Vec<_> = (0..50)
            .map(|_| again.decide(&access("watch", "pods"), true))
            .collect();
        let replay = Hostile::new(spec);
        let second: Vec<_> = (0..50)
            .map(|_| replay.decide(&access("watch", "pods"), true))
            .collect();
        assert_eq!(first, second);
        let metrics = h.render();
        for line in [
            format!(
                "steadfast_sandbox_hostile_injected_total{{kind=\"gone410\",verb=\"watch\",resource=\"pods\"}} {gone}"
            ),
            format!(
                "steadfast_sandbox_hostile_injected_total{{kind=\"connectionReset\",verb=\"patch\",resource=\"nodes\"}} {resets}"
            ),
        ] {
            assert!(metrics.contains(&line), "{line} in {metrics}");
        }
    }

    #[test]
    fn adding_the_new_draws_kept_the_earlier_decisions_of_a_seed() {
        // The preset minus the new kinds decides as before for every request it shares.
        let mut old = HostileSpec::preset(5);
        old.gone_on_resume = None;
        old.connection_reset = None;
        let new = HostileSpec::preset(5);
        for (n, a) in requests().iter().enumerate() {
            let (o, d) = (
                old.decide(n as u64, a, false),
                new.decide(n as u64, a, false),
            );
            assert_eq!(o.delay, d.delay);
            assert_eq!(o.close_watch_after, d.close_watch_after);
            if o.refusal.is_some() {
                assert_eq!(o.refusal, d.refusal);
            }
        }
    }

    #[test]
    fn an_apf_refusal_carries_retry_after_and_no_budget_cause() {
        let (code, body, retry) = refusal_status(Refusal::Throttle { retry_after: 3 });
        assert_eq!((code, retry), (429, Some(3)));
        assert_eq!(body["reason"], "TooManyRequests");
        assert_eq!(body["details"]["retryAfterSeconds"], 3);
        assert!(body["details"].get("causes").is_none());
    }

    #[test]
    fn bad_settings_are_each_named() {
        let mut spec = HostileSpec::preset(1);
        if let Some(e) = spec.error5xx.as_mut() {
            e.codes = vec![418];
        }
        if let Some(a) = spec.apf429.as_mut() {
            a.probability = 1.5;
        }
        spec.latency = Some(LatencySpec {
            probability: 0.1,
            min: Duration::from_secs(2),
            max: Duration::from_secs(1),
            verbs: vec!["poke".into()],
            resources: Vec::new(),
        });
        let p = spec.validate("hostile").join("\n");
        for field in [
            "hostile.error5xx.codes[0]",
            "hostile.apf429.probability",
            "hostile.latency.min",
            "hostile.latency.verbs[0]",
        ] {
            assert!(p.contains(field), "{field} in {p}");
        }
    }
}

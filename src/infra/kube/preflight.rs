//! Before any fault acts: does the caller hold every permission the run will use?
//!
//! A run that discovers a missing verb halfway has already injected faults and may not be able
//! to undo them. So `steadfast run` asks the API server first, with one SelfSubjectAccessReview
//! per (verb, resource, namespace) of [`super::rbac::RULES`] the experiment needs, and stops on
//! the first denial with the 403 text the server would have answered.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;
use serde_json::Value;

use super::client::{KubeClient, KubeOptions};
use super::error::KubeError;
use super::rbac::{RULES, RbacRule, UsedBy};
use crate::spec::{ExperimentSpec, FaultKind};

/// How long one review may take.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(10);
/// Most reviews one preflight sends; RULES times a few namespaces stays well below.
const MAX_REVIEWS: usize = 512;
/// Reviews in flight at once.
const REVIEWS_IN_FLIGHT: usize = 8;
/// The preflight client's own rate: kubectl's order of magnitude, for a one-off burst of cheap
/// reviews before the run.
const PREFLIGHT_QPS: u32 = 50;
/// Resources without a namespace among those RULES names.
const CLUSTER_SCOPED: &[&str] = &["nodes", "namespaces"];

/// One permission to check.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Needed {
    /// API group; empty for core.
    pub group: String,
    /// Resource, with `/subresource` when there is one.
    pub resource: String,
    /// RBAC verb.
    pub verb: String,
    /// Namespace; empty for cluster scope (or for every namespace).
    pub namespace: String,
}

/// Why the preflight stopped the run.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// The caller lacks a permission the run needs.
    #[error(
        "missing permission: {verb} {resource} in namespace {ns} (hint: grant `{verb}` on `{qualified}` to {user} in its Role or ClusterRole, as charts/steadfast/rbac-rules.yaml does; the API server would answer 403: {forbidden})",
        verb = .0.verb,
        resource = .0.resource,
        ns = if .0.namespace.is_empty() { "<cluster>" } else { .0.namespace.as_str() },
        qualified = qualified(&.0.group, &.0.resource),
        user = .1,
        forbidden = forbidden_message(.1, &.0),
    )]
    Missing(Needed, String),
    /// A review could not be made.
    #[error("{0}")]
    Review(#[from] KubeError),
}

fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    }
}

/// The message kube-apiserver's `responsewriters.Forbidden` gives for a request without a name.
fn forbidden_message(user: &str, n: &Needed) -> String {
    let base = n.resource.split('/').next().unwrap_or_default();
    let scope = if n.namespace.is_empty() {
        "at the cluster scope".to_owned()
    } else {
        format!("in the namespace {:?}", n.namespace)
    };
    format!(
        "{} is forbidden: User {user:?} cannot {} resource {:?} in API group {:?} {scope}",
        qualified(&n.group, base),
        n.verb,
        n.resource,
        n.group
    )
}

/// Every string under a `namespaces` list or `namespace` field of `v`, and whether some target
/// picks namespaces by selector (so its permissions are needed in every namespace).
fn namespaces_in(v: &Value, out: &mut BTreeSet<String>, by_selector: &mut bool) {
    match v {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("namespace", Value::String(ns)) if !ns.is_empty() => {
                        out.insert(ns.clone());
                    }
                    ("namespaces", Value::Array(list)) => {
                        out.extend(list.iter().filter_map(Value::as_str).map(String::from));
                    }
                    ("namespaceSelector", Value::String(s)) if !s.is_empty() => {
                        *by_selector = true;
                    }
                    _ => namespaces_in(value, out, by_selector),
                }
            }
        }
        Value::Array(list) => {
            for value in list {
                namespaces_in(value, out, by_selector);
            }
        }
        _ => {}
    }
}

/// The permissions a run of `spec` needs: RULES of the parts it uses, namespaced ones in every
/// namespace its faults and probes name, the run's own in `state_namespace`.
pub fn needed(spec: &ExperimentSpec, state_namespace: &str) -> Vec<Needed> {
    let doc = serde_json::to_value(&spec.spec).unwrap_or(Value::Null);
    let faults = spec.spec.faults.iter().any(|f| {
        let by_nodes = [
            f.ec2_stop.as_ref().map(|s| &s.target),
            f.ec2_terminate.as_ref().map(|s| &s.target),
        ]
        .into_iter()
        .flatten()
        .any(|t| t.node_selector.is_some());
        by_nodes
            || f.kinds().iter().any(|k| {
                !matches!(
                    k,
                    FaultKind::Ec2Terminate | FaultKind::Ec2Stop | FaultKind::AzPartition
                )
            })
    });
    let probes = spec.spec.steady_state.probes.iter().any(|p| {
        p.kubernetes.is_some()
            || p.http
                .as_ref()
                .is_some_and(|h| h.url.is_none() || h.per_endpoint)
    });
    let mut targets = BTreeSet::new();
    let mut by_selector = false;
    namespaces_in(&doc["faults"], &mut targets, &mut by_selector);
    namespaces_in(&doc["steadyState"], &mut targets, &mut by_selector);
    if by_selector {
        targets = BTreeSet::from([String::new()]);
    }
    let used = |rule: &RbacRule| match rule.used_by {
        UsedBy::Faults => faults,
        UsedBy::Probes => probes,
        UsedBy::Run => true,
        // `advise` reads, a run never needs these.
        UsedBy::Advise => false,
    };
    let network = spec.spec.faults.iter().any(|f| {
        f.kinds().iter().any(|k| {
            matches!(
                k,
                FaultKind::PodNetworkLatency
                    | FaultKind::PodNetworkLoss
                    | FaultKind::PodNetworkBlackhole
            )
        })
    });
    // Only the pod network faults add ephemeral containers.
    let needs = |rule: &RbacRule| rule.resource != "pods/ephemeralcontainers" || network;
    let mut out = BTreeSet::new();
    for rule in RULES.iter().filter(|r| used(r) && needs(r)) {
        let base = rule.resource.split('/').next().unwrap_or_default();
        let namespaces: Vec<String> = if CLUSTER_SCOPED.contains(&base) {
            vec![String::new()]
        } else if rule.used_by == UsedBy::Run {
            vec![state_namespace.to_owned()]
        } else {
            targets.iter().cloned().collect()
        };
        for ns in namespaces {
            for verb in rule.verbs {
                out.insert(Needed {
                    group: rule.api_group.to_owned(),
                    resource: rule.resource.to_owned(),
                    verb: (*verb).to_owned(),
                    namespace: ns.clone(),
                });
            }
        }
    }
    out.into_iter().collect()
}

/// [`check`] through a client of its own, connected as `options` say but outside the run's
/// rate limit: a few dozen reviews at client-go's 5/s would hold the run's start for seconds
/// and spend the burst its first firing needs.
///
/// # Errors
/// As [`check`]; [`PreflightError::Review`] when the client cannot connect.
pub async fn check_with(options: &KubeOptions, needed: &[Needed]) -> Result<(), PreflightError> {
    let client = KubeClient::connect(&KubeOptions {
        qps: PREFLIGHT_QPS,
        burst: PREFLIGHT_QPS,
        record_access: false,
        ..options.clone()
    })
    .await?;
    check(client.raw(), needed).await
}

/// Asks the API server about each of `needed`; the first denial stops with
/// [`PreflightError::Missing`].
///
/// # Errors
/// [`PreflightError::Missing`] for a permission the caller lacks; [`PreflightError::Review`]
/// when a review cannot be made.
pub async fn check(client: &kube::Client, needed: &[Needed]) -> Result<(), PreflightError> {
    use futures::StreamExt;
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    // A few dozen reviews: sent a handful at a time, so the run starts without a noticeable
    // wait, and read in order, so the denial named is always the first in `needed`.
    let mut answers = futures::stream::iter(needed.iter().take(MAX_REVIEWS))
        .map(|n| {
            let api = api.clone();
            async move { (n, review(&api, n).await) }
        })
        .buffered(REVIEWS_IN_FLIGHT);
    while let Some((n, allowed)) = answers.next().await {
        if !allowed? {
            let user = whoami(client).await;
            return Err(PreflightError::Missing(n.clone(), user));
        }
    }
    Ok(())
}

/// One SelfSubjectAccessReview: is `n` allowed?
async fn review(api: &Api<SelfSubjectAccessReview>, n: &Needed) -> Result<bool, KubeError> {
    let (resource, subresource) = match n.resource.split_once('/') {
        Some((r, s)) => (r.to_owned(), Some(s.to_owned())),
        None => (n.resource.clone(), None),
    };
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(n.group.clone()),
                resource: Some(resource),
                subresource,
                verb: Some(n.verb.clone()),
                namespace: Some(n.namespace.clone()).filter(|ns| !ns.is_empty()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let action = format!("checking permission to {} {}", n.verb, n.resource);
    let answer = tokio::time::timeout(REVIEW_TIMEOUT, api.create(&PostParams::default(), &review))
        .await
        .map_err(|_| KubeError::Timeout {
            action: action.clone(),
            after: REVIEW_TIMEOUT,
        })?
        .map_err(|e| KubeError::from_kube(&action, e))?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// The caller's user name through a SelfSubjectReview, or a placeholder when the server
/// cannot say.
async fn whoami(client: &kube::Client) -> String {
    let request = http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(br#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#.to_vec());
    let Ok(request) = request else {
        return "the current user".to_owned();
    };
    let answer = tokio::time::timeout(REVIEW_TIMEOUT, client.request::<Value>(request)).await;
    match answer {
        Ok(Ok(v)) => v
            .pointer("/status/userInfo/username")
            .and_then(Value::as_str)
            .map_or_else(|| "the current user".to_owned(), String::from),
        _ => "the current user".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> ExperimentSpec {
        serde_yaml::from_str(yaml).expect("the fixture parses")
    }

    const POD_KILL: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: Experiment
metadata: {name: t}
spec:
  duration: 30s
  steadyState:
    probes:
      - name: web
        http:
          service: {namespace: shop, name: web, path: /}
  faults:
    - name: kill
      at: 5s
      for: 20s
      podKill:
        target: {namespaces: [shop], selector: app=web, mode: one}
  targets:
    - {probe: web, availability: ">= 99%"}
"#;

    #[test]
    fn namespaced_rules_are_checked_where_the_experiment_acts() {
        let needed = needed(&spec(POD_KILL), "steadfast");
        let has = |verb: &str, resource: &str, ns: &str| {
            needed
                .iter()
                .any(|n| n.verb == verb && n.resource == resource && n.namespace == ns)
        };
        assert!(has("delete", "pods", "shop"));
        assert!(has("create", "pods/eviction", "shop"));
        assert!(has("patch", "nodes", ""));
        assert!(has("get", "services", "shop"));
        assert!(has("update", "leases", "steadfast"));
        assert!(!has("delete", "pods", "steadfast"));
        assert!(!has("update", "leases", "shop"));
    }

    #[test]
    fn a_namespace_selector_needs_the_permissions_everywhere() {
        let yaml = POD_KILL.replace(
            "target: {namespaces: [shop], selector: app=web, mode: one}",
            "target: {namespaceSelector: team=web, selector: app=web, mode: one}",
        );
        let needed = needed(&spec(&yaml), "steadfast");
        assert!(
            needed
                .iter()
                .any(|n| n.verb == "delete" && n.resource == "pods" && n.namespace.is_empty())
        );
    }

    #[test]
    fn the_denial_reads_like_the_servers_403() {
        let n = Needed {
            group: String::new(),
            resource: "pods".into(),
            verb: "delete".into(),
            namespace: "shop".into(),
        };
        let line = PreflightError::Missing(n, "system:serviceaccount:steadfast:steadfast".into())
            .to_string();
        assert!(
            line.starts_with("missing permission: delete pods in namespace shop (hint: "),
            "{line}"
        );
        assert!(line.contains("pods is forbidden: User \"system:serviceaccount:steadfast:steadfast\" cannot delete resource \"pods\" in API group \"\" in the namespace \"shop\""), "{line}");
        assert!(!line.contains('\n'));
    }
}

//! `authorization.k8s.io/v1` SelfSubjectAccessReview and SelfSubjectRulesReview, which
//! `kubectl auth can-i` (and `--list`) create. Both evaluate the caller's own RBAC rules; with
//! enforcement off every review is allowed, as every request is.

use serde_json::{Value, json};

use super::{App, Req};
use crate::sandbox::rbac::{Attributes, Policy};
use crate::sandbox::status::ApiError;

/// The group the reviews belong to.
pub(crate) const GROUP: &str = "authorization.k8s.io";
/// Its only served version.
pub(crate) const VERSION: &str = "v1";

/// The discovery entry of the group's resources.
pub(crate) fn resources() -> Vec<Value> {
    vec![
        json!({
            "name": "selfsubjectaccessreviews", "singularName": "selfsubjectaccessreview",
            "namespaced": false, "kind": "SelfSubjectAccessReview", "verbs": ["create"],
        }),
        json!({
            "name": "selfsubjectrulesreviews", "singularName": "selfsubjectrulesreview",
            "namespaced": false, "kind": "SelfSubjectRulesReview", "verbs": ["create"],
        }),
    ]
}

fn field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The attributes a review asks about, as upstream's `ResourceAttributesFrom`.
fn attributes_of(spec: &Value) -> Option<Attributes> {
    if let Some(r) = spec.get("resourceAttributes").filter(|a| a.is_object()) {
        return Some(Attributes {
            resource_request: true,
            verb: field(r, "verb").into(),
            api_group: field(r, "group").into(),
            api_version: field(r, "version").into(),
            resource: field(r, "resource").into(),
            subresource: field(r, "subresource").into(),
            namespace: field(r, "namespace").into(),
            name: field(r, "name").into(),
            path: String::new(),
        });
    }
    let n = spec
        .get("nonResourceAttributes")
        .filter(|a| a.is_object())?;
    Some(Attributes {
        verb: field(n, "verb").into(),
        path: field(n, "path").into(),
        ..Attributes::default()
    })
}

fn echo(mut review: Value, kind: &str) -> Value {
    review["apiVersion"] = json!(format!("{GROUP}/{VERSION}"));
    review["kind"] = json!(kind);
    review["metadata"] = json!({"creationTimestamp": null});
    review
}

/// Answers a SelfSubjectAccessReview: the request echoed back with the caller's decision.
pub(crate) fn self_subject_access_review(app: &App, req: &Req) -> Result<Value, ApiError> {
    let review = req.json()?;
    let Some(attrs) = review.get("spec").and_then(attributes_of) else {
        return Err(ApiError::bad_request(
            "spec.resourceAttributes or spec.nonResourceAttributes is required; hint: send a SelfSubjectAccessReview",
        ));
    };
    let decision = app
        .shared
        .auth
        .authorize(&app.shared.store, &req.user, &attrs);
    let mut status = json!({"allowed": decision.allowed});
    if !decision.reason.is_empty() {
        status["reason"] = json!(decision.reason);
    }
    let mut review = echo(review, "SelfSubjectAccessReview");
    review["status"] = status;
    Ok(review)
}

/// Answers a SelfSubjectRulesReview: every rule bound to the caller in `spec.namespace`.
pub(crate) fn self_subject_rules_review(app: &App, req: &Req) -> Result<Value, ApiError> {
    let review = req.json()?;
    let namespace = review
        .pointer("/spec/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let status = if app.shared.auth.enforce {
        let (resource_rules, non_resource_rules, error) =
            Policy::load(&app.shared.store, &namespace).rules(&req.user);
        let mut status = json!({
            "resourceRules": resource_rules,
            "nonResourceRules": non_resource_rules,
            "incomplete": false,
        });
        if !error.is_empty() {
            status["evaluationError"] = json!(error);
        }
        status
    } else {
        json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        })
    };
    let mut review = echo(review, "SelfSubjectRulesReview");
    review["spec"] = json!({"namespace": namespace});
    review["status"] = status;
    Ok(review)
}

/// The group of SelfSubjectReview (`kubectl auth whoami`).
pub(crate) const AUTHENTICATION_GROUP: &str = "authentication.k8s.io";

/// The discovery entry of the authentication group's resources.
pub(crate) fn authentication_resources() -> Vec<Value> {
    vec![json!({
        "name": "selfsubjectreviews", "singularName": "selfsubjectreview",
        "namespaced": false, "kind": "SelfSubjectReview", "verbs": ["create"],
    })]
}

/// Answers a SelfSubjectReview: who the caller is, as the server authenticated it.
pub(crate) fn self_subject_review(req: &Req) -> Value {
    json!({
        "kind": "SelfSubjectReview",
        "apiVersion": format!("{AUTHENTICATION_GROUP}/{VERSION}"),
        "metadata": {"creationTimestamp": null},
        "status": {"userInfo": {"username": req.user.name, "groups": req.user.groups}},
    })
}

//! `authorization.k8s.io/v1` SelfSubjectAccessReview, which `kubectl auth can-i` creates. The
//! sandbox does not enforce RBAC, so every review is allowed, as every request is.

use serde_json::{Value, json};

use super::Req;
use crate::sandbox::status::ApiError;

/// The group the reviews belong to.
pub(crate) const GROUP: &str = "authorization.k8s.io";
/// Its only served version.
pub(crate) const VERSION: &str = "v1";

/// The discovery entry of the group's resources.
pub(crate) fn resources() -> Vec<Value> {
    vec![json!({
        "name": "selfsubjectaccessreviews", "singularName": "selfsubjectaccessreview",
        "namespaced": false, "kind": "SelfSubjectAccessReview", "verbs": ["create"],
    })]
}

/// Answers a review: the request echoed back with `status.allowed: true`.
pub(crate) fn self_subject_access_review(req: &Req) -> Result<Value, ApiError> {
    let mut review = req.json()?;
    let attributes = review
        .pointer("/spec/resourceAttributes")
        .or_else(|| review.pointer("/spec/nonResourceAttributes"));
    if attributes.is_none_or(|a| !a.is_object()) {
        return Err(ApiError::bad_request(
            "spec.resourceAttributes or spec.nonResourceAttributes is required; hint: send a SelfSubjectAccessReview",
        ));
    }
    review["apiVersion"] = json!(format!("{GROUP}/{VERSION}"));
    review["kind"] = json!("SelfSubjectAccessReview");
    review["metadata"] = json!({"creationTimestamp": null});
    review["status"] = json!({
        "allowed": true,
        "reason": "the sandbox does not enforce RBAC: every request is allowed",
    });
    Ok(review)
}

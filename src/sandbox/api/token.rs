//! `authentication.k8s.io/v1` TokenRequest: `POST .../serviceaccounts/NAME/token` issues a
//! bearer token that authenticates as that ServiceAccount.

use serde_json::{Value, json};

use super::App;
use crate::sandbox::resources::well_known;
use crate::sandbox::status::ApiError;

/// Default and longest lifetime reported; the sandbox does not expire tokens (see FIDELITY.md).
const EXPIRATION_SECONDS: i64 = 3600;

/// Issues a token for the ServiceAccount `ns/name`, answering the TokenRequest `body` with its
/// status filled in.
pub(crate) fn request(app: &App, ns: &str, name: &str, body: Value) -> Result<Value, ApiError> {
    let def = well_known::serviceaccounts();
    let account = app
        .shared
        .store
        .get(def.storage, ns, name)
        .ok_or_else(|| ApiError::not_found(def, name))?;
    let uid = account
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let token = app.shared.auth.tokens.issue(ns, name, uid);
    let seconds = body
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(EXPIRATION_SECONDS);
    let expires = chrono::Utc::now() + chrono::Duration::seconds(seconds);
    let audiences = body
        .pointer("/spec/audiences")
        .cloned()
        .filter(|a| a.as_array().is_some_and(|a| !a.is_empty()))
        .unwrap_or_else(|| json!(["https://kubernetes.default.svc"]));
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": null},
        "spec": {
            "audiences": audiences,
            "expirationSeconds": seconds,
            "boundObjectRef": body.pointer("/spec/boundObjectRef").cloned().unwrap_or(Value::Null),
        },
        "status": {
            "token": token,
            "expirationTimestamp": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        },
    }))
}

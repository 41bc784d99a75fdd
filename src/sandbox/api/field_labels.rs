//! Which field labels a resource's field selectors accept.
//!
//! Upstream converts each field label through the API version's registered conversion and
//! answers 400 `field label not supported: <label>` for any other, so a client that sends
//! core-v1 Event labels (`involvedObject.name`) to `events.k8s.io/v1` fails on a real cluster.
//! Only the Event kinds are checked here; other resources match any dotted path.

use crate::sandbox::resources::ResourceDef;
use crate::sandbox::selector::FieldSelector;
use crate::sandbox::status::ApiError;

/// `events.k8s.io/v1` Event field labels (upstream `pkg/apis/events/v1/conversion.go`).
const EVENTS_V1: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "reason",
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reportingController",
    "type",
];

/// Core `v1` Event field labels (upstream `pkg/apis/core/v1/conversion.go`).
const CORE_V1_EVENTS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

/// The field labels `def` accepts, when the sandbox knows them.
fn supported(def: &ResourceDef) -> Option<&'static [&'static str]> {
    match (def.group, def.plural) {
        ("events.k8s.io", "events") => Some(EVENTS_V1),
        ("", "events") => Some(CORE_V1_EVENTS),
        _ => None,
    }
}

/// 400 with the upstream message for the first label `def` does not support.
pub(crate) fn check(def: &ResourceDef, field: &FieldSelector) -> Result<(), ApiError> {
    let Some(allowed) = supported(def) else {
        return Ok(());
    };
    match field.labels().find(|label| !allowed.contains(label)) {
        Some(label) => Err(ApiError::bad_request(format!(
            "field label not supported: {label}"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::resources::{find, well_known};

    #[test]
    fn events_v1_refuses_core_labels_and_core_refuses_events_v1_labels() {
        let events_v1 = find("events.k8s.io", "v1", "events").unwrap();
        let core = well_known::events();
        let involved = FieldSelector::parse("involvedObject.name=web").unwrap();
        let regarding = FieldSelector::parse("regarding.name=web,type=Normal").unwrap();
        let err = check(events_v1, &involved).unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(
            err.message,
            "field label not supported: involvedObject.name"
        );
        assert!(check(events_v1, &regarding).is_ok());
        assert!(check(core, &involved).is_ok());
        assert_eq!(
            check(core, &regarding).unwrap_err().message,
            "field label not supported: regarding.name"
        );
        let pods = well_known::pods();
        assert!(check(pods, &FieldSelector::parse("spec.nodeName=n").unwrap()).is_ok());
    }
}

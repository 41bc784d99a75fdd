//! ServiceAccount controller: every namespace that is not terminating has a `default`
//! ServiceAccount, re-created when deleted, as kube-controller-manager's
//! `serviceaccount-controller` keeps it.

use std::sync::Arc;

use serde_json::json;

use super::util::{s, terminating};
use crate::sandbox::cluster::Shared;
use crate::sandbox::resources::well_known;

/// Name of the account every namespace gets.
const DEFAULT: &str = "default";

/// Creates the missing `default` ServiceAccounts.
pub(crate) fn sync(shared: &Arc<Shared>) {
    let (namespaces, _) = shared.store.list("namespaces", None);
    for ns in namespaces.iter().filter(|n| !terminating(n)) {
        let name = s(ns, "/metadata/name");
        if s(ns, "/status/phase") == "Terminating"
            || shared.store.get("serviceaccounts", name, DEFAULT).is_some()
        {
            continue;
        }
        // A concurrent create through the API wins; AlreadyExists is fine.
        let _ = shared.store.create(
            well_known::serviceaccounts(),
            name,
            json!({"metadata": {"name": DEFAULT}}),
        );
    }
}

//! Discovery documents (`/api`, `/apis`, resource lists, `/version`), in the legacy JSON form.
//!
//! Clients asking for aggregated discovery (`as=APIGroupDiscoveryList`) get these too, with a
//! plain `application/json` Content-Type, and fall back to legacy discovery as kubectl does.

use serde_json::{Value, json};

use super::review;
use crate::sandbox::resources::{self, ResourceDef};

const MAIN_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// `GET /version`.
pub(crate) fn version() -> Value {
    json!({
        "major": "1", "minor": "32", "gitVersion": "v1.32.0", "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2024-12-11T00:00:00Z", "goVersion": "go1.23.4",
        "compiler": "gc", "platform": "linux/amd64",
    })
}

/// `GET /api`.
pub(crate) fn api_versions(addr: &str) -> Value {
    json!({
        "kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr}],
    })
}

fn group_entry(group: &str, version: &str) -> Value {
    let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
}

/// The resource table's groups, then the access-review group (created, never stored).
fn all_groups() -> Vec<(&'static str, &'static str)> {
    let mut groups = resources::groups();
    groups.push((review::GROUP, review::VERSION));
    groups.push((review::AUTHENTICATION_GROUP, review::VERSION));
    groups
}

/// `GET /apis`.
pub(crate) fn api_groups() -> Value {
    let groups: Vec<Value> = all_groups()
        .into_iter()
        .map(|(g, v)| group_entry(g, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}`.
pub(crate) fn api_group(group: &str) -> Option<Value> {
    let (g, v) = all_groups().into_iter().find(|(g, _)| *g == group)?;
    let mut e = group_entry(g, v);
    e["kind"] = json!("APIGroup");
    e["apiVersion"] = json!("v1");
    Some(e)
}

fn categories(def: &ResourceDef) -> Vec<&'static str> {
    match def.plural {
        "pods" | "services" | "deployments" | "replicasets" | "daemonsets" | "statefulsets" => {
            vec!["all"]
        }
        _ => vec![],
    }
}

fn sub_entry(def: &ResourceDef, sub: &str) -> Value {
    let mut e = json!({
        "name": format!("{}/{sub}", def.plural), "singularName": "", "namespaced": def.namespaced,
        "kind": def.kind, "verbs": ["get", "patch", "update"],
    });
    match sub {
        "eviction" => {
            e["group"] = json!("policy");
            e["version"] = json!("v1");
            e["kind"] = json!("Eviction");
            e["verbs"] = json!(["create"]);
        }
        "scale" => {
            e["group"] = json!("autoscaling");
            e["version"] = json!("v1");
            e["kind"] = json!("Scale");
        }
        "token" => {
            e["group"] = json!("authentication.k8s.io");
            e["version"] = json!("v1");
            e["kind"] = json!("TokenRequest");
            e["verbs"] = json!(["create"]);
        }
        "binding" => {
            e["kind"] = json!("Binding");
            e["verbs"] = json!(["create"]);
        }
        "proxy" => {
            e["kind"] = json!(format!("{}ProxyOptions", def.kind));
            e["verbs"] = json!(["create", "delete", "get", "patch", "update"]);
        }
        "log" => {
            e["verbs"] = json!(["get"]);
        }
        _ => {}
    }
    e
}

/// `GET /api/v1` or `GET /apis/{group}/{version}`.
pub(crate) fn resource_list(group: &str, version: &str) -> Option<Value> {
    let defs: Vec<&ResourceDef> = resources::RESOURCES
        .iter()
        .filter(|d| d.group == group && d.version == version)
        .collect();
    if (group, version) == (review::GROUP, review::VERSION) {
        return Some(json!({"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": format!("{group}/{version}"), "resources": review::resources()}));
    }
    if (group, version) == (review::AUTHENTICATION_GROUP, review::VERSION) {
        return Some(json!({"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": format!("{group}/{version}"), "resources": review::authentication_resources()}));
    }
    if defs.is_empty() {
        return None;
    }
    let mut list = Vec::new();
    for d in defs {
        let verbs: Vec<&str> = if d.read_only {
            vec!["get", "list", "watch"]
        } else {
            MAIN_VERBS.to_vec()
        };
        let mut e = json!({
            "name": d.plural, "singularName": d.singular, "namespaced": d.namespaced,
            "kind": d.kind, "verbs": verbs, "storageVersionHash": "",
        });
        if !d.short_names.is_empty() {
            e["shortNames"] = json!(d.short_names);
        }
        let cats = categories(d);
        if !cats.is_empty() {
            e["categories"] = json!(cats);
        }
        list.push(e);
        for sub in d.subresources {
            list.push(sub_entry(d, sub));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}),
    )
}

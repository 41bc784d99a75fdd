//! `meta.k8s.io/v1` `Table` responses, so `kubectl get` prints the columns it prints against a
//! real cluster (priority 1 columns appear with `-o wide`).

use serde_json::{Value, json};

use crate::sandbox::controllers::util::{condition, i, s};
use crate::sandbox::resources::ResourceDef;

/// Kubernetes' short human duration (`5s`, `3m2s`, `4h`, `2d3h`), as kubectl's AGE column.
pub(crate) fn human_age(ts: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(ts) else {
        return "<unknown>".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => {
            let (m, r) = (s / 60, s % 60);
            if r == 0 {
                format!("{m}m")
            } else {
                format!("{m}m{r}s")
            }
        }
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 8 * 3600 => {
            let (h, m) = (s / 3600, (s % 3600) / 60);
            if m == 0 {
                format!("{h}h")
            } else {
                format!("{h}h{m}m")
            }
        }
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn col(name: &str, ty: &str, priority: i64) -> Value {
    json!({"name": name, "type": ty, "format": if name == "Name" { "name" } else { "" }, "description": "", "priority": priority})
}

fn age(o: &Value) -> Value {
    json!(human_age(s(o, "/metadata/creationTimestamp")))
}

fn name(o: &Value) -> Value {
    json!(s(o, "/metadata/name"))
}

fn columns(def: &ResourceDef) -> Vec<Value> {
    let c = |n: &str, t: &str, p: i64| col(n, t, p);
    match (def.group, def.plural) {
        ("", "nodes") => vec![
            c("Name", "string", 0),
            c("Status", "string", 0),
            c("Roles", "string", 0),
            c("Age", "string", 0),
            c("Version", "string", 0),
            c("Internal-IP", "string", 1),
            c("External-IP", "string", 1),
            c("OS-Image", "string", 1),
            c("Kernel-Version", "string", 1),
            c("Container-Runtime", "string", 1),
        ],
        ("", "pods") => vec![
            c("Name", "string", 0),
            c("Ready", "string", 0),
            c("Status", "string", 0),
            c("Restarts", "string", 0),
            c("Age", "string", 0),
            c("IP", "string", 1),
            c("Node", "string", 1),
            c("Nominated Node", "string", 1),
            c("Readiness Gates", "string", 1),
        ],
        ("apps", "deployments") => vec![
            c("Name", "string", 0),
            c("Ready", "string", 0),
            c("Up-to-date", "integer", 0),
            c("Available", "integer", 0),
            c("Age", "string", 0),
            c("Containers", "string", 1),
            c("Images", "string", 1),
            c("Selector", "string", 1),
        ],
        ("apps", "replicasets") => vec![
            c("Name", "string", 0),
            c("Desired", "integer", 0),
            c("Current", "integer", 0),
            c("Ready", "integer", 0),
            c("Age", "string", 0),
            c("Containers", "string", 1),
            c("Images", "string", 1),
            c("Selector", "string", 1),
        ],
        ("", "services") => vec![
            c("Name", "string", 0),
            c("Type", "string", 0),
            c("Cluster-IP", "string", 0),
            c("External-IP", "string", 0),
            c("Port(s)", "string", 0),
            c("Age", "string", 0),
            c("Selector", "string", 1),
        ],
        (_, "events") => vec![
            c("Last Seen", "string", 0),
            c("Type", "string", 0),
            c("Reason", "string", 0),
            c("Object", "string", 0),
            c("Message", "string", 0),
        ],
        ("", "namespaces") => vec![
            c("Name", "string", 0),
            c("Status", "string", 0),
            c("Age", "string", 0),
        ],
        ("policy", "poddisruptionbudgets") => vec![
            c("Name", "string", 0),
            c("Min Available", "string", 0),
            c("Max Unavailable", "string", 0),
            c("Allowed Disruptions", "integer", 0),
            c("Age", "string", 0),
        ],
        ("discovery.k8s.io", "endpointslices") => vec![
            c("Name", "string", 0),
            c("AddressType", "string", 0),
            c("Ports", "string", 0),
            c("Endpoints", "string", 0),
            c("Age", "string", 0),
        ],
        ("coordination.k8s.io", "leases") => vec![
            c("Name", "string", 0),
            c("Holder", "string", 0),
            c("Age", "string", 0),
        ],
        _ => vec![c("Name", "string", 0), c("Age", "string", 0)],
    }
}

fn join(items: impl Iterator<Item = String>) -> String {
    let v: Vec<String> = items.collect();
    if v.is_empty() {
        "<none>".into()
    } else {
        v.join(",")
    }
}

fn selector_string(sel: Option<&Value>) -> String {
    join(
        sel.and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .into_iter(),
    )
}

fn containers(o: &Value, field: &str) -> String {
    join(
        o.pointer("/spec/template/spec/containers")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .map(|c| s(c, field).to_string())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .into_iter(),
    )
}

fn pod_status(o: &Value) -> String {
    if o.pointer("/metadata/deletionTimestamp").is_some() {
        return "Terminating".into();
    }
    let phase = s(o, "/status/phase");
    if phase == "Pending" && !s(o, "/spec/nodeName").is_empty() {
        return "ContainerCreating".into();
    }
    if phase.is_empty() {
        "Pending".into()
    } else {
        phase.to_string()
    }
}

fn cells(def: &ResourceDef, o: &Value) -> Vec<Value> {
    match (def.group, def.plural) {
        ("", "nodes") => {
            let status = match condition(o, "Ready") {
                Some("True") => "Ready",
                _ => "NotReady",
            };
            let status = if o.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true)
            {
                format!("{status},SchedulingDisabled")
            } else {
                status.to_string()
            };
            let ip = |ty: &str| {
                o.pointer("/status/addresses")
                    .and_then(Value::as_array)
                    .and_then(|a| a.iter().find(|x| x["type"] == json!(ty)))
                    .map(|x| s(x, "/address").to_string())
                    .unwrap_or_else(|| "<none>".into())
            };
            vec![
                name(o),
                json!(status),
                json!("<none>"),
                age(o),
                json!(s(o, "/status/nodeInfo/kubeletVersion")),
                json!(ip("InternalIP")),
                json!(ip("ExternalIP")),
                json!(s(o, "/status/nodeInfo/osImage")),
                json!(s(o, "/status/nodeInfo/kernelVersion")),
                json!(s(o, "/status/nodeInfo/containerRuntimeVersion")),
            ]
        }
        ("", "pods") => {
            let statuses = o
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array);
            let total = o
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = statuses.map_or(0, |c| {
                c.iter().filter(|c| c["ready"] == json!(true)).count()
            });
            let restarts: i64 =
                statuses.map_or(0, |c| c.iter().map(|c| i(c, "/restartCount", 0)).sum());
            let ip = s(o, "/status/podIP");
            let node = s(o, "/spec/nodeName");
            vec![
                name(o),
                json!(format!("{ready}/{total}")),
                json!(pod_status(o)),
                json!(restarts.to_string()),
                age(o),
                json!(if ip.is_empty() { "<none>" } else { ip }),
                json!(if node.is_empty() { "<none>" } else { node }),
                json!("<none>"),
                json!("<none>"),
            ]
        }
        ("apps", "deployments") => vec![
            name(o),
            json!(format!(
                "{}/{}",
                i(o, "/status/readyReplicas", 0),
                i(o, "/spec/replicas", 0)
            )),
            json!(i(o, "/status/updatedReplicas", 0)),
            json!(i(o, "/status/availableReplicas", 0)),
            age(o),
            json!(containers(o, "/name")),
            json!(containers(o, "/image")),
            json!(selector_string(o.pointer("/spec/selector/matchLabels"))),
        ],
        ("apps", "replicasets") => vec![
            name(o),
            json!(i(o, "/spec/replicas", 0)),
            json!(i(o, "/status/replicas", 0)),
            json!(i(o, "/status/readyReplicas", 0)),
            age(o),
            json!(containers(o, "/name")),
            json!(containers(o, "/image")),
            json!(selector_string(o.pointer("/spec/selector/matchLabels"))),
        ],
        ("", "services") => {
            let ports = join(
                o.pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .map(|ps| {
                        ps.iter()
                            .map(|p| format!("{}/{}", i(p, "/port", 0), s(p, "/protocol")))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
                    .into_iter(),
            );
            vec![
                name(o),
                json!(s(o, "/spec/type")),
                json!(s(o, "/spec/clusterIP")),
                json!("<none>"),
                json!(ports),
                age(o),
                json!(selector_string(o.pointer("/spec/selector"))),
            ]
        }
        (_, "events") => {
            let last = [
                "/lastTimestamp",
                "/deprecatedLastTimestamp",
                "/eventTime",
                "/metadata/creationTimestamp",
            ]
            .iter()
            .map(|p| s(o, p))
            .find(|v| !v.is_empty())
            .unwrap_or_default();
            let inv = if o.get("regarding").is_some() {
                "/regarding"
            } else {
                "/involvedObject"
            };
            let msg = if o.get("note").is_some() {
                s(o, "/note")
            } else {
                s(o, "/message")
            };
            vec![
                json!(human_age(last)),
                json!(s(o, "/type")),
                json!(s(o, "/reason")),
                json!(format!(
                    "{}/{}",
                    s(o, &format!("{inv}/kind")).to_lowercase(),
                    s(o, &format!("{inv}/name"))
                )),
                json!(msg),
            ]
        }
        ("", "namespaces") => vec![name(o), json!(s(o, "/status/phase")), age(o)],
        ("policy", "poddisruptionbudgets") => {
            let show = |p: &str| {
                o.pointer(p)
                    .map(|v| {
                        v.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .unwrap_or_else(|| "N/A".into())
            };
            vec![
                name(o),
                json!(show("/spec/minAvailable")),
                json!(show("/spec/maxUnavailable")),
                json!(i(o, "/status/disruptionsAllowed", 0)),
                age(o),
            ]
        }
        ("discovery.k8s.io", "endpointslices") => {
            let ports = join(
                o.pointer("/ports")
                    .and_then(Value::as_array)
                    .map(|ps| {
                        ps.iter()
                            .map(|p| i(p, "/port", 0).to_string())
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
                    .into_iter(),
            );
            let eps = join(
                o.pointer("/endpoints")
                    .and_then(Value::as_array)
                    .map(|es| {
                        es.iter()
                            .map(|e| s(e, "/addresses/0").to_string())
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
                    .into_iter(),
            );
            vec![
                name(o),
                json!(s(o, "/addressType")),
                json!(ports),
                json!(eps),
                age(o),
            ]
        }
        ("coordination.k8s.io", "leases") => {
            vec![name(o), json!(s(o, "/spec/holderIdentity")), age(o)]
        }
        _ => vec![name(o), age(o)],
    }
}

/// A Table of `objects`; `include` is the `includeObject` parameter (None, Metadata, Object).
pub(crate) fn table(
    def: &ResourceDef,
    objects: &[Value],
    include: &str,
    list_meta: Value,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let object = match include {
                "None" => Value::Null,
                "Object" => o.clone(),
                _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}),
            };
            json!({"cells": cells(def, o), "object": object})
        })
        .collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
        "columnDefinitions": columns(def), "rows": rows,
    })
}

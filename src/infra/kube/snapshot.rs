//! Reads the cluster into the advise snapshot with list calls only: Deployments,
//! StatefulSets, pods, nodes, PodDisruptionBudgets, Services and EndpointSlices.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Container, Node, Pod, PodSpec, PodTemplateSpec, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kube::api::ListParams;

use super::client::KubeClient;
use super::error::KubeError;
use crate::advise::model::{
    Budget, IntOrPercent, NodeFacts, PodFacts, Resources, ServiceFacts, Snapshot, Workload,
    WorkloadKind, ZONE_LABEL,
};

/// The label EndpointSlices carry with their Service's name.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Kubernetes' default `terminationGracePeriodSeconds`.
const DEFAULT_GRACE_SECONDS: u64 = 30;

/// Reads one namespace (`Some`) or all of them (`None`); nodes are always cluster-wide.
///
/// # Errors
/// The first list call that fails.
pub async fn read(client: &KubeClient, namespace: Option<&str>) -> Result<Snapshot, KubeError> {
    let params = ListParams::default();
    let c = client.raw().clone();
    let deployments: Vec<Deployment> = client
        .list_all(&scoped(&c, namespace), &params, "deployments")
        .await?;
    let stateful: Vec<StatefulSet> = client
        .list_all(&scoped(&c, namespace), &params, "statefulsets")
        .await?;
    let pods: Vec<Pod> = client
        .list_all(&scoped(&c, namespace), &params, "pods")
        .await?;
    let nodes: Vec<Node> = client
        .list_all(&Api::all(c.clone()), &params, "nodes")
        .await?;
    let budgets: Vec<PodDisruptionBudget> = client
        .list_all(&scoped(&c, namespace), &params, "poddisruptionbudgets")
        .await?;
    let services: Vec<Service> = client
        .list_all(&scoped(&c, namespace), &params, "services")
        .await?;
    let slices: Vec<EndpointSlice> = client
        .list_all(&scoped(&c, namespace), &params, "endpointslices")
        .await?;

    let mut workloads: Vec<Workload> = deployments
        .iter()
        .filter_map(|d| {
            let spec = &d.spec;
            workload(
                WorkloadKind::Deployment,
                &d.metadata,
                spec.replicas,
                &spec.selector,
                &spec.template,
            )
        })
        .collect();
    workloads.extend(stateful.iter().filter_map(|s| {
        let spec = &s.spec;
        workload(
            WorkloadKind::StatefulSet,
            &s.metadata,
            spec.replicas,
            &spec.selector,
            &spec.template,
        )
    }));
    Ok(Snapshot {
        workloads,
        pods: pods.iter().map(pod).collect(),
        nodes: nodes.iter().map(node).collect(),
        budgets: budgets.iter().map(budget).collect(),
        services: services.iter().map(|s| service(s, &slices)).collect(),
        node_groups: Vec::new(),
    })
}

fn scoped<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as kube::Resource>::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

fn workload(
    kind: WorkloadKind,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    replicas: Option<i32>,
    selector: &LabelSelector,
    template: &PodTemplateSpec,
) -> Option<Workload> {
    let (namespace, name) = name_of(meta);
    let spec = template.spec.as_ref()?;
    let pod_labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    Some(Workload {
        kind,
        namespace,
        name,
        replicas: replicas.map_or(1, |r| u32::try_from(r).unwrap_or(0)),
        pod_labels,
        selector: selector.match_labels.clone().unwrap_or_default(),
        containers_without_readiness: spec
            .containers
            .iter()
            .filter(|c| c.readiness_probe.is_none())
            .map(|c| c.name.clone())
            .collect(),
        termination_grace_seconds: spec
            .termination_grace_period_seconds
            .map_or(DEFAULT_GRACE_SECONDS, |s| u64::try_from(s).unwrap_or(0)),
        pre_stop_seconds: spec.containers.iter().filter_map(pre_stop_seconds).max(),
        spreads_across_zones: spreads_across_zones(spec),
        node_selector: spec.node_selector.clone().unwrap_or_default(),
        requests: spec
            .containers
            .iter()
            .map(requests)
            .fold(Resources::default(), Resources::plus),
        readiness_http: spec.containers.iter().find_map(|c| {
            let get = c.readiness_probe.as_ref()?.http_get.as_ref()?;
            let port = match &get.port {
                IntOrString::Int(n) => n.to_string(),
                IntOrString::String(s) => s.clone(),
            };
            Some((port, get.path.clone().unwrap_or_else(|| "/".into())))
        }),
    })
}

/// A `sleep` preStop action, or an exec whose command runs `sleep N`.
fn pre_stop_seconds(c: &Container) -> Option<u64> {
    let pre_stop = c.lifecycle.as_ref()?.pre_stop.as_ref()?;
    if let Some(sleep) = &pre_stop.sleep {
        return u64::try_from(sleep.seconds).ok();
    }
    let command = pre_stop.exec.as_ref()?.command.as_ref()?;
    sleep_in(&command.join(" "))
}

/// The seconds of the first `sleep N` in a shell line.
fn sleep_in(line: &str) -> Option<u64> {
    let mut words = line.split(|c: char| c.is_whitespace() || c == ';' || c == '&');
    while let Some(word) = words.next() {
        if word.ends_with("sleep") {
            let arg = words.find(|w| !w.is_empty())?;
            let seconds = arg.trim_end_matches('s');
            return seconds
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| s.ceil() as u64);
        }
    }
    None
}

fn spreads_across_zones(spec: &PodSpec) -> bool {
    let spread = spec
        .topology_spread_constraints
        .iter()
        .flatten()
        .any(|t| t.topology_key == ZONE_LABEL);
    let anti = spec
        .affinity
        .as_ref()
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .is_some_and(|a| {
            a.required_during_scheduling_ignored_during_execution
                .iter()
                .flatten()
                .any(|t| t.topology_key == ZONE_LABEL)
                || a.preferred_during_scheduling_ignored_during_execution
                    .iter()
                    .flatten()
                    .any(|t| t.pod_affinity_term.topology_key == ZONE_LABEL)
        });
    spread || anti
}

fn requests(c: &Container) -> Resources {
    let Some(requests) = c.resources.as_ref().and_then(|r| r.requests.as_ref()) else {
        return Resources::default();
    };
    Resources {
        cpu_millis: requests
            .get("cpu")
            .and_then(|q| cpu_millis(&q.0))
            .unwrap_or(0),
        memory_bytes: requests
            .get("memory")
            .and_then(|q| bytes(&q.0))
            .unwrap_or(0),
    }
}

fn pod(p: &Pod) -> PodFacts {
    let (namespace, name) = name_of(&p.metadata);
    PodFacts {
        namespace,
        name,
        labels: p.metadata.labels.clone().unwrap_or_default(),
        node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
        terminating: p.metadata.deletion_timestamp.is_some()
            || p.status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .is_some_and(|phase| phase == "Succeeded" || phase == "Failed"),
    }
}

fn node(n: &Node) -> NodeFacts {
    let labels: BTreeMap<String, String> = n.metadata.labels.clone().unwrap_or_default();
    let allocatable = n.status.as_ref().and_then(|s| s.allocatable.as_ref());
    let get = |key: &str, parse: fn(&str) -> Option<u64>| {
        allocatable
            .and_then(|a| a.get(key))
            .and_then(|q| parse(&q.0))
            .unwrap_or(0)
    };
    NodeFacts {
        name: n.metadata.name.clone().unwrap_or_default(),
        zone: labels.get(ZONE_LABEL).cloned(),
        instance_id: n
            .spec
            .as_ref()
            .and_then(|s| s.provider_id.as_deref())
            .and_then(crate::plan::zones::parse_provider_id)
            .map(|(_, id)| id),
        allocatable: Resources {
            cpu_millis: get("cpu", cpu_millis),
            memory_bytes: get("memory", bytes),
        },
        labels,
    }
}

fn int_or_percent(v: &IntOrString) -> Option<IntOrPercent> {
    match v {
        IntOrString::Int(n) => u32::try_from(*n).ok().map(IntOrPercent::Count),
        IntOrString::String(s) => match s.strip_suffix('%') {
            Some(p) => p.trim().parse().ok().map(IntOrPercent::Percent),
            None => s.trim().parse().ok().map(IntOrPercent::Count),
        },
    }
}

fn budget(b: &PodDisruptionBudget) -> Budget {
    let (namespace, name) = name_of(&b.metadata);
    let spec = b.spec.as_ref();
    let selector = spec.and_then(|s| s.selector.as_ref()).and_then(|s| {
        // Expressions are not evaluated: such a budget is treated as matching nothing rather
        // than matching wrongly.
        let no_expressions = s.match_expressions.as_ref().is_none_or(Vec::is_empty);
        no_expressions.then(|| s.match_labels.clone().unwrap_or_default())
    });
    Budget {
        namespace,
        name,
        selector,
        min_available: spec
            .and_then(|s| s.min_available.as_ref())
            .and_then(int_or_percent),
        max_unavailable: spec
            .and_then(|s| s.max_unavailable.as_ref())
            .and_then(int_or_percent),
        disruptions_allowed: b
            .status
            .as_ref()
            .and_then(|s| s.disruptions_allowed.map(i64::from)),
    }
}

fn service(s: &Service, slices: &[EndpointSlice]) -> ServiceFacts {
    let (namespace, name) = name_of(&s.metadata);
    let ready_endpoints = slices
        .iter()
        .filter(|slice| {
            slice.metadata.namespace.as_deref() == Some(namespace.as_str())
                && slice
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME_LABEL))
                    == Some(&name)
        })
        .flat_map(|slice| slice.endpoints.iter().flatten())
        .filter(|e| {
            // A missing `ready` condition means ready (discovery.k8s.io/v1).
            e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true)
        })
        .count();
    let spec = s.spec.as_ref();
    ServiceFacts {
        selector: spec.and_then(|s| s.selector.clone()).unwrap_or_default(),
        ready_endpoints: u32::try_from(ready_endpoints).unwrap_or(u32::MAX),
        port: spec
            .and_then(|s| s.ports.as_ref())
            .and_then(|p| p.first())
            .and_then(|p| u16::try_from(p.port).ok()),
        namespace,
        name,
    }
}

/// A CPU quantity (`2`, `500m`, `1.5`) in millicores.
fn cpu_millis(q: &str) -> Option<u64> {
    let q = q.trim();
    if let Some(m) = q.strip_suffix('m') {
        return m.parse().ok();
    }
    q.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| (v * 1000.0).round() as u64)
}

/// A memory quantity (`128Mi`, `1G`, `1e9`, `1000`) in bytes.
fn bytes(q: &str) -> Option<u64> {
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("m", 1e-3),
    ];
    let q = q.trim();
    let (number, scale) = SUFFIXES
        .iter()
        .find_map(|(s, f)| q.strip_suffix(s).map(|n| (n, *f)))
        .unwrap_or((q, 1.0));
    number
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| (v * scale).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_like_kubernetes() {
        assert_eq!(cpu_millis("500m"), Some(500));
        assert_eq!(cpu_millis("2"), Some(2000));
        assert_eq!(cpu_millis("1.5"), Some(1500));
        assert_eq!(bytes("128Mi"), Some(128 << 20));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("1e3"), Some(1000));
        assert_eq!(bytes("bogus"), None);
    }

    #[test]
    fn sleep_is_found_in_pre_stop_commands() {
        assert_eq!(sleep_in("/bin/sh -c sleep 15"), Some(15));
        assert_eq!(sleep_in("sh -c echo bye; sleep 5s"), Some(5));
        assert_eq!(sleep_in("/usr/bin/sleep 2.5"), Some(3));
        assert_eq!(sleep_in("nginx -s quit"), None);
    }

    #[test]
    fn budgets_read_counts_and_percentages() {
        assert_eq!(
            int_or_percent(&IntOrString::String("50%".into())),
            Some(IntOrPercent::Percent(50))
        );
        assert_eq!(
            int_or_percent(&IntOrString::Int(0)),
            Some(IntOrPercent::Count(0))
        );
    }
}

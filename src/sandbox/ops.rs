//! Semantics shared by the API handlers and the controllers: admission defaults, deletion
//! (graceful for pods, finalizers, namespaces), eviction against PodDisruptionBudgets and
//! event recording.

use serde_json::{Value, json};

use super::pod_defaults;
use super::resources::{ResourceDef, well_known};
use super::selector::LabelSelector;
use super::status::ApiError;
use super::store::{Txn, now_micro, now_rfc3339};

/// Options of a DELETE, from the query string or a `DeleteOptions` body.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeleteOpts {
    /// `gracePeriodSeconds`; `None` uses the object's own default.
    pub grace: Option<i64>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `propagationPolicy` (`Orphan` keeps dependents).
    pub propagation: Option<String>,
}

impl DeleteOpts {
    /// Reads a `DeleteOptions` body (any apiVersion) over query defaults.
    pub fn merge_body(mut self, body: &Value) -> Self {
        if let Some(g) = body.get("gracePeriodSeconds").and_then(Value::as_i64) {
            self.grace = Some(g);
        }
        if let Some(u) = body.pointer("/preconditions/uid").and_then(Value::as_str) {
            self.uid = Some(u.to_string());
        }
        if let Some(r) = body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
        {
            self.resource_version = Some(r.to_string());
        }
        if let Some(p) = body.get("propagationPolicy").and_then(Value::as_str) {
            self.propagation = Some(p.to_string());
        } else if body.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
            self.propagation = Some("Orphan".into());
        }
        self
    }
}

/// Defaults the API server fills on create, per resource.
pub(crate) fn admit_create(def: &ResourceDef, obj: &mut Value, toleration_seconds: i64) {
    match (def.group, def.plural) {
        ("", "pods") => {
            let spec = &mut obj["spec"];
            default(spec, "terminationGracePeriodSeconds", json!(30));
            default(spec, "restartPolicy", json!("Always"));
            default(spec, "schedulerName", json!("default-scheduler"));
            default(spec, "dnsPolicy", json!("ClusterFirst"));
            default(spec, "serviceAccountName", json!("default"));
            let tolerations = spec["tolerations"].as_array().cloned().unwrap_or_default();
            let mut tolerations = tolerations;
            // The DefaultTolerationSeconds admission plugin.
            for key in [
                "node.kubernetes.io/not-ready",
                "node.kubernetes.io/unreachable",
            ] {
                if !tolerations.iter().any(|t| t["key"] == json!(key)) {
                    tolerations.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": toleration_seconds}));
                }
            }
            spec["tolerations"] = json!(tolerations);
            if let Some(cs) = spec["containers"].as_array_mut() {
                for c in cs {
                    default(c, "imagePullPolicy", json!("IfNotPresent"));
                    default(c, "terminationMessagePath", json!("/dev/termination-log"));
                }
            }
            pod_defaults::default_pod_spec(spec);
            pod_defaults::mount_service_account_token(spec);
            if obj.pointer("/status/phase").is_none() {
                obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
            }
        }
        ("", "services") => {
            let spec = &mut obj["spec"];
            default(spec, "type", json!("ClusterIP"));
            default(spec, "sessionAffinity", json!("None"));
            if spec
                .get("clusterIP")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                let ip = format!(
                    "10.96.{}.{}",
                    rand::random_range(0..255u8),
                    rand::random_range(1..255u8)
                );
                spec["clusterIP"] = json!(ip);
                spec["clusterIPs"] = json!([ip]);
            }
            if let Some(ports) = spec["ports"].as_array_mut() {
                for p in ports {
                    default(p, "protocol", json!("TCP"));
                    let port = p["port"].clone();
                    default(p, "targetPort", port);
                }
            }
            default(&mut obj["status"], "loadBalancer", json!({}));
        }
        ("", "namespaces") => {
            let name = obj["metadata"]["name"].clone();
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
        }
        ("", "nodes") => admit_node(obj),
        ("apps", "deployments") => {
            let spec = &mut obj["spec"];
            default(spec, "replicas", json!(1));
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "progressDeadlineSeconds", json!(600));
            default(
                spec,
                "strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
            );
        }
        ("apps", "replicasets") | ("apps", "statefulsets") => {
            default(&mut obj["spec"], "replicas", json!(1));
        }
        _ => {}
    }
    admit_write(def, obj);
}

/// Defaults the API server fills on every write (create and update): probe fields in the pod
/// templates of workloads.
pub(crate) fn admit_write(def: &ResourceDef, obj: &mut Value) {
    if def.group == "apps"
        && let Some(spec) = obj
            .pointer_mut("/spec/template/spec")
            .filter(|s| s.is_object())
    {
        pod_defaults::default_pod_spec(spec);
    }
}

/// Node writes: the API server stamps `timeAdded` on NoExecute taints.
pub(crate) fn admit_node(obj: &mut Value) {
    if let Some(taints) = obj
        .pointer_mut("/spec/taints")
        .and_then(Value::as_array_mut)
    {
        for t in taints {
            if t["effect"] == json!("NoExecute") && t.get("timeAdded").is_none() {
                t["timeAdded"] = json!(now_rfc3339());
            }
        }
    }
}

fn default(obj: &mut Value, key: &str, value: Value) {
    if !obj.is_object() {
        *obj = json!({});
    }
    if obj.get(key).is_none_or(Value::is_null) {
        obj[key] = value;
    }
}

fn check_preconditions(
    def: &ResourceDef,
    obj: &Value,
    name: &str,
    opts: &DeleteOpts,
) -> Result<(), ApiError> {
    if let Some(uid) = &opts.uid
        && obj.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid.as_str())
    {
        return Err(ApiError::conflict(def, name));
    }
    if let Some(rv) = &opts.resource_version
        && obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            != Some(rv.as_str())
    {
        return Err(ApiError::conflict(def, name));
    }
    Ok(())
}

/// What a delete did.
#[derive(Debug)]
pub(crate) enum Deleted {
    /// The object is gone; carries its last state.
    Gone(Value),
    /// Deletion started (graceful pod, finalizers, namespace); carries the updated object.
    Pending(Value),
}

/// Deletes as kube-apiserver does: pods with a grace period get a `deletionTimestamp` and stay
/// until their kubelet confirms; objects with finalizers wait for them; namespaces terminate.
pub(crate) fn delete(
    txn: &mut Txn<'_>,
    def: &'static ResourceDef,
    ns: &str,
    name: &str,
    opts: &DeleteOpts,
) -> Result<Deleted, ApiError> {
    let obj = txn
        .get(def.storage, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(def, name))?;
    check_preconditions(def, &obj, name, opts)?;
    if opts.propagation.as_deref() == Some("Orphan") {
        orphan_dependents(txn, &obj);
    }
    if def.storage == "pods" {
        let scheduled = obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some();
        let finished = matches!(
            obj.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        );
        let default_grace = obj
            .pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(30);
        let grace = opts.grace.unwrap_or(default_grace).max(0);
        if !scheduled || finished || grace == 0 {
            return txn.remove(def, ns, name, None).map(Deleted::Gone);
        }
        let current = obj
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64);
        if current.is_some_and(|c| c <= grace) {
            return Ok(Deleted::Pending(obj));
        }
        let at = chrono::Utc::now() + chrono::Duration::seconds(grace);
        let ts = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let updated = txn.mark_deleting(def, ns, name, ts, Some(grace), |_| {})?;
        return Ok(Deleted::Pending(updated));
    }
    let finalizers = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    if def.storage == "namespaces" {
        if obj.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(Deleted::Pending(obj));
        }
        let updated = txn.mark_deleting(def, ns, name, now_rfc3339(), None, |o| {
            o["status"]["phase"] = json!("Terminating");
        })?;
        return Ok(Deleted::Pending(updated));
    }
    if finalizers {
        if obj.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(Deleted::Pending(obj));
        }
        let updated = txn.mark_deleting(def, ns, name, now_rfc3339(), Some(0), |_| {})?;
        return Ok(Deleted::Pending(updated));
    }
    txn.remove(def, ns, name, None).map(Deleted::Gone)
}

fn orphan_dependents(txn: &mut Txn<'_>, owner: &Value) {
    let Some(uid) = owner.pointer("/metadata/uid").and_then(Value::as_str) else {
        return;
    };
    let ns = owner
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    for def in [
        well_known::replicasets(),
        well_known::pods(),
        well_known::endpointslices(),
    ] {
        for dep in txn.list(def.storage, Some(&ns)) {
            let owned = dep
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|r| r.iter().any(|o| o["uid"] == json!(uid)));
            if owned {
                let (dns, dname) = super::store::ns_name(&dep);
                let _ = txn.update_with(def, &dns, &dname, |o| {
                    if let Some(refs) = o["metadata"]["ownerReferences"].as_array_mut() {
                        refs.retain(|r| r["uid"] != json!(uid));
                    }
                    Ok(())
                });
            }
        }
    }
}

/// Whether a pod counts as healthy for a disruption budget (Ready, not terminating).
pub(crate) fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_none()
        && pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == json!("Ready") && c["status"] == json!("True"))
            })
}

/// Numbers a PodDisruptionBudget is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    /// Matching pods that are Ready and not terminating.
    pub current_healthy: i64,
    /// Healthy pods the budget requires.
    pub desired_healthy: i64,
    /// Pods the owners want (their replica counts).
    pub expected: i64,
}

impl Budget {
    /// Disruptions the budget allows now.
    pub fn allowed(&self) -> i64 {
        (self.current_healthy - self.desired_healthy).max(0)
    }
}

fn int_or_percent(v: &Value, total: i64, round_up: bool) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let pct: f64 = s.strip_suffix('%')?.parse().ok()?;
            let x = pct * total as f64 / 100.0;
            Some(if round_up { x.ceil() } else { x.floor() } as i64)
        }
        _ => None,
    }
}

/// Evaluates a PodDisruptionBudget against the pods of its namespace.
pub(crate) fn budget(txn: &Txn<'_>, pdb: &Value) -> Budget {
    let ns = pdb
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let sel = LabelSelector::from_object(&pdb["spec"]["selector"]);
    let pods: Vec<_> = txn
        .list("pods", Some(ns))
        .into_iter()
        .filter(|p| !sel.is_empty() && sel.matches_object(p))
        .collect();
    let current_healthy = pods.iter().filter(|p| pod_ready(p)).count() as i64;
    let mut expected = 0i64;
    let mut owners = std::collections::HashSet::new();
    for p in &pods {
        let owner = p
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .and_then(|r| r.iter().find(|o| o["controller"] == json!(true)));
        match owner {
            Some(o) if o["kind"] == json!("ReplicaSet") => {
                let name = o["name"].as_str().unwrap_or_default().to_string();
                if owners.insert(name.clone()) {
                    expected += txn
                        .get("replicasets", ns, &name)
                        .and_then(|rs| rs.pointer("/spec/replicas").and_then(Value::as_i64))
                        .unwrap_or(0);
                }
            }
            _ => {
                if p.pointer("/metadata/deletionTimestamp").is_none() {
                    expected += 1;
                }
            }
        }
    }
    let spec = &pdb["spec"];
    let desired_healthy = if let Some(min) = spec.get("minAvailable") {
        int_or_percent(min, expected, true).unwrap_or(0)
    } else if let Some(max) = spec.get("maxUnavailable") {
        (expected - int_or_percent(max, expected, true).unwrap_or(0)).max(0)
    } else {
        0
    };
    Budget {
        current_healthy,
        desired_healthy,
        expected,
    }
}

/// `POST pods/{name}/eviction`: deletes the pod unless a PodDisruptionBudget forbids it (429).
pub(crate) fn evict(
    txn: &mut Txn<'_>,
    ns: &str,
    name: &str,
    body: &Value,
) -> Result<Value, ApiError> {
    let pods = well_known::pods();
    let pod = txn
        .get("pods", ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(pods, name))?;
    let opts = DeleteOpts::default().merge_body(body.get("deleteOptions").unwrap_or(&Value::Null));
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        return Ok(super::status::success(pods, name, ""));
    }
    let pdbs: Vec<_> = txn
        .list("poddisruptionbudgets", Some(ns))
        .into_iter()
        .filter(|b| {
            let sel = LabelSelector::from_object(&b["spec"]["selector"]);
            !sel.is_empty() && sel.matches_object(&pod)
        })
        .collect();
    if pdbs.len() > 1 {
        return Err(ApiError::internal(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
        ));
    }
    if let Some(pdb) = pdbs.first() {
        let b = budget(txn, pdb);
        let healthy = pod_ready(&pod);
        let always = pdb
            .pointer("/spec/unhealthyPodEvictionPolicy")
            .and_then(Value::as_str)
            == Some("AlwaysAllow");
        let ok = if healthy {
            b.current_healthy > b.desired_healthy
        } else {
            always || b.current_healthy >= b.desired_healthy
        };
        let pdb_name = pdb
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !ok {
            return Err(ApiError::disruption_budget(
                pdb_name,
                b.desired_healthy,
                b.current_healthy,
            ));
        }
        let allowed_after = if healthy {
            b.allowed() - 1
        } else {
            b.allowed()
        };
        let _ = txn.update_with(well_known::pdbs(), ns, pdb_name, |o| {
            o["status"]["disruptionsAllowed"] = json!(allowed_after.max(0));
            o["status"]["disruptedPods"][name] = json!(now_rfc3339());
            Ok(())
        });
    }
    delete(txn, pods, ns, name, &opts)?;
    record_event(
        txn,
        &pod,
        "Normal",
        "Evicted",
        "Evicted",
        &format!("Evicted pod {ns}/{name}"),
        "eviction",
    );
    Ok(
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    )
}

/// Writes a core v1 Event about `involved`, as controllers and kubelets do.
pub(crate) fn record_event(
    txn: &mut Txn<'_>,
    involved: &Value,
    event_type: &str,
    reason: &str,
    action: &str,
    message: &str,
    component: &str,
) {
    let (ns, name) = super::store::ns_name(involved);
    let ns = if ns.is_empty() {
        "default".to_string()
    } else {
        ns
    };
    let now = now_rfc3339();
    let obj = json!({
        "metadata": {"generateName": format!("{name}.")},
        "involvedObject": {
            "kind": involved["kind"], "apiVersion": involved["apiVersion"],
            "name": name, "namespace": involved.pointer("/metadata/namespace"),
            "uid": involved.pointer("/metadata/uid"),
            "resourceVersion": involved.pointer("/metadata/resourceVersion"),
        },
        "reason": reason, "message": message, "type": event_type, "action": action,
        "source": {"component": component},
        "reportingComponent": component, "reportingInstance": component,
        "firstTimestamp": now, "lastTimestamp": now, "eventTime": now_micro(), "count": 1,
    });
    // Events are best effort in Kubernetes too: a failure to record one is not an error.
    let _ = txn.create(well_known::events(), &ns, obj);
}

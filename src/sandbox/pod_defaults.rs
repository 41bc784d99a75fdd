//! Pod spec defaults kube-apiserver fills on every write, and the ServiceAccount admission
//! plugin's API token volume on pod creation. Clients read these back: `kubectl describe`
//! prints probe thresholds, and drain tooling (Chaos Toolkit's `drain_nodes`) walks
//! `spec.volumes`.

use serde_json::{Value, json};

/// Where the ServiceAccount admission plugin mounts the API token.
const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The probe fields of a container, each defaulted the same way.
const PROBES: &[&str] = &["livenessProbe", "readinessProbe", "startupProbe"];

/// Alphabet of apimachinery's `rand.String` (no vowels, no confusable digits).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Defaults in a pod spec, wherever it appears (pods and workload templates), as upstream's
/// `SetDefaults_Probe` and `SetDefaults_HTTPGetAction`.
pub(crate) fn default_pod_spec(spec: &mut Value) {
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers {
            for probe in PROBES {
                if let Some(p) = c.get_mut(*probe).filter(|p| p.is_object()) {
                    default_probe(p);
                }
            }
        }
    }
}

fn default_probe(p: &mut Value) {
    for (key, value) in [
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ] {
        set_if_absent(p, key, json!(value));
    }
    if let Some(get) = p.get_mut("httpGet").filter(|g| g.is_object()) {
        set_if_absent(get, "path", json!("/"));
        set_if_absent(get, "scheme", json!("HTTP"));
    }
}

/// The ServiceAccount admission plugin on pod creation: `spec.serviceAccount` mirrors the
/// name, and unless `automountServiceAccountToken: false` a projected `kube-api-access-<5>`
/// volume (token, `kube-root-ca.crt`, namespace) is mounted read-only in every container.
pub(crate) fn mount_service_account_token(spec: &mut Value) {
    let account = spec["serviceAccountName"].clone();
    set_if_absent(spec, "serviceAccount", account);
    if spec.get("automountServiceAccountToken") == Some(&json!(false)) {
        return;
    }
    let already = ["initContainers", "containers"].iter().any(|list| {
        spec.get(*list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|c| mounts(c).any(|m| m["mountPath"] == json!(TOKEN_MOUNT_PATH)))
    });
    if already {
        return;
    }
    let name = format!("kube-api-access-{}", random_suffix());
    let volume = json!({
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}},
            ],
        },
    });
    push(spec, "volumes", volume);
    let mount = json!({"name": name, "mountPath": TOKEN_MOUNT_PATH, "readOnly": true});
    for list in ["initContainers", "containers"] {
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in containers {
                push(c, "volumeMounts", mount.clone());
            }
        }
    }
}

fn mounts(container: &Value) -> impl Iterator<Item = &Value> {
    container
        .get("volumeMounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn push(obj: &mut Value, key: &str, item: Value) {
    match obj.get_mut(key).and_then(Value::as_array_mut) {
        Some(list) => list.push(item),
        None => obj[key] = json!([item]),
    }
}

fn set_if_absent(obj: &mut Value, key: &str, value: Value) {
    if obj.get(key).is_none_or(Value::is_null) {
        obj[key] = value;
    }
}

fn random_suffix() -> String {
    (0..5)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_defaults_match_upstream() {
        let mut spec = json!({"containers": [{"name": "a",
            "readinessProbe": {"httpGet": {"port": 80}},
            "livenessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5}}]});
        default_pod_spec(&mut spec);
        let c = &spec["containers"][0];
        assert_eq!(
            c["readinessProbe"],
            json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                   "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(c["livenessProbe"]["periodSeconds"], json!(5));
        assert_eq!(c["livenessProbe"]["failureThreshold"], json!(3));
    }

    #[test]
    fn token_volume_mounted_in_every_container_unless_opted_out() {
        let mut spec = json!({"serviceAccountName": "default",
            "initContainers": [{"name": "i"}], "containers": [{"name": "a"}, {"name": "b"}]});
        mount_service_account_token(&mut spec);
        let name = spec["volumes"][0]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert_eq!(name.len(), "kube-api-access-".len() + 5, "{name}");
        assert_eq!(spec["serviceAccount"], json!("default"));
        for c in ["initContainers", "containers"]
            .iter()
            .flat_map(|l| spec[*l].as_array().into_iter().flatten())
        {
            assert_eq!(
                c["volumeMounts"],
                json!([{"name": name, "mountPath": TOKEN_MOUNT_PATH, "readOnly": true}])
            );
        }
        let mut off = json!({"automountServiceAccountToken": false, "containers": [{"name": "a"}]});
        mount_service_account_token(&mut off);
        assert!(off.get("volumes").is_none() && off["containers"][0].get("volumeMounts").is_none());
    }
}

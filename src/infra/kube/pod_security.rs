//! Before a pod network fault acts: does Pod Security admission let its ephemeral container
//! add `NET_ADMIN` in the target namespaces?
//!
//! Both the `baseline` and the `restricted` levels refuse added capabilities beyond a short
//! list that does not include `NET_ADMIN`, so a namespace enforcing either would reject the
//! container at admission, firing after firing. The run refuses up front instead, naming the
//! namespace and the label, before anything is injected.

use k8s_openapi::api::core::v1::Namespace;

use super::client::KubeClient;
use super::error::KubeError;
use crate::spec::ExperimentSpec;
use crate::spec::fault::PodTargetSpec;

/// The namespace label Pod Security admission enforces.
pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// Levels that forbid `NET_ADMIN`.
const REFUSING_LEVELS: &[&str] = &["baseline", "restricted"];

/// Why a run cannot inject its pod network faults.
#[derive(Debug, thiserror::Error)]
pub enum PodSecurityError {
    /// A target namespace enforces a level that forbids `NET_ADMIN`.
    #[error(
        "error: fault `{fault}` ({kind}) cannot run in namespace {namespace}: its label {ENFORCE_LABEL}={level} forbids the NET_ADMIN capability the fault's ephemeral container needs; nothing was injected (hint: target a namespace whose Pod Security level is privileged, or set {ENFORCE_LABEL}=privileged on {namespace} for the experiment)"
    )]
    Refused {
        /// The fault's name.
        fault: String,
        /// Its kind key.
        kind: &'static str,
        /// The namespace.
        namespace: String,
        /// The enforced level.
        level: String,
    },
    /// The namespaces could not be read.
    #[error("{0}")]
    Api(#[from] KubeError),
}

/// Targets of the faults that need `NET_ADMIN`, with their names and kind keys.
fn network_targets(spec: &ExperimentSpec) -> Vec<(&str, &'static str, &PodTargetSpec)> {
    spec.spec
        .faults
        .iter()
        .flat_map(|f| {
            let latency = f
                .pod_network_latency
                .as_ref()
                .map(|s| (f.name.as_str(), "podNetworkLatency", &s.target));
            let loss = f
                .pod_network_loss
                .as_ref()
                .map(|s| (f.name.as_str(), "podNetworkLoss", &s.target));
            let blackhole = f
                .pod_network_blackhole
                .as_ref()
                .map(|s| (f.name.as_str(), "podNetworkBlackhole", &s.target));
            latency.into_iter().chain(loss).chain(blackhole)
        })
        .collect()
}

fn refusing_level(ns: &Namespace) -> Option<String> {
    let level = ns.metadata.labels.as_ref()?.get(ENFORCE_LABEL)?;
    REFUSING_LEVELS
        .contains(&level.as_str())
        .then(|| level.clone())
}

/// Reads every namespace the pod network faults of `spec` may act in and refuses the first
/// one whose enforced Pod Security level forbids `NET_ADMIN`.
///
/// # Errors
/// [`PodSecurityError::Refused`] naming the fault, the namespace and the label;
/// [`PodSecurityError::Api`] when the namespaces cannot be listed.
pub async fn check(kube: &KubeClient, spec: &ExperimentSpec) -> Result<(), PodSecurityError> {
    for (fault, kind, target) in network_targets(spec) {
        let mut namespaces: Vec<Namespace> = Vec::new();
        for ns in &target.namespaces {
            // Every namespace carries its own name as this label (kube-apiserver sets it), so
            // one namespace is read with the `list` the faults already hold.
            let selector = format!("kubernetes.io/metadata.name={ns}");
            namespaces.extend(kube.list_namespaces(Some(&selector)).await?);
        }
        if let Some(selector) = &target.namespace_selector {
            namespaces.extend(kube.list_namespaces(Some(selector)).await?);
        }
        for ns in &namespaces {
            if let Some(level) = refusing_level(ns) {
                return Err(PodSecurityError::Refused {
                    fault: fault.to_owned(),
                    kind,
                    namespace: ns.metadata.name.clone().unwrap_or_default(),
                    level,
                });
            }
        }
    }
    Ok(())
}

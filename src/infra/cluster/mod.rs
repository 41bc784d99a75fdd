//! State steadfast keeps in the cluster itself, so every run — a laptop's, a CronJob's, the
//! scheduler's — sees it: the run lock (a Lease), the halt switch (a ConfigMap) and the copy of
//! the journal (a ConfigMap).

pub mod halt;
pub mod journal;
pub mod lease;

pub use halt::ConfigMapHalt;
pub use journal::ConfigMapJournal;
pub use lease::LeaseLock;

/// The namespace steadfast keeps its state in: `STEADFAST_NAMESPACE`, else the pod's own
/// namespace, else `default`.
pub fn state_namespace() -> String {
    std::env::var("STEADFAST_NAMESPACE")
        .ok()
        .filter(|ns| !ns.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace").ok()
        })
        .map(|ns| ns.trim().to_owned())
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| "default".to_owned())
}

/// Bounds every call to the API server: the kube client sets none by default.
pub(crate) const API_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

pub(crate) async fn timed<T, E: std::fmt::Display>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(API_TIMEOUT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(format!("{what}: {err}")),
        Err(_) => Err(format!(
            "{what}: no answer within {}s",
            API_TIMEOUT.as_secs()
        )),
    }
}

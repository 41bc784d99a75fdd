//! Adding an ephemeral container to a pod, through the `pods/ephemeralcontainers` subresource
//! (listed in [`super::rbac::RULES`]); the pod network faults and their rollback use it.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use serde_json::Value;

use super::client::KubeClient;
use super::error::KubeError;

impl KubeClient {
    /// Appends the ephemeral container `container` (a JSON `EphemeralContainer`) to a pod with
    /// a strategic merge patch, which merges the list by name and so keeps the others.
    ///
    /// # Errors
    /// The API's error: 404 when the pod is gone, 422 when the name is taken, 403 when Pod
    /// Security admission refuses the container.
    pub async fn add_ephemeral_container(
        &self,
        namespace: &str,
        pod: &str,
        container: &Value,
    ) -> Result<Pod, KubeError> {
        let api: Api<Pod> = Api::namespaced(self.raw().clone(), namespace);
        let patch = serde_json::json!({"spec": {"ephemeralContainers": [container]}});
        self.call(
            format!("add an ephemeral container to pod {namespace}/{pod}"),
            api.patch_ephemeral_containers(pod, &PatchParams::default(), &Patch::Strategic(patch)),
        )
        .await
    }
}

//! The API calls the Kubernetes faults make, one small function per call, each under the run's
//! rate limit and call deadline. Every (group, resource, verb) used here is listed in
//! [`super::rbac::RULES`].

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use super::client::KubeClient;
use super::error::KubeError;
use super::ratelimit::Prepaid;

/// What a DELETE or an eviction found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// The deletion started (or finished).
    Started,
    /// The object was already gone.
    NotFound,
    /// A PodDisruptionBudget refused the eviction (429); the server's message and causes.
    Blocked {
        /// The refusal, as the API server worded it.
        message: String,
    },
}

fn list_params(label: Option<&str>, field: Option<&str>) -> ListParams {
    let mut params = ListParams::default();
    if let Some(l) = label.filter(|l| !l.is_empty()) {
        params = params.labels(l);
    }
    if let Some(f) = field.filter(|f| !f.is_empty()) {
        params = params.fields(f);
    }
    params
}

impl KubeClient {
    /// Lists pods in one namespace or (with `None`) all of them.
    ///
    /// # Errors
    /// The API's error.
    pub async fn list_pods(
        &self,
        namespace: Option<&str>,
        label: Option<&str>,
        field: Option<&str>,
    ) -> Result<Vec<Pod>, KubeError> {
        let api: Api<Pod> = match namespace {
            Some(ns) => Api::namespaced(self.raw().clone(), ns),
            None => Api::all(self.raw().clone()),
        };
        let what = match namespace {
            Some(ns) => format!("pods in {ns}"),
            None => "pods".to_owned(),
        };
        self.list_all(&api, &list_params(label, field), &what).await
    }

    /// Reads one pod; `None` when it does not exist.
    ///
    /// # Errors
    /// The API's error other than 404.
    pub async fn get_pod(&self, namespace: &str, name: &str) -> Result<Option<Pod>, KubeError> {
        let api: Api<Pod> = Api::namespaced(self.raw().clone(), namespace);
        self.call(format!("get pod {namespace}/{name}"), api.get_opt(name))
            .await
    }

    /// Lists namespaces matching a label selector.
    ///
    /// # Errors
    /// The API's error.
    pub async fn list_namespaces(&self, label: Option<&str>) -> Result<Vec<Namespace>, KubeError> {
        let api: Api<Namespace> = Api::all(self.raw().clone());
        self.list_all(&api, &list_params(label, None), "namespaces")
            .await
    }

    /// Lists nodes matching a label selector.
    ///
    /// # Errors
    /// The API's error.
    pub async fn list_nodes(&self, label: Option<&str>) -> Result<Vec<Node>, KubeError> {
        let api: Api<Node> = Api::all(self.raw().clone());
        self.list_all(&api, &list_params(label, None), "nodes")
            .await
    }

    /// Reads one node; `None` when it does not exist.
    ///
    /// # Errors
    /// The API's error other than 404.
    pub async fn get_node(&self, name: &str) -> Result<Option<Node>, KubeError> {
        let api: Api<Node> = Api::all(self.raw().clone());
        self.call(format!("get node {name}"), api.get_opt(name))
            .await
    }

    /// Applies a JSON merge patch to a node. A patch carrying `metadata.resourceVersion` fails
    /// with 409 when the node changed since it was read.
    ///
    /// # Errors
    /// The API's error (404 when the node is gone, 409 on a stale resourceVersion).
    pub async fn merge_patch_node(&self, name: &str, patch: &Value) -> Result<Node, KubeError> {
        let api: Api<Node> = Api::all(self.raw().clone());
        self.call(
            format!("patch node {name}"),
            api.patch(name, &PatchParams::default(), &Patch::Merge(patch)),
        )
        .await
    }

    /// Deletes a pod with a grace period in seconds.
    ///
    /// # Errors
    /// The API's error other than 404.
    pub async fn delete_pod(
        &self,
        namespace: &str,
        name: &str,
        grace_seconds: u32,
    ) -> Result<Removal, KubeError> {
        // Built by hand rather than through `Api::delete` to carry the [`Prepaid`] mark.
        let action = format!("delete pod {namespace}/{name}");
        let body = json!({
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": grace_seconds,
        });
        let uri = format!("/api/v1/namespaces/{namespace}/pods/{name}");
        let mut request = http::Request::delete(uri)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&body).unwrap_or_default())
            .map_err(|e| KubeError::Transport {
                action: action.clone(),
                message: e.to_string(),
            })?;
        request.extensions_mut().insert(Prepaid);
        match self
            .call(action, self.raw().request::<Value>(request))
            .await
        {
            Ok(_) => Ok(Removal::Started),
            Err(e) if e.is_not_found() => Ok(Removal::NotFound),
            Err(e) => Err(e),
        }
    }

    /// Evicts a pod through the `policy/v1` Eviction subresource, which honours
    /// PodDisruptionBudgets.
    ///
    /// # Errors
    /// The API's error other than 404 and 429.
    pub async fn evict_pod(&self, namespace: &str, name: &str) -> Result<Removal, KubeError> {
        let action = format!("evict pod {namespace}/{name}");
        let body = json!({
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        });
        let uri = format!("/api/v1/namespaces/{namespace}/pods/{name}/eviction");
        let mut request = http::Request::post(uri)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&body).unwrap_or_default())
            .map_err(|e| KubeError::Transport {
                action: action.clone(),
                message: e.to_string(),
            })?;
        request.extensions_mut().insert(Prepaid);
        match self
            .call(action.clone(), self.raw().request::<Value>(request))
            .await
        {
            Ok(_) => Ok(Removal::Started),
            Err(e) if e.is_not_found() => Ok(Removal::NotFound),
            Err(KubeError::Api {
                code: 429, message, ..
            }) => Ok(Removal::Blocked { message }),
            Err(e) => Err(e),
        }
    }

    /// Lists the PodDisruptionBudgets of a namespace.
    ///
    /// # Errors
    /// The API's error.
    pub async fn list_budgets(
        &self,
        namespace: &str,
    ) -> Result<Vec<PodDisruptionBudget>, KubeError> {
        let api: Api<PodDisruptionBudget> = Api::namespaced(self.raw().clone(), namespace);
        self.list_all(
            &api,
            &ListParams::default(),
            &format!("poddisruptionbudgets in {namespace}"),
        )
        .await
    }

    /// Reads a ReplicaSet, to find the Deployment that owns it.
    ///
    /// # Errors
    /// The API's error other than 404.
    pub async fn get_replica_set(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ReplicaSet>, KubeError> {
        let api: Api<ReplicaSet> = Api::namespaced(self.raw().clone(), namespace);
        self.call(
            format!("get replicaset {namespace}/{name}"),
            api.get_opt(name),
        )
        .await
    }
}

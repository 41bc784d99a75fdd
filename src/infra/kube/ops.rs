//! The API calls the Kubernetes faults make, one small function per call, each under the run's
//! rate limit and call deadline. Every (group, resource, verb) used here is listed in
//! [`super::rbac::RULES`].

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
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

/// Most attempts of one pod removal, the first included.
const MAX_REMOVALS: u32 = 4;

/// What re-reading a pod after an uncertain removal found.
enum Recheck {
    /// Gone, terminating, or replaced: the removal asked for has happened.
    Gone,
    /// The same pod, still running: remove it again, with this uid as a precondition.
    Again {
        /// The pod's uid.
        uid: String,
    },
    /// A pod of that name whose identity cannot be told from the one asked for.
    Unknown,
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

    /// Lists the Services of a namespace (listing, not getting, since that is the verb the
    /// role already grants for snapshots).
    ///
    /// # Errors
    /// The API's error.
    pub async fn list_services(&self, namespace: &str) -> Result<Vec<Service>, KubeError> {
        let api: Api<Service> = Api::namespaced(self.raw().clone(), namespace);
        self.list_all(
            &api,
            &list_params(None, None),
            &format!("services in {namespace}"),
        )
        .await
    }

    /// Lists the EndpointSlices of one Service.
    ///
    /// # Errors
    /// The API's error.
    pub async fn list_endpoint_slices(
        &self,
        namespace: &str,
        service: &str,
    ) -> Result<Vec<EndpointSlice>, KubeError> {
        let api: Api<EndpointSlice> = Api::namespaced(self.raw().clone(), namespace);
        let label = format!("kubernetes.io/service-name={service}");
        self.list_all(
            &api,
            &list_params(Some(&label), None),
            &format!("endpointslices of {namespace}/{service}"),
        )
        .await
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

    /// Deletes a pod with a grace period in seconds; with `uid`, only that incarnation of it.
    ///
    /// A DELETE answered with a server error or not answered at all may have happened, so it is
    /// never re-sent blindly: the pod is read again, and deleted again (with a uid
    /// precondition) only while the same pod is still there and not terminating. A replacement
    /// that took its name is never deleted.
    ///
    /// # Errors
    /// The API's error other than 404, or the uncertain one when the re-read cannot tell.
    pub async fn delete_pod(
        &self,
        namespace: &str,
        name: &str,
        grace_seconds: u32,
        uid: Option<&str>,
    ) -> Result<Removal, KubeError> {
        let mut body = json!({
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": grace_seconds,
        });
        if let Some(uid) = uid {
            body["preconditions"] = json!({"uid": uid});
        }
        let uri = format!("/api/v1/namespaces/{namespace}/pods/{name}");
        let action = format!("delete pod {namespace}/{name}");
        self.remove_pod(
            http::Method::DELETE,
            uri,
            action,
            body,
            namespace,
            name,
            uid,
        )
        .await
    }

    /// Evicts a pod through the `policy/v1` Eviction subresource, which honours
    /// PodDisruptionBudgets. APF throttling is retried by the client; only a 429 with a
    /// `DisruptionBudget` cause is [`Removal::Blocked`]. An uncertain answer is handled as for
    /// [`KubeClient::delete_pod`].
    ///
    /// # Errors
    /// The API's error other than 404 and a budget refusal.
    pub async fn evict_pod(&self, namespace: &str, name: &str) -> Result<Removal, KubeError> {
        let body = json!({
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        });
        let uri = format!("/api/v1/namespaces/{namespace}/pods/{name}/eviction");
        let action = format!("evict pod {namespace}/{name}");
        self.remove_pod(http::Method::POST, uri, action, body, namespace, name, None)
            .await
    }

    /// Sends a DELETE or an eviction, re-reading the pod after an uncertain answer.
    #[allow(clippy::too_many_arguments)]
    async fn remove_pod(
        &self,
        method: http::Method,
        uri: String,
        action: String,
        mut body: Value,
        namespace: &str,
        name: &str,
        uid: Option<&str>,
    ) -> Result<Removal, KubeError> {
        let eviction = method == http::Method::POST;
        let sent_at = k8s_openapi::jiff::Timestamp::now().as_second();
        let mut uid = uid.map(str::to_owned);
        let mut last = None;
        for attempt in 0..MAX_REMOVALS {
            if attempt > 0 {
                let precondition = json!({"uid": uid});
                if eviction {
                    body["deleteOptions"] = json!({"preconditions": precondition});
                } else {
                    body["preconditions"] = precondition;
                }
            }
            let mut request = http::Request::builder()
                .method(method.clone())
                .uri(&uri)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(&body).unwrap_or_default())
                .map_err(|e| KubeError::Transport {
                    action: action.clone(),
                    message: e.to_string(),
                })?;
            // Only the first attempt belongs to a fault's prepaid batch; re-sends pay.
            if attempt == 0 {
                request.extensions_mut().insert(Prepaid);
            }
            let error = match self
                .call(action.clone(), self.raw().request::<Value>(request))
                .await
            {
                Ok(_) => return Ok(Removal::Started),
                Err(e) if e.is_not_found() && attempt == 0 => return Ok(Removal::NotFound),
                // Gone since the uncertain attempt, or a uid precondition that no longer
                // holds: the pod asked for is gone either way.
                Err(e) if attempt > 0 && (e.is_not_found() || e.is_conflict()) => {
                    return Ok(Removal::Started);
                }
                Err(KubeError::Api {
                    code: 429, message, ..
                }) => return Ok(Removal::Blocked { message }),
                Err(e) if e.is_uncertain() => e,
                Err(e) => return Err(e),
            };
            tokio::time::sleep(super::retry::backoff(attempt, rand::random())).await;
            match self
                .recheck_pod(namespace, name, uid.as_deref(), sent_at)
                .await?
            {
                Recheck::Gone => return Ok(Removal::Started),
                Recheck::Again { uid: same } => uid = Some(same),
                Recheck::Unknown => return Err(error),
            }
            last = Some(error);
        }
        Err(last.unwrap_or(KubeError::Api {
            action,
            code: 0,
            message: "no attempt made".into(),
        }))
    }

    /// Reads a pod after an uncertain removal sent at `sent_at` (Unix seconds).
    async fn recheck_pod(
        &self,
        namespace: &str,
        name: &str,
        uid: Option<&str>,
        sent_at: i64,
    ) -> Result<Recheck, KubeError> {
        let Some(pod) = self.get_pod(namespace, name).await? else {
            return Ok(Recheck::Gone);
        };
        if pod.metadata.deletion_timestamp.is_some() {
            return Ok(Recheck::Gone);
        }
        let current = pod.metadata.uid.clone().unwrap_or_default();
        let created = pod
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_second());
        Ok(match uid {
            Some(uid) if uid == current => Recheck::Again { uid: current },
            Some(_) => Recheck::Gone,
            // No uid known: a pod created a second or more before the removal was sent is the
            // one asked for; a younger one may be a replacement, and the answer is unknown.
            None if !current.is_empty() && created.is_some_and(|c| c < sent_at) => {
                Recheck::Again { uid: current }
            }
            None => Recheck::Unknown,
        })
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

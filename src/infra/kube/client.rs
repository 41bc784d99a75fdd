//! Connecting to a cluster: kubeconfig or in-cluster configuration, explicit timeouts, and one
//! rate limiter shared by every request of the run.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::serde::de::DeserializeOwned;
use kube::api::{Api, ListParams};
use kube::client::ClientBuilder;
use kube::config::{Config, KubeConfigOptions, Kubeconfig};
use kube::{Client, Resource};

use super::access::{AccessLog, RecordLayer};
use super::error::KubeError;
use super::ratelimit::{RateLimiter, ThrottleLayer};
use super::retry::{RetryCounts, RetryLayer};

/// How long one API call may take, rate-limit wait included, unless the options say otherwise.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long establishing a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence on a connection. Watches are held open by the server for up to ~5 minutes
/// with bookmarks in between, so this is kube's watch-friendly default, not a call deadline.
pub const READ_TIMEOUT: Duration = Duration::from_secs(295);
/// How long sending a request may take.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Objects per page of a list; large clusters are read in pages like kubectl does.
pub const PAGE_SIZE: u32 = 500;

/// Where the cluster is and how fast steadfast may talk to it.
#[derive(Debug, Clone)]
pub struct KubeOptions {
    /// A kubeconfig file; `None` uses `KUBECONFIG`, `~/.kube/config`, then in-cluster config.
    pub kubeconfig: Option<PathBuf>,
    /// A kubeconfig context other than the current one.
    pub context: Option<String>,
    /// Requests per second (the spec's `safety.apiQps`).
    pub qps: u32,
    /// Burst above `qps` (the spec's `safety.apiBurst`).
    pub burst: u32,
    /// Deadline of one call, including the time it waits for the rate limiter.
    pub call_timeout: Duration,
    /// Record every request's RBAC triple (used by the tests that keep the RBAC list honest).
    pub record_access: bool,
}

impl Default for KubeOptions {
    /// client-go's defaults: QPS 5, burst 10.
    fn default() -> Self {
        Self {
            kubeconfig: None,
            context: None,
            qps: 5,
            burst: 10,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            record_access: false,
        }
    }
}

/// A connected client: the kube client with steadfast's rate limit and deadlines.
///
/// Cheap to clone; clones share the client, the limiter and the access log.
#[derive(Clone)]
pub struct KubeClient {
    client: Client,
    limiter: Arc<RateLimiter>,
    access: Option<AccessLog>,
    retries: RetryCounts,
    call_timeout: Duration,
}

impl std::fmt::Debug for KubeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeClient")
            .field("qps", &self.limiter.qps())
            .field("call_timeout", &self.call_timeout)
            .finish_non_exhaustive()
    }
}

impl KubeClient {
    /// Connects as `options` say.
    ///
    /// # Errors
    /// [`KubeError::Config`] when no usable kubeconfig or in-cluster configuration is found.
    pub async fn connect(options: &KubeOptions) -> Result<Self, KubeError> {
        let config = load_config(options).await?;
        Self::from_config(config, options)
    }

    /// Builds the client stack for a loaded configuration.
    ///
    /// # Errors
    /// [`KubeError::Config`] when the configuration cannot make a client (bad TLS material).
    pub fn from_config(mut config: Config, options: &KubeOptions) -> Result<Self, KubeError> {
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        config.read_timeout = Some(READ_TIMEOUT);
        config.write_timeout = Some(WRITE_TIMEOUT);
        // kube retries 429 on its own, below the rate limiter and invisibly: an eviction a
        // budget refuses would be retried until it happens to pass. Refusals are findings here;
        // [`RetryLayer`] retries only throttling and server errors of what is safe to re-send.
        config.default_retry = false;
        let limiter = Arc::new(RateLimiter::new(options.qps, options.burst));
        let access = options.record_access.then(AccessLog::default);
        let builder = ClientBuilder::try_from(config).map_err(|e| KubeError::Config {
            message: e.to_string(),
        })?;
        let builder = builder.with_layer(&ThrottleLayer::new(limiter.clone()));
        let retries = RetryCounts::default();
        // Outside the throttle, so each retry waits for and spends a token; within half the
        // call deadline, so the last answer, not a timeout, is what a caller sees.
        let retry = RetryLayer::new(options.call_timeout / 2, retries.clone());
        let client = match &access {
            Some(log) => builder
                .with_layer(&RecordLayer::new(log.clone()))
                .with_layer(&retry)
                .build(),
            None => builder.with_layer(&retry).build(),
        };
        Ok(Self {
            client,
            limiter,
            access,
            retries,
            call_timeout: options.call_timeout,
        })
    }

    /// The underlying kube client, for the adapters and watches in this crate.
    pub fn raw(&self) -> &Client {
        &self.client
    }

    /// The run's rate limiter.
    pub fn limiter(&self) -> &Arc<RateLimiter> {
        &self.limiter
    }

    /// The recorded accesses, when recording was asked for.
    pub fn access_log(&self) -> Option<&AccessLog> {
        self.access.as_ref()
    }

    /// API errors and retries per endpoint so far.
    pub fn retry_counts(&self) -> &RetryCounts {
        &self.retries
    }

    /// The deadline of one call.
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// Awaits one API call under the call deadline, naming `action` in errors.
    ///
    /// # Errors
    /// [`KubeError::Timeout`] past the deadline; the call's own error mapped otherwise.
    pub async fn call<T>(
        &self,
        action: impl Into<String>,
        call: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, KubeError> {
        let action = action.into();
        match tokio::time::timeout(self.call_timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(KubeError::from_kube(&action, error)),
            Err(_) => Err(KubeError::Timeout {
                action,
                after: self.call_timeout,
            }),
        }
    }

    /// Lists every object of `api` matching `params`, page by page.
    ///
    /// # Errors
    /// The first failing page's error.
    pub async fn list_all<K>(
        &self,
        api: &Api<K>,
        params: &ListParams,
        what: &str,
    ) -> Result<Vec<K>, KubeError>
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    {
        let mut params = params.clone();
        params.limit = Some(PAGE_SIZE);
        params.continue_token = None;
        let mut items = Vec::new();
        // Bounded: a cluster larger than 10,000 pages of 500 is not one steadfast targets.
        for _ in 0..10_000 {
            let page = self.call(format!("list {what}"), api.list(&params)).await?;
            items.extend(page.items);
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params.continue_token = Some(token),
                None => return Ok(items),
            }
        }
        Err(KubeError::Api {
            action: format!("list {what}"),
            code: 0,
            message: "more than 10,000 pages".into(),
        })
    }
}

/// Loads the client configuration the options name: a kubeconfig file, a context, or the
/// environment (KUBECONFIG, in-cluster).
///
/// # Errors
/// When no configuration can be loaded.
pub async fn load_config(options: &KubeOptions) -> Result<Config, KubeError> {
    let config_err = |e: &dyn std::fmt::Display| KubeError::Config {
        message: e.to_string(),
    };
    let kube_options = KubeConfigOptions {
        context: options.context.clone(),
        ..KubeConfigOptions::default()
    };
    match &options.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|e| KubeError::Config {
                message: format!("{}: {e}", path.display()),
            })?;
            Config::from_custom_kubeconfig(kubeconfig, &kube_options)
                .await
                .map_err(|e| config_err(&e))
        }
        None if options.context.is_some() => Config::from_kubeconfig(&kube_options)
            .await
            .map_err(|e| config_err(&e)),
        None => Config::infer().await.map_err(|e| config_err(&e)),
    }
}

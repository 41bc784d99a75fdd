//! SDK setup: region from the spec or the environment, the default credential chain (which
//! covers IRSA and Pod Identity in a pod), standard retries and explicit timeouts.
//!
//! The standard `AWS_ENDPOINT_URL` environment variable (read by aws-config) points every call
//! at an emulator such as moto; [`AwsOptions::endpoint_url`] does the same explicitly, for
//! tests that run one emulator each in the same process.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_ec2::config::{Credentials, Region};

use super::calls::AwsCallCounts;
use super::error::AwsError;
use super::{AutoScaling, Ec2};
use crate::spec::experiment::AwsSpec;

/// Default time to open a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time for one attempt of a call.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);
/// Default time for a call, retries included.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
/// Default attempts per call (the SDK's standard mode retries throttling and 5xx with jittered
/// exponential backoff): at 10% throttling, six attempts leave one call in a million failing,
/// and their backoff (at most 0.2 + 0.4 + 0.8 + 1.6 + 3.2 s) stays well within the operation
/// timeout.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;
/// First backoff of a retried call, doubled at each retry and jittered by the SDK. The SDK's
/// own default (1 s) would shift a fault's injection or its undo by a second per throttled
/// call, a visible share of a short fault window; 200 ms is still well behind a throttled
/// API's refill.
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Default bound on loading the configuration (region and credential discovery).
pub const DEFAULT_LOAD_TIMEOUT: Duration = Duration::from_secs(20);

/// Fixed credentials, for emulators and tests; real runs leave them to the default chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
}

/// How to reach AWS.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsOptions {
    /// Region; from the environment or profile when absent.
    pub region: Option<String>,
    /// Endpoint for every service; `AWS_ENDPOINT_URL` applies when absent.
    pub endpoint_url: Option<String>,
    /// Fixed credentials instead of the default chain.
    pub credentials: Option<StaticCredentials>,
    /// Time to open a connection.
    pub connect_timeout: Duration,
    /// Time for one attempt of a call.
    pub attempt_timeout: Duration,
    /// Time for a call, retries included.
    pub operation_timeout: Duration,
    /// Attempts per call.
    pub max_attempts: u32,
    /// Bound on loading the configuration.
    pub load_timeout: Duration,
    /// Where the clients count throttling, server errors and retries, for the report.
    pub calls: AwsCallCounts,
}

impl Default for AwsOptions {
    fn default() -> Self {
        Self {
            region: None,
            endpoint_url: None,
            credentials: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            load_timeout: DEFAULT_LOAD_TIMEOUT,
            calls: AwsCallCounts::default(),
        }
    }
}

impl AwsOptions {
    /// Options for a region (or the environment's when `None`), defaults otherwise.
    pub fn for_region(region: Option<String>) -> Self {
        Self {
            region,
            ..Self::default()
        }
    }

    /// Options for an experiment's `spec.aws` (absent: everything from the environment).
    pub fn from_spec(aws: Option<&AwsSpec>) -> Self {
        Self::for_region(aws.and_then(|a| a.region.clone()))
    }
}

/// The clients of one region.
#[derive(Debug, Clone)]
pub struct AwsClients {
    /// The region every call goes to.
    pub region: String,
    /// EC2.
    pub ec2: Ec2,
    /// Auto Scaling.
    pub autoscaling: AutoScaling,
}

impl AwsClients {
    /// Loads the configuration and builds the clients; they count their calls' errors and
    /// retries into `options.calls`.
    ///
    /// # Errors
    /// No region could be determined, or loading did not finish within `load_timeout`.
    pub async fn connect(options: &AwsOptions) -> Result<Self, AwsError> {
        let sdk = load_sdk(options).await?;
        let region = sdk
            .region()
            .map(ToString::to_string)
            .ok_or(AwsError::NoRegion)?;
        Ok(Self {
            region,
            ec2: Ec2::new(aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(&sdk)
                    .interceptor(options.calls.interceptor("ec2"))
                    .build(),
            )),
            autoscaling: AutoScaling::new(aws_sdk_autoscaling::Client::from_conf(
                aws_sdk_autoscaling::config::Builder::from(&sdk)
                    .interceptor(options.calls.interceptor("autoscaling"))
                    .build(),
            )),
        })
    }
}

/// Loads the shared SDK configuration: the default credential chain (IRSA in a pod), standard
/// retries and the timeouts of `options`. EC2, Auto Scaling and the report store share it, so
/// every service call resolves credentials and region the same way.
///
/// # Errors
/// Loading did not finish within `load_timeout`.
pub async fn load_sdk(options: &AwsOptions) -> Result<aws_config::SdkConfig, AwsError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(options.max_attempts)
                .with_initial_backoff(DEFAULT_INITIAL_BACKOFF),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(options.connect_timeout)
                .operation_attempt_timeout(options.attempt_timeout)
                .operation_timeout(options.operation_timeout)
                .build(),
        );
    if let Some(region) = &options.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &options.endpoint_url {
        loader = loader.endpoint_url(endpoint.clone());
    }
    if let Some(creds) = &options.credentials {
        loader = loader.credentials_provider(Credentials::new(
            creds.access_key_id.clone(),
            creds.secret_access_key.clone(),
            None,
            None,
            "steadfast-static",
        ));
    }
    tokio::time::timeout(options.load_timeout, loader.load())
        .await
        .map_err(|_| AwsError::ConfigTimeout(options.load_timeout))
}

//! Errors of the AWS adapters, with the API's error code kept so callers can tell "already
//! gone" from a real failure.

use std::time::Duration;

use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::fault::FaultError;
use crate::infra::nodes::NodeSourceError;
use crate::plan::SelectionError;
use crate::plan::zones::ZoneError;

/// Why an AWS step failed.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// Neither the spec nor the environment names a region.
    #[error("no AWS region: set spec.aws.region or AWS_REGION")]
    NoRegion,
    /// Loading the SDK configuration (region and credential discovery) did not finish in time.
    #[error("loading the AWS configuration timed out after {0:?}")]
    ConfigTimeout(Duration),
    /// An API call failed.
    #[error("{action}: {message}")]
    Api {
        /// The IAM action, e.g. `ec2:DeleteNetworkAcl`.
        action: &'static str,
        /// AWS's error code, e.g. `InvalidNetworkAclID.NotFound`.
        code: Option<String>,
        /// The full error.
        message: String,
        /// True when the call ran out of time rather than being refused.
        timed_out: bool,
    },
    /// A waiting loop gave up.
    #[error("{what} did not happen within {after:?}")]
    WaitTimeout {
        /// What was awaited.
        what: String,
        /// How long was waited.
        after: Duration,
    },
    /// The nodes could not be listed.
    #[error(transparent)]
    Nodes(#[from] NodeSourceError),
    /// The zone model refused the question.
    #[error(transparent)]
    Zone(#[from] ZoneError),
}

impl AwsError {
    /// Wraps an SDK error of `action`.
    pub(crate) fn api<E, R>(action: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let timed_out = matches!(err, SdkError::TimeoutError(_));
        AwsError::Api {
            action,
            code: err.code().map(str::to_owned),
            message: DisplayErrorContext(&err).to_string(),
            timed_out,
        }
    }

    /// AWS's error code, when the API answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            AwsError::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// True when the API said the object does not exist (codes ending in `.NotFound`).
    pub fn is_not_found(&self) -> bool {
        self.code().is_some_and(|c| c.ends_with(".NotFound"))
    }
}

impl From<AwsError> for FaultError {
    fn from(err: AwsError) -> Self {
        let text = err.to_string();
        match err {
            AwsError::Api {
                action,
                timed_out: true,
                ..
            } => FaultError::Timeout(action.to_owned()),
            AwsError::Api {
                action, message, ..
            } => FaultError::Api {
                action: action.to_owned(),
                message,
            },
            AwsError::ConfigTimeout(_) => {
                FaultError::Timeout("loading the AWS configuration".into())
            }
            AwsError::WaitTimeout { what, .. } => FaultError::Timeout(what),
            AwsError::Zone(ZoneError::Selection(SelectionError::OverCaps { .. })) => {
                FaultError::OverCaps(text)
            }
            AwsError::Zone(ZoneError::AmbiguousVpc(_)) => FaultError::Refused(text),
            AwsError::Zone(_) => FaultError::NoTargets(text),
            AwsError::NoRegion | AwsError::Nodes(_) => FaultError::Api {
                action: "aws".into(),
                message: text,
            },
        }
    }
}

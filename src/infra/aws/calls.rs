//! Counts of AWS throttling, server errors and SDK retries per operation, taken by an SDK
//! interceptor on every client steadfast builds, so the report can say how the cloud's control
//! plane behaved while the verdict was reached.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_ec2::config::interceptors::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_ec2::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;

use crate::report::model::EndpointCalls;

/// Error codes AWS uses for throttling, in the query (EC2, Auto Scaling) and JSON protocols.
pub const THROTTLING_CODES: &[&str] = &[
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
];

/// Errors and retries per `service:Operation`, shared by every clone.
#[derive(Debug, Clone, Default)]
pub struct AwsCallCounts {
    counts: Arc<Mutex<BTreeMap<String, (u64, u64)>>>,
}

/// Counts are shared state, not part of what makes two sets of options the same.
impl PartialEq for AwsCallCounts {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl AwsCallCounts {
    fn add(&self, endpoint: String, errors: u64, retries: u64) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = counts.entry(endpoint).or_default();
        entry.0 += errors;
        entry.1 += retries;
    }

    /// The counts as the report takes them, under API `aws`.
    pub fn endpoint_calls(&self) -> Vec<EndpointCalls> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(endpoint, (errors, retries))| EndpointCalls {
                api: crate::report::model::Api::Aws,
                endpoint: endpoint.clone(),
                errors: *errors,
                retries: *retries,
            })
            .collect()
    }

    /// The interceptor that counts into these counts for the calls of `service` (`ec2`,
    /// `autoscaling`).
    pub fn interceptor(&self, service: &'static str) -> CallCounter {
        CallCounter {
            service,
            counts: self.clone(),
        }
    }
}

/// Whether an answer is one the control plane should not have given: throttling (any status),
/// a server error, or none at all.
pub fn is_misbehaviour(status: Option<u16>, body: Option<&[u8]>) -> bool {
    match status {
        None => true,
        Some(s) if s == 429 || s >= 500 => true,
        Some(s) if s >= 400 => body.is_some_and(|b| {
            let text = String::from_utf8_lossy(b);
            THROTTLING_CODES.iter().any(|code| {
                text.contains(&format!("<Code>{code}</Code>"))
                    || text.contains(&format!("\"{code}\""))
            })
        }),
        Some(_) => false,
    }
}

/// Counts one service's attempts: a retry at every attempt after the first, an error at every
/// attempt answered with throttling, a server error or nothing.
#[derive(Debug)]
pub struct CallCounter {
    service: &'static str,
    counts: AwsCallCounts,
}

impl CallCounter {
    fn endpoint(&self, cfg: &ConfigBag) -> String {
        let operation = cfg.load::<Metadata>().map_or("unknown", Metadata::name);
        format!("{}:{operation}", self.service)
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "steadfast-call-counter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg
            .load::<RequestAttempts>()
            .map_or(1, RequestAttempts::attempts)
            > 1
        {
            self.counts.add(self.endpoint(cfg), 0, 1);
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response();
        let status = response.map(|r| r.status().as_u16());
        let body = response.and_then(|r| r.body().bytes());
        if is_misbehaviour(status, body) {
            self.counts.add(self.endpoint(cfg), 1, 0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_server_errors_and_silence_are_misbehaviour_not_client_errors() {
        let ec2 = b"<Response><Errors><Error><Code>RequestLimitExceeded</Code></Error></Errors></Response>";
        let asg = b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code></Error></ErrorResponse>";
        let gone = b"<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code></Error></Errors></Response>";
        assert!(is_misbehaviour(Some(503), Some(ec2)));
        assert!(is_misbehaviour(Some(400), Some(asg)));
        assert!(is_misbehaviour(Some(500), None));
        assert!(is_misbehaviour(None, None));
        assert!(!is_misbehaviour(Some(400), Some(gone)));
        assert!(!is_misbehaviour(Some(200), Some(b"<ok/>")));
    }

    #[test]
    fn clones_share_counts_and_report_them_per_operation() {
        let counts = AwsCallCounts::default();
        counts.clone().add("ec2:DescribeSubnets".into(), 2, 1);
        counts.add("ec2:DescribeSubnets".into(), 0, 1);
        let calls = counts.endpoint_calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(
            (calls[0].api.as_str(), calls[0].errors, calls[0].retries),
            ("aws", 2, 2)
        );
    }
}

//! Errors of the Kubernetes adapters.

use std::time::Duration;

/// Why a Kubernetes call failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// No usable kubeconfig or in-cluster configuration.
    #[error(
        "cannot configure the Kubernetes client: {message}\nhint: set KUBECONFIG or --kubeconfig, or run inside a pod with a service account"
    )]
    Config {
        /// What went wrong.
        message: String,
    },
    /// The API server answered with an error status.
    #[error("{action}: {message} (HTTP {code})")]
    Api {
        /// What was attempted.
        action: String,
        /// The HTTP status code (0 when the error came without one).
        code: u16,
        /// The server's message.
        message: String,
    },
    /// The API server throttled the call (429 without a PodDisruptionBudget cause, as API
    /// Priority and Fairness answers) and kept doing so past the retries.
    #[error(
        "{action}: the API server kept throttling: {message} (HTTP 429)\nhint: the control plane is overloaded; lower safety.apiQps or retry later"
    )]
    Throttled {
        /// What was attempted.
        action: String,
        /// The server's message.
        message: String,
    },
    /// The call did not finish in time.
    #[error("{action}: no answer within {after:?}")]
    Timeout {
        /// What was attempted.
        action: String,
        /// The deadline.
        after: Duration,
    },
    /// The request did not reach the server or the answer could not be read.
    #[error("{action}: {message}")]
    Transport {
        /// What was attempted.
        action: String,
        /// The transport error.
        message: String,
    },
}

impl KubeError {
    /// Maps a kube error for `action`.
    pub fn from_kube(action: &str, error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => {
                // Causes carry the specifics, e.g. which disruption budget refused an eviction.
                let mut message = status.message.clone();
                for cause in status.details.iter().flat_map(|d| &d.causes) {
                    if !cause.message.is_empty() {
                        message.push(' ');
                        message.push_str(&cause.message);
                    }
                }
                let budget = status
                    .details
                    .iter()
                    .flat_map(|d| &d.causes)
                    .any(|c| c.reason == "DisruptionBudget");
                if status.code == 429 && !budget {
                    return KubeError::Throttled {
                        action: action.to_owned(),
                        message,
                    };
                }
                if status.code == 403 {
                    message.push_str(
                        " (hint: the identity steadfast runs as lacks this permission; grant it as charts/steadfast/rbac-rules.yaml does, or run with a kubeconfig or ServiceAccount bound to those rules)",
                    );
                }
                KubeError::Api {
                    action: action.to_owned(),
                    code: status.code,
                    message,
                }
            }
            other => KubeError::Transport {
                action: action.to_owned(),
                message: other.to_string(),
            },
        }
    }

    /// The HTTP status code of an API error.
    pub fn code(&self) -> Option<u16> {
        match self {
            KubeError::Api { code, .. } => Some(*code),
            KubeError::Throttled { .. } => Some(429),
            _ => None,
        }
    }

    /// True for 404 Not Found.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    /// True for a PodDisruptionBudget refusing an eviction (429 with a `DisruptionBudget`
    /// cause); APF throttling is [`KubeError::Throttled`].
    pub fn is_budget_refusal(&self) -> bool {
        matches!(self, KubeError::Api { code: 429, .. })
    }

    /// True when the request may or may not have been carried out: a server error, a timeout
    /// or a lost connection. A write answered so must be re-read before being sent again.
    pub fn is_uncertain(&self) -> bool {
        match self {
            KubeError::Api { code, .. } => *code >= 500,
            KubeError::Timeout { .. } | KubeError::Transport { .. } => true,
            KubeError::Config { .. } | KubeError::Throttled { .. } => false,
        }
    }

    /// True for 409 Conflict (stale resourceVersion).
    pub fn is_conflict(&self) -> bool {
        self.code() == Some(409)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn too_many_requests(causes: serde_json::Value) -> kube::Error {
        let status = json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 429,
            "reason": "TooManyRequests",
            "message": "Cannot evict pod as it would violate the pod's disruption budget.",
            "details": {"causes": causes},
        });
        kube::Error::Api(Box::new(serde_json::from_value(status).expect("a Status")))
    }

    #[test]
    fn a_429_is_a_budget_refusal_only_with_a_disruption_budget_cause() {
        let apf = KubeError::from_kube("evict pod a/b", too_many_requests(json!([])));
        assert!(matches!(apf, KubeError::Throttled { .. }), "{apf:?}");
        assert!(!apf.is_budget_refusal());
        assert_eq!(apf.code(), Some(429));
        let budget = KubeError::from_kube(
            "evict pod a/b",
            too_many_requests(json!([{
                "reason": "DisruptionBudget",
                "message": "The disruption budget web needs 5 healthy pods and has 5 currently",
            }])),
        );
        assert!(budget.is_budget_refusal(), "{budget:?}");
        assert!(
            budget.to_string().contains("disruption budget web"),
            "{budget}"
        );
    }

    #[test]
    fn only_errors_that_may_have_acted_are_uncertain() {
        let api = |code| KubeError::Api {
            action: "delete pod a/b".into(),
            code,
            message: String::new(),
        };
        assert!(api(500).is_uncertain() && api(504).is_uncertain());
        assert!(!api(404).is_uncertain() && !api(409).is_uncertain());
        assert!(
            KubeError::Timeout {
                action: String::new(),
                after: Duration::from_secs(1)
            }
            .is_uncertain()
        );
    }
}

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
            _ => None,
        }
    }

    /// True for 404 Not Found.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    /// True for 409 Conflict (stale resourceVersion).
    pub fn is_conflict(&self) -> bool {
        self.code() == Some(409)
    }
}

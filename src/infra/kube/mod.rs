//! The Kubernetes adapter: the one place that talks to the API server for faults, rollback and
//! self-healing evidence.
//!
//! Every request goes through one [`KubeClient`], whose tower stack carries the run's rate
//! limiter ([`ratelimit`]) and, in tests, an access recorder ([`access`]) that keeps the RBAC
//! list ([`rbac::RULES`]) honest; outside both, [`retry`] retries throttled and failed reads and
//! APF-throttled evictions, so every retry pays its token.

pub mod access;
pub mod client;
pub mod detection_watch;
pub mod ephemeral;
pub mod error;
pub mod ops;
pub mod pod_security;
pub mod preflight;
pub mod ratelimit;
pub mod rbac;
pub mod readiness_watch;
pub mod retry;
pub mod service_proxy;
pub mod snapshot;
pub mod watch_backoff;

pub use access::{AccessLog, ApiAccess};
pub use client::{KubeClient, KubeOptions};
pub use error::KubeError;
pub use ops::Removal;
pub use ratelimit::RateLimiter;
pub use readiness_watch::ReadinessWatch;
pub use service_proxy::ServiceProxyTransport;

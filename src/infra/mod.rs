//! Adapters: the only code that talks to Kubernetes, AWS, Prometheus and HTTP servers. Each one
//! implements a narrow trait of the core.

pub mod cluster;

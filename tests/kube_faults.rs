//! End-to-end tests of the Kubernetes faults and their rollback: against the sandbox on
//! loopback by default, and against a real cluster (`KUBECONFIG`, a fresh namespace removed
//! afterwards) with `--ignored`.
//!
//! One test binary with submodules, so CI links it once.

#[path = "kube_faults/support.rs"]
mod support;

#[path = "kube_faults/scenarios.rs"]
mod scenarios;

#[path = "kube_faults/on_sandbox.rs"]
mod on_sandbox;

#[path = "kube_faults/on_cluster.rs"]
mod on_cluster;

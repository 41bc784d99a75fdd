//! End-to-end tests of the local Kubernetes sandbox, on loopback only.
//!
//! One test binary with submodules, so CI links it once.

#[path = "sandbox/support.rs"]
mod support;

#[path = "sandbox/api.rs"]
mod api;
#[path = "sandbox/clients.rs"]
mod clients;
#[path = "sandbox/idle.rs"]
mod idle;
#[path = "sandbox/nodes.rs"]
mod nodes;
#[path = "sandbox/traffic.rs"]
mod traffic;

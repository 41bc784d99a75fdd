//! End-to-end tests of the local Kubernetes sandbox, on loopback only.
//!
//! One test binary with submodules, so CI links it once.

#[path = "sandbox/support.rs"]
mod support;
#[path = "support/tools.rs"]
#[allow(dead_code)]
mod tools;

#[path = "sandbox/api.rs"]
mod api;
#[path = "sandbox/clients.rs"]
mod clients;
#[path = "sandbox/cloud.rs"]
mod cloud;
#[path = "sandbox/idle.rs"]
mod idle;
#[path = "sandbox/nodes.rs"]
mod nodes;
#[path = "sandbox/traffic.rs"]
mod traffic;

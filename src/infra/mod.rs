//! Adapters to the outside world: the only modules that name an SDK. Each exposes a narrow
//! interface in the crate's own types, so the core plans and judges without knowing which
//! client answered.

pub mod advise;
pub mod aws;
pub mod cluster;
pub mod kube;
pub mod local_state;
pub mod nodes;
pub mod pushgateway;
pub mod report_store;
pub mod wiring;

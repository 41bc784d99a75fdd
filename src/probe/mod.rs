//! Probes: the steady-state checks that run before, during and after a fault.
//!
//! A probe turns what it sees into [`Sample`](crate::measure::Sample)s (HTTP) or
//! [`Evaluation`](prometheus::Evaluation)s (Prometheus) and hands them on; it keeps no history of
//! its own, so memory stays bounded by the measurement store, not by the probe rate.
//!
//! Configuration comes in as plain resolved structs ([`http::HttpProbeConfig`],
//! [`prometheus::PrometheusProbeConfig`]): the spec layer maps its YAML onto them, and nothing
//! outside this module sees hyper, rustls or the Prometheus client.

pub mod autoscaling;
pub mod http;
pub mod kubernetes;
pub mod prometheus;
pub mod set;
pub mod sink;

pub use sink::{SampleSink, SinkError};

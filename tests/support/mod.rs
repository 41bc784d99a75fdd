//! Helpers shared by integration tests: real external tools started on loopback. Each test file
//! uses the parts it needs, so the rest would warn as unused there.
#![allow(dead_code)]

pub mod aws_proxy;
pub mod moto;
pub mod ok_server;
pub mod prometheus;
pub mod pushgateway;
pub mod sandbox;
pub mod tls;
pub mod tools;

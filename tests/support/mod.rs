//! Helpers shared by integration tests. Each test file uses the parts it needs, so the rest
//! would warn as unused there.
#![allow(dead_code)]

pub mod moto;

//! Adapters to the outside world: the only modules that import cloud and cluster SDKs.

pub mod kube;

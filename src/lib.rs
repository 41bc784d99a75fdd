//! steadfast: declarative chaos experiments that verify high availability on Kubernetes and AWS.
//!
//! The crate is a library first; `src/main.rs` only parses arguments and maps the outcome to an
//! exit code, so tests drive every command in-process. The core (`spec`, `plan`, `engine`,
//! `measure`, `verdict`, `report`) names no SDK: Kubernetes, AWS, Prometheus and HTTP live behind
//! narrow traits implemented in `infra`, `probe` and `fault`.

// Data reaches stdout only through a command's writer, and the library never panics on a value
// it could have handled; tests may do both (clippy.toml allows them there).
#![warn(clippy::print_stdout, clippy::unwrap_used)]

pub mod advise;
pub mod cli;
pub mod commands;
pub mod engine;
pub mod exit;
pub mod fault;
pub mod gate;
pub mod infra;
pub mod journal;
pub mod logging;
pub mod measure;
pub mod plan;
pub mod probe;
pub mod report;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod schedule;
pub mod spec;
pub mod verdict;

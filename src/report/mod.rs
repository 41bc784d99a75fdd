//! The HA report: one versioned model, and one module per output format.
//!
//! The model carries no secret by construction: the experiment appears as its name, labels and
//! a hash of its spec, never its headers or credentials.

pub mod build;
pub mod charts;
pub mod control_plane;
pub mod effect;
pub mod escape;
pub mod history;
pub mod html;
pub mod json;
pub mod junit;
pub mod kinds;
pub mod location;
pub mod markdown;
pub mod model;
pub mod prometheus;
pub mod score;
pub mod steady;
pub mod store;
pub mod write;

pub use build::{ProbeData, ReportInput, build_report, probe_reports};
pub use model::{REPORT_VERSION, Report};
pub use write::{ReportFiles, write_all};

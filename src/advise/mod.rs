//! `advise`: read-only high-availability findings from a snapshot of the cluster (and of its
//! Auto Scaling groups when AWS answers).
//!
//! The rules see only the plain [`model::Snapshot`], never a Kubernetes or AWS type, so every
//! rule is a pure function tested with hand-built snapshots; `infra` fills the snapshot.

pub mod finding;
pub mod model;
pub mod render;
pub mod rules;
pub mod templates;

pub use finding::{Finding, Severity};
pub use model::Snapshot;
pub use rules::evaluate;

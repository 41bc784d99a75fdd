//! Release gating: a policy file says which experiments must have run, how recently, and with
//! what results; [`evaluate`] judges a set of reports against it. Pure: reading files and the
//! clock is the command's job (`commands/gate.rs`).

pub mod evaluate;
pub mod output;
pub mod policy;
pub mod trend;

pub use evaluate::{Check, Decision, SourcedReport, Status, evaluate};
pub use policy::{GatePolicy, PolicyError};

//! The experiment file format, v1alpha1: wire structs, scalar forms, selectors, validation and
//! the JSON Schema.
//!
//! Three layers, named so a reader knows which one they hold: `*Spec` types are the file as
//! written (serde), [`validate`] finds every semantic problem without I/O, and the `plan` module
//! turns a valid spec into resolved targets.

pub mod diagnostic;
pub mod experiment;
pub mod fault;
pub mod load;
pub mod probe;
pub mod quantity;
pub mod safety;
pub mod schema;
pub mod selector;
pub mod source;
pub mod target;
pub mod validate;

pub use diagnostic::{Diagnostic, Severity};
pub use experiment::{
    API_VERSION, ExperimentSpec, KIND, Metadata, ScheduleSpec, Spec, SteadyStateSpec,
};
pub use fault::{FaultKind, FaultSpec};
pub use load::{
    LoadedExperiment, collect_experiment_files, declares_other_kind, load_file, parse_experiment,
};
pub use probe::{ProbeKind, ProbeSpec};
pub use quantity::{Comparison, DurationSpec, Percent, Rate};
pub use target::{Measure, TargetSpec, Window};
pub use validate::validate;

//! A finding: what is fragile, why it matters, how to fix it and which experiment would show it.

use serde::Serialize;

/// How much a finding matters; `--fail-on` compares against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; no outage on its own.
    Info,
    /// Degrades or blocks maintenance (drains, rollouts) or a zone failure.
    Warning,
    /// A single failure takes the service down.
    Error,
}

impl Severity {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// The experiment that would prove or disprove a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentHint {
    /// The fault kind, e.g. `podKill`.
    pub kind: &'static str,
    /// An example experiment file in this repository.
    pub example: &'static str,
}

/// One HA problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable rule id, e.g. `single-replica`.
    pub rule: &'static str,
    /// How much it matters.
    pub severity: Severity,
    /// The objects concerned, as `Kind/namespace/name` (or `Kind/name` when cluster-scoped).
    pub objects: Vec<String>,
    /// Why it matters.
    pub why: String,
    /// What to change.
    pub fix: String,
    /// The experiment that would show it.
    pub experiment: ExperimentHint,
}

/// Fault kinds and examples the findings point to.
pub mod experiments {
    use super::ExperimentHint;

    /// Kill a pod of the workload.
    pub const POD_KILL: ExperimentHint = ExperimentHint {
        kind: "podKill",
        example: "experiments/sandbox/pod-kill.yaml",
    };
    /// Drain a node under the workload.
    pub const NODE_DRAIN: ExperimentHint = ExperimentHint {
        kind: "nodeDrain",
        example: "experiments/sandbox/node-drain.yaml",
    };
    /// Take a zone away.
    pub const ZONE_OUTAGE: ExperimentHint = ExperimentHint {
        kind: "zoneOutage",
        example: "experiments/sandbox/zone-outage.yaml",
    };
    /// Probe the steady state only (`steadfast probe`), no fault.
    pub const STEADY_STATE: ExperimentHint = ExperimentHint {
        kind: "probe",
        example: "experiments/sandbox/steady-state.yaml",
    };
}

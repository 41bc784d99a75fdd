//! The top of an experiment file: header, metadata and the spec's sections.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::fault::FaultSpec;
use super::probe::ProbeSpec;
use super::quantity::DurationSpec;
use super::safety::SafetySpec;
use super::target::TargetSpec;

/// The only `apiVersion` this release reads.
pub const API_VERSION: &str = "steadfast.dev/v1alpha1";
/// The only `kind` an experiment file may have.
pub const KIND: &str = "Experiment";

/// A chaos experiment: what to watch, what to break, and what availability to demand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields, title = "steadfast Experiment")]
pub struct ExperimentSpec {
    /// Always `steadfast.dev/v1alpha1`.
    pub api_version: String,
    /// Always `Experiment`.
    pub kind: String,
    /// Name and labels; the name appears in reports, journals and metrics.
    pub metadata: Metadata,
    /// What the experiment does.
    pub spec: Spec,
}

/// Identity of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Metadata {
    /// A DNS label (lowercase letters, digits, '-'), unique within a suite.
    pub name: String,
    /// Free-form labels; release gates select experiments by them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// The body of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Spec {
    /// What the experiment proves, for people reading the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Length of the fault phase. Every fault's `at` + `for` must fit inside it.
    pub duration: DurationSpec,
    /// Upper bound on the whole run, steady-state checks and recovery included; the run is
    /// aborted (and rolled back) when it is reached. Defaults to 3 × duration + 5m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
    /// When the scheduler and the Helm chart's CronJob run this experiment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleSpec>,
    /// Seed for every random choice (targets); a run records the seed it used, so a run can be
    /// repeated exactly. Random when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// AWS settings, for the EC2 and network-ACL faults and the Auto Scaling probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsSpec>,
    /// The probes and when the system counts as steady.
    pub steady_state: SteadyStateSpec,
    /// The faults, on a timeline relative to the start of the fault phase.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// The availability targets the verdict is made of.
    #[serde(default)]
    pub targets: Vec<TargetSpec>,
    /// Guard rails: which namespaces may be touched, blast-radius caps, abort conditions.
    #[serde(default)]
    pub safety: SafetySpec,
}

/// A cron schedule with an optional time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Five-field cron expression as Kubernetes CronJobs take it, e.g. `0 3 * * 1-5`.
    pub cron: String,
    /// IANA time zone the expression is read in, e.g. `Europe/Berlin`; UTC when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Random delay added to each firing, to spread load when many clusters share a schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<DurationSpec>,
}

/// Where AWS calls go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct AwsSpec {
    /// Region, e.g. `eu-west-1`; from the environment (AWS_REGION) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// VPC of the cluster; discovered from the nodes' instances when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
}

/// Probes, and the windows in which the steady state is judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct SteadyStateSpec {
    /// How long probes run before the first fault; the steady state must hold over it or no
    /// fault is injected. Default 10s.
    #[serde(default = "default_before")]
    pub before: DurationSpec,
    /// How long probes keep running once the system has recovered; targets with window `after`
    /// are judged over it. Default 10s.
    #[serde(default = "default_after")]
    pub after: DurationSpec,
    /// How long to wait, after the last rollback, for the steady state to hold again. Default 2m.
    #[serde(default = "default_recovery_timeout")]
    pub recovery_timeout: DurationSpec,
    /// The probes, each named so targets can refer to it.
    pub probes: Vec<ProbeSpec>,
}

fn default_before() -> DurationSpec {
    DurationSpec::from_secs(10)
}

fn default_after() -> DurationSpec {
    DurationSpec::from_secs(10)
}

fn default_recovery_timeout() -> DurationSpec {
    DurationSpec::from_secs(120)
}

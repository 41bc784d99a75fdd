//! The report model, versioned and described by a committed JSON Schema
//! (`reports/schema.json`), so consumers can rely on its shape.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::kinds::{
    Api, EffectStatus, EventKind, OrOther, Outcome, TargetEffect, WindowName, Word,
};
use crate::fault::TargetKind;
use crate::measure::TimeWindow;
use crate::spec::{FaultKind, Measure, ProbeKind, Window};
use crate::verdict::RunWindows;

/// Bumped on every incompatible change of the model.
pub const REPORT_VERSION: u32 = 1;

/// One run's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(title = "steadfast HA report")]
pub struct Report {
    /// Version of this model.
    pub report_version: u32,
    /// The tool that wrote it.
    pub tool: ToolInfo,
    /// The run.
    pub run: RunInfo,
    /// The experiment.
    pub experiment: ExperimentInfo,
    /// Where it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterInfo>,
    /// `passed`, `failed`, `notSteady`, `aborted` or `rollbackIncomplete`, with details.
    pub verdict: VerdictInfo,
    /// The process exit code of the run.
    pub exit_code: u8,
    /// The windows, in seconds from the run's origin.
    pub windows: Windows,
    /// What happened, in order.
    pub timeline: Vec<TimelineEvent>,
    /// Each fault.
    pub faults: Vec<FaultReport>,
    /// Each probe's measurements.
    pub probes: Vec<ProbeReport>,
    /// Each target, judged.
    pub targets: Vec<TargetReport>,
    /// Whether everything was rolled back.
    pub rollback: RollbackReport,
    /// 0–100: the targets weighted, with partial credit by margin (see `report::score`).
    /// Absent in reports written before the score existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resilience_score: Option<f64>,
    /// API errors and retries per endpoint, when the Kubernetes API or AWS answered with
    /// throttling, server errors or transport failures during the run. Absent when every call
    /// was answered cleanly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<ControlPlaneReport>,
}

/// How the control planes answered: a verdict reached while they misbehaved says so, since
/// retries stretched what the run did and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ControlPlaneReport {
    /// True when any call was throttled, failed with a server error or did not get an answer.
    pub misbehaved: bool,
    /// Error answers over every endpoint.
    pub errors: u64,
    /// Attempts after the first over every endpoint.
    pub retries: u64,
    /// Each endpoint that saw an error, by API then endpoint.
    pub endpoints: Vec<EndpointCalls>,
}

/// What one API endpoint went through in a run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointCalls {
    /// `kubernetes` or `aws`.
    pub api: Api,
    /// `verb resource` for Kubernetes (`delete pods`), `service:Operation` for AWS.
    pub endpoint: String,
    /// Throttling, server error and transport failure answers, retried or not.
    pub errors: u64,
    /// Attempts after the first.
    pub retries: u64,
}

/// The tool that wrote the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolInfo {
    /// `steadfast`.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// Identity and timing of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunInfo {
    /// Run id.
    pub id: String,
    /// The seed of every random choice; rerun with it to repeat them.
    pub seed: u64,
    /// Start (UTC).
    pub started_at: DateTime<Utc>,
    /// End (UTC).
    pub finished_at: DateTime<Utc>,
    /// Length in seconds.
    pub duration_seconds: f64,
}

/// The experiment, without its spec's contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentInfo {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `spec.description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// SHA-256 of the spec as parsed, to tell which version of a file ran.
    pub spec_sha256: String,
    /// The file it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// Where the run happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    /// Kubeconfig context, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// API server URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// AWS region, if AWS was involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerdictInfo {
    /// `passed`, `failed`, `not steady`, `aborted` or `rollback incomplete`.
    pub outcome: Outcome,
    /// Why, in one line.
    pub summary: String,
    /// Targets missed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missed: Vec<String>,
}

// Not a `TimeWindow`: a stored report's seconds are read and written back as the exact
// numbers the file holds, whatever version wrote them, which a nanosecond `Duration` would
// round and could not hold when negative. The charts draw from it too.
/// A span of run time in seconds from the origin.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
}

/// The one way from a run's windows to the report's.
impl From<TimeWindow> for Span {
    fn from(w: TimeWindow) -> Self {
        Span {
            start: w.start.as_secs_f64(),
            end: w.end.as_secs_f64(),
        }
    }
}

/// The run's windows.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Windows {
    /// Steady state before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Span>,
    /// Faults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub during: Option<Span>,
    /// Steady state after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Span>,
    /// Whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Span>,
}

/// The report's side of the run's windows; each fault's window goes with its fault.
impl From<&RunWindows> for Windows {
    fn from(w: &RunWindows) -> Self {
        Windows {
            before: w.before.map(Span::from),
            during: w.during.map(Span::from),
            after: w.after.map(Span::from),
            run: w.run.map(Span::from),
        }
    }
}

/// One timeline event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEvent {
    /// Seconds from the origin.
    pub at: f64,
    /// `phaseStarted`, `faultInjected`, `faultConfirmed`, `faultNoEffect`, `faultDetected`,
    /// `faultSkipped`, `rolledBack`, `rollbackFailed`, `aborted`; other words are kept as read,
    /// since later versions may add events.
    pub event: OrOther<EventKind>,
    /// The fault concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// One line for people.
    pub detail: String,
    /// Objects touched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
}

/// One fault of the experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FaultReport {
    /// Name.
    pub name: String,
    /// Kind key (`podKill`, …); `unknown` when the fault set none, other words as read.
    pub kind: OrOther<FaultKind>,
    /// Its window as it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Span>,
    /// How many times it fired.
    pub firings: u32,
    /// Every object it touched, with what happened to it.
    pub targets: Vec<FaultTarget>,
    /// Self-healing: seconds until everything it disrupted was whole again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healed_after_seconds: Option<f64>,
    /// Whether it healed within the timeout; absent for faults with nothing to heal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healed: Option<bool>,
    /// Each firing: when it was due, when its actions went out, and when it healed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub firing_times: Vec<FiringTimes>,
    /// Whether its change showed through the API; absent when it never fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<FaultEffect>,
    /// Seconds from the origin when the system first noticed it (endpoints left their
    /// Services, nodes turned NotReady); absent when nothing was noticed or nothing to notice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detected_at: Option<f64>,
    /// Milliseconds from injection to detection, the slowest firing; absent when a firing went
    /// unnoticed or there was nothing to notice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_ms: Option<f64>,
}

/// One firing of a fault, timed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FiringTimes {
    /// Which repetition, from 0.
    pub firing: u32,
    /// When the schedule said to fire, seconds from the origin.
    pub scheduled_at: f64,
    /// When each target's action was issued, seconds from the origin.
    pub actions: Vec<f64>,
    /// From the scheduled instant to the first action, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_ms: Option<f64>,
    /// From the first action to the last, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread_ms: Option<f64>,
    /// When what it disrupted was whole again, seconds from the origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healed_at: Option<f64>,
    /// From its first action until whole again, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healed_after_seconds: Option<f64>,
    /// Whether it healed within the timeout; absent for faults with nothing to heal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healed: Option<bool>,
}

/// Whether a fault's change showed through the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FaultEffect {
    /// `confirmed` (every firing's change showed), `noEffect` (a firing changed nothing) or
    /// `unchecked`.
    pub status: EffectStatus,
    /// Seconds from the origin when the first firing's change was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_at: Option<f64>,
    /// Why a firing had no effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whether the experiment lets a fault without effect pass (`allowNoEffect`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allowed: bool,
}

/// One object a fault touched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FaultTarget {
    /// `pod`, `node`, `instance` or `subnet`.
    pub kind: TargetKind,
    /// `namespace/name` or id.
    pub name: String,
    /// Node, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Zone, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// `applied`, `blockedByBudget`, `skipped`, `failed`.
    pub effect: TargetEffect,
    /// Budget name, skip reason or error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Seconds from the origin.
    pub at: f64,
}

/// One probe's measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProbeReport {
    /// Name.
    pub name: String,
    /// `http`, `prometheus`, `kubernetes` or `autoscaling`; other words are kept as read.
    pub kind: OrOther<ProbeKind>,
    /// Per window (`before`, `during`, `after`, `run`; `probe` from the `probe` command).
    pub windows: BTreeMap<WindowName, ProbeWindow>,
    /// Time series for the charts (HTTP probes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<SeriesPoint>,
    /// Per-backend traffic shares over the run (HTTP probes with a backend header).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<BackendShare>,
    /// Evaluations of condition probes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evaluations: Vec<Evaluation>,
    /// Condition probes: every change between held and failed, so a flap shorter than the
    /// evaluation interval shows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<Transition>,
    /// A per-endpoint probe (`<probe>@<pod>`): the probe whose Service the endpoint backs.
    /// Reported, never judged: it tells a failover (the Service held) from an outage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_of: Option<String>,
}

/// A condition probe changing between held and failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    /// Seconds from the origin, when the change was seen.
    pub at: f64,
    /// The state entered.
    pub held: bool,
    /// The evaluation's detail then.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// An HTTP probe over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProbeWindow {
    /// Attempts.
    pub attempts: u64,
    /// Successful attempts.
    pub successes: u64,
    /// Failed attempts by kind (`connect`, `timeout`, `status`, …).
    pub failures: BTreeMap<String, u64>,
    /// Successes / attempts (0–1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<f64>,
    /// Latency percentiles of successful attempts, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<Percentiles>,
    /// Longest outage, seconds (0 when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longest_outage_seconds: Option<f64>,
    /// Condition probes: share of evaluations that held (0–1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub satisfied: Option<f64>,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th.
    pub p90: f64,
    /// 99th.
    pub p99: f64,
    /// 99.9th.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
}

/// One point of a probe's time series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeriesPoint {
    /// Seconds from the origin.
    pub t: f64,
    /// Attempts.
    pub attempts: u64,
    /// Success ratio (0–1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_ratio: Option<f64>,
    /// Median latency, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    /// 99th-percentile latency, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
    /// Successful responses per backend.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub backends: BTreeMap<String, u64>,
}

/// One backend's share of traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackendShare {
    /// Backend identity.
    pub backend: String,
    /// Successful responses.
    pub successes: u64,
    /// Share (0–1).
    pub share: f64,
    /// Fair share among the ready backends of the time (0–1).
    pub expected_share: f64,
    /// Responses it gave after it was deleted.
    #[serde(default)]
    pub served_after_deletion: u64,
}

/// One evaluation of a condition probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    /// Seconds from the origin.
    pub at: f64,
    /// Whether the expectation held.
    pub held: bool,
    /// The value observed, when numeric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// One line for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// One target, judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetReport {
    /// Name.
    pub name: String,
    /// Probe.
    pub probe: String,
    /// Measure key; other words are kept as read, since later versions may add measures.
    pub measure: OrOther<Measure>,
    /// Window name.
    pub window: Window,
    /// Required, as written.
    pub required: String,
    /// Measured, formatted like the bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<String>,
    /// Measured as a number (percent for ratios, seconds for durations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Met or not.
    pub passed: bool,
    /// Evidence in words.
    pub detail: String,
    /// The span the evidence points at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<Span>,
}

/// Rollback status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollbackReport {
    /// Every undo record applied.
    pub complete: bool,
    /// Undo records still pending (run `steadfast rollback`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<String>,
    /// Undo records applied.
    pub applied: u32,
}

/// The report's JSON Schema, committed as `reports/schema.json`.
pub fn report_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&schemars::schema_for!(Report)).unwrap_or_default();
    text.push('\n');
    text
}

//! Availability targets: the measurable promises an experiment checks.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::quantity::{Comparison, DurationSpec, LatencyBound, Percent};

/// The part of a run a target is judged over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Window {
    /// The steady-state window before the first fault.
    Before,
    /// From the first fault's start to the last fault's end (or the named fault's window).
    #[default]
    During,
    /// The steady-state window after recovery.
    After,
    /// The whole run, from the first probe to the last.
    Run,
}

impl Window {
    /// The name as written.
    pub fn name(self) -> &'static str {
        match self {
            Window::Before => "before",
            Window::During => "during",
            Window::After => "after",
            Window::Run => "run",
        }
    }
}

/// One target: a probe, a window and exactly one measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct TargetSpec {
    /// Name in reports and JUnit; defaults to `<probe>-<measure>-<window>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The probe whose measurements are judged.
    pub probe: String,
    /// The window judged. Default `during`.
    #[serde(default)]
    pub window: Window,
    /// Restrict `during` (and `recovery`) to one fault's window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// Share of successful requests (HTTP probes), e.g. `>= 99.5%`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<Comparison<Percent>>,
    /// A latency percentile of successful requests (HTTP probes), e.g. `p99 < 300ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyBound>,
    /// The longest stretch of failed requests (HTTP probes), e.g. `<= 2s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longest_outage: Option<Comparison<DurationSpec>>,
    /// Time from each fault's start until success stays above `recoveredAt` for `stableFor`
    /// (HTTP probes), e.g. `<= 30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<Comparison<DurationSpec>>,
    /// The largest gap, in percentage points, between a backend's share of traffic and its fair
    /// share among the ready endpoints (HTTP probes with `backendHeader`), e.g. `<= 10%`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<Comparison<Percent>>,
    /// Share of evaluations whose expectation held (Prometheus, Kubernetes and Auto Scaling
    /// probes), e.g. `>= 100%`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub satisfied: Option<Comparison<Percent>>,
    /// Time from each fault's start until every replaced pod, node or instance is Ready again,
    /// e.g. `<= 2m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_healing: Option<Comparison<DurationSpec>>,
    /// Time from each fault's injection until the system noticed it (the lost pods left their
    /// Services, or the nodes turned NotReady), the slowest firing counting, e.g. `<= 45s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection: Option<Comparison<DurationSpec>>,
    /// For `recovery`: the success ratio that counts as recovered. Default 99%.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered_at: Option<Percent>,
    /// For `recovery`: how long success must stay above `recoveredAt`. Default 5s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_for: Option<DurationSpec>,
}

/// The measure keys of a target, in schema order.
pub const MEASURES: &[&str] = &[
    "availability",
    "latency",
    "longestOutage",
    "recovery",
    "balance",
    "satisfied",
    "selfHealing",
    "detection",
];

/// Which measure a target judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Measure {
    /// `availability`
    Availability,
    /// `latency`
    Latency,
    /// `longestOutage`
    LongestOutage,
    /// `recovery`
    Recovery,
    /// `balance`
    Balance,
    /// `satisfied`
    Satisfied,
    /// `selfHealing`
    SelfHealing,
    /// `detection`
    Detection,
}

impl Measure {
    /// The key as written.
    pub fn key(self) -> &'static str {
        match self {
            Measure::Availability => "availability",
            Measure::Latency => "latency",
            Measure::LongestOutage => "longestOutage",
            Measure::Recovery => "recovery",
            Measure::Balance => "balance",
            Measure::Satisfied => "satisfied",
            Measure::SelfHealing => "selfHealing",
            Measure::Detection => "detection",
        }
    }

    /// True for measures computed from HTTP probe samples.
    pub fn needs_http_probe(self) -> bool {
        !matches!(
            self,
            Measure::Satisfied | Measure::SelfHealing | Measure::Detection
        )
    }
}

impl TargetSpec {
    /// The measures that are set; valid targets have exactly one.
    pub fn measures(&self) -> Vec<Measure> {
        let set = [
            (self.availability.is_some(), Measure::Availability),
            (self.latency.is_some(), Measure::Latency),
            (self.longest_outage.is_some(), Measure::LongestOutage),
            (self.recovery.is_some(), Measure::Recovery),
            (self.balance.is_some(), Measure::Balance),
            (self.satisfied.is_some(), Measure::Satisfied),
            (self.self_healing.is_some(), Measure::SelfHealing),
            (self.detection.is_some(), Measure::Detection),
        ];
        set.into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, m)| m)
            .collect()
    }

    /// The measure of a validated target.
    pub fn measure(&self) -> Option<Measure> {
        match self.measures()[..] {
            [measure] => Some(measure),
            _ => None,
        }
    }

    /// The name shown in reports.
    pub fn display_name(&self) -> String {
        match (&self.name, self.measure()) {
            (Some(name), _) => name.clone(),
            (None, Some(measure)) => {
                format!("{}-{}-{}", self.probe, measure.key(), self.window.name())
            }
            (None, None) => self.probe.clone(),
        }
    }
}

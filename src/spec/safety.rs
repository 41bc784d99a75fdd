//! Guard rails: what a run may touch, how much of it, and when to stop.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::quantity::{Comparison, DurationSpec, Percent};

/// Limits that hold whatever the faults ask for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct SafetySpec {
    /// Namespaces faults may touch; when set, nothing else is. `kube-system` is denied unless
    /// listed here explicitly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_namespaces: Vec<String>,
    /// Namespaces faults never touch, whatever else says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_namespaces: Vec<String>,
    /// Only objects carrying this label (`key` or `key=value`) may be chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_in_label: Option<String>,
    /// Most pods one fault firing may touch. Default 10.
    #[serde(default = "default_max_pods")]
    pub max_pods: u32,
    /// Most nodes (or instances) one fault firing may touch. Default 1.
    #[serde(default = "default_max_nodes")]
    pub max_nodes: u32,
    /// Most of the matching objects one fault firing may touch. Default 50%.
    #[serde(default = "default_max_percent")]
    pub max_percent: Percent,
    /// Stop injecting and roll back when any of these holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub abort_when: Vec<AbortConditionSpec>,
    /// Kubernetes API calls per second, shared by every fault and probe. Default 5.
    #[serde(default = "default_api_qps")]
    pub api_qps: u32,
    /// Burst above `apiQps`. Default 10.
    #[serde(default = "default_api_burst")]
    pub api_burst: u32,
}

impl Default for SafetySpec {
    fn default() -> Self {
        Self {
            allow_namespaces: Vec::new(),
            deny_namespaces: Vec::new(),
            opt_in_label: None,
            max_pods: default_max_pods(),
            max_nodes: default_max_nodes(),
            max_percent: default_max_percent(),
            abort_when: Vec::new(),
            api_qps: default_api_qps(),
            api_burst: default_api_burst(),
        }
    }
}

fn default_max_pods() -> u32 {
    10
}

fn default_max_nodes() -> u32 {
    1
}

fn default_max_percent() -> Percent {
    Percent::new(50.0)
}

fn default_api_qps() -> u32 {
    5
}

fn default_api_burst() -> u32 {
    10
}

/// One abort condition: exactly one of `availability` (with `probe`) or `alert`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct AbortConditionSpec {
    /// The HTTP probe watched by `availability`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<String>,
    /// Abort when the probe's availability over the last `over` satisfies this, e.g. `< 90%`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<Comparison<Percent>>,
    /// The sliding window for `availability`. Default 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over: Option<DurationSpec>,
    /// Abort when this Prometheus alert fires (a stop condition, as AWS FIS has).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<AlertConditionSpec>,
}

/// A Prometheus alert to watch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct AlertConditionSpec {
    /// The alert's name (`alertname` label).
    pub name: String,
    /// Prometheus base URL; defaults as for Prometheus probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

//! A Prometheus alert as a stop condition: the run stops injecting and rolls back while the named
//! alert fires, as AWS FIS stops an experiment on a CloudWatch alarm.
//!
//! It reads `/api/v1/alerts`, the rule evaluator's own state, rather than querying the `ALERTS`
//! series: the alert counts from the evaluation that fired it, not from when that sample was
//! written and became queryable. Pending alerts do not count; their `for:` has not elapsed.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use prometheus_http_query::Client;

use super::PrometheusProbeError;
use crate::engine::AbortCheck;

/// Watches one alert on one Prometheus.
pub struct AlertAbort {
    client: Client,
    url: String,
    name: String,
    timeout: Duration,
}

impl AlertAbort {
    /// Watches the alert `name` on the Prometheus at `url`; each look is bounded by `timeout`.
    ///
    /// # Errors
    /// [`PrometheusProbeError::InvalidUrl`] when `url` is not a URL.
    pub fn new(url: &str, name: &str, timeout: Duration) -> Result<Self, PrometheusProbeError> {
        let client = Client::try_from(url).map_err(|source| PrometheusProbeError::InvalidUrl {
            url: url.to_owned(),
            source,
        })?;
        Ok(Self {
            client,
            url: url.to_owned(),
            name: name.to_owned(),
            timeout,
        })
    }
}

/// The abort reason when any of `firing` (the label sets of firing alerts) is named `name`.
pub fn firing_reason<'a>(
    name: &str,
    firing: impl IntoIterator<Item = BTreeMap<&'a str, &'a str>>,
) -> Option<String> {
    let matching: Vec<String> = firing
        .into_iter()
        .filter(|labels| labels.get("alertname") == Some(&name))
        .map(|labels| {
            labels
                .iter()
                .filter(|(k, _)| **k != "alertname")
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    if matching.is_empty() {
        return None;
    }
    let shown: Vec<String> = matching
        .iter()
        .take(3)
        .map(|l| format!("{{{l}}}"))
        .collect();
    let more = matching.len().saturating_sub(shown.len());
    Some(format!(
        "Prometheus alert `{name}` is firing {}{}",
        shown.join(" "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    ))
}

#[async_trait]
impl AbortCheck for AlertAbort {
    async fn check(&self) -> anyhow::Result<Option<String>> {
        let alerts = tokio::time::timeout(self.timeout, self.client.alerts())
            .await
            .map_err(|_| {
                anyhow!(
                    "Prometheus {} did not list its alerts within {:?}",
                    self.url,
                    self.timeout
                )
            })?
            .with_context(|| format!("Prometheus {}: cannot list alerts", self.url))?;
        Ok(firing_reason(
            &self.name,
            alerts.iter().filter(|a| a.state().is_firing()).map(|a| {
                a.labels()
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect()
            }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_alert_counts_and_its_labels_are_shown() {
        let other = BTreeMap::from([("alertname", "DiskFull")]);
        assert_eq!(firing_reason("HighErrorRate", [other.clone()]), None);
        let ours = BTreeMap::from([
            ("alertname", "HighErrorRate"),
            ("service", "web"),
            ("severity", "page"),
        ]);
        assert_eq!(
            firing_reason("HighErrorRate", [other, ours]).as_deref(),
            Some("Prometheus alert `HighErrorRate` is firing {service=web,severity=page}")
        );
    }

    #[test]
    fn many_firing_series_are_summarised() {
        let series: Vec<String> = (0..5).map(|i| i.to_string()).collect();
        let sets = series
            .iter()
            .map(|i| BTreeMap::from([("alertname", "A"), ("pod", i.as_str())]));
        let reason = firing_reason("A", sets).unwrap();
        assert!(reason.ends_with("{pod=2} and 2 more"), "{reason}");
    }
}

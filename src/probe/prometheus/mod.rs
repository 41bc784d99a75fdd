//! The Prometheus probe: a PromQL query judged by a comparison, as an instant query every few
//! seconds during a run and as a range query over a window afterwards.
//!
//! Every series of the result must meet the comparison (at every step, for a range query); what
//! an empty result means is an explicit choice ([`EmptyResult`]), because "no errors" and
//! "no data" look the same to PromQL.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use std::time::Duration;
//! use steadfast::probe::prometheus::*;
//!
//! let probe = PrometheusProbe::new(PrometheusProbeConfig {
//!     url: "http://127.0.0.1:9090".into(),
//!     query: "sum(rate(http_errors_total[$window])) / sum(rate(http_requests_total[$window]))".into(),
//!     comparison: Comparison { op: CompareOp::Lt, threshold: 0.01 },
//!     on_empty: EmptyResult::Fail,
//!     auth: Some(PrometheusAuth::Bearer("token".into())),
//!     headers: http::HeaderMap::new(),
//!     timeout: DEFAULT_QUERY_TIMEOUT,
//! })?;
//! let now = chrono::Utc::now();
//! let during = probe.instant(now, Duration::from_secs(60)).await?;
//! let after = probe.range(now - chrono::Duration::minutes(10), now, Duration::from_secs(15)).await?;
//! println!("{}", serde_json::to_string(&after)?);
//! # Ok(()) }
//! ```

pub mod alert;
mod auth;
mod evaluation;
mod template;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
use prometheus_http_query::{Client, response::Data};
use tokio_util::sync::CancellationToken;

pub use alert::AlertAbort;
pub use evaluation::{
    CompareOp, Comparison, EmptyResult, Evaluation, Point, QueryKind, SeriesEvaluation,
};
pub use template::{Span, promql_duration, render};

/// Default bound on one query, request and evaluation together.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// The shortest interval between instant evaluations: faster only loads Prometheus, whose
/// data changes once per scrape anyway.
pub const MIN_EVALUATION_INTERVAL: Duration = Duration::from_millis(100);
/// Prometheus refuses range queries of more than 11,000 points per series.
const MAX_POINTS_PER_SERIES: f64 = 11_000.0;

/// How to authenticate to Prometheus. `Debug` shows the kind, never the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum PrometheusAuth {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// HTTP basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
}

impl std::fmt::Debug for PrometheusAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrometheusAuth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            PrometheusAuth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

/// A resolved Prometheus probe.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusProbeConfig {
    /// Base URL of the Prometheus HTTP API, e.g. `http://prometheus:9090` (a path prefix is kept).
    pub url: String,
    /// PromQL, with `$window`, `$start` and `$end` filled in per evaluation.
    pub query: String,
    /// The condition every point of every series must meet.
    pub comparison: Comparison,
    /// What an empty result means.
    pub on_empty: EmptyResult,
    /// Credentials, if Prometheus needs them.
    pub auth: Option<PrometheusAuth>,
    /// Extra headers, e.g. `X-Scope-OrgID` for Mimir or Thanos tenants.
    pub headers: HeaderMap,
    /// Bound on one query.
    pub timeout: Duration,
}

/// Why a Prometheus probe cannot be built or a query failed.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusProbeError {
    /// The base URL does not parse.
    #[error(
        "invalid Prometheus URL {url}\nhint: give an absolute URL such as http://prometheus:9090"
    )]
    InvalidUrl {
        /// The configured URL.
        url: String,
        /// The parser's reason.
        #[source]
        source: prometheus_http_query::Error,
    },
    /// The credentials contain characters a header cannot carry.
    #[error(
        "Prometheus credentials cannot be sent as a header\nhint: remove control characters and newlines from the token"
    )]
    InvalidCredentials,
    /// The query was rejected or could not be sent.
    #[error("Prometheus query `{query}` failed")]
    Query {
        /// The query as sent.
        query: String,
        /// The client's or server's reason.
        #[source]
        source: prometheus_http_query::Error,
    },
    /// No answer within the timeout.
    #[error("Prometheus query `{query}` timed out after {timeout:?}")]
    Timeout {
        /// The query as sent.
        query: String,
        /// The configured bound.
        timeout: Duration,
    },
    /// A range whose end is not after its start, or a step that is zero or too small for it.
    #[error("invalid range query: {0}")]
    InvalidRange(String),
}

/// A Prometheus probe bound to one server and one query.
#[derive(Clone)]
pub struct PrometheusProbe {
    client: Client,
    headers: HeaderMap,
    config: PrometheusProbeConfig,
}

impl PrometheusProbe {
    /// A probe of `config`; no request is made yet.
    ///
    /// # Errors
    /// [`PrometheusProbeError::InvalidUrl`] or [`PrometheusProbeError::InvalidCredentials`].
    pub fn new(config: PrometheusProbeConfig) -> Result<Self, PrometheusProbeError> {
        let client = Client::try_from(config.url.as_str()).map_err(|source| {
            PrometheusProbeError::InvalidUrl {
                url: config.url.clone(),
                source,
            }
        })?;
        let mut headers = config.headers.clone();
        if let Some(auth) = &config.auth {
            let value = match auth {
                PrometheusAuth::Bearer(token) => format!("Bearer {token}"),
                PrometheusAuth::Basic { username, password } => {
                    format!(
                        "Basic {}",
                        auth::base64(format!("{username}:{password}").as_bytes())
                    )
                }
            };
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| PrometheusProbeError::InvalidCredentials)?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        Ok(PrometheusProbe {
            client,
            headers,
            config,
        })
    }

    /// Evaluates the query once at `at`, over the `window` before it (`$window`, `$start`).
    ///
    /// # Errors
    /// [`PrometheusProbeError::Query`] or [`PrometheusProbeError::Timeout`] when Prometheus gave
    /// no result; a result that fails the comparison is an `Ok` evaluation with `passed: false`.
    pub async fn instant(
        &self,
        at: DateTime<Utc>,
        window: Duration,
    ) -> Result<Evaluation, PrometheusProbeError> {
        let span = Span {
            start: at - chrono::Duration::from_std(window).unwrap_or_default(),
            end: at,
        };
        let query = render(&self.config.query, span);
        let mut builder = self
            .client
            .query(&query)
            .query("time", template::unix_seconds(at))
            .timeout(i64::try_from(self.config.timeout.as_millis()).unwrap_or(i64::MAX));
        for (name, value) in &self.headers {
            builder = builder.header(name.clone(), value.clone());
        }
        let data = self.bounded(&query, builder.get()).await?;
        Ok(self.judge(QueryKind::Instant, query, span, data))
    }

    /// Evaluates the query over `[start, end]` at every `step` (`$window` is the whole span).
    /// The span is widened to whole seconds, as the Prometheus client takes Unix seconds.
    ///
    /// # Errors
    /// [`PrometheusProbeError::InvalidRange`] for an empty span or a step that would exceed
    /// Prometheus' 11,000 points; otherwise as [`instant`](Self::instant).
    pub async fn range(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Evaluation, PrometheusProbeError> {
        if end <= start {
            return Err(PrometheusProbeError::InvalidRange(format!(
                "end {end} is not after start {start}"
            )));
        }
        // The client takes whole Unix seconds; widen the span to them rather than lose its
        // last fraction of a second.
        let span = Span {
            start: whole_second_at_or_before(start),
            end: whole_second_at_or_after(end),
        };
        let step_seconds = step.as_secs_f64();
        if step_seconds < 0.001
            || span.window().as_secs_f64() / step_seconds > MAX_POINTS_PER_SERIES
        {
            return Err(PrometheusProbeError::InvalidRange(format!(
                "step {step:?} over {:?} gives more than 11000 points; use a larger step",
                span.window()
            )));
        }
        let query = render(&self.config.query, span);
        let mut builder = self
            .client
            .query_range(
                &query,
                span.start.timestamp(),
                span.end.timestamp(),
                step_seconds,
            )
            .timeout(i64::try_from(self.config.timeout.as_millis()).unwrap_or(i64::MAX));
        for (name, value) in &self.headers {
            builder = builder.header(name.clone(), value.clone());
        }
        let data = self.bounded(&query, builder.get()).await?;
        Ok(self.judge(QueryKind::Range, query, span, data))
    }

    /// Evaluates the instant query every `every` until `cancel` fires, each over the `window`
    /// before its evaluation time. Failed queries become failed evaluations carrying their
    /// error, so a Prometheus outage shows in the report instead of ending the run. Intervals
    /// below [`MIN_EVALUATION_INTERVAL`] are raised to it; the first evaluation is immediate.
    pub async fn run_instant(
        &self,
        every: Duration,
        window: Duration,
        cancel: CancellationToken,
    ) -> Vec<Evaluation> {
        let mut evaluations = Vec::new();
        let mut ticker = tokio::time::interval(every.max(MIN_EVALUATION_INTERVAL));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let at = Utc::now();
            let evaluation = tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                result = self.instant(at, window) => result,
            };
            evaluations.push(evaluation.unwrap_or_else(|error| {
                tracing::warn!(error = %error, "Prometheus probe evaluation failed");
                self.failed(at, window, &error)
            }));
        }
        evaluations
    }

    async fn bounded(
        &self,
        query: &str,
        request: impl Future<
            Output = Result<
                prometheus_http_query::response::PromqlResult,
                prometheus_http_query::Error,
            >,
        >,
    ) -> Result<Data, PrometheusProbeError> {
        match tokio::time::timeout(self.config.timeout, request).await {
            Err(_) => Err(PrometheusProbeError::Timeout {
                query: query.to_owned(),
                timeout: self.config.timeout,
            }),
            Ok(Err(source)) => Err(PrometheusProbeError::Query {
                query: query.to_owned(),
                source,
            }),
            Ok(Ok(result)) => Ok(result.into_inner().0),
        }
    }

    fn judge(&self, kind: QueryKind, query: String, span: Span, data: Data) -> Evaluation {
        let comparison = self.config.comparison;
        let series: Vec<SeriesEvaluation> = match data {
            Data::Vector(vector) => vector
                .into_iter()
                .map(|series| {
                    let (labels, sample) = series.into_inner();
                    SeriesEvaluation::judge(
                        labels.into_iter().collect(),
                        [(sample.timestamp(), sample.value())],
                        comparison,
                    )
                })
                .collect(),
            Data::Matrix(matrix) => matrix
                .into_iter()
                .map(|series| {
                    let (labels, samples) = series.into_inner();
                    SeriesEvaluation::judge(
                        labels.into_iter().collect(),
                        samples.iter().map(|s| (s.timestamp(), s.value())),
                        comparison,
                    )
                })
                .collect(),
            Data::Scalar(sample) => vec![SeriesEvaluation::judge(
                BTreeMap::new(),
                [(sample.timestamp(), sample.value())],
                comparison,
            )],
        };
        let empty = series.is_empty();
        let passed = if empty {
            self.config.on_empty == EmptyResult::Ignore
        } else {
            series.iter().all(|series| series.passed)
        };
        Evaluation {
            kind,
            query,
            start: span.start,
            time: span.end,
            comparison,
            passed,
            empty,
            series,
            error: None,
        }
    }

    fn failed(
        &self,
        at: DateTime<Utc>,
        window: Duration,
        error: &PrometheusProbeError,
    ) -> Evaluation {
        let span = Span {
            start: at - chrono::Duration::from_std(window).unwrap_or_default(),
            end: at,
        };
        Evaluation {
            kind: QueryKind::Instant,
            query: render(&self.config.query, span),
            start: span.start,
            time: at,
            comparison: self.config.comparison,
            passed: false,
            empty: true,
            series: Vec::new(),
            error: Some(error_chain(error)),
        }
    }
}

fn whole_second_at_or_before(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(time.timestamp(), 0).unwrap_or(time)
}

fn whole_second_at_or_after(time: DateTime<Utc>) -> DateTime<Utc> {
    let floor = whole_second_at_or_before(time);
    if floor == time {
        time
    } else {
        floor + chrono::Duration::seconds(1)
    }
}

/// The error and its sources on one line, for the report.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_credentials() {
        let bearer = format!("{:?}", PrometheusAuth::Bearer("s3cret".into()));
        let basic = format!(
            "{:?}",
            PrometheusAuth::Basic {
                username: "ops".into(),
                password: "hunter2".into()
            }
        );
        assert!(!bearer.contains("s3cret") && !basic.contains("hunter2"));
        assert!(basic.contains("ops"));
    }

    #[test]
    fn range_rejects_reversed_spans_and_too_many_points() {
        let probe = PrometheusProbe::new(PrometheusProbeConfig {
            url: "http://127.0.0.1:9".into(),
            query: "up".into(),
            comparison: Comparison {
                op: CompareOp::Eq,
                threshold: 1.0,
            },
            on_empty: EmptyResult::Fail,
            auth: None,
            headers: HeaderMap::new(),
            timeout: Duration::from_secs(1),
        })
        .unwrap();
        let now = Utc::now();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let reversed = runtime.block_on(probe.range(
            now,
            now - chrono::Duration::minutes(1),
            Duration::from_secs(1),
        ));
        assert!(matches!(
            reversed,
            Err(PrometheusProbeError::InvalidRange(_))
        ));
        let dense = runtime.block_on(probe.range(
            now - chrono::Duration::hours(24),
            now,
            Duration::from_secs(1),
        ));
        assert!(matches!(dense, Err(PrometheusProbeError::InvalidRange(_))));
    }

    #[test]
    fn credentials_that_cannot_be_a_header_are_rejected() {
        let result = PrometheusProbe::new(PrometheusProbeConfig {
            url: "http://127.0.0.1:9".into(),
            query: "up".into(),
            comparison: Comparison {
                op: CompareOp::Eq,
                threshold: 1.0,
            },
            on_empty: EmptyResult::Fail,
            auth: Some(PrometheusAuth::Bearer("line\nbreak".into())),
            headers: HeaderMap::new(),
            timeout: Duration::from_secs(1),
        });
        assert!(matches!(
            result,
            Err(PrometheusProbeError::InvalidCredentials)
        ));
    }
}

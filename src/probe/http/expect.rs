//! What counts as a good answer: status, body and latency expectations.
//!
//! Checked in that order, and the first one that fails names the sample's failure kind, so a
//! report can tell "answered 503" from "answered 200 with an error page" from "answered too late".

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::measure::{FailureKind, Outcome};

use super::transport::ProbeResponse;

/// Every expectation of one probe.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    /// Accepted statuses.
    pub status: StatusExpectation,
    /// Conditions on the body; all must hold.
    pub body: Vec<BodyExpectation>,
    /// Slowest acceptable answer, measured like [`Sample::latency`](crate::measure::Sample)
    /// from the intended start.
    pub max_latency: Option<Duration>,
}

/// Accepted statuses: any listed code or any code inside a listed range. Both empty means any
/// 2xx.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusExpectation {
    /// Single codes, e.g. 200, 204.
    pub codes: Vec<u16>,
    /// Inclusive ranges, e.g. 200..=299.
    pub ranges: Vec<RangeInclusive<u16>>,
}

/// One condition on the response body.
#[derive(Debug, Clone)]
pub enum BodyExpectation {
    /// The body contains this text.
    Contains(String),
    /// The body matches this regular expression (build with [`BodyExpectation::matches`]).
    Matches(regex::bytes::Regex),
    /// The body is JSON and the value at this RFC 6901 pointer equals `value`; numbers compare
    /// by value, so `1` equals `1.0`.
    JsonPointerEquals {
        /// e.g. `/status` or `/checks/0/ok`.
        pointer: String,
        /// The expected value.
        value: serde_json::Value,
    },
}

impl BodyExpectation {
    /// A regular-expression expectation.
    ///
    /// # Errors
    /// The pattern's syntax error.
    pub fn matches(pattern: &str) -> Result<Self, regex::Error> {
        regex::bytes::Regex::new(pattern).map(BodyExpectation::Matches)
    }

    fn holds(&self, body: &[u8], json: &mut Option<Option<serde_json::Value>>) -> bool {
        match self {
            BodyExpectation::Contains(needle) => contains(body, needle.as_bytes()),
            BodyExpectation::Matches(regex) => regex.is_match(body),
            BodyExpectation::JsonPointerEquals { pointer, value } => {
                // Parse once, however many pointers are checked.
                let parsed = json.get_or_insert_with(|| serde_json::from_slice(body).ok());
                parsed
                    .as_ref()
                    .and_then(|document| document.pointer(pointer))
                    .is_some_and(|found| json_equal(found, value))
            }
        }
    }
}

impl StatusExpectation {
    /// True when `status` is accepted.
    pub fn accepts(&self, status: u16) -> bool {
        if self.codes.is_empty() && self.ranges.is_empty() {
            return (200..=299).contains(&status);
        }
        self.codes.contains(&status) || self.ranges.iter().any(|range| range.contains(&status))
    }
}

impl Expectations {
    /// The outcome of a complete response that took `latency` from its intended start.
    pub fn check(&self, response: &ProbeResponse, latency: Duration) -> Outcome {
        if !self.status.accepts(response.status.as_u16()) {
            return Outcome::Failure(FailureKind::Status);
        }
        let mut json = None;
        if !self
            .body
            .iter()
            .all(|expectation| expectation.holds(&response.body, &mut json))
        {
            return Outcome::Failure(FailureKind::Body);
        }
        if self.max_latency.is_some_and(|max| latency > max) {
            return Outcome::Failure(FailureKind::Latency);
        }
        Outcome::Success
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

fn json_equal(found: &serde_json::Value, expected: &serde_json::Value) -> bool {
    match (found, expected) {
        (serde_json::Value::Number(a), serde_json::Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => found == expected,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http::{HeaderMap, StatusCode};
    use serde_json::json;

    use super::*;

    fn response(status: u16, body: &'static str) -> ProbeResponse {
        ProbeResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: Bytes::from_static(body.as_bytes()),
            truncated: false,
        }
    }

    const FAST: Duration = Duration::from_millis(1);

    #[test]
    fn default_status_is_any_2xx() {
        let expect = Expectations::default();
        assert_eq!(expect.check(&response(204, ""), FAST), Outcome::Success);
        assert_eq!(
            expect.check(&response(301, ""), FAST),
            Outcome::Failure(FailureKind::Status)
        );
        assert_eq!(
            expect.check(&response(503, ""), FAST),
            Outcome::Failure(FailureKind::Status)
        );
    }

    #[test]
    fn status_codes_and_ranges_combine() {
        let status = StatusExpectation {
            codes: vec![404],
            ranges: vec![200..=299, 300..=302],
        };
        assert!(status.accepts(200) && status.accepts(302) && status.accepts(404));
        assert!(!status.accepts(303) && !status.accepts(500));
    }

    #[test]
    fn body_contains_regex_and_json_pointer() {
        let expect = Expectations {
            body: vec![
                BodyExpectation::Contains("ok".into()),
                BodyExpectation::matches(r#""version":\s*"v\d+""#).unwrap(),
                BodyExpectation::JsonPointerEquals {
                    pointer: "/replicas".into(),
                    value: json!(3.0),
                },
            ],
            ..Expectations::default()
        };
        let good = r#"{"status": "ok", "version": "v2", "replicas": 3}"#;
        assert_eq!(expect.check(&response(200, good), FAST), Outcome::Success);
        let wrong_count = r#"{"status": "ok", "version": "v2", "replicas": 2}"#;
        assert_eq!(
            expect.check(&response(200, wrong_count), FAST),
            Outcome::Failure(FailureKind::Body)
        );
        let not_json = "ok version";
        assert_eq!(
            expect.check(&response(200, not_json), FAST),
            Outcome::Failure(FailureKind::Body)
        );
    }

    #[test]
    fn status_is_checked_before_body_and_latency() {
        let expect = Expectations {
            body: vec![BodyExpectation::Contains("ok".into())],
            max_latency: Some(Duration::from_millis(10)),
            ..Expectations::default()
        };
        assert_eq!(
            expect.check(&response(500, "nope"), Duration::from_secs(1)),
            Outcome::Failure(FailureKind::Status)
        );
        assert_eq!(
            expect.check(&response(200, "nope"), Duration::from_secs(1)),
            Outcome::Failure(FailureKind::Body)
        );
        assert_eq!(
            expect.check(&response(200, "ok"), Duration::from_secs(1)),
            Outcome::Failure(FailureKind::Latency)
        );
        assert_eq!(
            expect.check(&response(200, "ok"), Duration::from_millis(10)),
            Outcome::Success
        );
    }

    #[test]
    fn invalid_regex_is_an_error() {
        assert!(BodyExpectation::matches("(unclosed").is_err());
    }
}

//! Pushing a run's metrics to a Prometheus Pushgateway: runs are short-lived jobs (a CronJob, a
//! CI step) that Prometheus cannot scrape, so they leave their last result where it can.
//!
//! One group per experiment (`job="steadfast"`, `experiment="<name>"`), replaced with `PUT` on
//! every run, so a metric of an older run (a target since removed) does not linger beside the new
//! ones. The request goes through the probes' HTTP client, which speaks `http` and `https`.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Uri};

use crate::probe::http::{DirectTransport, DirectTransportConfig, ProbeRequest, Transport};

/// Bound on the whole push, connection included.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// The `job` label of every group steadfast pushes.
pub const JOB: &str = "steadfast";

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The configured URL is not an absolute `http(s)://` URL.
    #[error(
        "--pushgateway `{url}` is not an http(s) URL\nhint: give the base URL, e.g. http://pushgateway.monitoring.svc:9091"
    )]
    BadUrl {
        /// As configured.
        url: String,
    },
    /// The HTTP client could not be set up (TLS roots).
    #[error("cannot set up the HTTP client for the Pushgateway: {0}")]
    Client(String),
    /// No answer within [`PUSH_TIMEOUT`] (10 s).
    #[error("the Pushgateway at {url} did not answer within 10s")]
    Timeout {
        /// Where.
        url: String,
    },
    /// The request failed before a response.
    #[error("cannot push to {url}: {reason}")]
    Transport {
        /// Where.
        url: String,
        /// Why, with its causes.
        reason: String,
    },
    /// The Pushgateway refused the metrics.
    #[error("the Pushgateway at {url} answered {status}: {body}")]
    Refused {
        /// Where.
        url: String,
        /// HTTP status.
        status: u16,
        /// The start of its answer.
        body: String,
    },
}

/// The group URL: `<base>/metrics/job/steadfast/experiment/<name>`, with the name base64url
/// encoded (`experiment@base64/…`) when it holds characters a path segment cannot carry.
pub fn group_url(base: &str, experiment: &str) -> String {
    let base = base.trim_end_matches('/');
    let plain = !experiment.is_empty()
        && experiment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if plain {
        format!("{base}/metrics/job/{JOB}/experiment/{experiment}")
    } else {
        format!(
            "{base}/metrics/job/{JOB}/experiment@base64/{}",
            base64url(experiment.as_bytes())
        )
    }
}

/// RFC 4648 base64url with padding, as the Pushgateway's `@base64` path segments expect; an
/// empty value is a single `=`.
fn base64url(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if data.is_empty() {
        return "=".to_owned();
    }
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The group of a run's live metrics: the experiment's group with `stream="live"` added, so the
/// final push (a `PUT` on the experiment's group) and the live pushes never replace each other.
pub fn live_group_url(base: &str, experiment: &str) -> String {
    format!("{}/stream/live", group_url(base, experiment))
}

/// Replaces the experiment's group on the Pushgateway at `base` with `exposition`.
///
/// # Errors
/// [`PushError`] when the URL is bad, the gateway is unreachable or slow, or it refuses the text.
pub async fn push(base: &str, experiment: &str, exposition: String) -> Result<(), PushError> {
    check_base(base)?;
    put(base, group_url(base, experiment), exposition).await
}

/// Replaces the experiment's live group (see [`live_group_url`]) with `exposition`.
///
/// # Errors
/// As [`push`].
pub async fn push_live(base: &str, experiment: &str, exposition: String) -> Result<(), PushError> {
    check_base(base)?;
    put(base, live_group_url(base, experiment), exposition).await
}

fn check_base(base: &str) -> Result<(), PushError> {
    if base.starts_with("http://") || base.starts_with("https://") {
        Ok(())
    } else {
        Err(PushError::BadUrl {
            url: base.to_owned(),
        })
    }
}

async fn put(base: &str, url: String, exposition: String) -> Result<(), PushError> {
    let uri: Uri = url.parse().map_err(|_| PushError::BadUrl {
        url: base.to_owned(),
    })?;
    let transport = DirectTransport::new(DirectTransportConfig::default())
        .map_err(|e| PushError::Client(e.to_string()))?;
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    let request = ProbeRequest {
        method: Method::PUT,
        uri,
        headers,
        body: Bytes::from(exposition),
    };
    let response = tokio::time::timeout(PUSH_TIMEOUT, transport.send(&request))
        .await
        .map_err(|_| PushError::Timeout { url: url.clone() })?
        .map_err(|e| PushError::Transport {
            url: url.clone(),
            reason: chain(&e),
        })?;
    if response.status.is_success() {
        Ok(())
    } else {
        Err(PushError::Refused {
            url,
            status: response.status.as_u16(),
            body: String::from_utf8_lossy(&response.body[..response.body.len().min(300)])
                .trim()
                .to_owned(),
        })
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_stay_readable_and_others_are_base64url() {
        assert_eq!(
            group_url("http://pg:9091/", "demo-web"),
            "http://pg:9091/metrics/job/steadfast/experiment/demo-web"
        );
        // "a/b" → YS9i; lengths 1 and 2 pad.
        assert_eq!(
            group_url("http://pg:9091", "a/b"),
            "http://pg:9091/metrics/job/steadfast/experiment@base64/YS9i"
        );
        assert_eq!(base64url(b"f"), "Zg==");
        assert_eq!(base64url(b"fo"), "Zm8=");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8=");
    }
}

//! Retrying what an API server asks to be retried, under the rate limit and a deadline.
//!
//! A chaos run is exactly when a control plane is busiest: EKS throttles with API Priority and
//! Fairness (429 with `Retry-After`), and servers answer 500/503/504 during upgrades and etcd
//! leader changes. kube's own retry is off (it would retry a PodDisruptionBudget refusal, which
//! is a finding, until it happened to pass), so this layer retries only what is safe:
//! - reads (GET: get, list, the start of a watch) on 429, 500, 502, 503, 504 and transport
//!   errors, with jittered exponential backoff (429 waits for `Retry-After`);
//! - writes (evictions, patches, deletes, creates) on a 429 *without* a `DisruptionBudget`
//!   cause only: API Priority and Fairness refuses a request before it is carried out, so
//!   re-issuing it is harmless, as client-go does. A budget refusal is passed on untouched.
//!
//! Writes are never re-issued after a server or transport error: a timed-out DELETE may have
//! happened, and a second one could hit a replacement. Callers re-read and decide (see
//! `delete_pod`).
//!
//! It sits outside the [`super::ratelimit::ThrottleLayer`], so every retry waits for, and
//! spends, a token of the run's rate limit like any other request.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, Uri, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use kube::client::Body;
use serde_json::Value;
use tokio::time::Instant;
use tower::buffer::Buffer;
use tower::{BoxError, Layer, Service, ServiceExt};

use super::access::ApiAccess;

/// Longest wait a `Retry-After` may impose; longer requests are cut to this.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(10);
/// First backoff after a server error.
pub const BACKOFF_BASE: Duration = Duration::from_millis(200);
/// Longest backoff between two attempts.
pub const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// Most attempts of one request, the first included.
pub const MAX_ATTEMPTS: u32 = 10;
/// Largest error body read to classify a 429.
const MAX_STATUS_BODY: usize = 64 * 1024;

/// The response body type of the retrying stack.
pub type RetryBody = UnsyncBoxBody<Bytes, BoxError>;

/// Retries and retried failures per endpoint (`verb resource`), for reports and tests.
#[derive(Debug, Clone, Default)]
pub struct RetryCounts {
    counts: Arc<Mutex<BTreeMap<String, EndpointCounts>>>,
}

/// What one endpoint went through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointCounts {
    /// Error answers (or transport failures) seen, retried or not.
    pub errors: u64,
    /// Attempts made after the first.
    pub retries: u64,
}

impl RetryCounts {
    /// Every endpoint seen with an error, sorted.
    pub fn snapshot(&self) -> BTreeMap<String, EndpointCounts> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The counts as the report takes them, under API `kubernetes`.
    pub fn endpoint_calls(&self) -> Vec<crate::report::model::EndpointCalls> {
        self.snapshot()
            .into_iter()
            .map(|(endpoint, c)| crate::report::model::EndpointCalls {
                api: crate::report::model::Api::Kubernetes,
                endpoint,
                errors: c.errors,
                retries: c.retries,
            })
            .collect()
    }

    fn add(&self, endpoint: &str, errors: u64, retries: u64) {
        let mut m = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = m.entry(endpoint.to_owned()).or_default();
        e.errors += errors;
        e.retries += retries;
    }
}

/// Adds the retrying to a client stack.
#[derive(Debug, Clone)]
pub struct RetryLayer {
    budget: Duration,
    counts: RetryCounts,
}

impl RetryLayer {
    /// Retries within `budget` of a request's first attempt, counting into `counts`.
    pub fn new(budget: Duration, counts: RetryCounts) -> Self {
        Self { budget, counts }
    }
}

impl<S> Layer<S> for RetryLayer
where
    S: Service<Request<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError> + Send + Sync,
{
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry {
            // A buffer makes the inner service cloneable, so a retry can be sent from the
            // response future; its worker polls the throttle before every attempt.
            inner: Buffer::new(inner, 1024),
            budget: self.budget,
            counts: self.counts.clone(),
        }
    }
}

/// The retrying service.
pub struct Retry<S: Service<Request<Body>>> {
    inner: Buffer<Request<Body>, S::Future>,
    budget: Duration,
    counts: RetryCounts,
}

/// How a request may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A read: retried on throttling, server and transport errors.
    Read,
    /// Anything else: retried on APF throttling only.
    Write,
}

fn kind(method: &Method) -> Kind {
    if *method == Method::GET {
        Kind::Read
    } else {
        Kind::Write
    }
}

/// Whether a Status body is a PodDisruptionBudget refusal: a cause with reason
/// `DisruptionBudget`, as kube-apiserver's eviction REST handler sends.
pub fn is_budget_refusal(status: &Value) -> bool {
    status
        .pointer("/details/causes")
        .and_then(Value::as_array)
        .is_some_and(|causes| {
            causes
                .iter()
                .any(|c| c.get("reason").and_then(Value::as_str) == Some("DisruptionBudget"))
        })
}

/// The wait before attempt `attempt + 1` after a server error: full-jitter exponential backoff
/// in the upper half of `base * 2^attempt`, capped.
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    let full = BACKOFF_BASE
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_CAP);
    full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// The wait a `Retry-After` of `seconds` asks for (1 s when absent or unreadable), capped and
/// stretched by up to 20% so throttled clients do not come back in step.
pub fn retry_after(seconds: Option<u64>, jitter: f64) -> Duration {
    let asked = Duration::from_secs(seconds.unwrap_or(1).max(1)).min(RETRY_AFTER_CAP);
    asked
        .mul_f64(1.0 + 0.2 * jitter.clamp(0.0, 1.0))
        .min(RETRY_AFTER_CAP)
}

struct Template {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    body: Body,
}

impl Template {
    /// A fresh copy, without the original's extensions: a retry pays its own token.
    fn request(&self) -> Option<Request<Body>> {
        let mut request = Request::new(self.body.try_clone()?);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers.clone();
        Some(request)
    }
}

fn boxed<B>(response: Response<B>) -> Response<RetryBody>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    response.map(|b| b.map_err(Into::into).boxed_unsync())
}

fn full(bytes: Bytes) -> RetryBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

impl<S, B> Service<Request<Body>> for Retry<S>
where
    S: Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError> + Send + Sync,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<RetryBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The clone is not ready; the instance that was polled ready goes with this request.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let budget = self.budget;
        let counts = self.counts.clone();
        Box::pin(send(inner, request, budget, counts))
    }
}

async fn send<F, E, B>(
    mut inner: Buffer<Request<Body>, F>,
    request: Request<Body>,
    budget: Duration,
    counts: RetryCounts,
) -> Result<Response<RetryBody>, BoxError>
where
    F: Future<Output = Result<Response<B>, E>> + Send + 'static,
    E: Into<BoxError>,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let kind = kind(request.method());
    let template = request.body().try_clone().map(|body| Template {
        method: request.method().clone(),
        uri: request.uri().clone(),
        version: request.version(),
        headers: request.headers().clone(),
        body,
    });
    let endpoint = ApiAccess::of_request(request.method(), request.uri())
        .map(|a| format!("{} {}", a.verb, a.resource))
        .unwrap_or_else(|| format!("{} {}", request.method(), request.uri().path()));
    let Some(template) = template else {
        let result = inner.ready().await?.call(request).await;
        match &result {
            Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
                counts.add(&endpoint, 1, 0);
            }
            Err(_) => counts.add(&endpoint, 1, 0),
            Ok(_) => {}
        }
        return result.map(boxed);
    };
    let deadline = Instant::now() + budget;
    let mut request = request;
    let mut attempt = 0u32;
    loop {
        let (result, wait) = match inner.ready().await?.call(request).await {
            Err(e) => match kind {
                Kind::Read => (Err(e), Some(backoff(attempt, rand::random()))),
                _ => {
                    counts.add(&endpoint, 1, 0);
                    return Err(e);
                }
            },
            Ok(response) if response.status().as_u16() == 429 => {
                let seconds = response
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let (parts, body) = response.into_parts();
                let bytes = Limited::new(body, MAX_STATUS_BODY)
                    .collect()
                    .await
                    .map_err(|e| -> BoxError { e })?
                    .to_bytes();
                let budget_refusal = serde_json::from_slice::<Value>(&bytes)
                    .map(|v| is_budget_refusal(&v))
                    .unwrap_or(false);
                let response = Response::from_parts(parts, full(bytes));
                if budget_refusal {
                    return Ok(response);
                }
                (Ok(response), Some(retry_after(seconds, rand::random())))
            }
            Ok(response)
                if kind == Kind::Read
                    && matches!(response.status().as_u16(), 500 | 502 | 503 | 504) =>
            {
                (Ok(boxed(response)), Some(backoff(attempt, rand::random())))
            }
            Ok(response) => return Ok(boxed(response)),
        };
        counts.add(&endpoint, 1, 0);
        attempt += 1;
        let next = match wait {
            Some(wait) if attempt < MAX_ATTEMPTS && Instant::now() + wait <= deadline => {
                template.request()
            }
            _ => None,
        };
        let Some(next) = next else {
            return result;
        };
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
        counts.add(&endpoint, 0, 1);
        request = next;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_budget_refusal_has_a_disruption_budget_cause_and_apf_throttling_none() {
        let budget = json!({"code": 429, "reason": "TooManyRequests", "details": {"causes": [
            {"reason": "DisruptionBudget", "message": "The disruption budget web needs 5 healthy pods and has 5 currently"}
        ]}});
        let apf = json!({"code": 429, "reason": "TooManyRequests",
            "message": "Too many requests, please try again later.",
            "details": {"retryAfterSeconds": 1}});
        assert!(is_budget_refusal(&budget));
        assert!(!is_budget_refusal(&apf));
        assert!(!is_budget_refusal(&json!({})));
    }

    #[test]
    fn waits_grow_are_jittered_and_capped() {
        assert_eq!(backoff(0, 1.0), BACKOFF_BASE);
        assert_eq!(backoff(0, 0.0), BACKOFF_BASE / 2);
        assert_eq!(backoff(3, 1.0), BACKOFF_BASE * 8);
        assert_eq!(backoff(30, 1.0), BACKOFF_CAP);
        assert_eq!(retry_after(Some(2), 0.0), Duration::from_secs(2));
        assert_eq!(retry_after(Some(2), 1.0), Duration::from_millis(2400));
        assert_eq!(retry_after(None, 0.0), Duration::from_secs(1));
        assert_eq!(retry_after(Some(3600), 0.5), RETRY_AFTER_CAP);
    }

    /// A scripted answer: status, body and `Retry-After`.
    type Answer = (u16, &'static str, Option<u64>);

    /// Answers each request with the next scripted answer (then 200), counting calls.
    struct Script {
        answers: Arc<Mutex<Vec<Answer>>>,
        calls: Arc<std::sync::atomic::AtomicU32>,
    }

    impl Service<Request<Body>> for Script {
        type Response = Response<Full<Bytes>>;
        type Error = BoxError;
        type Future = std::future::Ready<Result<Self::Response, BoxError>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<Body>) -> Self::Future {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut answers = self
                .answers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (code, body, retry_after) = if answers.is_empty() {
                (200, "{}", None)
            } else {
                answers.remove(0)
            };
            let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
            *response.status_mut() = http::StatusCode::from_u16(code).unwrap_or_default();
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
            }
            std::future::ready(Ok(response))
        }
    }

    /// Sends one request through retry → throttle → script; the final status and the calls.
    async fn exchange(
        limiter: &Arc<super::super::ratelimit::RateLimiter>,
        method: Method,
        path: &str,
        answers: Vec<Answer>,
    ) -> (u16, u32) {
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let script = Script {
            answers: Arc::new(Mutex::new(answers)),
            calls: calls.clone(),
        };
        let throttled = super::super::ratelimit::ThrottleLayer::new(limiter.clone()).layer(script);
        let mut service =
            RetryLayer::new(Duration::from_secs(30), RetryCounts::default()).layer(throttled);
        let mut request = Request::new(Body::from(b"{}".to_vec()));
        *request.method_mut() = method;
        *request.uri_mut() = path.parse().unwrap_or_default();
        let status = match service.ready().await {
            Ok(ready) => ready.call(request).await.map(|r| r.status().as_u16()),
            Err(e) => Err(e),
        };
        (
            status.unwrap_or(0),
            calls.load(std::sync::atomic::Ordering::SeqCst),
        )
    }

    const BUDGET: &str = r#"{"kind":"Status","code":429,"reason":"TooManyRequests","details":{"causes":[{"reason":"DisruptionBudget","message":"The disruption budget web needs 5 healthy pods and has 5 currently"}]}}"#;
    const APF: &str = r#"{"kind":"Status","code":429,"reason":"TooManyRequests","message":"Too many requests, please try again later.","details":{"retryAfterSeconds":1}}"#;

    #[tokio::test(start_paused = true)]
    async fn a_read_is_retried_through_the_throttle_and_each_retry_pays_a_token() {
        let limiter = Arc::new(super::super::ratelimit::RateLimiter::new(1, 3));
        let answers = vec![(503, "{}", None), (500, "{}", None)];
        let (status, calls) = exchange(&limiter, Method::GET, "/api/v1/nodes", answers).await;
        assert_eq!((status, calls), (200, 3));
        // Three tokens of a burst of three were spent (backoff refilled less than one): the
        // next request waits. Retries that bypassed the limiter would leave two to spare.
        assert!(limiter.reserve() > Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn writes_are_retried_on_apf_throttling_only() {
        let limiter = Arc::new(super::super::ratelimit::RateLimiter::new(1000, 1000));
        let eviction = "/api/v1/namespaces/shop/pods/web-1/eviction";
        let apf = vec![(429, APF, Some(1))];
        assert_eq!(
            exchange(&limiter, Method::POST, eviction, apf).await,
            (200, 2)
        );
        let budget = vec![(429, BUDGET, None)];
        assert_eq!(
            exchange(&limiter, Method::POST, eviction, budget).await,
            (429, 1)
        );
        let failed = vec![(503, "{}", None)];
        assert_eq!(
            exchange(&limiter, Method::POST, eviction, failed).await,
            (503, 1)
        );
        let cordon = vec![(429, APF, Some(1))];
        assert_eq!(
            exchange(&limiter, Method::PATCH, "/api/v1/nodes/n", cordon).await,
            (200, 2),
            "APF refused the patch before carrying it out"
        );
        let delete = vec![(504, "{}", None)];
        assert_eq!(
            exchange(
                &limiter,
                Method::DELETE,
                "/api/v1/namespaces/shop/pods/web-1",
                delete
            )
            .await,
            (504, 1)
        );
    }

    #[test]
    fn reads_and_writes_are_told_apart_by_method() {
        assert_eq!(kind(&Method::GET), Kind::Read);
        for write in [Method::POST, Method::DELETE, Method::PATCH, Method::PUT] {
            assert_eq!(kind(&write), Kind::Write, "{write}");
        }
    }
}

//! A hostile AWS for tests: a seeded loopback proxy in front of moto that answers a configured
//! share of calls the way AWS does when it is busy — EC2's `RequestLimitExceeded`, Auto
//! Scaling's `Throttling`, `InternalError`/`InternalFailure` (500) and `Unavailable` (503), in
//! each service's real wire format so the SDK classifies and retries them — or delays them, and
//! passes everything else through. It counts what it injected and what it passed on.
//!
//! Injected errors are answered *instead of* forwarding: like AWS throttling, the call was
//! never carried out, so a retry is the only way it happens.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::net::TcpListener;

/// How hostile the proxy is; probabilities per call.
#[derive(Debug, Clone, Copy)]
pub struct AwsHostility {
    /// Seed of every choice.
    pub seed: u64,
    /// Share answered with the service's throttling error.
    pub throttling: f64,
    /// Share answered with 500 `InternalError` or 503 `Unavailable`.
    pub server_error: f64,
    /// Share delayed (then forwarded).
    pub delay: f64,
    /// Longest delay.
    pub max_delay: Duration,
}

impl AwsHostility {
    /// Passes everything through, counting it.
    pub fn friendly() -> Self {
        Self {
            seed: 0,
            throttling: 0.0,
            server_error: 0.0,
            delay: 0.0,
            max_delay: Duration::ZERO,
        }
    }

    /// 10% throttling, 2% server errors, 5% of calls delayed up to 300 ms.
    pub fn preset(seed: u64) -> Self {
        Self {
            seed,
            throttling: 0.10,
            server_error: 0.02,
            delay: 0.05,
            max_delay: Duration::from_millis(300),
        }
    }
}

/// What the proxy did to one `service:Action`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActionCounts {
    /// Answered with a throttling error.
    pub throttled: u64,
    /// Answered with a 500 or 503.
    pub server_errors: u64,
    /// Delayed before forwarding.
    pub delayed: u64,
    /// Forwarded and answered 2xx by moto: carried out.
    pub carried_out: u64,
    /// Forwarded and refused by moto.
    pub refused: u64,
}

type Counts = Arc<Mutex<BTreeMap<String, ActionCounts>>>;

/// A running proxy; stops when dropped.
pub struct AwsProxy {
    /// `http://127.0.0.1:<port>`: point `AWS_ENDPOINT_URL` here.
    pub endpoint: String,
    counts: Counts,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AwsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AwsProxy {
    /// Starts a proxy to `upstream` (moto's endpoint).
    pub async fn start(upstream: &str, hostility: AwsHostility) -> AwsProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("loopback port");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let counts: Counts = Arc::default();
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            hostility,
            rng: Mutex::new(seeded(hostility.seed)),
            counts: counts.clone(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        });
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(state.handle(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        AwsProxy {
            endpoint,
            counts,
            task,
        }
    }

    /// Counts per `service:Action` so far.
    pub fn counts(&self) -> BTreeMap<String, ActionCounts> {
        self.counts.lock().unwrap().clone()
    }

    /// Errors injected so far (throttling and server errors).
    pub fn injected(&self) -> u64 {
        self.counts()
            .values()
            .map(|c| c.throttled + c.server_errors)
            .sum()
    }

    /// Times moto carried out `service:Action` so far.
    pub fn carried_out(&self, action: &str) -> u64 {
        self.counts().get(action).map_or(0, |c| c.carried_out)
    }
}

/// ChaCha8 from `seed`: the same choices for the same seed, on every machine.
fn seeded(seed: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    ChaCha8Rng::from_seed(key)
}

/// What to do with one call.
enum Decision {
    Throttle,
    ServerError(u16),
    Delay(Duration),
    Pass,
}

struct State {
    upstream: String,
    hostility: AwsHostility,
    rng: Mutex<ChaCha8Rng>,
    counts: Counts,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl State {
    fn decide(&self) -> Decision {
        let h = self.hostility;
        let mut rng = self.rng.lock().unwrap();
        let mut unit = || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let roll = unit();
        if roll < h.throttling {
            Decision::Throttle
        } else if roll < h.throttling + h.server_error {
            Decision::ServerError(if unit() < 0.5 { 500 } else { 503 })
        } else if roll < h.throttling + h.server_error + h.delay {
            Decision::Delay(h.max_delay.mul_f64(unit()))
        } else {
            Decision::Pass
        }
    }

    fn count(&self, action: &str, f: impl FnOnce(&mut ActionCounts)) {
        f(self
            .counts
            .lock()
            .unwrap()
            .entry(action.to_owned())
            .or_default());
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
            return plain(400, "unreadable request body");
        };
        let service = service_of(&parts.headers);
        let action = format!("{service}:{}", action_of(&parts.uri, &body));
        match self.decide() {
            Decision::Throttle => {
                self.count(&action, |c| c.throttled += 1);
                return throttling(&service);
            }
            Decision::ServerError(status) => {
                self.count(&action, |c| c.server_errors += 1);
                return server_error(&service, status);
            }
            Decision::Delay(wait) => {
                self.count(&action, |c| c.delayed += 1);
                tokio::time::sleep(wait).await;
            }
            Decision::Pass => {}
        }
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut forward = Request::builder()
            .method(parts.method.clone())
            .uri(format!("{}{path}", self.upstream));
        for (name, value) in &parts.headers {
            forward = forward.header(name, value);
        }
        let Ok(forward) = forward.body(Full::new(body)) else {
            return plain(400, "unforwardable request");
        };
        let Ok(Ok(answer)) =
            tokio::time::timeout(Duration::from_secs(30), self.client.request(forward)).await
        else {
            return plain(502, "moto did not answer");
        };
        let (parts, body) = answer.into_parts();
        let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
            return plain(502, "moto's answer broke off");
        };
        if parts.status.is_success() {
            self.count(&action, |c| c.carried_out += 1);
        } else {
            self.count(&action, |c| c.refused += 1);
        }
        Response::from_parts(parts, Full::new(body))
    }
}

/// The signing service of a SigV4 request (`ec2`, `autoscaling`), from its credential scope.
fn service_of(headers: &http::HeaderMap) -> String {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|credential| credential.split('/').nth(3))
        .unwrap_or("unknown")
        .to_owned()
}

/// The query API's `Action`, from the form body or the query string.
fn action_of(uri: &http::Uri, body: &[u8]) -> String {
    let form = String::from_utf8_lossy(body);
    form.split('&')
        .chain(uri.query().unwrap_or("").split('&'))
        .find_map(|pair| pair.strip_prefix("Action="))
        .unwrap_or("unknown")
        .to_owned()
}

fn request_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// EC2's query-API error document, as EC2 sends it.
fn ec2_error(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
        request_id()
    )
}

/// The awsQuery error document (Auto Scaling and the other query services).
fn query_error(kind: &str, code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"https://autoscaling.amazonaws.com/doc/2011-01-01/\"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        request_id()
    )
}

/// EC2 throttles with 503 `RequestLimitExceeded`; Auto Scaling with 400 `Throttling`.
fn throttling(service: &str) -> Response<Full<Bytes>> {
    if service == "ec2" {
        xml(
            503,
            ec2_error("RequestLimitExceeded", "Request limit exceeded."),
        )
    } else {
        xml(400, query_error("Sender", "Throttling", "Rate exceeded"))
    }
}

fn server_error(service: &str, status: u16) -> Response<Full<Bytes>> {
    let (code, message) = match (service, status) {
        ("ec2", 500) => ("InternalError", "An internal error has occurred"),
        (_, 500) => ("InternalFailure", "An internal error has occurred"),
        _ => (
            "Unavailable",
            "The service is unavailable. Please try again shortly.",
        ),
    };
    if service == "ec2" {
        xml(status, ec2_error(code, message))
    } else {
        xml(status, query_error("Receiver", code, message))
    }
}

fn xml(status: u16, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/xml;charset=UTF-8")
        .header("x-amzn-requestid", request_id())
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

fn plain(status: u16, text: &'static str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::from_static(text.as_bytes())))
        .expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_and_action_come_from_the_signature_and_the_form() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/autoscaling/aws4_request, SignedHeaders=host, Signature=x"
                .parse()
                .unwrap(),
        );
        assert_eq!(service_of(&headers), "autoscaling");
        let uri: http::Uri = "/".parse().unwrap();
        assert_eq!(
            action_of(&uri, b"Action=DescribeAutoScalingGroups&Version=2011-01-01"),
            "DescribeAutoScalingGroups"
        );
    }
}

//! The client-side rate limit every Kubernetes API call of a run goes through.
//!
//! A chaos tool that deletes a thousand pods must not become the outage: like client-go (QPS 5,
//! burst 10 by default) steadfast paces itself with one token bucket per run. The bucket hands
//! out *reservations*, so waiting callers are served in arrival order and a burst of callers
//! queues instead of stampeding. It sits on the kube client's tower stack
//! ([`ThrottleLayer`]), so watches and relists pay for their requests like everything else.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

/// A token bucket of `qps` tokens per second holding at most `burst`.
#[derive(Debug)]
pub struct RateLimiter {
    qps: f64,
    burst: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Tokens available at `at`; negative when reservations are queued.
    tokens: f64,
    at: Instant,
    /// Requests already paid for by [`RateLimiter::reserve_batch`], spendable from `from`.
    prepaid: u32,
    from: Instant,
}

impl RateLimiter {
    /// A limiter allowing `qps` requests per second on average and `burst` at once. Zero values
    /// are raised to 1 (a limiter that never admits anything would hang the run).
    pub fn new(qps: u32, burst: u32) -> Self {
        let qps = f64::from(qps.max(1));
        let burst = f64::from(burst.max(1));
        Self {
            qps,
            burst,
            state: Mutex::new(Bucket {
                tokens: burst,
                at: Instant::now(),
                prepaid: 0,
                from: Instant::now(),
            }),
        }
    }

    /// The configured requests per second.
    pub fn qps(&self) -> f64 {
        self.qps
    }

    /// The configured burst: the most requests one batch may issue at once.
    pub fn burst(&self) -> u32 {
        // Truncation is exact: the burst was built from a u32.
        self.burst as u32
    }

    /// Takes one token and returns how long the caller must wait before using it.
    pub fn reserve(&self) -> Duration {
        self.take(1).0
    }

    /// Takes `n` tokens at once (at most the burst) for requests meant to go out together,
    /// and returns when they may go: the instant the last of them is due. From then on, `n`
    /// requests marked [`Prepaid`] pass without paying again, so a batch keeps the average
    /// rate yet is not spread over `n / qps` seconds.
    pub fn reserve_batch(&self, n: u32) -> Instant {
        let n = n.min(self.burst());
        let (wait, now) = self.take(n);
        let from = now + wait;
        let mut bucket = self.bucket();
        bucket.prepaid += n;
        bucket.from = bucket.from.max(from);
        from
    }

    /// Whether a batch's prepaid requests may pass now.
    fn prepaid_due(&self) -> bool {
        let bucket = self.bucket();
        bucket.prepaid > 0 && Instant::now() >= bucket.from
    }

    /// Settles a request let through while a batch's requests were due: a [`Prepaid`] one
    /// spends the batch's credit, any other pays its token after the fact.
    fn settle(&self, prepaid: bool) {
        {
            let mut bucket = self.bucket();
            if prepaid && bucket.prepaid > 0 {
                bucket.prepaid -= 1;
                return;
            }
        }
        let _ = self.take(1);
    }

    fn bucket(&self) -> std::sync::MutexGuard<'_, Bucket> {
        // A poisoned lock only means another caller panicked mid-update of two floats; the
        // state is still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes `n` tokens; returns the wait for the last one and the instant it counts from.
    fn take(&self, n: u32) -> (Duration, Instant) {
        let now = Instant::now();
        let mut bucket = self.bucket();
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.qps).min(self.burst);
        bucket.at = now;
        bucket.tokens -= f64::from(n);
        if bucket.tokens >= 0.0 {
            (Duration::ZERO, now)
        } else {
            (Duration::from_secs_f64(-bucket.tokens / self.qps), now)
        }
    }
}

/// Marks a request (an `http::Request` extension) that may spend a token a
/// [`RateLimiter::reserve_batch`] already paid: the pod deletions and evictions faults issue
/// together. Outside a batch's moment it pays like any other request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prepaid;

/// Puts a [`RateLimiter`] in front of a service.
#[derive(Debug, Clone)]
pub struct ThrottleLayer {
    limiter: Arc<RateLimiter>,
}

impl ThrottleLayer {
    /// A layer sharing `limiter`.
    pub fn new(limiter: Arc<RateLimiter>) -> Self {
        Self { limiter }
    }
}

impl<S> Layer<S> for ThrottleLayer {
    type Service = Throttle<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Throttle {
            inner,
            limiter: self.limiter.clone(),
            wait: None,
            admitted: false,
            free: false,
        }
    }
}

/// A service that becomes ready only when the limiter admits the next request.
///
/// The kube client drives its stack through a buffer that awaits readiness before each call,
/// so holding readiness back delays exactly one request per token.
pub struct Throttle<S> {
    inner: S,
    limiter: Arc<RateLimiter>,
    wait: Option<Pin<Box<Sleep>>>,
    admitted: bool,
    /// Admitted without a token because a batch was due; settled in `call`.
    free: bool,
}

impl<S, B> Service<http::Request<B>> for Throttle<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if !self.admitted {
            if self.wait.is_none() && self.limiter.prepaid_due() {
                self.admitted = true;
                self.free = true;
            }
            if !self.admitted && self.wait.is_none() {
                let delay = self.limiter.reserve();
                if delay.is_zero() {
                    self.admitted = true;
                } else {
                    self.wait = Some(Box::pin(tokio::time::sleep(delay)));
                }
            }
            if let Some(wait) = self.wait.as_mut() {
                match wait.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        self.wait = None;
                        self.admitted = true;
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        self.admitted = false;
        if std::mem::take(&mut self.free) {
            self.limiter
                .settle(request.extensions().get::<Prepaid>().is_some());
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_is_free_then_requests_are_spaced_by_one_over_qps() {
        let limiter = RateLimiter::new(5, 10);
        for _ in 0..10 {
            assert_eq!(limiter.reserve(), Duration::ZERO);
        }
        let eleventh = limiter.reserve().as_secs_f64();
        let twelfth = limiter.reserve().as_secs_f64();
        // Wall time passes between calls on a loaded machine; it can only shorten the waits.
        assert!(eleventh > 0.1 && eleventh <= 0.2 + 1e-9, "{eleventh}");
        assert!(twelfth > 0.3 && twelfth <= 0.4 + 1e-9, "{twelfth}");
    }

    #[tokio::test]
    async fn tokens_refill_but_never_above_the_burst() {
        let limiter = RateLimiter::new(1000, 2);
        assert_eq!(limiter.reserve(), Duration::ZERO);
        assert_eq!(limiter.reserve(), Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(50)).await;
        // 50 tokens' worth of time passed, yet only the burst of 2 is available.
        assert_eq!(limiter.reserve(), Duration::ZERO);
        assert_eq!(limiter.reserve(), Duration::ZERO);
        assert!(limiter.reserve() > Duration::ZERO);
    }

    #[tokio::test]
    async fn zero_settings_still_admit_requests() {
        let limiter = RateLimiter::new(0, 0);
        assert_eq!(limiter.reserve(), Duration::ZERO);
        let wait = limiter.reserve().as_secs_f64();
        assert!(wait > 0.9 && wait <= 1.0 + 1e-9, "{wait}");
    }

    /// Answers its input at once.
    struct Echo;

    impl Service<http::Request<u32>> for Echo {
        type Response = u32;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<u32, Self::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<u32>) -> Self::Future {
            std::future::ready(Ok(*request.body()))
        }
    }

    fn request(n: u32, prepaid: bool) -> http::Request<u32> {
        let mut request = http::Request::new(n);
        if prepaid {
            request.extensions_mut().insert(Prepaid);
        }
        request
    }

    /// Sends `request` through `service` and says how long it waited.
    async fn send(service: &mut Throttle<Echo>, request: http::Request<u32>) -> Duration {
        let start = Instant::now();
        let ready = std::future::poll_fn(|cx| service.poll_ready(cx)).await;
        assert!(ready.is_ok());
        let n = *request.body();
        assert_eq!(service.call(request).await.ok(), Some(n));
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_pays_up_front_then_its_requests_pass_at_once() {
        let limiter = Arc::new(RateLimiter::new(5, 10));
        let mut service = ThrottleLayer::new(limiter.clone()).layer(Echo);
        for n in 0..10 {
            assert_eq!(send(&mut service, request(n, false)).await, Duration::ZERO);
        }
        let start = Instant::now();
        // Six tokens owed at 5 per second: the batch may go in 1.2 s.
        let due = limiter.reserve_batch(6);
        assert_eq!(due - start, Duration::from_millis(1200));
        tokio::time::sleep_until(due).await;
        // A request of someone else slips in: it passes, and pays after the fact.
        assert_eq!(send(&mut service, request(99, false)).await, Duration::ZERO);
        for n in 0..6 {
            let waited = send(&mut service, request(n, true)).await;
            assert_eq!(waited, Duration::ZERO, "request {n} of the batch");
        }
        // The next request pays like any other, behind the batch and the one that slipped in.
        assert_eq!(
            send(&mut service, request(7, false)).await,
            Duration::from_millis(400)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_is_capped_at_the_burst() {
        let limiter = RateLimiter::new(5, 4);
        let start = Instant::now();
        assert_eq!(limiter.reserve_batch(100), start);
        assert!(limiter.reserve() > Duration::ZERO);
    }

    #[tokio::test]
    async fn the_layer_paces_calls_through_a_service() {
        let limiter = Arc::new(RateLimiter::new(50, 1));
        let mut service = ThrottleLayer::new(limiter).layer(Echo);
        let start = Instant::now();
        for n in 0..5u32 {
            let ready = std::future::poll_fn(|cx| service.poll_ready(cx)).await;
            assert!(ready.is_ok());
            assert_eq!(service.call(request(n, false)).await.ok(), Some(n));
        }
        // One free token, then four more at 20 ms each.
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(79) && elapsed <= Duration::from_secs(5),
            "{elapsed:?}"
        );
    }
}

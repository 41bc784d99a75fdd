//! How long a watch waits after a failed attempt (a 410 Gone that forces a relist, a refused
//! list, a dropped connection) before the next one.
//!
//! kube-runtime's default waits 0.8–1.6 s after the first error and grows to 30 s. A chaos
//! run measures readiness and detection to the second while the API server is at its worst, so
//! a relist forced by a 410 must cost about a tenth of a second, and even a watch that keeps
//! failing must look again every couple of seconds. Every successful event starts the series
//! over (kube-runtime's `StreamBackoff` resets it), and the lists themselves go through the
//! retrying, rate-limited client.

use std::time::Duration;

use kube::runtime::utils::Backoff;

/// The wait after the first failure, before jitter.
pub const WATCH_BACKOFF_BASE: Duration = Duration::from_millis(100);
/// The longest wait between two attempts.
pub const WATCH_BACKOFF_CAP: Duration = Duration::from_secs(2);

/// The wait before attempt `attempt + 1` of a watch: exponential from
/// [`WATCH_BACKOFF_BASE`], capped at [`WATCH_BACKOFF_CAP`], in the upper half of that by
/// `jitter` (0..=1) so watches failing together do not come back in step.
pub fn watch_wait(attempt: u32, jitter: f64) -> Duration {
    let full = WATCH_BACKOFF_BASE
        .saturating_mul(1u32 << attempt.min(16))
        .min(WATCH_BACKOFF_CAP);
    full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// The backoff of every watch steadfast runs.
#[derive(Debug, Default, Clone)]
pub struct WatchBackoff {
    attempt: u32,
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let wait = watch_wait(self.attempt, rand::random());
        self.attempt = self.attempt.saturating_add(1);
        Some(wait)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relist_costs_a_tenth_of_a_second_and_a_failing_watch_retries_within_two() {
        assert_eq!(watch_wait(0, 0.0), Duration::from_millis(50));
        assert_eq!(watch_wait(0, 1.0), Duration::from_millis(100));
        assert_eq!(watch_wait(3, 1.0), Duration::from_millis(800));
        assert_eq!(watch_wait(40, 1.0), WATCH_BACKOFF_CAP);
        let mut b = WatchBackoff::default();
        let waits: Vec<Duration> = b.by_ref().take(12).collect();
        assert!(waits.iter().all(|w| *w <= WATCH_BACKOFF_CAP), "{waits:?}");
        assert!(waits[11] >= WATCH_BACKOFF_CAP / 2, "{waits:?}");
        b.reset();
        assert!(b.next().is_some_and(|w| w <= WATCH_BACKOFF_BASE));
    }
}

//! Load balance: how successful responses were spread over backends, against a fair split among
//! the backends that were ready at the time, and responses from backends already deleted.
//!
//! # Expected share
//! The window is cut into stretches of constant readiness (from the endpoint timeline). Inside a
//! stretch, each ready backend should serve an equal part of the successful responses that carry
//! a backend identity. A backend's expected share is the sum over stretches of
//! `responses in stretch / ready backends in stretch`, divided by all such responses in the
//! window. This is the time-weighted fair split at a constant probe rate, weighted by what was
//! actually served, so a stretch in which nothing answered weighs nothing. Responses in a
//! stretch with no ready backend count in the denominator only, which shows as deviation. With
//! no timeline at all, every backend that answered in the window is taken as ready throughout.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::store::MeasurementStore;
use super::units;
use super::window::TimeWindow;

/// One backend's part of the successful responses.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendShare {
    /// Backend identity.
    pub backend: String,
    /// Successful responses it gave in the window.
    pub successes: u64,
    /// `successes` over all successful responses with a backend identity, in 0..=1.
    pub share: f64,
    /// Fair share among the ready backends of the time, in 0..=1.
    pub expected_share: f64,
    /// `share - expected_share`, in percentage points.
    pub deviation_pp: f64,
}

/// Responses a backend gave for attempts scheduled after it was deleted.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServedAfterDeletion {
    /// Backend identity.
    pub backend: String,
    /// When it was deleted.
    #[serde(rename = "deletedAtMs", serialize_with = "units::millis")]
    pub deleted_at: Duration,
    /// Responses (successful or not) for attempts scheduled after that, inside the window.
    pub responses: u64,
    /// Intended start of the first such attempt.
    #[serde(rename = "firstMs", serialize_with = "units::millis")]
    pub first: Duration,
    /// Intended start of the last such attempt.
    #[serde(rename = "lastMs", serialize_with = "units::millis")]
    pub last: Duration,
}

/// Load balance in one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendShares {
    /// The window asked for.
    pub window: TimeWindow,
    /// Successful responses that named a backend.
    pub attributed_successes: u64,
    /// Successful responses without a backend identity, left out of the shares.
    pub unattributed_successes: u64,
    /// Per backend, sorted by name.
    pub backends: Vec<BackendShare>,
    /// Largest `|deviation_pp|`, `None` when no response named a backend.
    pub max_deviation_pp: Option<f64>,
    /// Deleted backends that still answered, empty when none did.
    pub served_after_deletion: Vec<ServedAfterDeletion>,
}

impl MeasurementStore {
    /// Per-backend shares of successful responses in `window`, their fair expectation and
    /// responses from deleted backends (see the module docs for the definitions).
    ///
    /// Where the window or a readiness change cuts a bucket, its responses are split as for
    /// [`MeasurementStore::window`].
    pub fn backend_shares(&self, window: TimeWindow) -> BackendShares {
        let (from, to) = (window.start_ns(), window.end_ns());
        let observed = self.backend_tally(from, to);
        let attributed: u64 = observed.iter().map(|(ok, _)| ok).sum();
        let total = self.tally(from, to).successes;

        let mut expected: BTreeMap<Arc<str>, f64> = BTreeMap::new();
        if self.endpoints.is_empty() {
            let answering: Vec<usize> =
                (0..observed.len()).filter(|i| observed[*i].0 > 0).collect();
            for i in &answering {
                expected.insert(self.backend_names[*i].clone(), 1.0 / answering.len() as f64);
            }
        } else if attributed > 0 {
            for (a, b, ready) in self.endpoints.ready_stretches(from, to) {
                if ready.is_empty() {
                    continue;
                }
                let served: u64 = self.backend_tally(a, b).iter().map(|(ok, _)| ok).sum();
                let each = served as f64 / ready.len() as f64 / attributed as f64;
                for name in ready {
                    *expected.entry(name).or_insert(0.0) += each;
                }
            }
        }

        let mut by_name: BTreeMap<Arc<str>, u64> = BTreeMap::new();
        for (i, (ok, _)) in observed.iter().enumerate() {
            if *ok > 0 {
                by_name.insert(self.backend_names[i].clone(), *ok);
            }
        }
        for name in expected.keys() {
            by_name.entry(name.clone()).or_insert(0);
        }
        let backends: Vec<BackendShare> = by_name
            .into_iter()
            .map(|(name, successes)| {
                let share = if attributed > 0 {
                    successes as f64 / attributed as f64
                } else {
                    0.0
                };
                let expected_share = expected.get(&name).copied().unwrap_or(0.0);
                BackendShare {
                    backend: name.to_string(),
                    successes,
                    share,
                    expected_share,
                    deviation_pp: (share - expected_share) * 100.0,
                }
            })
            .collect();
        let max_deviation_pp = (attributed > 0).then(|| {
            backends
                .iter()
                .map(|b| b.deviation_pp.abs())
                .fold(0.0, f64::max)
        });

        BackendShares {
            window,
            attributed_successes: attributed,
            unattributed_successes: total.saturating_sub(attributed),
            backends,
            max_deviation_pp,
            served_after_deletion: self.served_after_deletion(from, to),
        }
    }

    fn served_after_deletion(&self, from: u64, to: u64) -> Vec<ServedAfterDeletion> {
        let mut out = Vec::new();
        for (name, deleted, readded) in self.endpoints.deleted_stretches() {
            let Some(id) = self.backend_names.iter().position(|n| *n == name) else {
                continue;
            };
            let (a, b) = (from.max(deleted), to.min(readded));
            let mut responses = 0u64;
            let mut first = None;
            let mut last = None;
            for i in self.bucket_range(a, b) {
                let start = self.bucket_start(i);
                let (lo, hi) = (a.max(start), b.min(start + self.width_ns));
                let Some(t) = self.buckets[i]
                    .backends
                    .iter()
                    .find(|t| usize::from(t.id) == id)
                else {
                    continue;
                };
                let n = t.any.between(lo, hi);
                if n == 0 {
                    continue;
                }
                responses += n;
                first = first.or_else(|| t.any.first_at_or_after(lo));
                last = t.any.last_before(hi).or(last);
            }
            if let (Some(first), Some(last)) = (first, last) {
                out.push(ServedAfterDeletion {
                    backend: name.to_string(),
                    deleted_at: units::duration(deleted),
                    responses,
                    first: units::duration(first),
                    last: units::duration(last),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::endpoints::{EndpointEvent, EndpointState, EndpointTimeline};
    use super::super::sample::{FailureKind, Outcome};
    use super::super::testing::{Stream, ms, store};
    use super::*;

    fn name(s: &str) -> Option<Arc<str>> {
        Some(Arc::from(s))
    }

    fn event(at: u64, backend: &str, state: EndpointState) -> EndpointEvent {
        EndpointEvent {
            at: ms(at),
            backend: Arc::from(backend),
            state,
        }
    }

    #[test]
    fn weights_one_two_three_show_as_shares() {
        // Weighted round robin a, b, b, c, c, c.
        let samples = Stream::new(600.0).run_full(ms(10_000), |k, _| {
            let backend = ["a", "b", "b", "c", "c", "c"][(k % 6) as usize];
            (Outcome::Success, ms(2), name(backend))
        });
        let s = store(&samples);
        let shares = s.backend_shares(s.covered());
        let got: Vec<(&str, f64)> = shares
            .backends
            .iter()
            .map(|b| (b.backend.as_str(), b.share))
            .collect();
        for ((n, share), (want_n, want)) in
            got.iter()
                .zip([("a", 1.0 / 6.0), ("b", 2.0 / 6.0), ("c", 0.5)])
        {
            assert_eq!(*n, want_n);
            assert!((share - want).abs() < 1e-9, "{n}: {share}");
        }
        // No timeline: each answering backend is expected to get a third.
        let dev = shares.max_deviation_pp.unwrap();
        assert!((dev - (50.0 - 100.0 / 3.0)).abs() < 1e-6, "{dev}");
        assert_eq!(shares.unattributed_successes, 0);
    }

    #[test]
    fn expectation_follows_readiness_over_time() {
        // a and b ready; b not ready from 5 s: an ideal balancer sends everything to a then.
        let samples = Stream::new(200.0).run_full(ms(10_000), |k, at| {
            let backend = if at < ms(5_000) && k % 2 == 1 {
                "b"
            } else {
                "a"
            };
            (Outcome::Success, ms(1), name(backend))
        });
        let mut s = store(&samples);
        s.set_endpoint_timeline(EndpointTimeline::new(vec![
            event(0, "a", EndpointState::Ready),
            event(0, "b", EndpointState::Ready),
            event(5_000, "b", EndpointState::NotReady),
        ]));
        let shares = s.backend_shares(s.covered());
        assert!(shares.max_deviation_pp.unwrap() < 0.01, "{shares:?}");
        let a = &shares.backends[0];
        assert!((a.expected_share - 0.75).abs() < 1e-9);

        // The same traffic against a timeline that says b was gone all along.
        s.set_endpoint_timeline(EndpointTimeline::new(vec![event(
            0,
            "a",
            EndpointState::Ready,
        )]));
        let skewed = s.backend_shares(s.covered());
        assert!((skewed.max_deviation_pp.unwrap() - 25.0).abs() < 1e-9);
    }

    #[test]
    fn responses_after_deletion_are_counted() {
        // b deleted at 3_002 ms but keeps answering every other attempt until 4_000 ms.
        let samples = Stream::new(200.0).run_full(ms(6_000), |k, at| {
            let backend = if k % 2 == 1 && at < ms(4_000) {
                "b"
            } else {
                "a"
            };
            let outcome = if backend == "b" && at >= ms(3_500) {
                Outcome::Failure(FailureKind::Status)
            } else {
                Outcome::Success
            };
            (outcome, ms(1), name(backend))
        });
        let mut s = store(&samples);
        s.record_endpoint_event(event(0, "a", EndpointState::Ready));
        s.record_endpoint_event(event(0, "b", EndpointState::Ready));
        s.record_endpoint_event(event(3_002, "b", EndpointState::Deleted));
        let shares = s.backend_shares(s.covered());
        assert_eq!(shares.served_after_deletion.len(), 1);
        let late = &shares.served_after_deletion[0];
        let truth: Vec<_> = samples
            .iter()
            .filter(|x| x.backend.as_deref() == Some("b") && x.intended >= ms(3_002))
            .collect();
        assert_eq!(late.responses, truth.len() as u64);
        assert_eq!(late.first, truth[0].intended);
        assert_eq!(late.last, truth[truth.len() - 1].intended);
        // A window before the deletion sees none.
        let before = s.backend_shares(TimeWindow::new(ms(0), ms(3_000)));
        assert!(before.served_after_deletion.is_empty());
    }
}

//! Properties checked on random sample streams against naive computations over the raw samples.

use std::time::Duration;

use proptest::prelude::*;

use super::sample::{FailureKind, Outcome, Sample};
use super::testing::{ms, store};
use super::window::TimeWindow;

/// Samples at random instants below 20 s with random outcomes, in arrival order shuffled by the
/// strategy (instants are not sorted).
fn random_samples() -> impl Strategy<Value = Vec<Sample>> {
    prop::collection::vec((0u64..20_000_000, 0usize..10), 0..3_000).prop_map(|raw| {
        raw.into_iter()
            .map(|(micros, o)| Sample {
                intended: Duration::from_micros(micros),
                latency: Duration::from_micros(100 + micros % 5_000),
                outcome: if o < 7 {
                    Outcome::Success
                } else {
                    Outcome::Failure(FailureKind::ALL[o % FailureKind::ALL.len()])
                },
                backend: None,
            })
            .collect()
    })
}

/// A 200/s stream whose outcome flips with probability `1 / mean_run` at each attempt.
fn flipping_stream() -> impl Strategy<Value = Vec<Sample>> {
    (prop::collection::vec(0u32..1_000, 4_000), 2u32..200).prop_map(|(dice, mean_run)| {
        let mut up = true;
        dice.into_iter()
            .enumerate()
            .map(|(k, d)| {
                if d * mean_run < 1_000 {
                    up = !up;
                }
                Sample {
                    intended: ms(5) * k as u32,
                    latency: ms(1),
                    outcome: if up {
                        Outcome::Success
                    } else {
                        Outcome::Failure(FailureKind::Connect)
                    },
                    backend: None,
                }
            })
            .collect()
    })
}

/// Longest outage by the module's definition, straight from the sorted samples.
fn naive_longest_outage(samples: &[Sample]) -> Option<Duration> {
    let mut sorted: Vec<_> = samples.iter().collect();
    sorted.sort_by_key(|s| s.intended);
    let mut last_success = None;
    let mut open: Option<(Duration, Duration)> = None;
    let mut longest: Option<Duration> = None;
    let mut close = |start: Duration, end: Duration| {
        let length = end - start;
        longest = Some(longest.map_or(length, |l: Duration| l.max(length)));
    };
    for s in sorted {
        if s.outcome.is_success() {
            if let Some((start, _)) = open.take() {
                close(start, s.intended);
            }
            last_success = Some(s.intended);
        } else {
            match &mut open {
                Some((_, last)) => *last = s.intended,
                None => open = Some((last_success.unwrap_or(s.intended), s.intended)),
            }
        }
    }
    if let Some((start, last)) = open {
        close(start, last);
    }
    longest
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn availability_matches_a_naive_count_on_bucket_edges(
        samples in random_samples(),
        a in 0u64..210,
        span in 0u64..210,
    ) {
        let s = store(&samples);
        let (from, to) = (ms(a * 100), ms((a + span) * 100));
        let stats = s.window(TimeWindow::new(from, to));
        let inside: Vec<_> = samples.iter().filter(|x| x.intended >= from && x.intended < to).collect();
        let ok = inside.iter().filter(|x| x.outcome.is_success()).count() as u64;
        prop_assert_eq!(stats.attempts, inside.len() as u64);
        prop_assert_eq!(stats.successes, ok);
        for kind in FailureKind::ALL {
            let naive = inside.iter().filter(|x| x.outcome == Outcome::Failure(kind)).count() as u64;
            prop_assert_eq!(stats.failures.get(kind), naive);
        }
        if !inside.is_empty() {
            let naive = ok as f64 / inside.len() as f64;
            prop_assert!((stats.availability.unwrap() - naive).abs() < 1e-12);
        }
    }

    #[test]
    fn counts_add_up_over_adjacent_windows(
        samples in random_samples(),
        cuts in prop::collection::vec(0u64..21_000_000, 3),
    ) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        let [a, b, c] = [cuts[0], cuts[1], cuts[2]].map(Duration::from_micros);
        let s = store(&samples);
        let left = s.window(TimeWindow::new(a, b));
        let right = s.window(TimeWindow::new(b, c));
        let whole = s.window(TimeWindow::new(a, c));
        prop_assert_eq!(left.attempts + right.attempts, whole.attempts);
        prop_assert_eq!(left.successes + right.successes, whole.successes);
        prop_assert_eq!(whole.failures.total(), whole.attempts - whole.successes);
    }

    #[test]
    fn longest_outage_never_exceeds_its_window(
        samples in random_samples(),
        from in 0u64..21_000_000,
        length in 0u64..21_000_000,
    ) {
        let s = store(&samples);
        let w = TimeWindow::new(Duration::from_micros(from), Duration::from_micros(from + length));
        if let Some(o) = s.longest_outage(w) {
            prop_assert!(o.length <= w.len());
            prop_assert!(o.start >= w.start && o.end <= w.end && o.start <= o.end);
        }
    }

    #[test]
    fn longest_outage_matches_the_naive_definition(samples in flipping_stream()) {
        let s = store(&samples);
        let measured = s.longest_outage(s.covered()).map(|o| o.length);
        let naive = naive_longest_outage(&samples);
        prop_assert_eq!(measured.is_some(), naive.is_some());
        if let (Some(m), Some(n)) = (measured, naive) {
            // Edges inside mixed buckets sit at slot middles: half a slot (0.39 ms) each.
            let slack = Duration::from_micros(790);
            prop_assert!(m + slack >= n && m <= n + slack, "measured {:?}, naive {:?}", m, n);
        }
    }
}

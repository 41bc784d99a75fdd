//! Outages: maximal stretches in which the probe's attempts failed.
//!
//! # Definition
//! Order the attempts by intended start. An outage is a maximal run of consecutive failed
//! attempts. It lasts from the intended start of the **last success before** the run to the
//! intended start of the **first success after** it: the longest time in which the service was
//! not seen working. With exact edges (see below) that never understates a real outage and
//! overstates it by less than two probe intervals (at 200/s, a true 2 s outage measures between
//! 2.000 and 2.010 s).
//!
//! With no success before (the run began failing), the outage starts at its first failure; with
//! none after, it ends at its last failure and is not `recovered`. A window clips outages to its
//! edges (`clipped` then says so), so an outage never exceeds the window it is reported in.
//!
//! # Resolution
//! The store keeps, per bucket, the exact first and last success and failure and which of 128
//! slots held a success or a failure. An outage edge that falls at a bucket's last success before
//! failures, or its first success after them (every outage longer than a bucket, and most
//! shorter ones), is exact. Inside a bucket where successes and failures interleave, edges are
//! the middle of their slot: within half a slot (0.4 ms at the default 100 ms width) either way.
//! When a slot holds both, its failures are taken to come before its successes unless the exact
//! instants show otherwise; that only matters above 1,280 attempts/s at the default width.

use std::time::Duration;

use serde::Serialize;

use super::bucket::{Bucket, SLOTS};
use super::store::MeasurementStore;
use super::units;
use super::window::TimeWindow;

/// One outage as seen in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outage {
    /// Intended start of the last success before the failures (or as clipped by the window).
    #[serde(rename = "startMs", serialize_with = "units::millis")]
    pub start: Duration,
    /// Intended start of the first success after the failures (or as clipped by the window).
    #[serde(rename = "endMs", serialize_with = "units::millis")]
    pub end: Duration,
    /// `end - start`.
    #[serde(rename = "lengthMs", serialize_with = "units::millis")]
    pub length: Duration,
    /// A success ended it inside the window.
    pub recovered: bool,
    /// The window cut it: it began before the window or lasted beyond it.
    pub clipped: bool,
}

/// An outage over the whole run, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RawOutage {
    start: u64,
    end: u64,
    recovered: bool,
}

/// Walks attempts in time order, one class of instants at a time.
#[derive(Default)]
struct Scanner {
    last_success: Option<u64>,
    open: Option<(u64, u64)>, // (start, last failure)
    found: Vec<RawOutage>,
}

impl Scanner {
    fn failures(&mut self, first: u64, last: u64) {
        match &mut self.open {
            Some((_, latest)) => *latest = (*latest).max(last),
            None => self.open = Some((self.last_success.unwrap_or(first), last)),
        }
    }

    fn successes(&mut self, first: u64, last: u64) {
        if let Some((start, _)) = self.open.take() {
            self.found.push(RawOutage {
                start,
                end: first.max(start),
                recovered: true,
            });
        }
        self.last_success = Some(last);
    }

    fn finish(mut self) -> Vec<RawOutage> {
        if let Some((start, last)) = self.open.take() {
            self.found.push(RawOutage {
                start,
                end: last.max(start),
                recovered: false,
            });
        }
        self.found
    }

    /// A bucket where successes and failures both occur: walk its slots.
    fn mixed(&mut self, bucket: &Bucket, start: u64, width: u64) {
        let s_bits = bucket.success_slots;
        let f_bits = bucket.failure_slots;
        let (s_lo, s_hi) = (lowest(s_bits), highest(s_bits));
        let (f_lo, f_hi) = (lowest(f_bits), highest(f_bits));
        let middle = |slot: u32| start + (2 * u64::from(slot) + 1) * width / (2 * SLOTS);
        for slot in 0..SLOTS as u32 {
            let bit = 1u128 << slot;
            let (s, f) = (s_bits & bit != 0, f_bits & bit != 0);
            let s_first = if slot == s_lo {
                bucket.success.first
            } else {
                middle(slot)
            };
            let s_last = if slot == s_hi {
                bucket.success.last
            } else {
                middle(slot)
            };
            let f_first = if slot == f_lo {
                bucket.failure.first
            } else {
                middle(slot)
            };
            let f_last = if slot == f_hi {
                bucket.failure.last
            } else {
                middle(slot)
            };
            match (s, f) {
                (false, false) => {}
                (true, false) => self.successes(s_first, s_last),
                (false, true) => self.failures(f_first, f_last),
                (true, true) => {
                    let trailing = f_last > s_last;
                    let leading = f_first < s_first || !trailing;
                    if leading {
                        self.failures(f_first, f_last.min(s_first));
                    }
                    self.successes(s_first, s_last);
                    if trailing {
                        self.failures(f_first.max(s_last), f_last);
                    }
                }
            }
        }
    }
}

fn lowest(bits: u128) -> u32 {
    bits.trailing_zeros()
}

fn highest(bits: u128) -> u32 {
    127u32.saturating_sub(bits.leading_zeros())
}

impl MeasurementStore {
    /// Every outage of the run, in time order.
    fn raw_outages(&self) -> Vec<RawOutage> {
        let mut scan = Scanner::default();
        for (i, bucket) in self.buckets.iter().enumerate() {
            match (bucket.success.count > 0, bucket.failure.count > 0) {
                (false, false) => {}
                (true, false) => scan.successes(bucket.success.first, bucket.success.last),
                (false, true) => scan.failures(bucket.failure.first, bucket.failure.last),
                (true, true) => {
                    if bucket.success.last < bucket.failure.first {
                        scan.successes(bucket.success.first, bucket.success.last);
                        scan.failures(bucket.failure.first, bucket.failure.last);
                    } else if bucket.failure.last < bucket.success.first {
                        scan.failures(bucket.failure.first, bucket.failure.last);
                        scan.successes(bucket.success.first, bucket.success.last);
                    } else {
                        scan.mixed(bucket, self.bucket_start(i), self.width_ns);
                    }
                }
            }
        }
        scan.finish()
    }

    /// Outages overlapping `window`, clipped to it, at least `at_least` long, in time order.
    pub fn outages(&self, window: TimeWindow, at_least: Duration) -> Vec<Outage> {
        let (from, to) = (window.start_ns(), window.end_ns());
        let minimum = units::nanos(at_least);
        self.raw_outages()
            .into_iter()
            .filter_map(|raw| {
                let start = raw.start.max(from);
                let end = raw.end.min(to);
                let instant = raw.start == raw.end && from <= raw.start && raw.start < to;
                if !(start < end || instant) {
                    return None;
                }
                let clipped = start != raw.start || end != raw.end;
                Some(Outage {
                    start: units::duration(start),
                    end: units::duration(end),
                    length: units::duration(end - start),
                    recovered: raw.recovered && raw.end <= to,
                    clipped,
                })
            })
            .filter(|o| units::nanos(o.length) >= minimum)
            .collect()
    }

    /// The longest outage in `window` (the earliest of equals), `None` when every attempt in it
    /// succeeded.
    pub fn longest_outage(&self, window: TimeWindow) -> Option<Outage> {
        self.outages(window, Duration::ZERO)
            .into_iter()
            .reduce(|best, o| if o.length > best.length { o } else { best })
    }
}

#[cfg(test)]
mod tests {
    use super::super::sample::{FailureKind, Outcome};
    use super::super::testing::{Stream, ms, store};
    use super::*;

    fn with_outage(
        rate: f64,
        down_from: Duration,
        down_for: Duration,
    ) -> Vec<super::super::Sample> {
        Stream::new(rate).run_with(ms(20_000), |_, at| {
            if at >= down_from && at < down_from + down_for {
                Outcome::Failure(FailureKind::Connect)
            } else {
                Outcome::Success
            }
        })
    }

    #[test]
    fn outages_of_half_two_and_five_seconds_at_200_per_second() {
        let interval = ms(5);
        for (start_us, length_ms) in [
            (3_001_234u64, 500u64),
            (7_777_777, 2_000),
            (10_050_000, 5_000),
        ] {
            let start = Duration::from_micros(start_us);
            let truth = ms(length_ms);
            let s = store(&with_outage(200.0, start, truth));
            let o = s.longest_outage(s.covered()).unwrap();
            assert!(o.length >= truth, "{:?} measured {:?}", truth, o.length);
            assert!(
                o.length <= truth + ms(5) + interval,
                "{truth:?} measured {:?}",
                o.length
            );
            assert!(o.start <= start && start - o.start <= interval);
            assert!(o.recovered && !o.clipped);
            assert_eq!(s.outages(s.covered(), Duration::ZERO).len(), 1);
        }
    }

    #[test]
    fn short_outages_inside_one_bucket_are_resolved_by_slots() {
        // At 1000/s, a 20 ms outage starting mid-bucket.
        let s = store(&with_outage(1_000.0, ms(1_230), ms(20)));
        let o = s.longest_outage(s.covered()).unwrap();
        assert!(
            o.length >= ms(20) && o.length <= ms(22) + ms(1),
            "{:?}",
            o.length
        );
        assert!(o.start >= ms(1_228) && o.start <= ms(1_230));
    }

    #[test]
    fn interleaved_single_failures_are_tiny_outages() {
        // Every 10th attempt fails at 1000/s: many outages of about two intervals.
        let samples = Stream::new(1_000.0).run_with(ms(5_000), |k, _| {
            if k % 10 == 5 {
                Outcome::Failure(FailureKind::Status)
            } else {
                Outcome::Success
            }
        });
        let s = store(&samples);
        let all = s.outages(s.covered(), Duration::ZERO);
        assert_eq!(all.len(), 500);
        let longest = s.longest_outage(s.covered()).unwrap();
        assert!(longest.length <= ms(3), "{:?}", longest.length);
        assert!(s.outages(s.covered(), ms(10)).is_empty());
    }

    #[test]
    fn windows_clip_outages() {
        let s = store(&with_outage(200.0, ms(4_000), ms(3_000)));
        let w = TimeWindow::new(ms(5_000), ms(6_000));
        let o = s.longest_outage(w).unwrap();
        assert_eq!(
            (o.start, o.end, o.length),
            (ms(5_000), ms(6_000), ms(1_000))
        );
        assert!(o.clipped && !o.recovered);
        let before = TimeWindow::new(ms(0), ms(3_990));
        assert!(s.longest_outage(before).is_none());
    }

    #[test]
    fn runs_that_start_or_end_failing() {
        let samples = Stream::new(100.0).run_with(ms(3_000), |_, at| {
            if at < ms(500) || at >= ms(2_500) {
                Outcome::Failure(FailureKind::Timeout)
            } else {
                Outcome::Success
            }
        });
        let s = store(&samples);
        let all = s.outages(s.covered(), Duration::ZERO);
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].start, all[0].end), (ms(0), ms(500)));
        assert!(all[0].recovered);
        assert_eq!((all[1].start, all[1].end), (ms(2_490), ms(2_990)));
        assert!(!all[1].recovered);
    }

    #[test]
    fn late_failures_still_shape_the_outage() {
        let mut samples = with_outage(200.0, ms(2_000), ms(1_000));
        samples.reverse();
        let s = store(&samples);
        let o = s.longest_outage(s.covered()).unwrap();
        assert_eq!((o.start, o.end), (ms(1_995), ms(3_000)));
    }
}

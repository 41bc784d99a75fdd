//! The measurement store of one probe: fed with samples during the run, queried for any window
//! afterwards.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::bucket::{Bucket, SLOTS};
use super::config::StoreConfig;
use super::endpoints::{EndpointEvent, EndpointTimeline};
use super::error::MeasureError;
use super::latency::{LatencyOf, LatencySlices};
use super::sample::{Outcome, Sample};
use super::units;
use super::window::{FailureCounts, Tally, TimeWindow, WindowStats, apportion};

/// Samples of one probe in fixed time buckets, plus the endpoint timeline of its target.
///
/// Memory grows with the run's length over the bucket width (a few hundred bytes per bucket and
/// a compact histogram per latency slice), never with the probe rate.
pub struct MeasurementStore {
    pub(crate) config: StoreConfig,
    pub(crate) width_ns: u64,
    pub(crate) buckets: Vec<Bucket>,
    pub(crate) latency: LatencySlices,
    pub(crate) backend_names: Vec<Arc<str>>,
    backend_ids: HashMap<Arc<str>, u16>,
    pub(crate) endpoints: EndpointTimeline,
    unattributed: u64,
    recorded: u64,
}

impl std::fmt::Debug for MeasurementStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeasurementStore")
            .field("config", &self.config)
            .field("buckets", &self.buckets.len())
            .field("backends", &self.backend_names)
            .field("samples", &self.recorded)
            .finish_non_exhaustive()
    }
}

impl MeasurementStore {
    /// An empty store.
    ///
    /// # Errors
    /// [`MeasureError::Histogram`] if the latency histograms cannot be set up (a bug).
    pub fn new(config: StoreConfig) -> Result<Self, MeasureError> {
        Ok(MeasurementStore {
            width_ns: units::nanos(config.bucket_width()).max(1),
            latency: LatencySlices::new(config.latency_slice())?,
            config,
            buckets: Vec::new(),
            backend_names: Vec::new(),
            backend_ids: HashMap::new(),
            endpoints: EndpointTimeline::default(),
            unattributed: 0,
            recorded: 0,
        })
    }

    /// The settings the store was made with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Counts one attempt in the bucket of its *intended* start; arrival order does not matter.
    ///
    /// A sample naming a backend beyond [`StoreConfig::max_backends`] distinct names still
    /// counts for availability and latency, but not for any backend (see
    /// [`MeasurementStore::unattributed_backend_samples`]).
    ///
    /// # Errors
    /// [`MeasureError::BeyondHorizon`] when the sample lies past the horizon; it is not counted.
    pub fn record(&mut self, sample: &Sample) -> Result<(), MeasureError> {
        if sample.intended >= self.config.horizon() {
            return Err(MeasureError::BeyondHorizon {
                intended: sample.intended,
                horizon: self.config.horizon(),
            });
        }
        let at = units::nanos(sample.intended);
        let index = (at / self.width_ns) as usize;
        if self.buckets.len() <= index {
            // Grow by an eighth rather than doubling: an hour of buckets is megabytes, and
            // doubling would leave up to half of it unused.
            let wanted = index + 1;
            if self.buckets.capacity() < wanted {
                let extra = (wanted - self.buckets.len()).max(self.buckets.len() / 8 + 1_024);
                self.buckets.reserve_exact(extra);
            }
            self.buckets.resize_with(wanted, Bucket::default);
        }
        let backend = sample
            .backend
            .as_ref()
            .and_then(|name| self.backend_id(name));
        let slot = (at % self.width_ns) * SLOTS / self.width_ns;
        let failure = match sample.outcome {
            Outcome::Success => None,
            Outcome::Failure(kind) => Some(kind),
        };
        self.buckets[index].add(at, slot, failure, backend);
        self.latency
            .record(at, sample.latency, sample.outcome.is_success());
        self.recorded += 1;
        Ok(())
    }

    fn backend_id(&mut self, name: &Arc<str>) -> Option<u16> {
        if let Some(id) = self.backend_ids.get(name) {
            return Some(*id);
        }
        if self.backend_names.len() >= self.config.max_backends() {
            self.unattributed += 1;
            return None;
        }
        let id = u16::try_from(self.backend_names.len()).ok()?;
        self.backend_names.push(name.clone());
        self.backend_ids.insert(name.clone(), id);
        Some(id)
    }

    /// Adds one change of a backend's readiness; events may come in any order.
    pub fn record_endpoint_event(&mut self, event: EndpointEvent) {
        self.endpoints.push(event);
    }

    /// Replaces the endpoint timeline, e.g. with one rebuilt from the journal after the run.
    pub fn set_endpoint_timeline(&mut self, timeline: EndpointTimeline) {
        self.endpoints = timeline;
    }

    /// The endpoint timeline used for expected backend shares.
    pub fn endpoint_timeline(&self) -> &EndpointTimeline {
        &self.endpoints
    }

    /// Samples recorded so far.
    pub fn samples_recorded(&self) -> u64 {
        self.recorded
    }

    /// Samples whose backend was not kept apart because too many distinct names came.
    pub fn unattributed_backend_samples(&self) -> u64 {
        self.unattributed
    }

    /// Rough heap bytes held, for logs and the memory benchmark.
    pub fn approximate_bytes(&self) -> usize {
        let buckets = self.buckets.capacity() * std::mem::size_of::<Bucket>();
        let backends: usize = self
            .buckets
            .iter()
            .map(|b| b.backends.capacity() * std::mem::size_of::<super::bucket::BackendTally>())
            .sum();
        buckets + backends + self.latency.approximate_bytes()
    }

    /// From the run origin to the end of the last bucket holding a sample: the whole run.
    pub fn covered(&self) -> TimeWindow {
        let end = self.buckets.len() as u64 * self.width_ns;
        TimeWindow::new(Duration::ZERO, units::duration(end))
    }

    /// Attempts, outcomes, availability and latency of successful attempts in `window`.
    pub fn window(&self, window: TimeWindow) -> WindowStats {
        self.window_with(window, LatencyOf::Successes)
    }

    /// Like [`MeasurementStore::window`], choosing which attempts the latency describes.
    ///
    /// Counts are exact for windows on bucket edges. Where a window cuts a bucket, the bucket's
    /// successes and failures are split assuming they were evenly spaced between their first and
    /// last instants: exact for a constant-rate probe whose outcome changes at most once in that
    /// bucket. Latency comes from whole slices (see [`super::LatencySummary::from`]).
    /// Any percentile (0–100) of the latencies in `window`, for targets beyond the summary's
    /// fixed set (`p99.95`); `None` when nothing was recorded.
    pub fn latency_percentile(
        &self,
        window: TimeWindow,
        percentile: f64,
        of: LatencyOf,
    ) -> Option<Duration> {
        let mut scratch = self.latency.empty();
        let slices = self.latency.slices_for(window.start_ns(), window.end_ns());
        self.latency.merge_into(slices, of, &mut scratch);
        (!scratch.is_empty()).then(|| {
            Duration::from_micros(scratch.value_at_quantile((percentile / 100.0).clamp(0.0, 1.0)))
        })
    }

    pub fn window_with(&self, window: TimeWindow, of: LatencyOf) -> WindowStats {
        let tally = self.tally(window.start_ns(), window.end_ns());
        let mut scratch = self.latency.empty();
        let slices = self.latency.slices_for(window.start_ns(), window.end_ns());
        WindowStats {
            window,
            attempts: tally.attempts(),
            successes: tally.successes,
            failures: FailureCounts::from_array(tally.failures),
            availability: tally.ratio(),
            latency: self.latency.summary(slices, of, &mut scratch),
        }
    }

    /// Range of bucket indices overlapping `[from, to)` nanoseconds that exist.
    pub(crate) fn bucket_range(&self, from: u64, to: u64) -> std::ops::Range<usize> {
        if to <= from {
            return 0..0;
        }
        let lo = (from / self.width_ns) as usize;
        let hi = to.div_ceil(self.width_ns).min(self.buckets.len() as u64) as usize;
        lo.min(hi)..hi
    }

    /// Bucket `index`'s start in nanoseconds.
    pub(crate) fn bucket_start(&self, index: usize) -> u64 {
        index as u64 * self.width_ns
    }

    /// Attempts scheduled in `[from, to)` nanoseconds.
    pub(crate) fn tally(&self, from: u64, to: u64) -> Tally {
        let mut tally = Tally::default();
        for i in self.bucket_range(from, to) {
            let bucket = &self.buckets[i];
            if bucket.is_empty() {
                continue;
            }
            let start = self.bucket_start(i);
            let end = start + self.width_ns;
            if from <= start && end <= to {
                tally.successes += u64::from(bucket.success.count);
                for (sum, count) in tally.failures.iter_mut().zip(bucket.kinds) {
                    *sum += u64::from(count);
                }
            } else {
                let (a, b) = (from.max(start), to.min(end));
                tally.successes += bucket.success.between(a, b);
                let failed = bucket.failure.between(a, b);
                let split = apportion(&bucket.kinds, failed);
                for (sum, count) in tally.failures.iter_mut().zip(split) {
                    *sum += count;
                }
            }
        }
        tally
    }

    /// Per backend id: (successful responses, all responses) in `[from, to)` nanoseconds.
    pub(crate) fn backend_tally(&self, from: u64, to: u64) -> Vec<(u64, u64)> {
        let mut out = vec![(0u64, 0u64); self.backend_names.len()];
        for i in self.bucket_range(from, to) {
            let start = self.bucket_start(i);
            let end = start + self.width_ns;
            let whole = from <= start && end <= to;
            let (a, b) = (from.max(start), to.min(end));
            for t in &self.buckets[i].backends {
                let entry = &mut out[usize::from(t.id)];
                if whole {
                    entry.0 += u64::from(t.ok.count);
                    entry.1 += u64::from(t.any.count);
                } else {
                    entry.0 += t.ok.between(a, b);
                    entry.1 += t.any.between(a, b);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::sample::FailureKind;
    use super::super::testing::{Stream, ms, store};
    use super::*;

    #[test]
    fn availability_is_exact_for_a_known_stream() {
        // 200/s for 60 s; 1.3 % of attempts fail, spread evenly (every 77th... roughly).
        let mut stream = Stream::new(200.0);
        let samples = stream.run_with(ms(60_000), |k, _| {
            if k % 1000 < 13 {
                Outcome::Failure(FailureKind::Status)
            } else {
                Outcome::Success
            }
        });
        let s = store(&samples);
        let stats = s.window(s.covered());
        assert_eq!(stats.attempts, 12_000);
        assert_eq!(stats.failures.status, 12 * 13);
        assert_eq!(stats.failures.total(), stats.attempts - stats.successes);
        let expected = 1.0 - 0.013;
        assert!((stats.availability.unwrap() - expected).abs() < 0.001);
    }

    #[test]
    fn out_of_order_samples_land_in_their_intended_bucket() {
        let mut stream = Stream::new(200.0);
        let mut samples = stream.run_with(ms(10_000), |k, _| {
            if k % 2 == 0 {
                Outcome::Success
            } else {
                Outcome::Failure(FailureKind::Timeout)
            }
        });
        let in_order = store(&samples);
        // Late arrivals: every failure comes in after everything else, reversed.
        samples.sort_by_key(|s| (!s.outcome.is_success(), std::cmp::Reverse(s.intended)));
        let shuffled = store(&samples);
        for (from, to) in [(0, 10_000), (1_234, 5_678), (0, 50), (9_990, 10_000)] {
            let w = TimeWindow::new(ms(from), ms(to));
            assert_eq!(
                in_order.window(w),
                shuffled.window(w),
                "window {from}..{to}"
            );
        }
    }

    #[test]
    fn empty_windows_and_empty_stores() {
        let empty = store(&[]);
        let stats = empty.window(TimeWindow::new(ms(0), ms(1_000)));
        assert_eq!((stats.attempts, stats.availability), (0, None));
        assert!(stats.latency.is_none());
        let mut stream = Stream::new(100.0);
        let s = store(&stream.run_with(ms(1_000), |_, _| Outcome::Success));
        let nothing = s.window(TimeWindow::new(ms(500), ms(500)));
        assert_eq!(nothing.attempts, 0);
        let after = s.window(TimeWindow::new(ms(5_000), ms(6_000)));
        assert_eq!(after.attempts, 0);
    }

    #[test]
    fn windows_cutting_through_buckets_count_what_lies_inside() {
        // 200/s: one sample every 5 ms from 0; failures during [2_345, 4_567) ms.
        let mut stream = Stream::new(200.0);
        let samples = stream.run_with(ms(10_000), |_, at| {
            if at >= ms(2_345) && at < ms(4_567) {
                Outcome::Failure(FailureKind::Connect)
            } else {
                Outcome::Success
            }
        });
        let s = store(&samples);
        for (from, to) in [
            (2_345, 4_567),
            (1_001, 3_003),
            (4_000, 4_999),
            (2_346, 2_347),
            (7, 9_993),
        ] {
            let w = TimeWindow::new(ms(from), ms(to));
            let stats = s.window(w);
            let inside: Vec<_> = samples
                .iter()
                .filter(|x| x.intended >= w.start && x.intended < w.end)
                .collect();
            let ok = inside.iter().filter(|x| x.outcome.is_success()).count() as u64;
            assert_eq!(stats.attempts, inside.len() as u64, "window {from}..{to}");
            assert_eq!(stats.successes, ok, "window {from}..{to}");
        }
    }

    #[test]
    fn a_slow_backend_shows_in_p99_not_p50() {
        // Four backends round robin; "d" takes 250 ms, the others 2 ms.
        let samples = Stream::new(400.0).run_full(ms(20_000), |k, _| {
            let name = ["a", "b", "c", "d"][(k % 4) as usize];
            let latency = if name == "d" { ms(250) } else { ms(2) };
            (Outcome::Success, latency, Some(Arc::from(name)))
        });
        let s = store(&samples);
        let latency = s.window(s.covered()).latency.unwrap();
        assert_eq!(latency.count, 8_000);
        let close = |d: Duration, want: Duration| d >= want && d <= want + want / 500;
        assert!(close(latency.p50, ms(2)), "p50 {:?}", latency.p50);
        assert!(close(latency.p99, ms(250)), "p99 {:?}", latency.p99);
        assert!(close(latency.max, ms(250)), "max {:?}", latency.max);
    }

    #[test]
    fn latency_of_all_attempts_includes_failures() {
        let samples = Stream::new(100.0).run_full(ms(10_000), |k, _| {
            if k % 10 == 0 {
                (Outcome::Failure(FailureKind::Timeout), ms(2_000), None)
            } else {
                (Outcome::Success, ms(5), None)
            }
        });
        let s = store(&samples);
        let ok = s.window(s.covered()).latency.unwrap();
        let all = s.window_with(s.covered(), LatencyOf::All).latency.unwrap();
        assert_eq!((ok.count, all.count), (900, 1_000));
        assert!(ok.max < ms(6));
        assert!(all.p95 >= ms(2_000) && all.p50 < ms(6));
    }

    #[test]
    fn results_serialize_in_camel_case_milliseconds() {
        let samples = Stream::new(200.0).run_with(ms(4_000), |_, at| {
            if at >= ms(1_000) && at < ms(1_500) {
                Outcome::Failure(FailureKind::Dropped)
            } else {
                Outcome::Success
            }
        });
        let s = store(&samples);
        let stats = serde_json::to_value(s.window(s.covered())).unwrap();
        assert_eq!(stats["window"]["toMs"], 4_000.0);
        assert_eq!(stats["attempts"], 800);
        assert_eq!(stats["failures"]["dropped"], 100);
        assert_eq!(stats["latency"]["of"], "successes");
        assert_eq!(stats["latency"]["p50Ms"], 1.0);
        let outage = serde_json::to_value(s.longest_outage(s.covered())).unwrap();
        assert_eq!(outage["startMs"], 995.0);
        assert_eq!(outage["lengthMs"], 505.0);
        assert_eq!(outage["recovered"], true);
    }

    #[test]
    fn memory_does_not_follow_the_probe_rate() {
        let feed = |rate: f64| {
            let samples = Stream::new(rate).run_full(ms(120_000), |k, _| {
                let name = ["a", "b", "c"][(k % 3) as usize];
                let latency = Duration::from_micros(2_000 + (k * 7_919) % 20_000);
                (Outcome::Success, latency, Some(Arc::from(name)))
            });
            store(&samples).approximate_bytes()
        };
        let (slow, fast) = (feed(100.0), feed(5_000.0));
        // Fifty times the rate; the histograms fill in a little, nothing else grows.
        assert!(fast < slow * 2, "100/s: {slow} B, 5,000/s: {fast} B");
    }

    #[test]
    fn samples_past_the_horizon_are_refused() {
        let config = StoreConfig::default().with_horizon(Duration::from_secs(10));
        let mut s = MeasurementStore::new(config).unwrap();
        let sample = Sample {
            intended: Duration::from_secs(10),
            latency: Duration::from_millis(1),
            outcome: Outcome::Success,
            backend: None,
        };
        assert!(matches!(
            s.record(&sample),
            Err(MeasureError::BeyondHorizon { .. })
        ));
        assert_eq!(s.samples_recorded(), 0);
    }

    #[test]
    fn too_many_backend_names_are_not_kept_apart() {
        let config = StoreConfig::default().with_max_backends(2);
        let mut s = MeasurementStore::new(config).unwrap();
        for (i, name) in ["a", "b", "c", "a"].iter().enumerate() {
            let sample = Sample {
                intended: ms(i as u64),
                latency: ms(1),
                outcome: Outcome::Success,
                backend: Some(Arc::from(*name)),
            };
            s.record(&sample).unwrap();
        }
        assert_eq!(s.unattributed_backend_samples(), 1);
        assert_eq!(s.window(s.covered()).successes, 4);
    }
}

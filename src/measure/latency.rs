//! Latency histograms per time slice (default one second), kept compact.
//!
//! A full HDR histogram at three significant digits over 1 µs ..= 1 h is about 190 KB; one per
//! 100 ms bucket would need gigabytes for an hour. So latencies are grouped per slice, and a
//! slice is held as a live histogram only while samples for it still arrive; then it is *sealed*
//! into a sparse encoding of its non-empty bins (a few hundred bytes to a few kilobytes). Late
//! samples for a sealed slice are parked beside it (up to 256); only more than that reopens it,
//! and live slices are kept by recency of use, so a stream of late timeouts does not thrash.
//!
//! Values are recorded in microseconds, clamped to 1 h. Percentiles are the upper edge of their
//! histogram bin, at most 0.1 % above the true value.

use std::collections::HashMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::error::MeasureError;
use super::units;

/// Latencies above this many microseconds (one hour) are recorded as this value.
const HIGHEST_MICROS: u64 = 3_600_000_000;
/// Significant digits of every histogram.
const SIGFIG: u8 = 3;
/// Live slices kept before the least recently used one is sealed.
const MAX_OPEN: usize = 8;
/// Late samples parked per sealed slice before it is reopened; bounds memory per slice.
const LATE_LIMIT: usize = 256;

/// Which attempts a latency summary describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LatencyOf {
    /// Successful attempts only: how fast the service answered when it answered right.
    #[default]
    Successes,
    /// Every attempt, failures included (a timeout counts with its full wait).
    All,
}

/// Latency percentiles over a window, from the slices whose middle lies in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencySummary {
    /// Which attempts were counted.
    pub of: LatencyOf,
    /// Start of the time the histograms cover (whole slices, so it may differ from the window).
    #[serde(rename = "fromMs", serialize_with = "units::millis")]
    pub from: Duration,
    /// End of the time the histograms cover.
    #[serde(rename = "toMs", serialize_with = "units::millis")]
    pub to: Duration,
    /// Attempts counted.
    pub count: u64,
    /// Median.
    #[serde(rename = "p50Ms", serialize_with = "units::millis")]
    pub p50: Duration,
    /// 90th percentile.
    #[serde(rename = "p90Ms", serialize_with = "units::millis")]
    pub p90: Duration,
    /// 95th percentile.
    #[serde(rename = "p95Ms", serialize_with = "units::millis")]
    pub p95: Duration,
    /// 99th percentile.
    #[serde(rename = "p99Ms", serialize_with = "units::millis")]
    pub p99: Duration,
    /// 99.9th percentile.
    #[serde(rename = "p999Ms", serialize_with = "units::millis")]
    pub p999: Duration,
    /// Largest latency seen.
    #[serde(rename = "maxMs", serialize_with = "units::millis")]
    pub max: Duration,
}

/// Two histograms for one slice: successes and failures, so "all" is their sum.
struct OpenSlice {
    success: Option<Histogram<u64>>,
    failure: Option<Histogram<u64>>,
    touched: u64,
}

/// A sealed slice: sparse encodings, `None` when nothing of that kind was recorded, and late
/// samples parked until there are enough to be worth re-encoding.
#[derive(Default)]
struct SealedSlice {
    success: Option<Box<[u8]>>,
    failure: Option<Box<[u8]>>,
    /// Late latencies (µs) and whether they were successes.
    late: Vec<(u32, bool)>,
    was_sealed: bool,
}

/// All latency slices of one store.
pub(crate) struct LatencySlices {
    slice_ns: u64,
    template: Histogram<u64>,
    sealed: Vec<SealedSlice>,
    open: HashMap<u64, OpenSlice>,
    clock: u64,
}

impl LatencySlices {
    /// Slices of `slice` each.
    pub fn new(slice: Duration) -> Result<Self, MeasureError> {
        Ok(LatencySlices {
            slice_ns: units::nanos(slice).max(1),
            template: Histogram::new_with_bounds(1, HIGHEST_MICROS, SIGFIG)?,
            sealed: Vec::new(),
            open: HashMap::new(),
            clock: 0,
        })
    }

    /// Records one latency for the attempt scheduled at `at` (nanoseconds).
    pub fn record(&mut self, at: u64, latency: Duration, success: bool) {
        let index = at / self.slice_ns;
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .min(HIGHEST_MICROS);
        self.clock += 1;
        let clock = self.clock;
        if !self.open.contains_key(&index) {
            if let Some(sealed) = self.sealed_mut(index)
                && sealed.was_sealed
                && sealed.late.len() < LATE_LIMIT
            {
                // A late sample for a sealed slice: park it rather than re-encode per sample.
                sealed.late.push((micros as u32, success));
                return;
            }
            let reopened = self.reopen(index, clock);
            self.open.insert(index, reopened);
            if self.open.len() > MAX_OPEN {
                self.seal_least_recent();
            }
        }
        let template = &self.template;
        if let Some(slice) = self.open.get_mut(&index) {
            slice.touched = clock;
            let histogram = if success {
                &mut slice.success
            } else {
                &mut slice.failure
            };
            histogram
                .get_or_insert_with(|| Histogram::new_from(template))
                .saturating_record(micros);
        }
    }

    fn sealed_mut(&mut self, index: u64) -> Option<&mut SealedSlice> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.sealed.get_mut(i))
    }

    /// A live slice holding whatever was sealed or parked for `index` before.
    fn reopen(&mut self, index: u64, clock: u64) -> OpenSlice {
        let mut slice = OpenSlice {
            success: None,
            failure: None,
            touched: clock,
        };
        let template = &self.template;
        if let Some(sealed) = usize::try_from(index)
            .ok()
            .and_then(|i| self.sealed.get_mut(i))
        {
            let decoded = |bytes: Option<Box<[u8]>>| {
                bytes.map(|bytes| {
                    let mut h = Histogram::new_from(template);
                    decode_into(&bytes, &mut h);
                    h
                })
            };
            slice.success = decoded(sealed.success.take());
            slice.failure = decoded(sealed.failure.take());
            for (micros, success) in std::mem::take(&mut sealed.late) {
                let histogram = if success {
                    &mut slice.success
                } else {
                    &mut slice.failure
                };
                histogram
                    .get_or_insert_with(|| Histogram::new_from(template))
                    .saturating_record(u64::from(micros));
            }
            sealed.was_sealed = false;
        }
        slice
    }

    fn seal_least_recent(&mut self) {
        let oldest = self
            .open
            .iter()
            .min_by_key(|(_, slice)| slice.touched)
            .map(|(index, _)| *index);
        if let Some(index) = oldest {
            self.seal(index);
        }
    }

    fn seal(&mut self, index: u64) {
        let Some(slice) = self.open.remove(&index) else {
            return;
        };
        let Ok(i) = usize::try_from(index) else {
            return;
        };
        if self.sealed.len() <= i {
            self.sealed.resize_with(i + 1, SealedSlice::default);
        }
        let target = &mut self.sealed[i];
        target.success = slice.success.as_ref().map(encode);
        target.failure = slice.failure.as_ref().map(encode);
        target.was_sealed = true;
    }

    /// Slices whose middle lies in `[from, to)`, or the one holding the window's middle when the
    /// window is narrower than a slice. Empty for an empty window.
    pub fn slices_for(&self, from: u64, to: u64) -> std::ops::Range<u64> {
        if to <= from {
            return 0..0;
        }
        let s = self.slice_ns;
        let half = s / 2;
        let lo = from.saturating_sub(half).div_ceil(s);
        let hi = if to > half {
            (to - half).div_ceil(s)
        } else {
            0
        };
        if lo < hi {
            lo..hi
        } else {
            let middle = from + (to - from) / 2;
            let k = middle / s;
            k..k + 1
        }
    }

    /// An empty histogram shaped like every slice's.
    pub fn empty(&self) -> Histogram<u64> {
        Histogram::new_from(&self.template)
    }

    /// Adds the chosen slices' latencies to `target`.
    pub fn merge_into(
        &self,
        slices: std::ops::Range<u64>,
        of: LatencyOf,
        target: &mut Histogram<u64>,
    ) {
        for index in slices {
            if let Some(open) = self.open.get(&index) {
                add_live(open.success.as_ref(), target);
                if of == LatencyOf::All {
                    add_live(open.failure.as_ref(), target);
                }
            } else if let Some(sealed) =
                usize::try_from(index).ok().and_then(|i| self.sealed.get(i))
            {
                if let Some(bytes) = &sealed.success {
                    decode_into(bytes, target);
                }
                if of == LatencyOf::All
                    && let Some(bytes) = &sealed.failure
                {
                    decode_into(bytes, target);
                }
                for (micros, success) in &sealed.late {
                    if *success || of == LatencyOf::All {
                        target.saturating_record(u64::from(*micros));
                    }
                }
            }
        }
    }

    /// Percentiles of `slices`, `None` when they hold nothing.
    pub fn summary(
        &self,
        slices: std::ops::Range<u64>,
        of: LatencyOf,
        scratch: &mut Histogram<u64>,
    ) -> Option<LatencySummary> {
        scratch.reset();
        let (from, to) = (slices.start * self.slice_ns, slices.end * self.slice_ns);
        self.merge_into(slices, of, scratch);
        summarize(scratch, of, from, to)
    }

    /// Bytes held by sealed slices and live histograms, for the memory benchmark.
    pub fn approximate_bytes(&self) -> usize {
        let sealed: usize = self
            .sealed
            .iter()
            .map(|s| {
                s.success.as_ref().map_or(0, |b| b.len())
                    + s.failure.as_ref().map_or(0, |b| b.len())
            })
            .sum();
        let per_live = self.template.distinct_values() * 8;
        let live: usize = self
            .open
            .values()
            .map(|s| {
                (usize::from(s.success.is_some()) + usize::from(s.failure.is_some())) * per_live
            })
            .sum();
        sealed + live + self.sealed.len() * std::mem::size_of::<SealedSlice>()
    }
}

fn add_live(source: Option<&Histogram<u64>>, target: &mut Histogram<u64>) {
    if let Some(h) = source {
        for bin in h.iter_recorded() {
            target.saturating_record_n(bin.value_iterated_to(), bin.count_at_value());
        }
    }
}

/// Percentiles of a merged histogram covering `[from, to)` nanoseconds.
pub(crate) fn summarize(
    h: &Histogram<u64>,
    of: LatencyOf,
    from: u64,
    to: u64,
) -> Option<LatencySummary> {
    if h.is_empty() {
        return None;
    }
    let at = |q: f64| Duration::from_micros(h.value_at_quantile(q));
    Some(LatencySummary {
        of,
        from: units::duration(from),
        to: units::duration(to),
        count: h.len(),
        p50: at(0.50),
        p90: at(0.90),
        p95: at(0.95),
        p99: at(0.99),
        p999: at(0.999),
        max: Duration::from_micros(h.max()),
    })
}

/// Sparse encoding: for each non-empty bin, LEB128 of the value's increase over the previous
/// bin's value, then LEB128 of the count.
fn encode(h: &Histogram<u64>) -> Box<[u8]> {
    let mut out = Vec::new();
    let mut previous = 0u64;
    for bin in h.iter_recorded() {
        let value = bin.value_iterated_to();
        write_varint(&mut out, value - previous);
        write_varint(&mut out, bin.count_at_value());
        previous = value;
    }
    out.into_boxed_slice()
}

/// Adds an encoding made by [`encode`] to `target`; stops at the first malformed byte.
fn decode_into(bytes: &[u8], target: &mut Histogram<u64>) {
    let mut rest = bytes;
    let mut value = 0u64;
    while let Some(delta) = read_varint(&mut rest) {
        let Some(count) = read_varint(&mut rest) else {
            return;
        };
        value = value.saturating_add(delta);
        target.saturating_record_n(value, count);
    }
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_varint(rest: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    let mut shift = 0u32;
    loop {
        let (&byte, tail) = rest.split_first()?;
        *rest = tail;
        value |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(value);
        }
        shift += 7;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_and_reopening_keep_every_value() {
        let mut slices = LatencySlices::new(Duration::from_secs(1)).unwrap();
        // Twenty slices, so most get sealed; then late samples reopen early ones.
        for s in 0..20u64 {
            for k in 0..100u64 {
                let at = s * 1_000_000_000 + k * 10_000_000;
                slices.record(at, Duration::from_micros(1_000 + k * 37), true);
            }
        }
        for s in 0..3u64 {
            slices.record(s * 1_000_000_000, Duration::from_secs(10), false);
        }
        let mut scratch = slices.empty();
        let ok = slices
            .summary(0..20, LatencyOf::Successes, &mut scratch)
            .unwrap();
        assert_eq!(ok.count, 2_000);
        let all = slices.summary(0..20, LatencyOf::All, &mut scratch).unwrap();
        assert_eq!(all.count, 2_003);
        assert!(all.max >= Duration::from_secs(10));
        assert!(ok.max < Duration::from_millis(5));
        let p50 = ok.p50.as_micros() as f64;
        assert!((p50 - (1_000.0 + 49.5 * 37.0)).abs() < 40.0, "p50 {p50}");
        // More late samples than can be parked: slice 0 is reopened and re-sealed.
        for k in 0..300u64 {
            slices.record(k, Duration::from_micros(500), true);
        }
        for s in 20..30u64 {
            slices.record(s * 1_000_000_000, Duration::from_micros(700), true);
        }
        let after = slices
            .summary(0..30, LatencyOf::Successes, &mut scratch)
            .unwrap();
        assert_eq!(after.count, 2_310);
        let first = slices.summary(0..1, LatencyOf::All, &mut scratch).unwrap();
        assert_eq!(first.count, 401);
    }

    #[test]
    fn encoding_round_trips() {
        let slices = LatencySlices::new(Duration::from_secs(1)).unwrap();
        let mut h = slices.empty();
        for v in [0u64, 1, 7, 2_047, 2_048, 99_999, 3_600_000_000] {
            h.record_n(v, v % 5 + 1).unwrap();
        }
        let mut back = slices.empty();
        decode_into(&encode(&h), &mut back);
        assert_eq!(h, back);
    }

    #[test]
    fn slices_are_chosen_by_their_middle() {
        let slices = LatencySlices::new(Duration::from_secs(1)).unwrap();
        let s = 1_000_000_000u64;
        assert_eq!(slices.slices_for(0, 10 * s), 0..10);
        assert_eq!(slices.slices_for(s / 2, 10 * s), 0..10);
        assert_eq!(slices.slices_for(s / 2 + 1, 10 * s), 1..10);
        assert_eq!(slices.slices_for(3 * s + s / 4, 3 * s + s / 3), 3..4);
        assert_eq!(slices.slices_for(5 * s, 5 * s), 0..0);
    }
}

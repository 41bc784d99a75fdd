//! Windows of the run and the counts derived for them.

use std::time::Duration;

use serde::Serialize;

use super::latency::LatencySummary;
use super::sample::FailureKind;
use super::units;

/// A half-open span of run time `[start, end)`, as offsets from the run's origin: the one window
/// type the engine fixes (before, during, after, each fault, the whole run), the verdict judges
/// over and the store counts in, so none converts into another.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub struct TimeWindow {
    /// Offset of the start: the first instant inside.
    #[serde(with = "units::secs")]
    pub start: Duration,
    /// Offset of the end: the first instant after.
    #[serde(with = "units::secs")]
    pub end: Duration,
}

impl TimeWindow {
    /// A window from `start` to `end`; an `end` before `start` makes it empty at `start`, so a
    /// window is never inverted and needs no error path.
    pub fn new(start: Duration, end: Duration) -> Self {
        Self {
            start,
            end: end.max(start),
        }
    }

    /// Its length.
    pub fn len(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }

    /// True when it has no length.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// The smallest window covering both.
    pub fn union(self, other: TimeWindow) -> TimeWindow {
        TimeWindow::new(self.start.min(other.start), self.end.max(other.end))
    }

    pub(crate) fn start_ns(&self) -> u64 {
        units::nanos(self.start)
    }

    pub(crate) fn end_ns(&self) -> u64 {
        units::nanos(self.end)
    }
}

/// Writes a window as `{fromMs, toMs}`, as window statistics always have.
fn window_millis<S: serde::Serializer>(w: &TimeWindow, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut out = s.serialize_struct("Window", 2)?;
    out.serialize_field("fromMs", &(w.start.as_secs_f64() * 1_000.0))?;
    out.serialize_field("toMs", &(w.end.as_secs_f64() * 1_000.0))?;
    out.end()
}

/// Failed attempts by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureCounts {
    /// Connection refused, reset or unresolvable.
    pub connect: u64,
    /// No complete response in time.
    pub timeout: u64,
    /// Unexpected status.
    pub status: u64,
    /// Unexpected body.
    pub body: u64,
    /// Answered, but slower than the probe's latency expectation.
    pub latency: u64,
    /// Broken connection or bad HTTP.
    pub protocol: u64,
    /// Not started: the concurrency cap was reached.
    pub dropped: u64,
}

impl FailureCounts {
    /// Failures of one kind.
    pub fn get(&self, kind: FailureKind) -> u64 {
        match kind {
            FailureKind::Connect => self.connect,
            FailureKind::Timeout => self.timeout,
            FailureKind::Status => self.status,
            FailureKind::Body => self.body,
            FailureKind::Latency => self.latency,
            FailureKind::Protocol => self.protocol,
            FailureKind::Dropped => self.dropped,
        }
    }

    /// All failures.
    pub fn total(&self) -> u64 {
        FailureKind::ALL.iter().map(|k| self.get(*k)).sum()
    }

    pub(crate) fn from_array(counts: [u64; FailureKind::ALL.len()]) -> Self {
        let [connect, timeout, status, body, latency, protocol, dropped] = counts;
        FailureCounts {
            connect,
            timeout,
            status,
            body,
            latency,
            protocol,
            dropped,
        }
    }
}

/// What the probe saw in one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowStats {
    /// The window asked for.
    #[serde(serialize_with = "window_millis")]
    pub window: TimeWindow,
    /// Attempts scheduled in the window (dropped starts included).
    pub attempts: u64,
    /// Attempts that met every expectation.
    pub successes: u64,
    /// Failed attempts by kind; they add up to `attempts - successes`.
    pub failures: FailureCounts,
    /// `successes / attempts`, `None` for a window without attempts.
    pub availability: Option<f64>,
    /// Latency percentiles, `None` when nothing was recorded in the window.
    pub latency: Option<LatencySummary>,
}

/// Attempts counted over part of the run; the raw material of [`WindowStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub successes: u64,
    pub failures: [u64; FailureKind::ALL.len()],
}

impl Tally {
    pub fn failed(&self) -> u64 {
        self.failures.iter().sum()
    }

    pub fn attempts(&self) -> u64 {
        self.successes + self.failed()
    }

    pub fn ratio(&self) -> Option<f64> {
        let attempts = self.attempts();
        (attempts > 0).then(|| self.successes as f64 / attempts as f64)
    }
}

/// Splits `total` among kinds in proportion to `counts`, by largest remainder, so a partial
/// bucket's failures keep their mix and add up exactly.
pub(crate) fn apportion(
    counts: &[u32; FailureKind::ALL.len()],
    total: u64,
) -> [u64; FailureKind::ALL.len()] {
    let mut out = [0u64; FailureKind::ALL.len()];
    let sum: u64 = counts.iter().map(|c| u64::from(*c)).sum();
    if sum == 0 || total == 0 {
        return out;
    }
    let mut remainders = [(0u64, 0usize); FailureKind::ALL.len()];
    let mut given = 0;
    for (i, c) in counts.iter().enumerate() {
        let exact = u128::from(*c) * u128::from(total);
        out[i] = (exact / u128::from(sum)) as u64;
        remainders[i] = ((exact % u128::from(sum)) as u64, i);
        given += out[i];
    }
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders.iter().take((total - given) as usize) {
        out[*i] += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportion_keeps_the_total_and_the_mix() {
        assert_eq!(apportion(&[3, 1, 0, 0, 0, 0, 0], 2), [2, 0, 0, 0, 0, 0, 0]);
        assert_eq!(apportion(&[1, 1, 0, 0, 0, 0, 1], 2), [1, 1, 0, 0, 0, 0, 0]);
        assert_eq!(
            apportion(&[10, 0, 0, 0, 0, 0, 0], 10),
            [10, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(apportion(&[0; 7], 0), [0; 7]);
    }

    #[test]
    fn inverted_windows_are_empty_at_their_start() {
        let w = TimeWindow::new(Duration::from_secs(2), Duration::from_secs(1));
        assert!(w.is_empty());
        assert_eq!((w.start, w.len()), (Duration::from_secs(2), Duration::ZERO));
    }
}

//! A time series for plots: the run at a chosen resolution.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::error::MeasureError;
use super::latency::LatencyOf;
use super::store::MeasurementStore;
use super::units;
use super::window::TimeWindow;

/// One point of the series, covering `[start, start + resolution)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesPoint {
    /// Start of the stretch.
    #[serde(rename = "startMs", serialize_with = "units::millis")]
    pub start: Duration,
    /// Attempts scheduled in it.
    pub attempts: u64,
    /// Successful ones over attempts, `None` without attempts.
    pub success_ratio: Option<f64>,
    /// Median latency of successful attempts (from the latency slice(s) of the stretch).
    #[serde(rename = "p50Ms", serialize_with = "units::opt_millis")]
    pub p50: Option<Duration>,
    /// 99th-percentile latency of successful attempts.
    #[serde(rename = "p99Ms", serialize_with = "units::opt_millis")]
    pub p99: Option<Duration>,
    /// Successful responses per backend name; backends without any are left out.
    pub backends: BTreeMap<String, u64>,
}

impl MeasurementStore {
    /// `window` cut into points of `resolution` (the last one may be shorter).
    ///
    /// Counts follow the rules of [`MeasurementStore::window`]. Latency is per latency slice
    /// (default 1 s): at a finer resolution, consecutive points share their slice's percentiles.
    ///
    /// # Errors
    /// [`MeasureError::InvalidResolution`] for a zero resolution.
    pub fn series(
        &self,
        window: TimeWindow,
        resolution: Duration,
    ) -> Result<Vec<SeriesPoint>, MeasureError> {
        let step = units::nanos(resolution);
        if step == 0 {
            return Err(MeasureError::InvalidResolution);
        }
        let (from, to) = (window.start_ns(), window.end_ns());
        let mut scratch = self.latency.empty();
        let mut points = Vec::new();
        let mut a = from;
        while a < to {
            let b = a.saturating_add(step).min(to);
            let tally = self.tally(a, b);
            let latency = self.latency.summary(
                self.latency.slices_for(a, b),
                LatencyOf::Successes,
                &mut scratch,
            );
            let backends = self
                .backend_tally(a, b)
                .into_iter()
                .enumerate()
                .filter(|(_, (ok, _))| *ok > 0)
                .map(|(i, (ok, _))| (self.backend_names[i].to_string(), ok))
                .collect();
            points.push(SeriesPoint {
                start: units::duration(a),
                attempts: tally.attempts(),
                success_ratio: tally.ratio(),
                p50: latency.as_ref().map(|l| l.p50),
                p99: latency.as_ref().map(|l| l.p99),
                backends,
            });
            a = b;
        }
        Ok(points)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::sample::{FailureKind, Outcome};
    use super::super::testing::{Stream, ms, store};
    use super::*;

    #[test]
    fn points_show_the_outage_and_the_backends() {
        let samples = Stream::new(200.0).run_full(ms(10_000), |k, at| {
            let outcome = if at >= ms(4_000) && at < ms(6_000) {
                Outcome::Failure(FailureKind::Connect)
            } else {
                Outcome::Success
            };
            let backend: Arc<str> = Arc::from(if k % 2 == 0 { "a" } else { "b" });
            (outcome, ms(3), Some(backend))
        });
        let s = store(&samples);
        let points = s.series(s.covered(), ms(1_000)).unwrap();
        assert_eq!(points.len(), 10);
        for (i, p) in points.iter().enumerate() {
            assert_eq!(p.attempts, 200);
            let down = (4..6).contains(&i);
            assert_eq!(p.success_ratio, Some(if down { 0.0 } else { 1.0 }));
            assert_eq!(p.p50.is_none(), down);
            if !down {
                assert_eq!(p.backends.get("a"), Some(&100));
                let p50 = p.p50.unwrap();
                assert!(p50 >= ms(3) && p50 <= ms(3) + Duration::from_micros(10));
            }
        }
        let fine = s
            .series(TimeWindow::new(ms(0), ms(1_050)), ms(100))
            .unwrap();
        assert_eq!(fine.len(), 11);
        assert_eq!(fine[10].attempts, 10);
        assert!(s.series(s.covered(), Duration::ZERO).is_err());
    }
}

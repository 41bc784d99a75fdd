//! The open-model schedule: attempt *i* is due at `origin + i / rate`, whether or not earlier
//! attempts have answered.
//!
//! Closed-loop probes (send, wait, send again) slow down exactly when the service does and so
//! under-count an outage — coordinated omission. Here a dedicated pacer thread releases each
//! start at its due instant; the async side only dispatches. The thread exists because the tokio
//! timer rounds every deadline up to the next millisecond, which alone would put the scheduling
//! lag near 1–2 ms; a plain thread sleep on Linux wakes within tens of microseconds.

use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// How long the pacer sleeps at most before it looks at the cancellation token again, so a slow
/// schedule (one probe every 10 s) still stops promptly.
const PACER_POLL: Duration = Duration::from_millis(20);

/// Starts released ahead of the dispatcher before the pacer waits for it.
const TICK_BUFFER: usize = 1024;

/// A constant arrival rate, fixed to a run's origin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    interval_nanos: f64,
}

impl Schedule {
    /// A schedule of `rate_per_second` starts per second; `None` unless the rate is finite and
    /// positive.
    pub fn new(rate_per_second: f64) -> Option<Self> {
        (rate_per_second.is_finite() && rate_per_second > 0.0).then(|| Schedule {
            interval_nanos: 1e9 / rate_per_second,
        })
    }

    /// The time between two starts.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval_nanos.round() as u64)
    }

    /// The offset from the origin at which attempt `index` is due. Computed from the index, not
    /// accumulated, so rounding never drifts the schedule.
    pub fn offset(&self, index: u64) -> Duration {
        Duration::from_nanos((index as f64 * self.interval_nanos).round() as u64)
    }

    /// The first attempt due at or after `elapsed` since the origin.
    pub fn first_index_at_or_after(&self, elapsed: Duration) -> u64 {
        let index = (elapsed.as_nanos() as f64 / self.interval_nanos).ceil() as u64;
        // Float rounding may land one slot early; never schedule in the past.
        if self.offset(index) < elapsed {
            index + 1
        } else {
            index
        }
    }
}

/// One start released by the pacer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tick {
    /// The attempt's due instant.
    pub intended: Instant,
    /// The same, as an offset from the run's origin.
    pub offset: Duration,
}

/// The running pacer thread; stops when cancelled, past its end, or when its receiver is gone.
pub(crate) struct Pacer {
    thread: Option<thread::JoinHandle<()>>,
    done: oneshot::Receiver<()>,
}

impl Pacer {
    /// Starts releasing ticks from the first slot at or after now, until `end` (exclusive).
    pub(crate) fn start(
        schedule: Schedule,
        origin: Instant,
        end: Option<Instant>,
        cancel: CancellationToken,
    ) -> std::io::Result<(Pacer, mpsc::Receiver<Tick>)> {
        let (ticks, receiver) = mpsc::channel(TICK_BUFFER);
        let (done_tx, done) = oneshot::channel();
        let first =
            schedule.first_index_at_or_after(Instant::now().saturating_duration_since(origin));
        let thread = thread::Builder::new()
            .name("probe-pacer".into())
            .spawn(move || {
                pace(schedule, origin, first, end, &cancel, &ticks);
                drop(done_tx);
            })?;
        Ok((
            Pacer {
                thread: Some(thread),
                done,
            },
            receiver,
        ))
    }

    /// Waits (bounded) for the thread to finish; call after dropping the receiver or cancelling.
    pub(crate) async fn stop(mut self) {
        // The thread notices a dropped receiver or a cancellation within one PACER_POLL.
        let _ = tokio::time::timeout(PACER_POLL * 10, &mut self.done).await;
        if let Some(thread) = self.thread.take()
            && thread.is_finished()
            && let Err(panic) = thread.join()
        {
            std::panic::resume_unwind(panic);
        }
    }
}

fn pace(
    schedule: Schedule,
    origin: Instant,
    first: u64,
    end: Option<Instant>,
    cancel: &CancellationToken,
    ticks: &mpsc::Sender<Tick>,
) {
    for index in first.. {
        let offset = schedule.offset(index);
        let intended = origin + offset;
        if end.is_some_and(|end| intended >= end) {
            return;
        }
        loop {
            if cancel.is_cancelled() || ticks.is_closed() {
                return;
            }
            let now = Instant::now();
            if now >= intended {
                break;
            }
            thread::sleep((intended - now).min(PACER_POLL));
        }
        let tick = Tick { intended, offset };
        match ticks.try_send(tick) {
            Ok(()) => {}
            // The dispatcher is behind; wait for it rather than lose a start. Its latency still
            // counts from `intended`, so the delay shows in the measurement.
            Err(mpsc::error::TrySendError::Full(tick)) => {
                if ticks.blocking_send(tick).is_err() {
                    return;
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_the_rate_without_drift() {
        let schedule = Schedule::new(3.0).unwrap();
        assert_eq!(schedule.offset(0), Duration::ZERO);
        assert_eq!(schedule.offset(3), Duration::from_secs(1));
        assert_eq!(schedule.offset(3_000_000), Duration::from_secs(1_000_000));
    }

    #[test]
    fn first_index_is_never_in_the_past() {
        let schedule = Schedule::new(200.0).unwrap();
        assert_eq!(schedule.first_index_at_or_after(Duration::ZERO), 0);
        assert_eq!(
            schedule.first_index_at_or_after(Duration::from_millis(5)),
            1
        );
        assert_eq!(
            schedule.first_index_at_or_after(Duration::from_micros(5001)),
            2
        );
        for micros in [1, 999, 4_999, 123_456_789] {
            let elapsed = Duration::from_micros(micros);
            let index = schedule.first_index_at_or_after(elapsed);
            assert!(schedule.offset(index) >= elapsed);
            assert!(index == 0 || schedule.offset(index - 1) < elapsed);
        }
    }

    #[test]
    fn rejects_rates_that_cannot_schedule() {
        assert!(Schedule::new(0.0).is_none());
        assert!(Schedule::new(-1.0).is_none());
        assert!(Schedule::new(f64::NAN).is_none());
        assert!(Schedule::new(f64::INFINITY).is_none());
    }

    #[tokio::test]
    async fn pacer_releases_each_start_on_time_and_stops_at_the_end() {
        let schedule = Schedule::new(100.0).unwrap();
        // An origin in the future makes slot 0 the first one.
        let origin = Instant::now() + Duration::from_millis(50);
        let end = origin + Duration::from_millis(200);
        let (pacer, mut ticks) =
            Pacer::start(schedule, origin, Some(end), CancellationToken::new()).unwrap();
        let mut seen = Vec::new();
        while let Ok(Some(tick)) = tokio::time::timeout(Duration::from_secs(5), ticks.recv()).await
        {
            assert!(
                Instant::now() >= tick.intended,
                "released before it was due"
            );
            seen.push(tick.offset);
        }
        pacer.stop().await;
        assert_eq!(seen.len(), 20);
        assert_eq!(seen[0], Duration::ZERO);
        assert_eq!(seen[1], Duration::from_millis(10));
    }

    #[tokio::test]
    async fn pacer_stops_when_cancelled() {
        let schedule = Schedule::new(0.1).unwrap();
        let cancel = CancellationToken::new();
        let origin = Instant::now() + Duration::from_millis(10);
        let (pacer, mut ticks) = Pacer::start(schedule, origin, None, cancel.clone()).unwrap();
        // Slot 0 is due almost at once, slot 1 only after ten seconds.
        assert!(ticks.recv().await.is_some());
        cancel.cancel();
        let next = tokio::time::timeout(Duration::from_secs(2), ticks.recv()).await;
        assert!(matches!(next, Ok(None)), "pacer kept running after cancel");
        pacer.stop().await;
    }
}

//! What the scheduler has done, as Prometheus text: the signal a platform team alerts on
//! ("no run finished in a week", "runs keep missing targets", "fires are being skipped").

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};

/// How a run ended, as a metric label.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RunResultLabel {
    /// `success`, `targets_missed`, `invalid`, `aborted`, `rollback_incomplete`, `killed` or
    /// `failed_to_start`.
    pub result: &'static str,
    /// The process exit code, or empty when there is none (killed, failed to start).
    pub exit_code: String,
}

#[derive(Debug, Default)]
struct Counters {
    started: BTreeMap<String, u64>,
    finished: BTreeMap<(String, RunResultLabel), u64>,
    skipped: BTreeMap<(String, &'static str), u64>,
    recoveries: BTreeMap<&'static str, u64>,
    next_fire: BTreeMap<String, i64>,
    running: Option<String>,
    queued: usize,
}

/// The scheduler's counters, shared between the firing loop and the HTTP server.
#[derive(Debug, Clone, Default)]
pub struct ScheduleMetrics {
    inner: Arc<Mutex<Counters>>,
}

impl ScheduleMetrics {
    fn with<T>(&self, f: impl FnOnce(&mut Counters) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A run of `experiment` started.
    pub fn run_started(&self, experiment: &str) {
        self.with(|c| {
            *c.started.entry(experiment.to_owned()).or_default() += 1;
            c.running = Some(experiment.to_owned());
        });
    }

    /// The run of `experiment` ended as `label` says.
    pub fn run_finished(&self, experiment: &str, label: RunResultLabel) {
        self.with(|c| {
            *c.finished
                .entry((experiment.to_owned(), label))
                .or_default() += 1;
            c.running = None;
        });
    }

    /// A fire of `experiment` was dropped; `reason` is `overlap` or `queue_full`.
    pub fn fire_skipped(&self, experiment: &str, reason: &'static str) {
        self.with(|c| {
            *c.skipped
                .entry((experiment.to_owned(), reason))
                .or_default() += 1
        });
    }

    /// A `steadfast rollback` after a bad run ended with `outcome` (`complete`, `incomplete`).
    pub fn recovery(&self, outcome: &'static str) {
        self.with(|c| *c.recoveries.entry(outcome).or_default() += 1);
    }

    /// When `experiment` fires next (`None`: never again).
    pub fn set_next_fire(&self, experiment: &str, at: Option<DateTime<Utc>>) {
        self.with(|c| match at {
            Some(at) => {
                c.next_fire.insert(experiment.to_owned(), at.timestamp());
            }
            None => {
                c.next_fire.remove(experiment);
            }
        });
    }

    /// Fires waiting for the running experiment to finish.
    pub fn set_queued(&self, queued: usize) {
        self.with(|c| c.queued = queued);
    }

    /// Runs started so far, all experiments together.
    pub fn started_total(&self) -> u64 {
        self.with(|c| c.started.values().sum())
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.with(|c| {
            let mut out = String::new();
            header(
                &mut out,
                "steadfast_schedule_runs_started_total",
                "counter",
                "Runs started, per experiment.",
            );
            for (experiment, n) in &c.started {
                let _ = writeln!(
                    out,
                    "steadfast_schedule_runs_started_total{{experiment=\"{}\"}} {n}",
                    escape(experiment)
                );
            }
            header(
                &mut out,
                "steadfast_schedule_runs_finished_total",
                "counter",
                "Runs finished, per experiment, result and exit code.",
            );
            for ((experiment, label), n) in &c.finished {
                let _ = writeln!(
                    out,
                    "steadfast_schedule_runs_finished_total{{experiment=\"{}\",result=\"{}\",exit_code=\"{}\"}} {n}",
                    escape(experiment),
                    label.result,
                    label.exit_code
                );
            }
            header(
                &mut out,
                "steadfast_schedule_fires_skipped_total",
                "counter",
                "Fires dropped because a run was in progress (overlap) or the queue was full.",
            );
            for ((experiment, reason), n) in &c.skipped {
                let _ = writeln!(
                    out,
                    "steadfast_schedule_fires_skipped_total{{experiment=\"{}\",reason=\"{reason}\"}} {n}",
                    escape(experiment)
                );
            }
            header(
                &mut out,
                "steadfast_schedule_recoveries_total",
                "counter",
                "`steadfast rollback` runs after a run that did not roll back, by outcome.",
            );
            for (outcome, n) in &c.recoveries {
                let _ = writeln!(
                    out,
                    "steadfast_schedule_recoveries_total{{outcome=\"{outcome}\"}} {n}"
                );
            }
            header(
                &mut out,
                "steadfast_schedule_next_fire_timestamp_seconds",
                "gauge",
                "Unix time of each experiment's next fire, jitter included.",
            );
            for (experiment, at) in &c.next_fire {
                let _ = writeln!(
                    out,
                    "steadfast_schedule_next_fire_timestamp_seconds{{experiment=\"{}\"}} {at}",
                    escape(experiment)
                );
            }
            header(
                &mut out,
                "steadfast_schedule_running",
                "gauge",
                "1 while an experiment runs.",
            );
            let _ = writeln!(
                out,
                "steadfast_schedule_running {}",
                u8::from(c.running.is_some())
            );
            header(
                &mut out,
                "steadfast_schedule_queued_fires",
                "gauge",
                "Fires waiting for the running experiment (--overlap queue).",
            );
            let _ = writeln!(out, "steadfast_schedule_queued_fires {}", c.queued);
            out
        })
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Label values escape backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_as_labelled_samples() {
        let metrics = ScheduleMetrics::default();
        metrics.run_started("nightly");
        assert!(metrics.render().contains("steadfast_schedule_running 1\n"));
        metrics.run_finished(
            "nightly",
            RunResultLabel {
                result: "targets_missed",
                exit_code: "1".into(),
            },
        );
        metrics.fire_skipped("nightly", "overlap");
        metrics.fire_skipped("nightly", "overlap");
        metrics.set_next_fire("nightly", DateTime::from_timestamp(1_800_000_000, 0));
        let text = metrics.render();
        for line in [
            "steadfast_schedule_runs_started_total{experiment=\"nightly\"} 1\n",
            "steadfast_schedule_runs_finished_total{experiment=\"nightly\",result=\"targets_missed\",exit_code=\"1\"} 1\n",
            "steadfast_schedule_fires_skipped_total{experiment=\"nightly\",reason=\"overlap\"} 2\n",
            "steadfast_schedule_next_fire_timestamp_seconds{experiment=\"nightly\"} 1800000000\n",
            "steadfast_schedule_running 0\n",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}

//! A run's outcome as Prometheus text exposition, for a Pushgateway or node_exporter's textfile
//! collector: the signals a platform team alerts and graphs on across runs (did the last run
//! pass, how available was the service under faults, how long did it take to recover, and when
//! did this experiment last run at all).

use std::fmt::Write as _;

use super::model::{OrOther, Outcome, Report};
use crate::spec::Measure;

/// Every metric name starts with this.
pub const PREFIX: &str = "steadfast_experiment_";

/// Label values escape backslash, double quote and newline, as the text format requires.
pub fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The report-store family: objects of the run's report that could not be uploaded after
/// retries (0 when all landed), so a bucket that stopped accepting reports alerts before
/// someone needs one.
pub fn upload_failures(report: &Report, count: u64) -> String {
    format!(
        "# HELP steadfast_report_upload_failures Report objects of the last run that could not be uploaded.\n\
         # TYPE steadfast_report_upload_failures gauge\n\
         steadfast_report_upload_failures{{experiment=\"{}\"}} {count}\n",
        label_value(&report.experiment.name)
    )
}

/// Renders the report's metrics, each labelled with the experiment (and probe, window, target
/// or fault where that is what it measures).
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let experiment = label_value(&report.experiment.name);
    let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {PREFIX}{name} {help}");
        let _ = writeln!(out, "# TYPE {PREFIX}{name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(
                out,
                "{PREFIX}{name}{{experiment=\"{experiment}\"{labels}}} {}",
                number(value)
            );
        }
    };

    family(
        "passed",
        "gauge",
        "1 when the last run met every target and rolled back, else 0.",
        vec![(
            String::new(),
            f64::from(u8::from(report.verdict.outcome == Outcome::Passed)),
        )],
    );
    family(
        "verdict",
        "gauge",
        "The last run's verdict: 1 for the verdict it had, 0 for the others.",
        // Every verdict a run can end with, as a label value; the one that happened is 1.
        Outcome::ALL
            .iter()
            .map(|v| {
                (
                    format!(",verdict=\"{v}\""),
                    f64::from(u8::from(report.verdict.outcome == *v)),
                )
            })
            .collect(),
    );
    family(
        "resilience_score",
        "gauge",
        "The last run's resilience score, 0-100: targets weighted, partial credit by margin.",
        vec![(String::new(), super::score::of(report))],
    );
    family(
        "exit_code",
        "gauge",
        "The last run's process exit code (0 passed, 1 targets missed, 3 aborted, 4 rollback incomplete).",
        vec![(String::new(), f64::from(report.exit_code))],
    );
    let mut availability = Vec::new();
    let mut outage = Vec::new();
    for probe in &report.probes {
        for (window, stats) in &probe.windows {
            let labels = format!(
                ",probe=\"{}\",window=\"{}\"",
                label_value(&probe.name),
                label_value(window.as_str())
            );
            if let Some(ratio) = stats.availability.or(stats.satisfied) {
                availability.push((labels.clone(), ratio));
            }
            if let Some(seconds) = stats.longest_outage_seconds {
                outage.push((labels, seconds));
            }
        }
    }
    family(
        "availability_ratio",
        "gauge",
        "Successful attempts / attempts per probe and window (condition probes: share of evaluations that held).",
        availability,
    );
    family(
        "longest_outage_seconds",
        "gauge",
        "Longest run of consecutive failed attempts per probe and window.",
        outage,
    );
    family(
        "recovery_seconds",
        "gauge",
        "Time from the end of the faults until the probe was healthy again (recovery targets).",
        report
            .targets
            .iter()
            .filter(|t| t.measure == OrOther::Known(Measure::Recovery))
            .filter_map(|t| {
                t.value.map(|v| {
                    (
                        format!(
                            ",probe=\"{}\",target=\"{}\"",
                            label_value(&t.probe),
                            label_value(&t.name)
                        ),
                        v,
                    )
                })
            })
            .collect(),
    );
    family(
        "self_healing_seconds",
        "gauge",
        "Time until every object a fault disrupted was replaced and Ready.",
        report
            .faults
            .iter()
            .filter_map(|f| {
                f.healed_after_seconds
                    .map(|s| (format!(",fault=\"{}\"", label_value(&f.name)), s))
            })
            .collect(),
    );
    family(
        "target_passed",
        "gauge",
        "1 when the target was met in the last run, else 0.",
        report
            .targets
            .iter()
            .map(|t| {
                (
                    format!(
                        ",probe=\"{}\",target=\"{}\",measure=\"{}\"",
                        label_value(&t.probe),
                        label_value(&t.name),
                        label_value(t.measure.as_str())
                    ),
                    f64::from(u8::from(t.passed)),
                )
            })
            .collect(),
    );
    family(
        "pending_undo_records",
        "gauge",
        "Undo records the last run left pending; above 0, something it changed is not restored (run `steadfast rollback`).",
        vec![(String::new(), report.rollback.pending.len() as f64)],
    );
    family(
        "duration_seconds",
        "gauge",
        "Length of the last run.",
        vec![(String::new(), report.run.duration_seconds)],
    );
    family(
        "last_run_timestamp_seconds",
        "gauge",
        "Unix time the last run finished.",
        vec![(
            String::new(),
            report.run.finished_at.timestamp_millis() as f64 / 1000.0,
        )],
    );
    out
}

/// Integers without a fraction, other values as Rust prints them (which the format accepts).
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn numbers_use_the_text_format() {
        assert_eq!(number(1.0), "1");
        assert_eq!(number(0.995), "0.995");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::INFINITY), "+Inf");
    }
}

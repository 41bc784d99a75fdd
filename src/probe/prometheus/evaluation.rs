//! The result of evaluating a Prometheus probe: every series, every point, and whether each
//! met the comparison. Serialised as is into the report.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The operator of a comparison: the experiment file's own, so both read and print alike.
pub use crate::spec::quantity::Op as CompareOp;

/// The condition every point of every series must meet.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    /// The operator.
    pub op: CompareOp,
    /// The number compared against.
    pub threshold: f64,
}

impl Comparison {
    /// True when `value` meets the comparison. NaN meets only `!=`, as in IEEE arithmetic: a
    /// series that divided by zero has not shown it is healthy.
    pub fn holds(&self, value: f64) -> bool {
        self.op.holds(value, self.threshold)
    }
}

/// What to conclude from a query that returned no series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EmptyResult {
    /// No data is a failure: the metric vanished, or the query is wrong.
    #[default]
    Fail,
    /// No data passes, e.g. `rate(errors_total[1m]) > 0` returns nothing when all is well.
    Ignore,
}

/// Whether the evaluation was an instant or a range query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum QueryKind {
    /// One value per series at one time.
    Instant,
    /// Values per series over a window, one per step.
    Range,
}

/// One evaluation of a Prometheus probe.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    /// Instant or range.
    pub kind: QueryKind,
    /// The query as sent, templates filled in.
    pub query: String,
    /// Start of the covered span (`$start`).
    pub start: DateTime<Utc>,
    /// Evaluation time of an instant query; end of a range query (`$end`).
    pub time: DateTime<Utc>,
    /// The condition applied.
    pub comparison: Comparison,
    /// True when every point of every series met the comparison, and the empty-result policy
    /// allowed what came back.
    pub passed: bool,
    /// True when the query returned no series.
    pub empty: bool,
    /// Every series returned.
    pub series: Vec<SeriesEvaluation>,
    /// Why the query itself failed (unreachable, bad PromQL, timeout); `passed` is then false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One series of a result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesEvaluation {
    /// The series' labels, `__name__` included when Prometheus kept it.
    pub labels: BTreeMap<String, String>,
    /// True when every point met the comparison.
    pub passed: bool,
    /// The values, in time order.
    pub points: Vec<Point>,
}

/// One value of a series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// When Prometheus evaluated it.
    pub time: DateTime<Utc>,
    /// The value; NaN and infinities serialise as `null`.
    pub value: f64,
    /// Whether it met the comparison.
    pub passed: bool,
}

impl SeriesEvaluation {
    /// Judges `points` (time in Unix seconds, value) against `comparison`.
    pub fn judge(
        labels: BTreeMap<String, String>,
        points: impl IntoIterator<Item = (f64, f64)>,
        comparison: Comparison,
    ) -> Self {
        let points: Vec<Point> = points
            .into_iter()
            .map(|(seconds, value)| Point {
                time: time_of(seconds),
                value,
                passed: comparison.holds(value),
            })
            .collect();
        SeriesEvaluation {
            labels,
            passed: points.iter().all(|point| point.passed),
            points,
        }
    }
}

/// A Prometheus timestamp (fractional Unix seconds) as a UTC time, clamped to the epoch when it
/// is out of range.
fn time_of(seconds: f64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis((seconds * 1000.0).round() as i64).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(op: CompareOp, threshold: f64) -> Comparison {
        Comparison { op, threshold }
    }

    #[test]
    fn every_operator_compares_as_written() {
        assert!(cmp(CompareOp::Lt, 1.0).holds(0.5) && !cmp(CompareOp::Lt, 1.0).holds(1.0));
        assert!(cmp(CompareOp::Le, 1.0).holds(1.0) && !cmp(CompareOp::Le, 1.0).holds(1.5));
        assert!(cmp(CompareOp::Gt, 1.0).holds(1.5) && !cmp(CompareOp::Gt, 1.0).holds(1.0));
        assert!(cmp(CompareOp::Ge, 1.0).holds(1.0) && !cmp(CompareOp::Ge, 1.0).holds(0.5));
        assert!(cmp(CompareOp::Eq, 1.0).holds(1.0) && !cmp(CompareOp::Eq, 1.0).holds(0.5));
        assert!(cmp(CompareOp::Ne, 1.0).holds(0.5) && !cmp(CompareOp::Ne, 1.0).holds(1.0));
    }

    #[test]
    fn nan_fails_all_but_not_equal() {
        for op in [
            CompareOp::Lt,
            CompareOp::Le,
            CompareOp::Gt,
            CompareOp::Ge,
            CompareOp::Eq,
        ] {
            assert!(!cmp(op, 0.0).holds(f64::NAN), "{op:?}");
        }
        assert!(cmp(CompareOp::Ne, 0.0).holds(f64::NAN));
    }

    #[test]
    fn one_failing_point_fails_the_series() {
        let series = SeriesEvaluation::judge(
            BTreeMap::new(),
            [(1.0, 0.1), (2.0, 0.9), (3.0, 0.2)],
            cmp(CompareOp::Lt, 0.5),
        );
        assert!(!series.passed);
        assert_eq!(
            series.points.iter().map(|p| p.passed).collect::<Vec<_>>(),
            [true, false, true]
        );
        assert_eq!(series.points[1].time.timestamp(), 2);
    }

    #[test]
    fn serialises_in_camel_case_with_symbolic_operators() {
        let evaluation = Evaluation {
            kind: QueryKind::Range,
            query: "up".into(),
            start: DateTime::from_timestamp(0, 0).unwrap(),
            time: DateTime::from_timestamp(60, 0).unwrap(),
            comparison: cmp(CompareOp::Ge, 1.0),
            passed: true,
            empty: false,
            series: vec![SeriesEvaluation::judge(
                BTreeMap::from([("job".into(), "api".into())]),
                [(60.0, 1.0)],
                cmp(CompareOp::Ge, 1.0),
            )],
            error: None,
        };
        let json = serde_json::to_value(&evaluation).unwrap();
        assert_eq!(json["kind"], "range");
        assert_eq!(json["comparison"]["op"], ">=");
        assert_eq!(json["series"][0]["labels"]["job"], "api");
        assert_eq!(json["series"][0]["points"][0]["value"], 1.0);
        assert!(json.get("error").is_none());
    }
}

//! `$window`, `$start` and `$end` in a query, filled in for each evaluation.
//!
//! Queries like `increase(errors_total[$window]) / increase(requests_total[$window])` or
//! `max_over_time(up[$window] @ $end)` then cover exactly the span being judged.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The span one evaluation covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First instant covered.
    pub start: DateTime<Utc>,
    /// Last instant covered; the evaluation time of an instant query.
    pub end: DateTime<Utc>,
}

impl Span {
    /// The span's length, zero if it is reversed.
    pub fn window(&self) -> Duration {
        (self.end - self.start).to_std().unwrap_or_default()
    }
}

/// Replaces `$window` (a PromQL duration such as `300s` or `1500ms`), `$start` and `$end`
/// (Unix seconds). A `$` followed by anything else is left alone, as is `$windows` — names
/// end at the first character that cannot continue an identifier.
pub fn render(query: &str, span: Span) -> String {
    let mut out = String::with_capacity(query.len() + 16);
    let mut rest = query;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let replacement = match &after[..name_len] {
            "window" => Some(promql_duration(span.window())),
            "start" => Some(unix_seconds(span.start)),
            "end" => Some(unix_seconds(span.end)),
            _ => None,
        };
        match replacement {
            Some(value) => {
                out.push_str(&value);
                rest = &after[name_len..];
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A duration as PromQL writes it: whole seconds when exact, else milliseconds (at least 1ms,
/// since PromQL rejects a zero range).
pub fn promql_duration(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 && duration.as_secs() > 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis().max(1))
    }
}

/// Unix seconds, with milliseconds only when there are some.
pub fn unix_seconds(time: DateTime<Utc>) -> String {
    let millis = time.timestamp_subsec_millis();
    if millis == 0 {
        time.timestamp().to_string()
    } else {
        format!("{}.{millis:03}", time.timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: i64, end_millis: i64) -> Span {
        Span {
            start: DateTime::from_timestamp(start, 0).unwrap(),
            end: DateTime::from_timestamp_millis(end_millis).unwrap(),
        }
    }

    #[test]
    fn fills_window_start_and_end() {
        let rendered = render(
            "sum(increase(errors_total[$window] @ $end)) > 0 and $start",
            span(1_700_000_000, 1_700_000_300_000),
        );
        assert_eq!(
            rendered,
            "sum(increase(errors_total[300s] @ 1700000300)) > 0 and 1700000000"
        );
    }

    #[test]
    fn sub_second_values_keep_milliseconds() {
        let rendered = render("x[$window] @ $end", span(1_700_000_000, 1_700_000_001_500));
        assert_eq!(rendered, "x[1500ms] @ 1700000001.500");
    }

    #[test]
    fn leaves_other_dollars_alone() {
        let rendered = render("$windows $foo $ $", span(0, 60_000));
        assert_eq!(rendered, "$windows $foo $ $");
        assert_eq!(render("cost$", span(0, 0)), "cost$");
    }
}

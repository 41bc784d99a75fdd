//! Five-field cron expressions, read the way Kubernetes reads them.
//!
//! The `cron` crate takes a seconds field first and numbers weekdays from 1 = Sunday, while
//! CronJobs (and every crontab) use five fields with 0 (or 7) = Sunday. Translating here keeps
//! `1-5` meaning Monday to Friday in both the chart and the scheduler.
//!
//! Daylight-saving changes follow the Kubernetes CronJob controller (robfig/cron), so the
//! scheduler and the chart's CronJobs fire at the same instants:
//! - a wall-clock time the spring-forward change skips does not fire that day (`30 2 * * *` in
//!   `Europe/Berlin` skips 29 March 2026 and fires next on the 30th);
//! - a wall-clock time the fall-back change repeats fires at both instants (`30 2 * * *` fires at
//!   02:30 CEST and again at 02:30 CET on 25 October 2026).

use std::str::FromStr;

use chrono::{DateTime, TimeZone};

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    inner: ::cron::Schedule,
    source: String,
}

/// Why an expression is not a valid schedule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CronError(String);

/// Candidates examined in the three hours before `after`: an every-minute schedule has 180.
const SEARCH_LIMIT: usize = 512;

const DAY_NAMES: [&str; 8] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];

/// Parses a five-field expression (or a macro such as `@daily`).
///
/// # Errors
/// When the expression does not have five fields or a field is invalid.
pub fn parse_cron(expression: &str) -> Result<CronSchedule, CronError> {
    let trimmed = expression.trim();
    let translated = if trimmed.starts_with('@') {
        trimmed.to_owned()
    } else {
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(CronError(format!(
                "expected 5 fields, found {}",
                fields.len()
            )));
        }
        let weekday = translate_weekdays(fields[4])?;
        format!(
            "0 {} {} {} {} {weekday}",
            fields[0], fields[1], fields[2], fields[3]
        )
    };
    let inner =
        ::cron::Schedule::from_str(&translated).map_err(|err| CronError(err.to_string()))?;
    Ok(CronSchedule {
        inner,
        source: trimmed.to_owned(),
    })
}

/// Rewrites numeric weekdays (0–7, 0 and 7 = Sunday) as names, which both dialects read alike.
fn translate_weekdays(field: &str) -> Result<String, CronError> {
    let name = |text: &str| -> Result<String, CronError> {
        match text.parse::<usize>() {
            Ok(n) if n < DAY_NAMES.len() => Ok(DAY_NAMES[n].to_owned()),
            Ok(n) => Err(CronError(format!("day of week {n} is outside 0-7"))),
            Err(_) => Ok(text.to_owned()),
        }
    };
    let mut items = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        let translated = match range.split_once('-') {
            Some((from, "7")) if step.is_none() && from != "0" => {
                // A range ending on Sunday-as-7 wraps in the other dialect: split it.
                items.push("SUN".to_owned());
                format!("{}-SAT", name(from)?)
            }
            Some((from, to)) => format!("{}-{}", name(from)?, name(to)?),
            None => name(range)?,
        };
        items.push(match step {
            Some(step) => format!("{translated}/{step}"),
            None => translated,
        });
    }
    Ok(items.join(","))
}

impl CronSchedule {
    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The first firing strictly after the instant `after`, in `after`'s time zone.
    ///
    /// The `cron` crate searches in wall-clock time, so a search starting inside a repeated hour
    /// would miss its second pass. Searching from three hours earlier (longer than any
    /// daylight-saving shift, as Vixie cron assumes) and keeping the first instant after
    /// `after` finds both passes.
    pub fn next_after<Tz: TimeZone>(&self, after: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        let from = after.clone() - chrono::TimeDelta::hours(3);
        self.inner
            .after(&from)
            .take(SEARCH_LIMIT)
            .find(|candidate| candidate > after)
            .or_else(|| self.inner.after(after).next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Timelike, Utc, Weekday};

    #[test]
    fn weekdays_count_from_sunday_zero_as_in_crontab() {
        let schedule = parse_cron("30 3 * * 1-5").unwrap();
        // 2026-11-21 is a Saturday; the next weekday run is Monday the 23rd.
        let saturday = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
        let next = schedule.next_after(&saturday).unwrap();
        assert_eq!(next.weekday(), Weekday::Mon);
        assert_eq!((next.hour(), next.minute()), (3, 30));
    }

    #[test]
    fn sunday_is_both_zero_and_seven() {
        let saturday = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
        for expression in ["0 0 * * 0", "0 0 * * 7", "0 0 * * 5-7"] {
            let next = parse_cron(expression)
                .unwrap()
                .next_after(&saturday)
                .unwrap();
            assert_eq!(next.weekday(), Weekday::Sun, "{expression}");
        }
    }

    fn berlin(text: &str) -> DateTime<chrono_tz::Tz> {
        let utc: DateTime<Utc> = text.parse().unwrap();
        utc.with_timezone(&chrono_tz::Europe::Berlin)
    }

    fn fires(expression: &str, from: &str, count: usize) -> Vec<String> {
        let schedule = parse_cron(expression).unwrap();
        let mut at = berlin(from);
        let mut out = Vec::new();
        for _ in 0..count {
            at = schedule.next_after(&at).unwrap();
            out.push(at.with_timezone(&Utc).to_rfc3339());
        }
        out
    }

    #[test]
    fn a_time_skipped_by_spring_forward_does_not_fire_that_day() {
        // 29 March 2026, Berlin: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
        assert_eq!(
            fires("30 2 * * *", "2026-03-28T12:00:00Z", 2),
            ["2026-03-30T00:30:00+00:00", "2026-03-31T00:30:00+00:00"]
        );
        // Times outside the gap keep their wall-clock hour across the change.
        assert_eq!(
            fires("30 1 * * *", "2026-03-28T12:00:00Z", 2),
            ["2026-03-29T00:30:00+00:00", "2026-03-29T23:30:00+00:00"]
        );
    }

    #[test]
    fn a_time_repeated_by_fall_back_fires_at_both_instants() {
        // 25 October 2026, Berlin: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
        assert_eq!(
            fires("30 2 * * *", "2026-10-24T12:00:00Z", 3),
            [
                "2026-10-25T00:30:00+00:00",
                "2026-10-25T01:30:00+00:00",
                "2026-10-26T01:30:00+00:00",
            ]
        );
        // Starting inside the repeated hour, after the first pass, finds the second one.
        let schedule = parse_cron("30 2 * * *").unwrap();
        let inside = berlin("2026-10-25T01:10:00Z");
        let next = schedule.next_after(&inside).unwrap();
        assert_eq!(
            next.with_timezone(&Utc).to_rfc3339(),
            "2026-10-25T01:30:00+00:00"
        );
        // An hourly schedule fires every real hour through the change, none twice.
        let hourly = fires("0 * * * *", "2026-10-24T23:30:00Z", 4);
        assert_eq!(
            hourly,
            [
                "2026-10-25T00:00:00+00:00",
                "2026-10-25T01:00:00+00:00",
                "2026-10-25T02:00:00+00:00",
                "2026-10-25T03:00:00+00:00",
            ]
        );
    }

    #[test]
    fn wrong_field_counts_and_values_are_refused() {
        assert!(parse_cron("* * * *").is_err());
        assert!(parse_cron("0 0 * * 8").is_err());
        assert!(parse_cron("61 0 * * *").is_err());
        assert!(parse_cron("@daily").is_ok());
    }
}

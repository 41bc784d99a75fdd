//! Units of the serialized results: every duration and every instant is written as fractional
//! **milliseconds** (`f64`), in fields whose names end in `Ms`; instants count from the run
//! origin. Ratios are fractions in 0..=1, deviations are percentage points (`Pp`).

use std::time::Duration;

use serde::Serializer;

/// Writes a duration as fractional milliseconds.
pub(crate) fn millis<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(value.as_secs_f64() * 1_000.0)
}

/// Writes an optional duration as fractional milliseconds or `null`.
pub(crate) fn opt_millis<S: Serializer>(
    value: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(d) => millis(d, serializer),
        None => serializer.serialize_none(),
    }
}

/// Durations as fractional seconds in JSON, which plots and people both read; used where a
/// format predates the milliseconds convention (run windows, journal and timeline offsets).
pub mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes seconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    /// Reads seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

/// Nanoseconds from the run origin, the store's internal clock.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Back from nanoseconds to a duration.
pub(crate) fn duration(ns: u64) -> Duration {
    Duration::from_nanos(ns)
}

//! The scalar forms an experiment is written in: durations (`30s`, `1h30m`), rates (`200/s`),
//! percentages (`99.5%`) and comparisons (`< 300ms`, `>= 99.9%`).
//!
//! Each type parses from a string, prints back the same form, and describes itself in the JSON
//! Schema, so an editor shows the accepted forms while typing.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Separates a parse error's message from its hint, so the hint survives serde's error type and
/// the diagnostic printer can show it on its own line.
pub(crate) const HINT_MARKER: &str = "\u{1f}hint:";

/// A parse failure with the forms that would have been accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QuantityError {
    /// What was wrong with the text.
    pub message: String,
    /// The accepted forms.
    pub hint: &'static str,
}

impl QuantityError {
    fn new(message: impl Into<String>, hint: &'static str) -> Self {
        Self {
            message: message.into(),
            hint,
        }
    }

    /// The message and hint joined for transport through `serde::de::Error::custom`.
    pub(crate) fn into_serde<E: serde::de::Error>(self) -> E {
        E::custom(format!("{}{HINT_MARKER}{}", self.message, self.hint))
    }
}

const DURATION_HINT: &str = "write a number with a unit, e.g. 500ms, 30s, 2m, 1h30m";
const RATE_HINT: &str = "write requests per unit of time, e.g. 200/s, 600/m, 10/h";
const PERCENT_HINT: &str = "write a number from 0 to 100 followed by %, e.g. 99.5%";

/// Implements serde and schema support for a type that round-trips through `FromStr`/`Display`.
macro_rules! string_quantity {
    ($ty:ty, $name:literal, $pattern:literal, $description:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = scalar_text(deserializer)?;
                text.parse::<$ty>().map_err(QuantityError::into_serde)
            }
        }

        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "pattern": $pattern,
                    "description": $description,
                })
            }
        }
    };
}

/// Reads a scalar as text, accepting YAML numbers too so `for: 30` can be told to add a unit
/// rather than rejected with a type error.
fn scalar_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Int(i64),
        Float(f64),
    }
    Ok(match Scalar::deserialize(deserializer)? {
        Scalar::Text(text) => text,
        Scalar::Int(n) => n.to_string(),
        Scalar::Float(n) => n.to_string(),
    })
}

/// A length of time such as `30s`, `2m` or `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DurationSpec(pub Duration);

impl DurationSpec {
    /// A duration of whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// The length as a standard duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl FromStr for DurationSpec {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(QuantityError::new("empty duration", DURATION_HINT));
        }
        if trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(QuantityError::new(
                format!("duration `{trimmed}` has no unit"),
                DURATION_HINT,
            ));
        }
        // humantime also reads `2 mins` or `1 fortnight`; accept only the documented units so a
        // file means the same to every reader and to the schema.
        let documented = trimmed
            .split(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace())
            .filter(|unit| !unit.is_empty())
            .all(|unit| matches!(unit, "ns" | "us" | "ms" | "s" | "m" | "h" | "d"));
        if !documented {
            return Err(QuantityError::new(
                format!("invalid duration `{trimmed}`"),
                DURATION_HINT,
            ));
        }
        humantime::parse_duration(trimmed)
            .map(DurationSpec)
            .map_err(|err| {
                QuantityError::new(
                    format!("invalid duration `{trimmed}`: {err}"),
                    DURATION_HINT,
                )
            })
    }
}

impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero() {
            return f.write_str("0s");
        }
        let text = humantime::format_duration(self.0).to_string();
        f.write_str(&text.replace(' ', ""))
    }
}

string_quantity!(
    DurationSpec,
    "Duration",
    r"^\s*([0-9]+(\.[0-9]+)?\s*(ns|us|ms|s|m|h|d)\s*)+$",
    "A length of time: a number with a unit (ms, s, m, h, d), parts may be chained: `500ms`, `30s`, `1h30m`."
);

/// A constant request rate such as `200/s`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Rate {
    per_second: f64,
    text_unit: RateUnit,
    count: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
enum RateUnit {
    Second,
    Minute,
    Hour,
}

impl Rate {
    /// A rate of `n` per second.
    pub fn per_second(n: f64) -> Self {
        Self {
            per_second: n,
            text_unit: RateUnit::Second,
            count: n,
        }
    }

    /// Events per second.
    pub fn as_per_second(self) -> f64 {
        self.per_second
    }

    /// The gap between two scheduled events.
    pub fn interval(self) -> Duration {
        Duration::from_secs_f64(1.0 / self.per_second)
    }
}

impl FromStr for Rate {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let Some((count, unit)) = trimmed.split_once('/') else {
            return Err(QuantityError::new(
                format!("rate `{trimmed}` has no `/unit`"),
                RATE_HINT,
            ));
        };
        let count: f64 = count
            .trim()
            .parse()
            .map_err(|_| QuantityError::new(format!("invalid rate `{trimmed}`"), RATE_HINT))?;
        let (text_unit, seconds) = match unit.trim() {
            "s" | "sec" | "second" => (RateUnit::Second, 1.0),
            "m" | "min" | "minute" => (RateUnit::Minute, 60.0),
            "h" | "hour" => (RateUnit::Hour, 3600.0),
            other => {
                return Err(QuantityError::new(
                    format!("unknown rate unit `{other}` in `{trimmed}`"),
                    RATE_HINT,
                ));
            }
        };
        if !count.is_finite() || count <= 0.0 {
            return Err(QuantityError::new(
                format!("rate `{trimmed}` must be above zero"),
                RATE_HINT,
            ));
        }
        Ok(Self {
            per_second: count / seconds,
            text_unit,
            count,
        })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.text_unit {
            RateUnit::Second => "s",
            RateUnit::Minute => "m",
            RateUnit::Hour => "h",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

string_quantity!(
    Rate,
    "Rate",
    r"^\s*[0-9]+(\.[0-9]+)?\s*/\s*(s|m|h)\s*$",
    "A constant rate: a count per second, minute or hour, e.g. `200/s`."
);

/// A percentage from 0 to 100, written `99.5%`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Percent(f64);

impl Percent {
    /// [`Percent::micros`] of 100%: the whole, in millionths of a percent.
    pub const MICROS_WHOLE: u64 = 100_000_000;

    /// A percentage; callers check the range through `FromStr` or validation.
    pub const fn new(value: f64) -> Self {
        Self(value)
    }

    /// The value in percent (0–100).
    pub fn value(self) -> f64 {
        self.0
    }

    /// The value as a ratio (0–1).
    pub fn ratio(self) -> f64 {
        self.0 / 100.0
    }

    /// The value in millionths of a percent, clamped to 0–100%: exact for any percentage
    /// written with up to six decimals, so counts derived from it (blast radius, caps) can be
    /// computed in integers rather than in floating point, where `7%` of 100 rounds up to 8.
    pub fn micros(self) -> u64 {
        if self.0.is_nan() {
            return 0;
        }
        // In range, the product is below 2^27, far inside f64's exact integers.
        (self.0.clamp(0.0, 100.0) * 1e6).round() as u64
    }
}

impl FromStr for Percent {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let Some(number) = trimmed.strip_suffix('%') else {
            return Err(QuantityError::new(
                format!("`{trimmed}` has no `%`"),
                PERCENT_HINT,
            ));
        };
        let value: f64 = number.trim().parse().map_err(|_| {
            QuantityError::new(format!("invalid percentage `{trimmed}`"), PERCENT_HINT)
        })?;
        if !(0.0..=100.0).contains(&value) {
            return Err(QuantityError::new(
                format!("percentage `{trimmed}` is outside 0%..100%"),
                PERCENT_HINT,
            ));
        }
        Ok(Self(value))
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

string_quantity!(
    Percent,
    "Percent",
    r"^\s*[0-9]+(\.[0-9]+)?\s*%\s*$",
    "A percentage from 0 to 100, e.g. `99.5%`."
);

/// How a measured value is compared with a bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Op {
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `==`
    #[serde(rename = "==")]
    Eq,
    /// `!=`
    #[serde(rename = "!=")]
    Ne,
}

impl Op {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    /// Whether `measured op bound` holds.
    pub fn holds<T: PartialOrd>(self, measured: T, bound: T) -> bool {
        match self {
            Op::Lt => measured < bound,
            Op::Le => measured <= bound,
            Op::Gt => measured > bound,
            Op::Ge => measured >= bound,
            Op::Eq => measured == bound,
            Op::Ne => measured != bound,
        }
    }

    /// Splits a leading operator off `text`.
    fn split(text: &str) -> Option<(Op, &str)> {
        let text = text.trim_start();
        // Two-character operators first so `<=` is not read as `<` followed by `=`.
        for (symbol, op) in [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
            ("=", Op::Eq),
        ] {
            if let Some(rest) = text.strip_prefix(symbol) {
                return Some((op, rest));
            }
        }
        None
    }
}

/// A bound such as `< 300ms` or `>= 99.5%`: an operator and a value of `T`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison<T> {
    /// The operator.
    pub op: Op,
    /// The bound.
    pub value: T,
}

impl<T> Comparison<T> {
    /// Whether `measured` satisfies this comparison.
    pub fn holds(&self, measured: T) -> bool
    where
        T: PartialOrd + Copy,
    {
        self.op.holds(measured, self.value)
    }
}

const COMPARISON_HINT: &str =
    "write an operator (<, <=, >, >=, ==, !=) and a value, e.g. `< 300ms`, `>= 99.5%`, `< 0.01`";

impl<T: FromStr<Err = QuantityError>> FromStr for Comparison<T> {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((op, rest)) = Op::split(text) else {
            return Err(QuantityError::new(
                format!("comparison `{}` has no operator", text.trim()),
                COMPARISON_HINT,
            ));
        };
        let value = rest.parse::<T>()?;
        Ok(Self { op, value })
    }
}

impl<T: fmt::Display> fmt::Display for Comparison<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op.symbol(), self.value)
    }
}

impl<T: fmt::Display> Serialize for Comparison<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de, T: FromStr<Err = QuantityError>> Deserialize<'de> for Comparison<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = scalar_text(deserializer)?;
        text.parse().map_err(QuantityError::into_serde)
    }
}

impl<T: JsonSchema> JsonSchema for Comparison<T> {
    fn schema_name() -> Cow<'static, str> {
        Cow::Owned(format!("Comparison_of_{}", T::schema_name()))
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": r"^\s*(<=|>=|==|!=|<|>|=)\s*\S.*$",
            "description": format!("An operator (<, <=, >, >=, ==, !=) and a {} bound.", T::schema_name()),
        })
    }
}

/// A plain number, for comparisons against PromQL results.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Number(pub f64);

impl FromStr for Number {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.trim().parse().map(Number).map_err(|_| {
            QuantityError::new(
                format!("`{}` is not a number", text.trim()),
                COMPARISON_HINT,
            )
        })
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl JsonSchema for Number {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("number")
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "number" })
    }
}

/// A whole count, for comparisons such as `>= 5` ready replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Count(pub u64);

impl FromStr for Count {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.trim().parse().map(Count).map_err(|_| {
            QuantityError::new(
                format!("`{}` is not a whole number", text.trim()),
                COMPARISON_HINT,
            )
        })
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl JsonSchema for Count {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("count")
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "minimum": 0 })
    }
}

/// A latency bound on one percentile, written `p99 < 300ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyBound {
    /// The percentile, 0–100 (`p99.9` → 99.9).
    pub percentile: f64,
    /// The bound on that percentile.
    pub bound: Comparison<DurationSpec>,
}

const LATENCY_HINT: &str =
    "write a percentile, an operator and a duration, e.g. `p99 < 300ms`, `p50 <= 20ms`";

impl FromStr for LatencyBound {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let rest = trimmed.strip_prefix('p').ok_or_else(|| {
            QuantityError::new(format!("`{trimmed}` names no percentile"), LATENCY_HINT)
        })?;
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let percentile: f64 = rest[..end].parse().map_err(|_| {
            QuantityError::new(format!("invalid percentile in `{trimmed}`"), LATENCY_HINT)
        })?;
        if !(0.0..=100.0).contains(&percentile) {
            return Err(QuantityError::new(
                format!("percentile in `{trimmed}` is outside p0..p100"),
                LATENCY_HINT,
            ));
        }
        let bound = rest[end..]
            .parse::<Comparison<DurationSpec>>()
            .map_err(|err| QuantityError::new(err.message, LATENCY_HINT))?;
        Ok(Self { percentile, bound })
    }
}

impl fmt::Display for LatencyBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{} {}", self.percentile, self.bound)
    }
}

string_quantity!(
    LatencyBound,
    "LatencyBound",
    r"^\s*p[0-9]+(\.[0-9]+)?\s*(<=|>=|==|!=|<|>|=)\s*\S+\s*$",
    "A bound on one latency percentile, e.g. `p99 < 300ms`."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_chained_units_and_print_back() {
        let d: DurationSpec = "1h30m".parse().unwrap();
        assert_eq!(d.get(), Duration::from_secs(5400));
        assert_eq!(d.to_string(), "1h30m");
        assert_eq!(
            "500ms".parse::<DurationSpec>().unwrap().get(),
            Duration::from_millis(500)
        );
        assert_eq!("0s".parse::<DurationSpec>().unwrap().to_string(), "0s");
    }

    #[test]
    fn duration_without_unit_is_refused_with_the_forms() {
        let err = "30".parse::<DurationSpec>().unwrap_err();
        assert!(err.message.contains("no unit"), "{err}");
        assert!(err.hint.contains("30s"));
        assert!("2 parsecs".parse::<DurationSpec>().is_err());
        assert!("2 mins".parse::<DurationSpec>().is_err());
        assert_eq!(
            "1h 30m".parse::<DurationSpec>().unwrap().get(),
            Duration::from_secs(5400)
        );
    }

    #[test]
    fn rates_convert_to_per_second() {
        let r: Rate = "600/m".parse().unwrap();
        assert!((r.as_per_second() - 10.0).abs() < 1e-9);
        assert_eq!(r.to_string(), "600/m");
        assert_eq!(
            "200/s".parse::<Rate>().unwrap().interval(),
            Duration::from_millis(5)
        );
        assert!("0/s".parse::<Rate>().is_err());
        assert!("200".parse::<Rate>().is_err());
        assert!("200/day".parse::<Rate>().is_err());
    }

    #[test]
    fn percentages_stay_in_range() {
        assert_eq!("99.5%".parse::<Percent>().unwrap().value(), 99.5);
        assert!("101%".parse::<Percent>().is_err());
        assert!("99.5".parse::<Percent>().is_err());
    }

    #[test]
    fn comparisons_read_two_character_operators_first() {
        let c: Comparison<DurationSpec> = "<= 300ms".parse().unwrap();
        assert_eq!(c.op, Op::Le);
        assert!(c.holds(DurationSpec(Duration::from_millis(300))));
        assert!(!c.holds(DurationSpec(Duration::from_millis(301))));
        let p: Comparison<Percent> = ">=99.9%".parse().unwrap();
        assert_eq!(p.op, Op::Ge);
        assert_eq!(p.to_string(), ">= 99.9%");
        assert!("300ms".parse::<Comparison<DurationSpec>>().is_err());
    }

    #[test]
    fn latency_bounds_name_a_percentile() {
        let l: LatencyBound = "p99.9 < 1s".parse().unwrap();
        assert_eq!(l.percentile, 99.9);
        assert_eq!(l.bound.op, Op::Lt);
        assert!("99 < 1s".parse::<LatencyBound>().is_err());
        assert!("p101 < 1s".parse::<LatencyBound>().is_err());
    }
}

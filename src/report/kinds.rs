//! The closed sets of words a report carries (verdicts, timeline events, effects, API names),
//! as enums, so writers match on variants and a typo is a compile error, not a silent miss.
//!
//! Each serialises to exactly the word reports have always held. Sets that grow between versions
//! (timeline events, fault kinds, measures, probe kinds) are read through [`OrOther`], so a report
//! written by an older or newer version still loads.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::fault::TargetKind;
use crate::spec::{FaultKind, Measure, ProbeKind, Window};
use crate::verdict::Verdict;

/// A closed set of words: each value has the one word reports write for it.
pub trait Word: Copy {
    /// The word as written in reports.
    fn word(self) -> &'static str;
}

/// Declares a report enum, its serde names and its [`Word`] from one list, so the two never
/// disagree.
macro_rules! words {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $word:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $word)] $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The word as written in reports.
            pub fn as_str(self) -> &'static str {
                self.word()
            }
        }

        impl Word for $name {
            fn word(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.word())
            }
        }
    };
}

words! {
    /// How a run ended: the verdict's label, which gates and dashboards key on.
    Outcome {
        /// Every target met and every fault rolled back.
        Passed => "passed",
        /// A target was missed.
        Failed => "failed",
        /// The steady state did not hold before the faults.
        NotSteady => "not steady",
        /// Stopped early and rolled back.
        Aborted => "aborted",
        /// Undo records are still pending.
        RollbackIncomplete => "rollback incomplete",
    }
}

impl From<&Verdict> for Outcome {
    fn from(verdict: &Verdict) -> Self {
        match verdict {
            Verdict::Passed => Outcome::Passed,
            Verdict::Failed { .. } => Outcome::Failed,
            Verdict::NotSteady { .. } => Outcome::NotSteady,
            Verdict::Aborted { .. } => Outcome::Aborted,
            Verdict::RollbackIncomplete { .. } => Outcome::RollbackIncomplete,
        }
    }
}

words! {
    /// What a timeline entry records.
    EventKind {
        /// A phase began; the detail names it.
        PhaseStarted => "phaseStarted",
        /// A fault fired.
        FaultInjected => "faultInjected",
        /// A firing's change showed through the API.
        FaultConfirmed => "faultConfirmed",
        /// A firing changed nothing.
        FaultNoEffect => "faultNoEffect",
        /// The system noticed a firing.
        FaultDetected => "faultDetected",
        /// A firing was skipped.
        FaultSkipped => "faultSkipped",
        /// An undo record was applied.
        RolledBack => "rolledBack",
        /// An undo record could not be applied.
        RollbackFailed => "rollbackFailed",
        /// The run stopped early.
        Aborted => "aborted",
    }
}

words! {
    /// Whether a fault's change showed through the API.
    EffectStatus {
        /// Every firing's change showed.
        Confirmed => "confirmed",
        /// A firing changed nothing.
        NoEffect => "noEffect",
        /// Not checked.
        Unchecked => "unchecked",
    }
}

words! {
    /// What happened to one object a fault touched.
    TargetEffect {
        /// The action went out.
        Applied => "applied",
        /// A PodDisruptionBudget refused it.
        BlockedByBudget => "blockedByBudget",
        /// Left alone, for the reason in the detail.
        Skipped => "skipped",
        /// The action failed, with the error in the detail.
        Failed => "failed",
    }
}

words! {
    /// A window a probe's measurements are summed over: a target window, or `probe` for the
    /// `probe` command's single check. Declared in word order, so maps keyed by it list windows
    /// in the order reports have always had.
    WindowName {
        /// Steady state after recovery.
        After => "after",
        /// Steady state before the faults.
        Before => "before",
        /// The faults.
        During => "during",
        /// The `probe` command's check.
        Probe => "probe",
        /// The whole run.
        Run => "run",
    }
}

impl From<Window> for WindowName {
    fn from(window: Window) -> Self {
        match window {
            Window::Before => WindowName::Before,
            Window::During => WindowName::During,
            Window::After => WindowName::After,
            Window::Run => WindowName::Run,
        }
    }
}

words! {
    /// Which control plane answered; ordered as the words sort, as the report lists them.
    Api {
        /// AWS.
        Aws => "aws",
        /// The Kubernetes API.
        Kubernetes => "kubernetes",
    }
}

impl Word for FaultKind {
    fn word(self) -> &'static str {
        self.key()
    }
}

impl Word for Measure {
    fn word(self) -> &'static str {
        self.key()
    }
}

impl Word for Window {
    fn word(self) -> &'static str {
        self.name()
    }
}

impl Word for ProbeKind {
    fn word(self) -> &'static str {
        self.key()
    }
}

impl Word for TargetKind {
    fn word(self) -> &'static str {
        self.key()
    }
}

/// A word from a set that grows between versions: a known value, or one this version does not
/// know (from another version's report, or `unknown` for a fault whose kind was not set), kept
/// as written so the report reads back and writes out unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OrOther<T> {
    /// A value this version knows.
    Known(T),
    /// Any other word.
    Other(String),
}

impl<T: Word> OrOther<T> {
    /// The known value, if it is one.
    pub fn known(&self) -> Option<T> {
        match self {
            OrOther::Known(value) => Some(*value),
            OrOther::Other(_) => None,
        }
    }

    /// The word as written.
    pub fn as_str(&self) -> &str {
        match self {
            OrOther::Known(value) => value.word(),
            OrOther::Other(word) => word,
        }
    }
}

impl OrOther<Measure> {
    /// True for measures whose report value is a percentage, where higher is better; the
    /// others are seconds, where lower is. Gates need it to read a bound's unit and direction.
    pub fn is_percent(&self) -> bool {
        matches!(
            self.known(),
            Some(Measure::Availability | Measure::Satisfied | Measure::Balance)
        )
    }
}

impl<T> From<T> for OrOther<T> {
    fn from(value: T) -> Self {
        OrOther::Known(value)
    }
}

impl<T: Word> fmt::Display for OrOther<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<T: JsonSchema> JsonSchema for OrOther<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("{}OrOther", T::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [generator.subschema_for::<T>(), {"type": "string"}]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_round_trips_through_json() {
        for outcome in Outcome::ALL {
            let json = serde_json::to_string(outcome).unwrap();
            assert_eq!(json, format!("\"{}\"", outcome.word()));
            assert_eq!(serde_json::from_str::<Outcome>(&json).unwrap(), *outcome);
        }
        for kind in EventKind::ALL {
            let json = serde_json::to_string(kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
        }
    }

    #[test]
    fn an_unknown_word_is_kept_as_written() {
        let read: OrOther<EventKind> = serde_json::from_str("\"faultHeld\"").unwrap();
        assert_eq!(read, OrOther::Other("faultHeld".to_owned()));
        assert_eq!(read.known(), None);
        assert_eq!(serde_json::to_string(&read).unwrap(), "\"faultHeld\"");
        let known: OrOther<EventKind> = serde_json::from_str("\"rolledBack\"").unwrap();
        assert_eq!(known.known(), Some(EventKind::RolledBack));
    }

    #[test]
    fn window_names_sort_as_their_words() {
        let mut words: Vec<&str> = WindowName::ALL.iter().map(|w| w.word()).collect();
        words.sort_unstable();
        let declared: Vec<&str> = WindowName::ALL.iter().map(|w| w.word()).collect();
        assert_eq!(words, declared);
        assert!(Api::Aws < Api::Kubernetes && "aws" < "kubernetes");
    }

    #[test]
    fn a_closed_set_refuses_other_words() {
        assert!(serde_json::from_str::<Outcome>("\"passd\"").is_err());
    }
}

//! Diagnostics: one line a person can act on — where, which field, what is wrong — and a hint.

use std::fmt;

use serde::Serialize;

/// How serious a finding is: errors make a file invalid, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Severity {
    /// The file cannot be run.
    Error,
    /// The file runs, but probably not as meant.
    Warning,
}

/// One finding about one place in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnostic {
    /// The file as the user named it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Field path such as `spec.faults[0].podKill.target.mode`; empty for file-level problems.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Error or warning.
    pub severity: Severity,
}

impl Diagnostic {
    /// An error at a position.
    pub fn error(
        file: &str,
        (line, column): (usize, usize),
        path: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_owned(),
            line,
            column,
            path: path.to_owned(),
            message: message.into(),
            hint: None,
            severity: Severity::Error,
        }
    }

    /// Adds a hint.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        let hint = hint.into();
        self.hint = (!hint.is_empty()).then_some(hint);
        self
    }

    /// Makes this a warning.
    #[must_use]
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// `file:line:col: path: message`, then `  hint: …` on its own line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// A finding from semantic validation, before it is placed in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Field path, as in [`Diagnostic::path`].
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// Error or warning.
    pub severity: Severity,
}

impl Issue {
    /// An error at `path`.
    pub fn error(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            hint: None,
            severity: Severity::Error,
        }
    }

    /// A warning at `path`.
    pub fn warning(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(path, message)
        }
    }

    /// Adds a hint.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The closest candidate to `word`, when one is close enough to be a likely typo.
///
/// Edit distance (with transpositions) catches short typos such as `fro` for `for`;
/// Jaro-Winkler catches longer words with a shared prefix such as `steadySate`.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word = word.to_lowercase();
    let allowed_edits = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter_map(|candidate| {
            let lower = candidate.to_lowercase();
            let edits = strsim::damerau_levenshtein(&word, &lower);
            let similarity = strsim::jaro_winkler(&word, &lower);
            (edits <= allowed_edits || similarity >= 0.85).then_some((edits, candidate))
        })
        .min_by_key(|(edits, _)| *edits)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_position_path_message_and_hint() {
        let d = Diagnostic::error(
            "x.yaml",
            (3, 7),
            "spec.duration",
            "duration `30` has no unit",
        )
        .with_hint("write 30s");
        assert_eq!(
            d.to_string(),
            "x.yaml:3:7: spec.duration: duration `30` has no unit\n  hint: write 30s"
        );
    }

    #[test]
    fn suggests_close_keys_only() {
        assert_eq!(
            did_you_mean("podkill", ["podKill", "podEvict"]),
            Some("podKill")
        );
        assert_eq!(
            did_you_mean("durration", ["duration", "timeout"]),
            Some("duration")
        );
        assert_eq!(did_you_mean("fro", ["for", "at", "every"]), Some("for"));
        assert_eq!(did_you_mean("banana", ["duration", "timeout"]), None);
        assert_eq!(did_you_mean("x", ["at", "for"]), None);
    }
}

//! Reading experiment files: every problem of a file reported at once, each placed at its line
//! and column, and nothing that a hostile or broken file can turn into a panic.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::diagnostic::{Diagnostic, did_you_mean};
use super::experiment::{API_VERSION, ExperimentSpec, KIND};
use super::quantity::HINT_MARKER;
use super::schema::allowed_keys;
use super::source::PositionIndex;
use super::validate::validate;

/// Files larger than this are refused before parsing: experiments are small, and a YAML bomb is
/// not.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// A parsed, validated experiment and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedExperiment {
    /// The file as the user named it.
    pub path: PathBuf,
    /// The experiment.
    pub spec: ExperimentSpec,
    /// Warnings found while validating it.
    pub warnings: Vec<Diagnostic>,
}

/// Reads and validates one experiment file.
///
/// # Errors
/// Every diagnostic of the file, when any of them is an error.
pub fn load_file(path: &Path) -> Result<LoadedExperiment, Vec<Diagnostic>> {
    let name = path.display().to_string();
    let text = read_text(path, &name).map_err(|d| vec![*d])?;
    let (spec, warnings) = parse_experiment(&name, &text)?;
    Ok(LoadedExperiment {
        path: path.to_owned(),
        spec,
        warnings,
    })
}

/// Parses and validates experiment text; `name` is used in diagnostics.
///
/// # Errors
/// Every diagnostic, when any is an error.
pub fn parse_experiment(
    name: &str,
    text: &str,
) -> Result<(ExperimentSpec, Vec<Diagnostic>), Vec<Diagnostic>> {
    let index = PositionIndex::build(text).map_err(|err| {
        vec![
            Diagnostic::error(
                name,
                err.position,
                "",
                format!("YAML syntax: {}", err.message),
            )
            .with_hint("check indentation and quoting near this position"),
        ]
    })?;

    let mut diagnostics = Vec::new();
    let mut unknown = Vec::new();
    let parsed = {
        let deserializer = serde_yaml::Deserializer::from_str(text);
        let mut on_ignored = |path: serde_ignored::Path<'_>| unknown.push(render_ignored(&path));
        let ignored = serde_ignored::Deserializer::new(deserializer, &mut on_ignored);
        serde_path_to_error::deserialize::<_, ExperimentSpec>(ignored)
    };

    for path in unknown {
        diagnostics.push(unknown_key(name, &index, &path));
    }

    let spec = match parsed {
        Ok(spec) => Some(spec),
        Err(err) => {
            diagnostics.push(type_error(name, &index, &err));
            None
        }
    };

    if let Some(spec) = &spec {
        for issue in validate(spec) {
            let position = index.value(&issue.path);
            let mut diagnostic = Diagnostic::error(name, position, &issue.path, issue.message);
            diagnostic.severity = issue.severity;
            if let Some(hint) = issue.hint {
                diagnostic = diagnostic.with_hint(hint);
            }
            diagnostics.push(diagnostic);
        }
    }

    diagnostics.sort_by_key(|d| (d.line, d.column));
    match spec {
        Some(spec) if !diagnostics.iter().any(Diagnostic::is_error) => Ok((spec, diagnostics)),
        _ => Err(diagnostics),
    }
}

/// Reads a file as UTF-8 text within the size limit.
fn read_text(path: &Path, name: &str) -> Result<String, Box<Diagnostic>> {
    let file_error = |message: String, hint: &str| {
        Box::new(Diagnostic::error(name, (1, 1), "", message).with_hint(hint))
    };
    let metadata = std::fs::metadata(path).map_err(|err| {
        file_error(
            format!("cannot read the file: {err}"),
            "check the path and its permissions",
        )
    })?;
    if metadata.len() > MAX_FILE_BYTES {
        return Err(file_error(
            format!("the file is {} bytes, over the 1 MiB limit", metadata.len()),
            "an experiment is a few kilobytes; split suites into one file per experiment",
        ));
    }
    let bytes = std::fs::read(path).map_err(|err| {
        file_error(
            format!("cannot read the file: {err}"),
            "check the path and its permissions",
        )
    })?;
    String::from_utf8(bytes).map_err(|err| {
        let valid = &err.as_bytes()[..err.utf8_error().valid_up_to()];
        let valid = std::str::from_utf8(valid).unwrap_or_default();
        let line = valid.matches('\n').count() + 1;
        let column = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Box::new(
            Diagnostic::error(name, (line, column), "", "the file is not valid UTF-8")
                .with_hint("save the file as UTF-8"),
        )
    })
}

fn render_ignored(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", render_ignored(parent)),
        Path::Map { parent, key } => {
            let parent = render_ignored(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => render_ignored(parent),
    }
}

fn render_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

fn unknown_key(name: &str, index: &PositionIndex, path: &str) -> Diagnostic {
    let (parent, key) = path.rsplit_once('.').unwrap_or(("", path));
    let allowed = allowed_keys(parent);
    let hint = match did_you_mean(key, allowed.iter().map(String::as_str)) {
        Some(suggestion) => format!("did you mean `{suggestion}`?"),
        None if allowed.is_empty() => "remove it".to_owned(),
        None => format!("allowed here: {}", allowed.join(", ")),
    };
    Diagnostic::error(
        name,
        index.key(path),
        path,
        format!("unknown field `{key}`"),
    )
    .with_hint(hint)
}

fn type_error(
    name: &str,
    index: &PositionIndex,
    err: &serde_path_to_error::Error<serde_yaml::Error>,
) -> Diagnostic {
    let path = render_path(err.path());
    let inner = err.inner();
    // The index knows where every path is; serde_yaml's own mark is only needed for errors at
    // the root, and it can point past the offending scalar.
    let position = match (path.is_empty(), inner.location()) {
        (true, Some(location)) if location.line() > 0 => {
            (location.line(), location.column().max(1))
        }
        _ => index.value(&path),
    };
    let (message, hint) = clean_message(&inner.to_string());
    let hint = hint.or_else(|| hint_for(&path, &message));
    let mut diagnostic = Diagnostic::error(name, position, &path, message);
    if let Some(hint) = hint {
        diagnostic = diagnostic.with_hint(hint);
    }
    diagnostic
}

/// Strips serde_yaml's own `path: ` prefix and ` at line … column …` suffix, and splits off a
/// hint carried by our quantity parsers.
fn clean_message(display: &str) -> (String, Option<String>) {
    let mut text = display;
    if let Some(at) = text.rfind(" at line ") {
        text = &text[..at];
    }
    if let Some((prefix, rest)) = text.split_once(": ")
        && !prefix.contains(' ')
        && !prefix.contains('`')
    {
        text = rest;
    }
    match text.split_once(HINT_MARKER) {
        Some((message, hint)) => (message.to_owned(), Some(hint.to_owned())),
        None => (text.to_owned(), None),
    }
}

/// Hints for serde's own messages.
fn hint_for(path: &str, message: &str) -> Option<String> {
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let expected = rest
            .split_once("expected ")
            .map(|(_, e)| e.trim_start_matches("one of ").replace('`', ""))?;
        return Some(format!("allowed values: {expected}"));
    }
    if let Some(field) = message.strip_prefix("missing field ") {
        let place = if path.is_empty() {
            "at the top level".to_owned()
        } else {
            format!("under `{path}`")
        };
        return Some(format!("add {field} {place}"));
    }
    if message.starts_with("invalid type") {
        let keys = allowed_keys(path);
        if !keys.is_empty() {
            return Some(format!(
                "this is a mapping with the keys: {}",
                keys.join(", ")
            ));
        }
        return Some("check the value's type (quote strings that look like numbers)".to_owned());
    }
    None
}

/// Why a path could not be turned into experiments.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// A named path does not exist.
    #[error("{0}: no such file or directory")]
    Missing(String),
    /// A directory held no experiment files.
    #[error("{0}: no experiments found (looked for *.yaml and *.yml with kind: Experiment)")]
    Empty(String),
    /// A directory could not be listed.
    #[error("{path}: cannot list the directory: {source}")]
    Unreadable {
        /// The directory.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Expands files and directories into experiment files.
///
/// Directories are searched recursively for `*.yaml`/`*.yml`; files there that declare another
/// steadfast kind (a sandbox topology, a gate policy) are skipped, everything else is treated as
/// an experiment so a broken header is still reported.
///
/// # Errors
/// A missing path or a directory without experiments.
pub fn collect_experiment_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CollectError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = files.len();
            walk(path, &mut files)?;
            if files.len() == before {
                return Err(CollectError::Empty(path.display().to_string()));
            }
        } else if path.exists() {
            files.push(path.clone());
        } else {
            return Err(CollectError::Missing(path.display().to_string()));
        }
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), CollectError> {
    let unreadable = |source| CollectError::Unreadable {
        path: dir.display().to_string(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            walk(&path, files)?;
        } else if is_yaml(&path) && !declares_other_kind(&path) {
            files.push(path);
        }
    }
    Ok(())
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// True when the file's header names a steadfast kind other than Experiment (a `GatePolicy`
/// beside its suite): directory walks skip it instead of reporting a broken experiment.
pub fn declares_other_kind(path: &Path) -> bool {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Header {
        api_version: Option<String>,
        kind: Option<String>,
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let Ok(header) = serde_yaml::from_str::<Header>(&text) else {
        return false;
    };
    let ours = header
        .api_version
        .as_deref()
        .is_some_and(|v| v.starts_with("steadfast.dev/"));
    ours && header.kind.as_deref().is_some_and(|k| k != KIND)
}

/// The header every experiment starts with, for error messages and scaffolding.
pub fn expected_header() -> String {
    format!("apiVersion: {API_VERSION}\nkind: {KIND}")
}

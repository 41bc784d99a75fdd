//! The experiments a scheduler fires: every file in a directory whose `spec.schedule` is set.
//!
//! An invalid file stops the scheduler from starting rather than being skipped: a scheduler that
//! quietly drops a mistyped experiment would report "healthy" while never testing what the team
//! believes it tests. In a Deployment the refusal shows as a crash loop with the file, line and
//! hint in the log, which is the loud failure wanted here; `steadfast validate DIR` gives the same
//! diagnostics before deploying.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::cron::{CronSchedule, parse_cron};
use crate::spec::{declares_other_kind, load_file};

/// One experiment on a schedule, resolved.
#[derive(Debug, Clone)]
pub struct ScheduledExperiment {
    /// `metadata.name`; unique within the catalog, used in logs and metric labels.
    pub name: String,
    /// The experiment file, handed to `steadfast run`.
    pub file: PathBuf,
    /// When it fires.
    pub cron: CronSchedule,
    /// The zone the expression is read in (UTC when the spec names none).
    pub zone: Tz,
    /// Largest random delay added to each firing (the spec's, else the command's `--jitter`).
    pub jitter: Duration,
    /// How long a run may take before it is asked to roll back: `spec.timeout`, else the
    /// documented default of 3 × duration + 5m.
    pub run_limit: Duration,
}

impl ScheduledExperiment {
    /// The first firing strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .next_after(&after.with_timezone(&self.zone))
            .map(|at| at.with_timezone(&Utc))
    }
}

/// Why the catalog cannot be loaded; each problem is one line (or a diagnostic with its hint).
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The directory cannot be listed.
    #[error("{dir}: cannot list the directory: {source}")]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Files are invalid; every diagnostic of every file is listed.
    #[error("{}\nhint: fix these files (`steadfast validate DIR` shows the same) or move them out of the directory", problems.join("\n"))]
    Invalid {
        /// One entry per diagnostic.
        problems: Vec<String>,
    },
    /// No file in the directory has a `spec.schedule`.
    #[error(
        "{dir}: no experiment has a spec.schedule\nhint: add `schedule: {{cron: \"0 3 * * 1-5\"}}` under spec, or use `steadfast run` for one-off runs"
    )]
    NothingScheduled {
        /// The directory.
        dir: PathBuf,
    },
}

/// What loading found: the scheduled experiments, and files left out because they have no
/// schedule (run once with `steadfast run`).
#[derive(Debug)]
pub struct Catalog {
    /// Experiments to fire, sorted by name.
    pub experiments: Vec<ScheduledExperiment>,
    /// Valid experiments without `spec.schedule`.
    pub unscheduled: Vec<PathBuf>,
}

/// Loads every `*.yaml` / `*.yml` file directly in `dir`.
///
/// # Errors
/// [`CatalogError`] when the directory cannot be read, any file is invalid, two experiments
/// share a name, or nothing is scheduled.
pub fn load_catalog(dir: &Path, default_jitter: Duration) -> Result<Catalog, CatalogError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CatalogError::ReadDir {
        dir: dir.to_owned(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.is_file()
                && path
                    .extension()
                    .is_some_and(|ext| ext == "yaml" || ext == "yml")
                // A gate policy beside its suite is not an experiment.
                && !declares_other_kind(path)
        })
        .collect();
    files.sort();
    let mut problems = Vec::new();
    let mut by_name: BTreeMap<String, ScheduledExperiment> = BTreeMap::new();
    let mut unscheduled = Vec::new();
    for file in files {
        let loaded = match load_file(&file) {
            Ok(loaded) => loaded,
            Err(diagnostics) => {
                problems.extend(diagnostics.iter().map(ToString::to_string));
                continue;
            }
        };
        let spec = loaded.spec;
        let Some(schedule) = &spec.spec.schedule else {
            unscheduled.push(file);
            continue;
        };
        // Validation has accepted both; these only fail if validation and this code disagree.
        let cron = match parse_cron(&schedule.cron) {
            Ok(cron) => cron,
            Err(e) => {
                problems.push(format!("{}: spec.schedule.cron: {e}", file.display()));
                continue;
            }
        };
        let zone = match schedule.time_zone.as_deref().map(Tz::from_str) {
            None => Tz::UTC,
            Some(Ok(zone)) => zone,
            Some(Err(e)) => {
                problems.push(format!("{}: spec.schedule.timeZone: {e}", file.display()));
                continue;
            }
        };
        let name = spec.metadata.name.clone();
        if let Some(first) = by_name.get(&name) {
            problems.push(format!(
                "{}: metadata.name `{name}` is also the name of {}",
                file.display(),
                first.file.display()
            ));
            continue;
        }
        let jitter = schedule.jitter.map_or(default_jitter, |j| j.get());
        let run_limit = spec.spec.timeout.map_or_else(
            || spec.spec.duration.get() * 3 + Duration::from_secs(300),
            |t| t.get(),
        );
        by_name.insert(
            name.clone(),
            ScheduledExperiment {
                name,
                file,
                cron,
                zone,
                jitter,
                run_limit,
            },
        );
    }
    if !problems.is_empty() {
        return Err(CatalogError::Invalid { problems });
    }
    if by_name.is_empty() {
        return Err(CatalogError::NothingScheduled {
            dir: dir.to_owned(),
        });
    }
    Ok(Catalog {
        experiments: by_name.into_values().collect(),
        unscheduled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPERIMENT: &str = include_str!("../../experiments/sandbox/node-cordon.yaml");

    fn scheduled(name: &str, schedule: &str) -> String {
        EXPERIMENT
            .replacen("name: sandbox-node-cordon", &format!("name: {name}"), 1)
            .replacen("spec:\n", &format!("spec:\n  schedule: {schedule}\n"), 1)
    }

    #[test]
    fn scheduled_files_load_and_unscheduled_ones_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            scheduled(
                "nightly",
                "{cron: \"30 2 * * *\", timeZone: Europe/Berlin, jitter: 2m}",
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b.yml"),
            scheduled("hourly", "{cron: \"0 * * * *\"}"),
        )
        .unwrap();
        std::fs::write(dir.path().join("once.yaml"), EXPERIMENT).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not an experiment").unwrap();
        std::fs::write(
            dir.path().join("gate.yaml"),
            include_str!("../../experiments/release-gate/gate.yaml"),
        )
        .unwrap();
        let catalog = load_catalog(dir.path(), Duration::from_secs(5)).unwrap();
        let names: Vec<&str> = catalog
            .experiments
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(names, ["hourly", "nightly"]);
        assert_eq!(catalog.experiments[0].zone, Tz::UTC);
        assert_eq!(
            catalog.experiments[0].jitter,
            Duration::from_secs(5),
            "the default"
        );
        assert_eq!(catalog.experiments[1].zone, Tz::Europe__Berlin);
        assert_eq!(
            catalog.experiments[1].jitter,
            Duration::from_secs(120),
            "the spec's"
        );
        // duration 30s, no timeout: 3 × 30s + 5m.
        assert_eq!(catalog.experiments[1].run_limit, Duration::from_secs(390));
        assert_eq!(catalog.unscheduled.len(), 1);
    }

    #[test]
    fn any_invalid_file_or_duplicate_name_refuses_the_whole_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            scheduled("nightly", "{cron: \"0 3 * * *\"}"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b.yaml"),
            scheduled("nightly", "{cron: \"0 4 * * *\"}"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("c.yaml"),
            scheduled("broken", "{cron: \"0 3 * *\"}"),
        )
        .unwrap();
        let error = load_catalog(dir.path(), Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(error.contains("also the name of"), "{error}");
        assert!(error.contains("c.yaml"), "{error}");
        assert!(error.contains("spec.schedule.cron"), "{error}");
        assert!(error.contains("hint:"), "{error}");
    }

    #[test]
    fn a_directory_without_schedules_is_refused_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("once.yaml"), EXPERIMENT).unwrap();
        let error = load_catalog(dir.path(), Duration::ZERO).unwrap_err();
        assert!(
            matches!(error, CatalogError::NothingScheduled { .. }),
            "{error}"
        );
        assert!(load_catalog(&dir.path().join("missing"), Duration::ZERO).is_err());
    }
}

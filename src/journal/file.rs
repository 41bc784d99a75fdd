//! The journal on local disk: one JSON object per line, `fsync`ed after every line.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::JournalEntry;

/// Why the journal could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file could not be opened, written or synced.
    #[error("journal {path}: {source}")]
    Io {
        /// The journal file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The mirror could not take the entry.
    #[error("in-cluster journal: {0}")]
    Mirror(#[from] super::MirrorError),
}

/// An open journal, appending and syncing.
#[derive(Debug)]
pub struct FileJournal {
    path: PathBuf,
    file: Mutex<File>,
}

impl FileJournal {
    /// Opens (creating it and its directory if needed) the journal at `path` for appending.
    ///
    /// # Errors
    /// When the directory or file cannot be created or opened.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let io = |source| JournalError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(io)?;
        // A run killed mid-write leaves a torn line without its newline; end it, so the next
        // entry starts on a line of its own instead of being glued to the torn one.
        if ends_torn(&mut file).map_err(io)? {
            file.write_all(b"\n").map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        Ok(Self {
            path: path.to_owned(),
            file: Mutex::new(file),
        })
    }

    /// The journal's path, printed when a run is interrupted.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry and syncs it to disk before returning.
    ///
    /// # Errors
    /// When the write or the sync fails; the caller must then not act.
    pub fn append(&self, entry: &JournalEntry) -> Result<(), JournalError> {
        let io = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(entry).map_err(|err| io(std::io::Error::other(err)))?;
        line.push(b'\n');
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.write_all(&line).map_err(io)?;
        file.sync_data().map_err(io)
    }
}

fn ends_torn(file: &mut File) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// Reads every entry. A missing file reads as empty. Lines that do not parse are torn writes of
/// a killed run and are skipped with a warning: skipping is safe, because a fault acts only
/// after its undo line was fully written, and an undo whose `rolledBack` line was torn is simply
/// applied again (undo is idempotent).
///
/// # Errors
/// When the file cannot be read.
pub fn read_entries(path: &Path) -> Result<Vec<JournalEntry>, JournalError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(JournalError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|source| JournalError::Io {
            path: path.to_owned(),
            source,
        })?;
    let mut entries = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(entry) => entries.push(entry),
            Err(err) => {
                tracing::warn!(path = %path.display(), line = i + 1, %err, "skipping a torn journal line")
            }
        }
    }
    Ok(entries)
}

/// Where the journal lives unless told otherwise: `$STEADFAST_JOURNAL`, else
/// `$XDG_STATE_HOME/steadfast/journal.jsonl`, else `~/.local/state/steadfast/journal.jsonl`.
pub fn default_journal_path() -> PathBuf {
    if let Some(path) = std::env::var_os("STEADFAST_JOURNAL").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    state.join("steadfast").join("journal.jsonl")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::{UndoAction, UndoRecord};
    use chrono::Utc;

    fn record(id: &str) -> JournalEntry {
        JournalEntry::Undo(UndoRecord {
            id: id.into(),
            run_id: "run".into(),
            fault: "drain".into(),
            action: UndoAction::Uncordon {
                node: "node-1".into(),
            },
            created_at: Utc::now(),
        })
    }

    #[test]
    fn entries_round_trip_and_append_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/journal.jsonl");
        FileJournal::open(&path)
            .unwrap()
            .append(&record("a"))
            .unwrap();
        FileJournal::open(&path)
            .unwrap()
            .append(&record("b"))
            .unwrap();
        let entries = read_entries(&path).unwrap();
        assert_eq!(
            entries,
            vec![
                record_with_time(&entries[0], "a"),
                record_with_time(&entries[1], "b")
            ]
        );
    }

    fn record_with_time(entry: &JournalEntry, id: &str) -> JournalEntry {
        match (entry, record(id)) {
            (JournalEntry::Undo(read), JournalEntry::Undo(mut fresh)) => {
                fresh.created_at = read.created_at;
                JournalEntry::Undo(fresh)
            }
            _ => panic!("not an undo entry"),
        }
    }

    #[test]
    fn a_torn_line_is_skipped_and_the_next_run_does_not_glue_onto_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        FileJournal::open(&path)
            .unwrap()
            .append(&record("a"))
            .unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"entry\":\"undo\",\"id\":")
            .unwrap();
        assert_eq!(read_entries(&path).unwrap().len(), 1);

        FileJournal::open(&path)
            .unwrap()
            .append(&record("b"))
            .unwrap();
        let ids: Vec<String> = super::super::pending(&read_entries(&path).unwrap())
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, vec!["a".to_owned(), "b".to_owned()]);
    }

    #[test]
    fn a_missing_journal_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_entries(&dir.path().join("none")).unwrap().is_empty());
    }
}

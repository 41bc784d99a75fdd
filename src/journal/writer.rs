//! The journal a run writes through: the local file first (synced), then the mirror when there
//! is one. An entry counts as written only when both have it, so an undo record that the mirror
//! cannot take stops the fault that needed it.

use std::path::Path;

use super::mirror::JournalMirror;
use super::{FileJournal, JournalEntry, JournalError};

/// The local journal, optionally mirrored.
pub struct Journal {
    file: FileJournal,
    mirror: Option<Box<dyn JournalMirror>>,
}

impl Journal {
    /// The local file only.
    pub fn local(file: FileJournal) -> Self {
        Self { file, mirror: None }
    }

    /// The local file, mirrored to `mirror`.
    pub fn mirrored(file: FileJournal, mirror: Box<dyn JournalMirror>) -> Self {
        Self {
            file,
            mirror: Some(mirror),
        }
    }

    /// The local file's path, printed when a run is interrupted or leaves work behind.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The mirror, when there is one.
    pub fn mirror(&self) -> Option<&dyn JournalMirror> {
        self.mirror.as_deref()
    }

    /// Where the mirror lives, when there is one.
    pub fn mirror_place(&self) -> Option<String> {
        self.mirror.as_ref().map(|m| m.place())
    }

    /// Appends `entry` to the file (synced) and then to the mirror.
    ///
    /// # Errors
    /// When either write fails; the caller must then not act on the entry.
    pub async fn append(&self, entry: &JournalEntry) -> Result<(), JournalError> {
        self.file.append(entry)?;
        if let Some(mirror) = &self.mirror {
            mirror.append(entry).await?;
        }
        Ok(())
    }
}

//! The run lock and halt switch when there is no cluster to keep them in (an experiment of
//! URL probes and AWS faults only): files beside the local journal, so runs from this machine
//! still never overlap and can still be halted. They protect nothing beyond this machine.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::engine::{HaltSwitch, LockError, RunLock};

/// The lock file beside `journal`.
pub fn lock_path(journal: &Path) -> PathBuf {
    journal.with_file_name("steadfast.lock")
}

/// The halt file beside `journal`: while it exists, runs refuse to start or stop injecting.
pub fn halt_path(journal: &Path) -> PathBuf {
    journal.with_file_name("HALT")
}

/// An exclusive `flock` on a file: the kernel drops it when the holder exits, so a crashed
/// run never leaves it behind.
pub struct FileLock {
    path: PathBuf,
    held: Mutex<Option<File>>,
}

impl FileLock {
    /// A lock on `path`, not yet taken.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            held: Mutex::new(None),
        }
    }
}

fn store(err: impl std::fmt::Display, path: &Path) -> LockError {
    LockError::Store(format!("{}: {err}", path.display()))
}

#[async_trait]
impl RunLock for FileLock {
    async fn acquire(&self, holder: &str, _ttl: Duration) -> Result<(), LockError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| store(e, dir))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
            .map_err(|e| store(e, &self.path))?;
        // SAFETY: flock on a descriptor this function owns; no memory is shared.
        let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if !taken {
            let mut other = String::new();
            let _ = file.read_to_string(&mut other);
            return Err(LockError::Held {
                holder: format!("{} ({})", other.trim(), self.path.display()),
                expires: "that process exits".to_owned(),
            });
        }
        file.set_len(0).map_err(|e| store(e, &self.path))?;
        file.rewind().map_err(|e| store(e, &self.path))?;
        writeln!(file, "{holder}").map_err(|e| store(e, &self.path))?;
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(file);
        Ok(())
    }

    async fn renew(&self) -> Result<(), LockError> {
        Ok(())
    }

    async fn release(&self) -> Result<(), LockError> {
        // Closing the descriptor drops the flock.
        self.held.lock().unwrap_or_else(|p| p.into_inner()).take();
        Ok(())
    }
}

/// Halted while a file exists; its text is the reason.
pub struct FileHalt {
    path: PathBuf,
}

impl FileHalt {
    /// The switch at `path`.
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }
}

#[async_trait]
impl HaltSwitch for FileHalt {
    async fn halted(&self) -> anyhow::Result<Option<String>> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(Some(format!("{} ({})", text.trim(), self.path.display()))),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(anyhow::anyhow!("{}: {err}", self.path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_holder_is_refused_until_the_first_releases() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(&dir.path().join("journal.jsonl"));
        let first = FileLock::new(path.clone());
        let second = FileLock::new(path);
        first.acquire("a", Duration::from_secs(60)).await.unwrap();
        let err = second
            .acquire("b", Duration::from_secs(60))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("a ("), "{err}");
        first.release().await.unwrap();
        second.acquire("b", Duration::from_secs(60)).await.unwrap();
    }

    #[tokio::test]
    async fn the_halt_file_halts_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let halt = FileHalt::new(halt_path(&dir.path().join("journal.jsonl")));
        assert_eq!(halt.halted().await.unwrap(), None);
        std::fs::write(dir.path().join("HALT"), "game day over\n").unwrap();
        let reason = halt.halted().await.unwrap().unwrap();
        assert!(reason.starts_with("game day over ("), "{reason}");
    }
}

//! The active file: opening it, finding where its chain stands, and
//! rotating it under a timestamped name with the chain unbroken.

use std::fs::{File, OpenOptions};
use std::time::{Duration, SystemTime};

use super::Writer;
use crate::audit::tail::{self, Tail, TailFault, Tip};
use crate::audit::{AuditError, files};
use crate::config::SyncMode;

impl Writer {
    /// Opens the file for appending if it is not open, and finds where the
    /// chain stands: from its end, else from the newest rotated file, else
    /// from what this writer last wrote.
    pub(super) fn ensure_open(&mut self) -> Result<(), AuditError> {
        if self.file.is_some() {
            return Ok(());
        }
        if let Some(dir) =
            self.path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| self.error(e))?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.path)
            .map_err(|e| self.error(e))?;
        let meta = file.metadata().map_err(|e| self.error(e))?;
        self.regular = meta.is_file();
        self.size = meta.len();

        let mut tail = Tail::default();
        if self.regular {
            tail = self.inspect(&mut file)?;
            if tail.tip.is_none() {
                tail.tip = self.rotated_tip();
            }
        }
        if let Some(tip) = tail.tip.take() {
            self.tip = tip;
        }
        if let Some(torn) = &tail.torn {
            tracing::warn!(
                path = %self.path.display(),
                line = torn.line,
                lines = torn.lines,
                bytes = torn.bytes,
                "audit file ends in a torn write; left in place and recorded"
            );
        }
        self.tail = tail;
        self.file = Some(file);
        Ok(())
    }

    fn inspect(&self, file: &mut File) -> Result<Tail, AuditError> {
        let path = self.path.display().to_string();
        tail::inspect(file, self.key.as_ref()).map_err(|fault| match fault {
            TailFault::Io(e) => self.error(e),
            TailFault::Unverifiable => AuditError::Unverifiable { path },
            TailFault::Damaged => AuditError::Damaged { path },
        })
    }

    /// The tip of the newest rotated file, for an active file that holds
    /// no record yet (a crash right after rotation, or a file removed).
    fn rotated_tip(&self) -> Option<Tip> {
        let rotated = files::latest_rotated(&self.path)?;
        let mut file = File::open(rotated).ok()?;
        tail::inspect(&mut file, self.key.as_ref()).ok()?.tip
    }

    pub(super) fn is_due_for_rotation(&self, incoming: u64) -> bool {
        self.regular
            && self.rotate_bytes > 0
            && self.size > 0
            && self.size + incoming > self.rotate_bytes
    }

    /// Closes the active file under a timestamped name and starts a new
    /// one. The chain goes on: the next record links to the last one of
    /// the closed file.
    pub(super) fn rotate(&mut self) -> Result<(), AuditError> {
        if let Some(file) = self.file.take()
            && self.sync != SyncMode::None
        {
            self.sync_file(&file);
        }
        let mut target = files::rotated_path(&self.path, SystemTime::now());
        // Two rotations within one microsecond must not overwrite.
        while target.exists() {
            std::thread::sleep(Duration::from_micros(1));
            target = files::rotated_path(&self.path, SystemTime::now());
        }
        if let Err(error) = std::fs::rename(&self.path, &target) {
            // Keep appending to the current file; the next batch retries,
            // and says so again only once rotation has worked.
            if !self.rotation_failing {
                tracing::warn!(
                    %error,
                    path = %self.path.display(),
                    "audit file not rotated; appending to it meanwhile"
                );
            }
            self.rotation_failing = true;
            return self.ensure_open();
        }
        self.rotation_failing = false;
        if let Some(dir) = self.path.parent() {
            // Make the rename itself durable.
            let synced = File::open(dir).and_then(|d| d.sync_all());
            if let Err(error) = synced {
                tracing::warn!(
                    %error,
                    "audit folder not synced after rotation"
                );
            }
        }
        tracing::info!(rotated = %target.display(), "audit file rotated");
        self.ensure_open()
    }
}

//! The one owner of the audit file, running on its own thread.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot};

use super::{AuditError, Job, Record, chain};
use crate::config::{AuditConfig, SyncMode};

/// Most records taken into one write and fsync.
const MAX_BATCH: usize = 512;

/// How much of the file's end is read at start to find the last record.
const TAIL_BYTES: u64 = 64 * 1024;

pub(super) struct Writer {
    path: PathBuf,
    sync: SyncMode,
    stdout: bool,
    file: Option<File>,
    /// Sequence number of the last record on disk.
    seq: u64,
    /// Hash of the last record on disk.
    prev: String,
    healthy: Arc<AtomicBool>,
}

type Ack = Option<oneshot::Sender<Result<(), AuditError>>>;

impl Writer {
    /// Prepares the writer and finds where the chain in the file ends.
    pub(super) fn open(
        config: &AuditConfig,
        healthy: Arc<AtomicBool>,
    ) -> Result<Self, AuditError> {
        let mut writer = Writer {
            path: config.file.clone(),
            sync: config.sync,
            stdout: config.stdout,
            file: None,
            seq: 0,
            prev: chain::GENESIS.into(),
            healthy,
        };
        // A file that cannot be opened now is reported through readiness
        // and 503s; a file whose end is torn must not be appended to.
        match writer.ensure_open() {
            Ok(()) => writer.healthy.store(true, Ordering::Release),
            Err(AuditError::TornTail { path }) => {
                return Err(AuditError::TornTail { path });
            }
            Err(error) => tracing::error!(%error, "audit file not writable"),
        }
        Ok(writer)
    }

    /// Serves jobs until the queue closes or a close job arrives.
    pub(super) fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        while let Some(first) = jobs.blocking_recv() {
            let mut batch = Vec::new();
            let mut close = None;
            let mut next = Some(first);
            while let Some(job) = next.take() {
                match job {
                    Job::Write { record, done } => batch.push((record, done)),
                    Job::Close { done } => {
                        close = Some(done);
                        break;
                    }
                }
                if batch.len() < MAX_BATCH {
                    next = jobs.try_recv().ok();
                }
            }

            if !batch.is_empty() {
                self.write_batch(batch);
            }
            if let Some(done) = close {
                if let Some(file) = &self.file {
                    let _ = file.sync_all();
                }
                let _ = done.send(());
                return;
            }
        }
    }

    fn write_batch(&mut self, batch: Vec<(Box<Record>, Ack)>) {
        if self.sync == SyncMode::Always {
            // One record, one fsync: each is written and synced alone.
            for item in batch {
                self.commit(vec![item]);
            }
        } else {
            self.commit(batch);
        }
    }

    /// Writes records as one append, syncs per mode, then answers.
    fn commit(&mut self, batch: Vec<(Box<Record>, Ack)>) {
        let mut buf = Vec::with_capacity(batch.len() * 512);
        let mut seq = self.seq;
        let mut prev = self.prev.clone();
        let mut acks = Vec::with_capacity(batch.len());
        for (mut record, done) in batch {
            seq += 1;
            record.seq = seq;
            record.ts =
                humantime::format_rfc3339_micros(SystemTime::now()).to_string();
            record.prev = prev;
            let unsealed = serde_json::to_vec(&record)
                .expect("audit records always serialize");
            let (line, hash) = chain::seal(&unsealed);
            buf.extend_from_slice(&line);
            buf.push(b'\n');
            prev = hash;
            acks.push(done);
        }

        let result = self.append(&buf);
        match &result {
            Ok(()) => {
                self.seq = seq;
                self.prev = prev;
                if !self.healthy.swap(true, Ordering::AcqRel) {
                    tracing::info!(path = %self.path.display(), "audit file writable again");
                }
                if self.stdout {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&buf).and_then(|()| out.flush());
                }
            }
            Err(error) => {
                // Log once per episode; the counter of failures is the
                // stream of 503s, each of which is in the caller's hands.
                if self.healthy.swap(false, Ordering::AcqRel) {
                    tracing::error!(%error, "audit write failed; refusing calls");
                }
                self.file = None;
            }
        }
        for done in acks.into_iter().flatten() {
            let _ = done.send(result.clone());
        }
    }

    fn append(&mut self, buf: &[u8]) -> Result<(), AuditError> {
        self.ensure_open()?;
        let path = self.path.display().to_string();
        let file = self.file.as_mut().expect("ensure_open leaves a file");
        let fail = |e: std::io::Error| AuditError::Write {
            path: path.clone(),
            reason: e.to_string(),
        };

        let before = file.metadata().map(|m| m.len()).ok();
        let written = file.write_all(buf).and_then(|()| match self.sync {
            SyncMode::None => Ok(()),
            SyncMode::Batch | SyncMode::Always => file.sync_data(),
        });
        if let Err(error) = written {
            // Cut off a partial append so the chain on disk stays whole.
            if let Some(len) = before {
                let _ = file.set_len(len);
            }
            return Err(fail(error));
        }
        Ok(())
    }

    /// Opens the file for appending if it is not open, continuing the chain
    /// from its last record.
    fn ensure_open(&mut self) -> Result<(), AuditError> {
        if self.file.is_some() {
            return Ok(());
        }
        let path = self.path.display().to_string();
        let fail = |e: std::io::Error| AuditError::Write {
            path: path.clone(),
            reason: e.to_string(),
        };
        if let Some(dir) =
            self.path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.path)
            .map_err(fail)?;

        if let Some((seq, hash)) = last_record(&mut file, &path)? {
            self.seq = seq;
            self.prev = hash;
        }
        self.file = Some(file);
        Ok(())
    }
}

/// The sequence number and hash of the file's last record, if any.
fn last_record(
    file: &mut File,
    path: &str,
) -> Result<Option<(u64, String)>, AuditError> {
    let meta = file.metadata().map_err(|e| AuditError::Write {
        path: path.into(),
        reason: e.to_string(),
    })?;
    // Devices and pipes have no tail to read.
    if !meta.is_file() || meta.len() == 0 {
        return Ok(None);
    }
    let start = meta.len().saturating_sub(TAIL_BYTES);
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(start))
        .and_then(|_| file.read_to_end(&mut tail))
        .map_err(|e| AuditError::Write {
            path: path.into(),
            reason: e.to_string(),
        })?;

    let torn = || AuditError::TornTail { path: path.into() };
    let body = tail.strip_suffix(b"\n").ok_or_else(torn)?;
    let line = body.rsplit(|b| *b == b'\n').next().ok_or_else(torn)?;
    let (stored, computed) = chain::open(line).ok_or_else(torn)?;
    if stored != computed {
        return Err(torn());
    }
    #[derive(serde::Deserialize)]
    struct Seq {
        seq: u64,
    }
    let parsed: Seq = serde_json::from_slice(line).map_err(|_| torn())?;
    Ok(Some((parsed.seq, stored)))
}

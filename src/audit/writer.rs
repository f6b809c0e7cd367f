//! The one owner of the audit file, running on its own thread.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};

mod active;

use super::chain::{self, ChainKey};
use super::record::{Detail, REASON_TORN_TAIL, REASON_WRITE_FAILED};
use super::tail::{Tail, Tip, Torn};
use super::{AuditError, Event, Job, Record, Shared};
use crate::config::{AuditConfig, SyncMode};

/// Most records taken into one write and fsync.
const MAX_BATCH: usize = 512;

/// How often the writer retries on its own while writes fail, so that the
/// proxy turns ready again without waiting for traffic that a not-ready
/// replica would never get.
const RETRY_EVERY: Duration = Duration::from_secs(1);

type Ack = Option<oneshot::Sender<Result<(), AuditError>>>;

/// A time when records could not be written.
struct Outage {
    since: SystemTime,
    failed_records: u64,
    error: String,
}

pub(super) struct Writer {
    path: PathBuf,
    sync: SyncMode,
    stdout: bool,
    key: Option<ChainKey>,
    rotate_bytes: u64,
    file: Option<File>,
    /// Whether the target is a regular file: devices and pipes have no
    /// tail to inspect, nothing to fsync and nothing to rotate.
    regular: bool,
    /// Bytes in the active file.
    size: u64,
    /// The last record on disk.
    tip: Tip,
    /// What the end of the file held when it was last opened.
    tail: Tail,
    outage: Option<Outage>,
    /// Copying to stdout failed last time.
    stdout_failing: bool,
    /// Renaming the active file failed last time.
    rotation_failing: bool,
    shared: Arc<Shared>,
}

impl Writer {
    /// Opens the active file and finds where its chain ends.
    pub(super) fn open(
        config: &AuditConfig,
        shared: Arc<Shared>,
    ) -> Result<Self, AuditError> {
        let mut writer = Writer {
            path: config.active_path(),
            sync: config.sync,
            stdout: config.stdout,
            key: config.hmac_key.clone(),
            rotate_bytes: config.rotate_bytes,
            file: None,
            regular: true,
            size: 0,
            tip: Tip {
                seq: 0,
                hash: chain::GENESIS.into(),
            },
            tail: Tail::default(),
            outage: None,
            stdout_failing: false,
            rotation_failing: false,
            shared,
        };
        // A file that cannot be opened now is reported through readiness
        // and 503s; a chain that cannot be continued stops the start.
        match writer.ensure_open() {
            Ok(()) => writer.shared.healthy.store(true, Ordering::Release),
            Err(e @ AuditError::Write { .. }) => writer.failed(&e, 0),
            Err(error) => return Err(error),
        }
        Ok(writer)
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Serves jobs until the queue closes or a close job arrives.
    pub(super) fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        else {
            tracing::error!("audit writer cannot start its timer; stopped");
            return;
        };
        // Name a torn tail at once, before anything else can happen.
        if self.tail.torn.is_some() {
            self.commit(Vec::new());
        }
        loop {
            let failing = self.outage.is_some();
            let first = runtime.block_on(async {
                if failing {
                    tokio::time::timeout(RETRY_EVERY, jobs.recv()).await
                } else {
                    Ok(jobs.recv().await)
                }
            });
            let first = match first {
                Ok(Some(job)) => job,
                Ok(None) => return,
                Err(_) => {
                    // Nothing to write: try to record the outage itself.
                    self.commit(Vec::new());
                    continue;
                }
            };

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

            if self.sync == SyncMode::Always {
                // One record, one fsync: each is written and synced alone.
                for item in batch {
                    self.commit(vec![item]);
                }
            } else if !batch.is_empty() {
                self.commit(batch);
            }
            if let Some(done) = close {
                if let Some(file) = self.file.take()
                    && self.sync != SyncMode::None
                {
                    self.sync_file(&file);
                }
                let _ = done.send(());
                return;
            }
        }
    }

    /// Writes records as one append, syncs per mode, then answers.
    fn commit(&mut self, batch: Vec<(Box<Record>, Ack)>) {
        let count = batch.len() as u64;
        let (records, acks): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|(r, done)| (*r, done)).unzip();
        let result = self.write(records);
        match &result {
            Ok(()) => self.recovered(),
            Err(error) => self.failed(error, count),
        }
        for done in acks.into_iter().flatten() {
            let _ = done.send(result.clone());
        }
    }

    fn write(&mut self, records: Vec<Record>) -> Result<(), AuditError> {
        self.ensure_open()?;

        // The writer's own records come first: a torn tail's recovery must
        // directly follow the torn lines, and an outage precedes whatever
        // could be written after it.
        let mut own = Vec::new();
        if let Some(torn) = &self.tail.torn {
            own.push(self.torn_record(torn));
        }
        if let Some(outage) = &self.outage {
            own.push(outage_record(outage));
        }
        let recovering = self.tail.torn.is_some() || self.tail.needs_newline;
        let (lines, tip) = self.seal(own.into_iter().chain(records));

        let mut buf = Vec::with_capacity(lines.len() + 1);
        if self.tail.needs_newline {
            buf.push(b'\n');
        }
        buf.extend_from_slice(&lines);
        if lines.is_empty() {
            return Ok(());
        }
        // Never between torn lines and the recovery that names them, nor
        // before the newline that ends the old file's last line.
        if !recovering && self.is_due_for_rotation(buf.len() as u64) {
            self.rotate()?;
        }
        self.append(&buf)?;

        self.tip = tip;
        self.tail = Tail::default();
        if self.stdout {
            self.copy_to_stdout(&lines);
        }
        Ok(())
    }

    /// Stdout is a copy for a log collector: the file is the trail, so a
    /// failure here is reported (once until it works again) but does not
    /// fail the records.
    fn copy_to_stdout(&mut self, lines: &[u8]) {
        let mut out = std::io::stdout().lock();
        match out.write_all(lines).and_then(|()| out.flush()) {
            Ok(()) => self.stdout_failing = false,
            Err(error) if !self.stdout_failing => {
                self.stdout_failing = true;
                tracing::warn!(%error, "audit records not copied to stdout");
            }
            Err(_) => {}
        }
    }

    /// Numbers, timestamps, links and seals records; returns the lines to
    /// append and the tip they leave.
    fn seal(&self, records: impl Iterator<Item = Record>) -> (Vec<u8>, Tip) {
        let mut lines = Vec::new();
        let mut tip = self.tip.clone();
        for mut record in records {
            record.seq = tip.seq + 1;
            record.ts =
                humantime::format_rfc3339_micros(SystemTime::now()).to_string();
            record.prev = tip.hash;
            let unsealed = serde_json::to_vec(&record)
                .expect("audit records always serialize");
            let (line, hash) = chain::seal_with(self.key.as_ref(), &unsealed);
            lines.extend_from_slice(&line);
            lines.push(b'\n');
            tip = Tip {
                seq: record.seq,
                hash,
            };
        }
        (lines, tip)
    }

    fn torn_record(&self, torn: &Torn) -> Record {
        let mut record = Record::fresh(Event::Recovery);
        record.reason = Some(REASON_TORN_TAIL.into());
        record.detail = Some(Detail::Torn {
            file: file_name(&self.path),
            line: torn.line,
            lines: torn.lines,
            bytes: torn.bytes,
        });
        record
    }

    fn recovered(&mut self) {
        if let Some(outage) = self.outage.take() {
            tracing::info!(
                path = %self.path.display(),
                failed_records = outage.failed_records,
                "audit file writable again; serving"
            );
        }
        self.shared.healthy.store(true, Ordering::Release);
    }

    fn failed(&mut self, error: &AuditError, records: u64) {
        self.shared
            .write_failures
            .fetch_add(records, Ordering::Relaxed);
        self.shared.healthy.store(false, Ordering::Release);
        // Reopen on the next attempt: the file may have been replaced, and
        // its end must be inspected again.
        self.file = None;
        match &mut self.outage {
            Some(outage) => outage.failed_records += records,
            None => {
                // Once per episode; readiness and the counter tell the rest.
                tracing::error!(%error, "audit write failed; refusing calls");
                self.outage = Some(Outage {
                    since: SystemTime::now(),
                    failed_records: records,
                    error: error.to_string(),
                });
            }
        }
    }

    fn append(&mut self, buf: &[u8]) -> Result<(), AuditError> {
        let file = self.file.as_mut().expect("ensure_open leaves a file");
        let written = file.write_all(buf).and_then(|()| {
            match (self.sync, self.regular) {
                (SyncMode::None, _) | (_, false) => Ok(()),
                (SyncMode::Batch | SyncMode::Always, true) => {
                    let synced = file.sync_data();
                    self.shared.syncs.fetch_add(1, Ordering::Relaxed);
                    synced
                }
            }
        });
        if let Err(error) = written {
            // Cut off a partial append so the file ends on a whole record.
            if self.regular {
                let _ = file.set_len(self.size);
            }
            return Err(self.error(error));
        }
        self.size += buf.len() as u64;
        Ok(())
    }

    fn sync_file(&self, file: &File) {
        if self.regular && file.sync_all().is_ok() {
            self.shared.syncs.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn error(&self, error: std::io::Error) -> AuditError {
        AuditError::Write {
            path: self.path.display().to_string(),
            reason: error.to_string(),
        }
    }
}

fn outage_record(outage: &Outage) -> Record {
    let mut record = Record::fresh(Event::Recovery);
    record.reason = Some(REASON_WRITE_FAILED.into());
    record.detail = Some(Detail::Outage {
        since: humantime::format_rfc3339_micros(outage.since).to_string(),
        failed_records: outage.failed_records,
        error: outage.error.clone(),
    });
    record
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

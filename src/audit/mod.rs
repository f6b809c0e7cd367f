//! Step 6 and 8: the audit trail.
//!
//! Requests hand records to one writer thread that owns the file. The writer
//! takes every record waiting in its queue, appends them in one write, makes
//! them durable with one fsync (group commit) and only then answers the
//! requests that wait for durability. Blocking file I/O therefore never runs
//! on the async workers, and concurrent requests share fsyncs.
//!
//! The queue is bounded: when it is full, a request waits at most
//! `audit.queue_timeout` for room and is then refused, never dropped
//! silently. A record that cannot be written fails its request closed; the
//! writer retries on its own and, once a write succeeds again, records how
//! long it could not write before anything else.

pub mod chain;
pub mod files;
mod record;
pub mod show;
mod tail;
pub mod verify;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::config::AuditConfig;
pub use files::active_path;
pub use record::{
    Caller, Detail, Event, Link, REASON_TORN_TAIL, REASON_WRITE_FAILED,
    RECORD_VERSION, Record,
};

/// How many records may wait for the writer before callers wait too.
const QUEUE_CAPACITY: usize = 4096;

/// Why the audit trail could not take a record.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    /// The file could not be opened, written or synced.
    #[error("audit file {path} cannot be written: {reason}")]
    Write { path: String, reason: String },
    /// No room in the writer's queue within `audit.queue_timeout`.
    #[error("audit queue stayed full for {waited:?}")]
    QueueFull { waited: Duration },
    /// The file's chain cannot be continued under the configured key.
    #[error(
        "audit file {path}: its last record does not verify under the \
         configured key (another audit.hmac_key_file, or the file was \
         edited); check it with 'cancelguard audit verify', and move it \
         aside to start a new trail"
    )]
    Unverifiable { path: String },
    /// The file ends in more damage than a torn write leaves.
    #[error(
        "audit file {path}: no complete record in its last lines; check it \
         with 'cancelguard audit verify', and move it aside to start a new \
         trail"
    )]
    Damaged { path: String },
    /// The writer thread is gone.
    #[error("audit writer has stopped")]
    Stopped,
}

enum Job {
    Write {
        record: Box<Record>,
        done: Option<oneshot::Sender<Result<(), AuditError>>>,
    },
    Close {
        done: oneshot::Sender<()>,
    },
}

/// State shared by the handle and the writer thread.
#[derive(Default)]
struct Shared {
    /// True while the last write succeeded.
    healthy: AtomicBool,
    /// Records that did not reach the trail.
    write_failures: AtomicU64,
    /// fsync calls made by the writer.
    syncs: AtomicU64,
    /// True while callers find the queue full; logs once per episode.
    congested: AtomicBool,
}

/// A handle on the audit writer; cheap to share.
#[derive(Clone)]
pub struct Audit {
    queue: mpsc::Sender<Job>,
    shared: Arc<Shared>,
    path: Arc<PathBuf>,
    queue_timeout: Duration,
}

impl Audit {
    /// Opens the active file and starts the writer thread. A file that
    /// cannot be opened now does not stop the proxy: it reports not ready
    /// and answers 503 until a write succeeds. A file whose chain cannot be
    /// continued (its last record does not verify) is an error.
    pub fn start(config: &AuditConfig) -> Result<Self, AuditError> {
        let (queue, jobs) = mpsc::channel(QUEUE_CAPACITY);
        let shared = Arc::new(Shared::default());
        let writer = writer::Writer::open(config, shared.clone())?;
        let path = Arc::new(writer.path().to_path_buf());
        std::thread::Builder::new()
            .name("cancelguard-audit".into())
            .spawn(move || writer.run(jobs))
            .map_err(|e| AuditError::Write {
                path: path.display().to_string(),
                reason: format!("cannot start writer thread: {e}"),
            })?;
        Ok(Self {
            queue,
            shared,
            path,
            queue_timeout: config.queue_timeout,
        })
    }

    /// Appends a record and waits until it is as durable as `audit.sync`
    /// asks. An error means the record is not in the trail.
    pub async fn record_durable(
        &self,
        record: Record,
    ) -> Result<(), AuditError> {
        let (done, wait) = oneshot::channel();
        self.enqueue(record, Some(done)).await?;
        wait.await.map_err(|_| AuditError::Stopped)?
    }

    /// Appends a record without waiting for it to reach disk. A record that
    /// cannot be queued or written is logged and counted.
    pub async fn record(&self, record: Record) {
        if let Err(error) = self.enqueue(record, None).await {
            tracing::warn!(%error, "audit record not queued");
        }
    }

    async fn enqueue(
        &self,
        record: Record,
        done: Option<oneshot::Sender<Result<(), AuditError>>>,
    ) -> Result<(), AuditError> {
        let job = Job::Write {
            record: Box::new(record),
            done,
        };
        let sent =
            tokio::time::timeout(self.queue_timeout, self.queue.send(job))
                .await;
        match sent {
            Ok(Ok(())) => {
                if self.shared.congested.swap(false, Ordering::AcqRel) {
                    tracing::info!("audit queue has room again");
                }
                Ok(())
            }
            Ok(Err(_)) => {
                self.count_failure();
                Err(AuditError::Stopped)
            }
            Err(_) => {
                self.count_failure();
                if !self.shared.congested.swap(true, Ordering::AcqRel) {
                    tracing::error!(
                        waited = ?self.queue_timeout,
                        "audit queue full; refusing calls"
                    );
                }
                Err(AuditError::QueueFull {
                    waited: self.queue_timeout,
                })
            }
        }
    }

    fn count_failure(&self) {
        self.shared.write_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// True while the last write succeeded.
    pub fn is_healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Acquire)
    }

    /// How many records did not reach the trail since start: writes that
    /// failed and records refused because the queue stayed full.
    pub fn write_failures(&self) -> u64 {
        self.shared.write_failures.load(Ordering::Relaxed)
    }

    /// How many fsyncs the writer has made since start.
    pub fn syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    /// The active audit file: `audit.file` with the replica in its name.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes what is queued, syncs, and stops the writer.
    pub async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Job::Close { done }).await.is_ok() {
            let _ = wait.await;
        }
    }
}

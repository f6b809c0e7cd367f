//! Step 6 and 8: the audit trail.
//!
//! Requests hand records to one writer thread that owns the file. The writer
//! takes every record waiting in its queue, appends them in one write, makes
//! them durable with one fsync (group commit) and only then answers the
//! requests that wait for durability. Blocking file I/O therefore never runs
//! on the async workers, and concurrent requests share fsyncs.

pub mod chain;
pub mod verify;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::config::AuditConfig;

/// Version of the record format.
pub const RECORD_VERSION: u32 = 1;

/// How many records may wait for the writer before callers wait too.
const QUEUE_CAPACITY: usize = 4096;

/// Why the audit trail could not take a record.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    #[error("audit file {path} cannot be written: {reason}")]
    Write { path: String, reason: String },
    #[error(
        "audit file {path} ends in an incomplete record; check it with 'cancelguard audit verify'"
    )]
    TornTail { path: String },
    #[error("audit writer has stopped")]
    Stopped,
}

/// What a record is about.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    Start,
    Stop,
    Decision,
    Outcome,
}

/// Who called, as far as the token says.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Caller {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
}

/// One audit record. The writer fills `v`, `seq`, `ts` and `prev`, and
/// appends `hash`; field order here is the order on disk.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub v: u32,
    pub seq: u64,
    pub ts: String,
    pub id: String,
    pub event: Event,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<Caller>,
    /// Claims of a token that failed verification: for investigation only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unverified: Option<Caller>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_ms: Option<u64>,
    pub prev: String,
}

impl Record {
    /// An empty record of `event` for audit id `id`.
    pub fn new(event: Event, id: impl Into<String>) -> Self {
        Self {
            v: RECORD_VERSION,
            seq: 0,
            ts: String::new(),
            id: id.into(),
            event,
            client_request_id: None,
            remote_addr: None,
            method: None,
            path: None,
            target: None,
            caller: None,
            unverified: None,
            decision: None,
            reason: None,
            rule: None,
            mode: None,
            status: None,
            upstream_ms: None,
            prev: String::new(),
        }
    }
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

/// A handle on the audit writer; cheap to share.
#[derive(Clone)]
pub struct Audit {
    queue: mpsc::Sender<Job>,
    healthy: Arc<AtomicBool>,
    path: Arc<PathBuf>,
}

impl Audit {
    /// Starts the writer thread. The file is opened now if possible; if it
    /// cannot be, the proxy still starts, reports not ready, and answers 503
    /// to calls until a write succeeds.
    pub fn start(config: &AuditConfig) -> Result<Self, AuditError> {
        let (queue, jobs) = mpsc::channel(QUEUE_CAPACITY);
        let healthy = Arc::new(AtomicBool::new(false));
        let writer = writer::Writer::open(config, healthy.clone())?;
        std::thread::Builder::new()
            .name("cancelguard-audit".into())
            .spawn(move || writer.run(jobs))
            .map_err(|e| AuditError::Write {
                path: config.file.display().to_string(),
                reason: format!("cannot start writer thread: {e}"),
            })?;
        Ok(Self {
            queue,
            healthy,
            path: Arc::new(config.file.clone()),
        })
    }

    /// Appends a record and waits until it is as durable as `audit.sync`
    /// asks. An error means the record is not in the trail.
    pub async fn record_durable(
        &self,
        record: Record,
    ) -> Result<(), AuditError> {
        let (done, wait) = oneshot::channel();
        let job = Job::Write {
            record: Box::new(record),
            done: Some(done),
        };
        self.queue
            .send(job)
            .await
            .map_err(|_| AuditError::Stopped)?;
        wait.await.map_err(|_| AuditError::Stopped)?
    }

    /// Appends a record without waiting for it to reach disk; failures are
    /// logged by the writer.
    pub async fn record(&self, record: Record) {
        let job = Job::Write {
            record: Box::new(record),
            done: None,
        };
        if self.queue.send(job).await.is_err() {
            tracing::error!("audit writer has stopped; record lost");
        }
    }

    /// True while the last write succeeded.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// The audit file.
    pub fn path(&self) -> &std::path::Path {
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

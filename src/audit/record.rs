//! What one line of the audit trail holds.

use serde::{Deserialize, Serialize};

/// Version of the record format.
pub const RECORD_VERSION: u32 = 1;

/// What a record is about.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// The proxy started writing to this trail.
    Start,
    /// The proxy stopped cleanly.
    Stop,
    /// The configuration in force, by digest.
    Config,
    /// A cancelAll attempt was decided (allowed or refused).
    Decision,
    /// Graph's answer to a forwarded call.
    Outcome,
    /// The writer recovered: from a torn tail left by a crash, or from a
    /// time when records could not be written.
    Recovery,
}

impl Event {
    /// The spelling on disk.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Start => "start",
            Event::Stop => "stop",
            Event::Config => "config",
            Event::Decision => "decision",
            Event::Outcome => "outcome",
            Event::Recovery => "recovery",
        }
    }
}

/// `reason` of a recovery from a torn tail.
pub const REASON_TORN_TAIL: &str = "torn_tail";

/// `reason` of a recovery from a time when writes failed.
pub const REASON_WRITE_FAILED: &str = "write_failed";

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

/// Facts that only some events carry, under the record's `detail` field.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Detail {
    /// Of `start`: what is writing this trail.
    Start {
        version: &'static str,
        replica: String,
        /// `sha256` or `hmac-sha256`.
        hash: &'static str,
    },
    /// Of `config`: which configuration is in force.
    Config {
        /// The config file as given on the command line.
        file: String,
        /// SHA-256 (hex) of the config file's bytes.
        sha256: String,
        /// Names of `CANCELGUARD__…` variables that override keys of the
        /// file; their values are not recorded.
        overrides: Vec<String>,
    },
    /// Of `recovery` with reason `torn_tail`: the incomplete lines left in
    /// place just before this record.
    Torn {
        /// The file as it was named when recovering.
        file: String,
        /// 1-based number of the first torn line.
        line: u64,
        /// How many torn lines there are.
        lines: u64,
        /// How many bytes they hold, newlines included.
        bytes: u64,
    },
    /// Of `recovery` with reason `write_failed`: the time records could not
    /// be written.
    Outage {
        /// When the first write failed (RFC 3339).
        since: String,
        /// Records that could not be written meanwhile; each of their calls
        /// was refused with 503 if it was a decision.
        failed_records: u64,
        /// The first error, as the OS reported it.
        error: String,
    },
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Detail>,
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
            detail: None,
            prev: String::new(),
        }
    }

    /// A record of `event` under a fresh audit id.
    pub fn fresh(event: Event) -> Self {
        Self::new(event, uuid::Uuid::new_v4().to_string())
    }
}

/// The fields of a written line that chain checks read.
#[derive(Debug, Deserialize)]
pub struct Link {
    pub seq: u64,
    pub prev: String,
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub detail: Option<LinkDetail>,
}

/// The parts of `detail` that chain checks read.
#[derive(Debug, Default, Deserialize)]
pub struct LinkDetail {
    #[serde(default)]
    pub line: Option<u64>,
    #[serde(default)]
    pub lines: Option<u64>,
    #[serde(default)]
    pub hash: Option<String>,
}

impl Link {
    /// True for a recovery record that names torn lines.
    pub fn is_torn_recovery(&self) -> bool {
        self.event.as_deref() == Some("recovery")
            && self.reason.as_deref() == Some(REASON_TORN_TAIL)
    }

    /// The torn lines a recovery record names: first line and count.
    pub fn torn_range(&self) -> Option<(u64, u64)> {
        let detail = self.detail.as_ref()?;
        Some((detail.line?, detail.lines?))
    }
}

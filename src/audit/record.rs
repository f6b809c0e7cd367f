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
    /// Tenant id (`tid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    /// User object id (`oid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oid: Option<String>,
    /// `upn` or `preferred_username`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    /// Calling application (`appid` or `azp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// `uti`/`jti`, or a short digest of the token; never the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
}

/// Facts that only some events carry, under the record's `detail` field.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Detail {
    /// Of `start`: what is writing this trail.
    Start {
        /// cancelguard's version.
        version: &'static str,
        /// The replica name in the file names.
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
    /// Format version, [`RECORD_VERSION`].
    pub v: u32,
    /// Position in the chain, from 1; set by the writer.
    pub seq: u64,
    /// RFC 3339 UTC with microseconds; set by the writer.
    pub ts: String,
    /// Audit id; a call's decision and outcome share it.
    pub id: String,
    /// What the record is about.
    pub event: Event,
    /// The caller's or a generated one; also sent to Graph.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
    /// The caller's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<String>,
    /// As the caller sent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// As the caller sent it, cut at 1024 bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The request id being cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The verified caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<Caller>,
    /// Claims of a token that failed verification: for investigation only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unverified: Option<Caller>,
    /// `allow` or `deny`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<&'static str>,
    /// Why, as a fixed code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The rule that decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// `enforce` or `dry-run`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
    /// The status the caller got, or Graph's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Graph's latency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_ms: Option<u64>,
    /// Facts of `start`, `config` and `recovery` records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Detail>,
    /// The previous record's hash; set by the writer.
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
    /// Position in the chain.
    pub seq: u64,
    /// The previous record's hash.
    pub prev: String,
    /// The event, if the line names one.
    #[serde(default)]
    pub event: Option<String>,
    /// The reason, if any.
    #[serde(default)]
    pub reason: Option<String>,
    /// The detail, if any.
    #[serde(default)]
    pub detail: Option<LinkDetail>,
}

/// The parts of `detail` that chain checks read.
#[derive(Debug, Default, Deserialize)]
pub struct LinkDetail {
    /// First torn line, of a torn-tail recovery.
    #[serde(default)]
    pub line: Option<u64>,
    /// Number of torn lines, of a torn-tail recovery.
    #[serde(default)]
    pub lines: Option<u64>,
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

//! `[audit]`: where the trail goes, how hard it is pushed to disk, how it
//! is keyed and rotated.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::RawAudit;
use crate::audit::chain::ChainKey;
use crate::audit::files;

/// Smallest `audit.rotate_bytes` above 0: smaller would start a file for
/// nearly every batch.
const MIN_ROTATE_BYTES: u64 = 4096;

/// Longest `audit.queue_timeout`: a caller should hear 503 well before
/// its own client gives up.
const MAX_QUEUE_TIMEOUT: Duration = Duration::from_secs(60);

/// How hard the audit writer pushes records to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// One fsync shared by every record written together (group commit).
    Batch,
    /// One fsync per record.
    Always,
    /// No fsync; the OS decides. For tests and throwaway setups.
    None,
}

impl SyncMode {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Batch => "batch",
            SyncMode::Always => "always",
            SyncMode::None => "none",
        }
    }
}

/// `[audit]`, checked.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// The configured path (`audit.file`); the active file adds the
    /// replica to its name, see [`AuditConfig::active_path`].
    pub file: PathBuf,
    /// How hard records are pushed to disk.
    pub sync: SyncMode,
    /// Also copy each record to stdout.
    pub stdout: bool,
    /// Key of a keyed chain (HMAC-SHA256); `None` for plain SHA-256.
    pub hmac_key: Option<ChainKey>,
    /// Size at which the active file is rotated; 0 never rotates.
    pub rotate_bytes: u64,
    /// Names this replica's files.
    pub replica: String,
    /// How long a call waits for room in a full writer queue.
    pub queue_timeout: Duration,
}

impl AuditConfig {
    /// The defaults for a trail at `file`, under replica name `replica`.
    pub fn new(file: impl Into<PathBuf>, replica: &str) -> Self {
        let raw = RawAudit::default();
        Self {
            file: file.into(),
            sync: SyncMode::Batch,
            stdout: raw.stdout,
            hmac_key: None,
            rotate_bytes: raw.rotate_bytes,
            replica: replica.into(),
            queue_timeout: humantime::parse_duration(&raw.queue_timeout)
                .expect("the default queue timeout parses"),
        }
    }

    /// The file records are appended to.
    pub fn active_path(&self) -> PathBuf {
        files::active_path(&self.file, &self.replica)
    }
}

/// Checks `[audit]`; relative paths are joined to `base`.
pub(super) fn check(
    raw: &RawAudit,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<AuditConfig, (&'static str, String)> {
    let sync = match raw.sync.as_str() {
        "batch" => SyncMode::Batch,
        "always" => SyncMode::Always,
        "none" => {
            warnings.push(
                "audit.sync is none: records may be lost on power failure"
                    .into(),
            );
            SyncMode::None
        }
        other => {
            return Err((
                "audit.sync",
                format!("'{other}' is not one of batch, always, none"),
            ));
        }
    };
    if raw.file.trim().is_empty() {
        return Err(("audit.file", "must name a file".into()));
    }

    let replica = match &raw.replica {
        Some(name) if files::is_valid_replica(name) => name.clone(),
        Some(name) => {
            return Err((
                "audit.replica",
                format!(
                    "'{name}' must be 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'"
                ),
            ));
        }
        None => files::default_replica(),
    };

    if raw.rotate_bytes != 0 && raw.rotate_bytes < MIN_ROTATE_BYTES {
        return Err((
            "audit.rotate_bytes",
            format!("must be 0 (never rotate) or at least {MIN_ROTATE_BYTES}"),
        ));
    }

    let queue_timeout =
        humantime::parse_duration(&raw.queue_timeout).map_err(|e| {
            (
                "audit.queue_timeout",
                format!(
                    "'{}' is not a duration like \"2s\": {e}",
                    raw.queue_timeout
                ),
            )
        })?;
    if queue_timeout > MAX_QUEUE_TIMEOUT {
        return Err(("audit.queue_timeout", "must be at most 60s".into()));
    }

    let hmac_key = match &raw.hmac_key_file {
        None => None,
        Some(file) => {
            let path = base.join(file);
            let key = ChainKey::read(&path)
                .map_err(|e| ("audit.hmac_key_file", e.to_string()))?;
            if is_readable_by_others(&path) {
                warnings.push(format!(
                    "audit.hmac_key_file {} is readable by group or other \
                     users; whoever reads it can rewrite the chain",
                    path.display()
                ));
            }
            Some(key)
        }
    };

    Ok(AuditConfig {
        file: base.join(&raw.file),
        sync,
        stdout: raw.stdout,
        hmac_key,
        rotate_bytes: raw.rotate_bytes,
        replica,
        queue_timeout,
    })
}

fn is_readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o044 != 0)
}

//! The hash chain that makes the audit trail tamper-evident.
//!
//! A record is first serialized without its `hash` field; that JSON object
//! (which holds `prev`, the previous record's hash) is the exact input to
//! the hash. The written line is the same object with `,"hash":"<hex>"`
//! inserted before the closing brace. So a verifier can take any line, cut
//! the `,"hash":"…"` member out, and hash what is left: no canonical JSON
//! form is needed, only the bytes as written.
//!
//! The hash is SHA-256, or HMAC-SHA256 under `audit.hmac_key_file`. Plain
//! SHA-256 shows accidental damage and edits by someone who does not bother
//! to recompute the chain; the keyed form also stops someone who can edit
//! the file but does not hold the key.

use std::path::Path;

use aws_lc_rs::{digest, hmac};

/// `prev` of the first record of a chain.
pub const GENESIS: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// Fewest key bytes accepted: HMAC-SHA256 is as strong as its key, and 32
/// bytes match the hash's own size.
pub const MIN_KEY_BYTES: usize = 32;

/// Length of the suffix `,"hash":"<64 hex>"}`.
const SUFFIX_LEN: usize = 9 + 64 + 2;

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file cannot be read.
    #[error("{path}: cannot read: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    /// The key is too short to be safe.
    #[error(
        "{path}: holds {len} bytes; an HMAC key needs at least {MIN_KEY_BYTES} \
         (for example: head -c 32 /dev/urandom > {path})"
    )]
    TooShort { path: String, len: usize },
}

/// The secret of a keyed chain. It never leaves this type: no accessor, and
/// `Debug` prints no key material, so it cannot reach a log or a record.
#[derive(Clone)]
pub struct ChainKey(hmac::Key);

impl ChainKey {
    /// A key from raw bytes, all of them (a trailing newline is key too).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// Reads a key file: raw bytes, at least [`MIN_KEY_BYTES`].
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let bytes =
            std::fs::read(path).map_err(|source| KeyError::Unreadable {
                path: shown.clone(),
                source,
            })?;
        if bytes.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort {
                path: shown,
                len: bytes.len(),
            });
        }
        Ok(Self::from_bytes(&bytes))
    }
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(hmac-sha256, redacted)")
    }
}

/// The name of the hash a chain uses, as the `start` record states it.
pub fn algorithm(key: Option<&ChainKey>) -> &'static str {
    match key {
        Some(_) => "hmac-sha256",
        None => "sha256",
    }
}

/// The lowercase hex hash of `bytes`: SHA-256, or HMAC-SHA256 under `key`.
pub fn hash(key: Option<&ChainKey>, bytes: &[u8]) -> String {
    match key {
        Some(ChainKey(key)) => hex::encode(hmac::sign(key, bytes)),
        None => hex::encode(digest::digest(&digest::SHA256, bytes)),
    }
}

/// Hashes the serialized record (without `hash`) and returns the line to
/// write, without its newline, plus the hash.
pub fn seal_with(key: Option<&ChainKey>, unsealed: &[u8]) -> (Vec<u8>, String) {
    let hash = hash(key, unsealed);
    let body = unsealed
        .strip_suffix(b"}")
        .expect("a serialized record is a JSON object");
    let mut line = Vec::with_capacity(unsealed.len() + SUFFIX_LEN);
    line.extend_from_slice(body);
    line.extend_from_slice(b",\"hash\":\"");
    line.extend_from_slice(hash.as_bytes());
    line.extend_from_slice(b"\"}");
    (line, hash)
}

/// [`seal_with`] for an unkeyed chain.
pub fn seal(unsealed: &[u8]) -> (Vec<u8>, String) {
    seal_with(None, unsealed)
}

/// Splits a written line into the stored hash and the hash recomputed from
/// its content, or `None` when the line does not end in a hash member.
pub fn open_with(
    key: Option<&ChainKey>,
    line: &[u8],
) -> Option<(String, String)> {
    if line.len() < SUFFIX_LEN + 2 {
        return None;
    }
    let (body, suffix) = line.split_at(line.len() - SUFFIX_LEN);
    let stored = suffix.strip_prefix(b",\"hash\":\"")?.strip_suffix(b"\"}")?;
    let stored = std::str::from_utf8(stored).ok()?;
    if !stored
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let mut unsealed = Vec::with_capacity(body.len() + 1);
    unsealed.extend_from_slice(body);
    unsealed.push(b'}');
    Some((stored.to_owned(), hash(key, &unsealed)))
}

/// [`open_with`] for an unkeyed chain.
pub fn open(line: &[u8]) -> Option<(String, String)> {
    open_with(None, line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_line_opens_to_the_same_hash() {
        let (line, hash) = seal(br#"{"v":1,"prev":"00"}"#);
        assert!(line.ends_with(format!(",\"hash\":\"{hash}\"}}").as_bytes()));
        let (stored, computed) = open(&line).expect("a sealed line opens");
        assert_eq!(stored, hash);
        assert_eq!(computed, hash);
    }

    #[test]
    fn a_changed_byte_breaks_the_hash() {
        let (mut line, _) = seal(br#"{"v":1,"decision":"deny","prev":"00"}"#);
        let at = line.windows(4).position(|w| w == b"deny").expect("present");
        line[at..at + 4].copy_from_slice(b"allo");
        let (stored, computed) = open(&line).expect("still well formed");
        assert_ne!(stored, computed);
    }

    #[test]
    fn a_line_without_hash_does_not_open() {
        assert_eq!(open(br#"{"v":1,"prev":"00"}"#), None);
    }

    #[test]
    fn keyed_hash_is_hmac_sha256_of_the_same_bytes() {
        // RFC 4231 test case 2: key "Jefe".
        let key = ChainKey::from_bytes(b"Jefe");
        assert_eq!(
            hash(Some(&key), b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_keyed_line_does_not_verify_without_its_key() {
        let key = ChainKey::from_bytes(&[7; 32]);
        let other = ChainKey::from_bytes(&[8; 32]);
        let (line, hash) = seal_with(Some(&key), br#"{"v":1,"prev":"00"}"#);
        let opened = |k| open_with(k, &line).expect("well formed");
        assert_eq!(opened(Some(&key)).1, hash);
        assert_ne!(opened(Some(&other)).1, hash);
        assert_ne!(opened(None).1, hash);
    }

    #[test]
    fn short_key_files_are_refused_and_keys_never_print() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("key");
        std::fs::write(&path, [1u8; 31]).expect("write");
        let error = ChainKey::read(&path).expect_err("31 bytes");
        assert!(error.to_string().contains("31 bytes"), "{error}");

        std::fs::write(&path, [0x41u8; 32]).expect("write");
        let key = ChainKey::read(&path).expect("32 bytes");
        assert!(!format!("{key:?}").contains("AAAA"));
    }
}

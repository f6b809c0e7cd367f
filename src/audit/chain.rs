//! The hash chain that makes the audit trail tamper-evident.
//!
//! A record is first serialized without its `hash` field; that JSON object
//! (which holds `prev`, the previous record's hash) is the exact input to
//! SHA-256. The written line is the same object with `,"hash":"<hex>"`
//! inserted before the closing brace. So a verifier can take any line, cut
//! the `,"hash":"…"` member out, and hash what is left: no canonical JSON
//! form is needed, only the bytes as written.

use aws_lc_rs::digest;

/// `prev` of the first record of a chain.
pub const GENESIS: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// Length of the suffix `,"hash":"<64 hex>"}`.
const SUFFIX_LEN: usize = 9 + 64 + 2;

/// Hashes the serialized record (without `hash`) and returns the line to
/// write, without its newline, plus the hash.
pub fn seal(unsealed: &[u8]) -> (Vec<u8>, String) {
    let hash = hex::encode(digest::digest(&digest::SHA256, unsealed));
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

/// Splits a written line into the stored hash and the hash recomputed from
/// its content, or `None` when the line does not end in a hash member.
pub fn open(line: &[u8]) -> Option<(String, String)> {
    if line.len() < SUFFIX_LEN + 2 {
        return None;
    }
    let (body, suffix) = line.split_at(line.len() - SUFFIX_LEN);
    let stored = suffix.strip_prefix(b",\"hash\":\"")?.strip_suffix(b"\"}")?;
    let stored = std::str::from_utf8(stored).ok()?;
    if !stored.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut unsealed = Vec::with_capacity(body.len() + 1);
    unsealed.extend_from_slice(body);
    unsealed.push(b'}');
    let computed = hex::encode(digest::digest(&digest::SHA256, &unsealed));
    Some((stored.to_owned(), computed))
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
}

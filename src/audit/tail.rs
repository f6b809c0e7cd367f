//! What the end of an existing trail file says when the writer opens it:
//! where the chain stands, and whether a crash left a torn tail.
//!
//! A crash (power loss more than a killed process) can leave the last
//! append incomplete: a line cut short, or lines of garbage where the file
//! system had allocated blocks but not yet written them. Those lines were
//! never acknowledged, so no call was forwarded on their strength. The
//! writer leaves them in place (no complete record is ever rewritten), and
//! records a `recovery` event that names them right after them.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};

use super::chain::{self, ChainKey};
use super::record::Link;

/// How far back from the end a complete record is looked for. A torn tail
/// is at most one batch, far less than this.
const MAX_SCAN_BYTES: u64 = 8 * 1024 * 1024;

/// Most torn lines one recovery may name; `audit verify` looks no further
/// back from a recovery record than this.
pub const MAX_TORN_LINES: u64 = 4096;

/// The last complete record of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tip {
    pub seq: u64,
    pub hash: String,
}

/// The incomplete lines at a file's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Torn {
    /// 1-based number of the first torn line.
    pub line: u64,
    pub lines: u64,
    /// Bytes they hold, newlines included.
    pub bytes: u64,
}

/// What the end of a file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tail {
    /// The last complete record; `None` when the file holds none.
    pub tip: Option<Tip>,
    pub torn: Option<Torn>,
    /// The file does not end in a newline: one must be written before the
    /// next record, so that it starts on a line of its own.
    pub needs_newline: bool,
}

/// Why the end of a file cannot be continued.
#[derive(Debug)]
pub enum TailFault {
    Io(std::io::Error),
    /// The last complete-looking record does not verify: the file was
    /// edited, or it was written under another key.
    Unverifiable,
    /// No complete record near the end, and too much damage to name.
    Damaged,
}

/// A line that parses as a sealed record, with its hashes.
pub struct Sealed {
    pub link: Link,
    pub stored: String,
    pub computed: String,
}

/// Parses `line` (without newline) as a sealed record.
pub fn sealed(key: Option<&ChainKey>, line: &[u8]) -> Option<Sealed> {
    let (stored, computed) = chain::open_with(key, line)?;
    let link = serde_json::from_slice::<Link>(line).ok()?;
    Some(Sealed {
        link,
        stored,
        computed,
    })
}

/// Reads the end of `file` (a regular file) to find the chain's tip and
/// any torn tail.
pub fn inspect(
    file: &mut File,
    key: Option<&ChainKey>,
) -> Result<Tail, TailFault> {
    let len = file.metadata().map_err(TailFault::Io)?.len();
    let mut window = 64 * 1024;
    loop {
        let start = len.saturating_sub(window);
        let mut buf = Vec::new();
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_to_end(&mut buf))
            .map_err(TailFault::Io)?;

        if let Some(mut tail) = scan(&buf, start == 0, key)? {
            if let Some(torn) = &mut tail.torn {
                let torn_at = len - torn.bytes;
                torn.line = lines_before(file, torn_at)? + 1;
            }
            return Ok(tail);
        }
        if start == 0 || window >= MAX_SCAN_BYTES {
            return Err(TailFault::Damaged);
        }
        window *= 4;
    }
}

/// Walks `buf` (the last bytes of a file) back to its last complete
/// record. `None` when more of the file must be read to find it.
fn scan(
    buf: &[u8],
    whole_file: bool,
    key: Option<&ChainKey>,
) -> Result<Option<Tail>, TailFault> {
    let mut tail = Tail {
        needs_newline: !buf.is_empty() && !buf.ends_with(b"\n"),
        ..Tail::default()
    };
    let mut torn = Torn {
        line: 0,
        lines: 0,
        bytes: 0,
    };
    // Segments from the end; the final one lacks its newline when the
    // file does not end in one.
    let body = buf.strip_suffix(b"\n").unwrap_or(buf);
    let mut segments = body.rsplit(|b| *b == b'\n').peekable();
    let mut first = true;
    while let Some(line) = segments.next() {
        let is_last_segment = segments.peek().is_none();
        // The first bytes of a window are the end of an earlier line.
        if is_last_segment && !whole_file {
            return Ok(None);
        }
        let has_newline = !(first && tail.needs_newline);
        first = false;
        if buf.is_empty() {
            break;
        }

        match sealed(key, line) {
            // A whole record that only lost its newline was written in full
            // but never acknowledged; it is kept as the chain's tip.
            Some(s) if s.stored == s.computed => {
                tail.tip = Some(Tip {
                    seq: s.link.seq,
                    hash: s.stored,
                });
                break;
            }
            Some(_) if has_newline => return Err(TailFault::Unverifiable),
            _ => {
                torn.lines += 1;
                torn.bytes += line.len() as u64 + u64::from(has_newline);
                if torn.lines > MAX_TORN_LINES {
                    return Err(TailFault::Damaged);
                }
            }
        }
    }
    if torn.lines > 0 {
        tail.torn = Some(torn);
    }
    Ok(Some(tail))
}

/// How many newlines `file` holds before byte `end`.
fn lines_before(file: &mut File, end: u64) -> Result<u64, TailFault> {
    file.seek(SeekFrom::Start(0)).map_err(TailFault::Io)?;
    let mut reader = BufReader::new(file.take(end));
    let mut count = 0;
    loop {
        let chunk = reader.fill_buf().map_err(TailFault::Io)?;
        if chunk.is_empty() {
            return Ok(count);
        }
        count += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        let used = chunk.len();
        reader.consume(used);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn record(seq: u64, prev: &str) -> (Vec<u8>, String) {
        let unsealed = format!(r#"{{"v":1,"seq":{seq},"prev":"{prev}"}}"#);
        chain::seal(unsealed.as_bytes())
    }

    fn tail_of(bytes: &[u8]) -> Result<Tail, TailFault> {
        let mut file = tempfile::tempfile().expect("file");
        file.write_all(bytes).expect("write");
        inspect(&mut file, None)
    }

    fn two_records() -> (Vec<u8>, String) {
        let (one, h1) = record(1, chain::GENESIS);
        let (two, h2) = record(2, &h1);
        ([one, b"\n".to_vec(), two, b"\n".to_vec()].concat(), h2)
    }

    #[test]
    fn a_clean_file_ends_at_its_last_record() {
        let (bytes, hash) = two_records();
        let tail = tail_of(&bytes).expect("clean");
        assert_eq!(tail.tip, Some(Tip { seq: 2, hash }));
        assert_eq!(tail.torn, None);
        assert!(!tail.needs_newline);
        assert_eq!(tail_of(b"").expect("empty"), Tail::default());
    }

    #[test]
    fn a_cut_line_and_garbage_are_torn() {
        let (mut bytes, hash) = two_records();
        bytes.extend_from_slice(b"\0\0\0\n{\"v\":1,\"seq\":3,\"pr");
        let tail = tail_of(&bytes).expect("recoverable");
        assert_eq!(tail.tip, Some(Tip { seq: 2, hash }));
        assert_eq!(
            tail.torn,
            Some(Torn {
                line: 3,
                lines: 2,
                bytes: 4 + 18
            })
        );
        assert!(tail.needs_newline);
    }

    #[test]
    fn a_whole_record_without_newline_is_kept() {
        let (mut bytes, _) = two_records();
        let (three, h3) = record(3, "x");
        bytes.extend_from_slice(&three);
        let tail = tail_of(&bytes).expect("recoverable");
        assert_eq!(tail.tip, Some(Tip { seq: 3, hash: h3 }));
        assert_eq!(tail.torn, None);
        assert!(tail.needs_newline);
    }

    #[test]
    fn an_edited_last_record_is_not_continued() {
        let (bytes, _) = two_records();
        let edited = String::from_utf8(bytes)
            .expect("utf8")
            .replace("\"seq\":2", "\"seq\":7");
        assert!(matches!(
            tail_of(edited.as_bytes()),
            Err(TailFault::Unverifiable)
        ));
    }

    #[test]
    fn a_file_of_garbage_only_is_all_torn() {
        let tail = tail_of(b"garbage\nmore").expect("recoverable");
        assert_eq!(tail.tip, None);
        assert_eq!(
            tail.torn,
            Some(Torn {
                line: 1,
                lines: 2,
                bytes: 12
            })
        );
    }
}

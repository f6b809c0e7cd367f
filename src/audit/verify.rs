//! Checking an audit file's hash chain.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::Deserialize;

use super::chain;

/// What is wrong with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The line is not a sealed record.
    Malformed,
    /// The content does not match its own hash.
    Modified,
    /// `prev` does not name the record before it.
    BrokenLink,
    /// `seq` does not follow the record before it.
    OutOfSequence { expected: u64, found: u64 },
    /// The last line has no newline: a write was cut short.
    Torn,
}

/// The first bad record found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line number.
    pub line: usize,
    pub fault: Fault,
}

/// The result of checking one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Records that verified before the first problem, or all of them.
    pub records: usize,
    pub problem: Option<Problem>,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Malformed => f.write_str("not a sealed audit record"),
            Fault::Modified => f.write_str("content does not match its hash (modified)"),
            Fault::BrokenLink => f.write_str(
                "prev does not match the record before (inserted, deleted or reordered)",
            ),
            Fault::OutOfSequence { expected, found } => write!(
                f,
                "seq {found} where {expected} was expected (inserted, deleted or reordered)"
            ),
            Fault::Torn => f.write_str("last line is incomplete (torn write)"),
        }
    }
}

/// Checks the chain of one audit file.
pub fn verify_file(path: &Path) -> std::io::Result<Report> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut prev: Option<(u64, String)> = None;
    let mut records = 0;
    let mut line = Vec::new();
    let mut number = 0;

    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(Report {
                records,
                problem: None,
            });
        }
        number += 1;
        let fail = |fault| {
            Ok(Report {
                records,
                problem: Some(Problem {
                    line: number,
                    fault,
                }),
            })
        };
        let Some(content) = line.strip_suffix(b"\n") else {
            return fail(Fault::Torn);
        };

        let Some((stored, computed)) = chain::open(content) else {
            return fail(Fault::Malformed);
        };
        if stored != computed {
            return fail(Fault::Modified);
        }
        #[derive(Deserialize)]
        struct Link {
            seq: u64,
            prev: String,
        }
        let Ok(link) = serde_json::from_slice::<Link>(content) else {
            return fail(Fault::Malformed);
        };
        if let Some((last_seq, last_hash)) = &prev {
            if link.prev != *last_hash {
                return fail(Fault::BrokenLink);
            }
            if link.seq != last_seq + 1 {
                return fail(Fault::OutOfSequence {
                    expected: last_seq + 1,
                    found: link.seq,
                });
            }
        } else if link.seq == 1 && link.prev != chain::GENESIS {
            return fail(Fault::BrokenLink);
        }

        records += 1;
        prev = Some((link.seq, stored));
    }
}

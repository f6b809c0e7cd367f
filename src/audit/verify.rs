//! Checking audit trails: one file, or a folder holding the rotated and
//! active files of one or more replicas.
//!
//! Each replica's files form one chain, checked across file boundaries.
//! The first bad record of a chain is reported with what is wrong with it;
//! the chain is not checked past it, since everything after a break is
//! unanchored. Torn lines that a `recovery` record names are noted, not
//! failed: a crash left them, and the writer recorded that it did.

mod lines;
mod walk;

use std::path::{Path, PathBuf};

use super::chain::ChainKey;
use super::files;

/// What is wrong with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The line is not a sealed audit record.
    Malformed,
    /// The content does not match its own hash.
    Modified,
    /// The hash matches but `prev` does not name the record before: one of
    /// the two was rewritten with a recomputed hash.
    Relinked,
    /// No record verifies under the key, though they link to each other.
    KeyMismatch,
    /// The record after this one links to the one before it.
    Inserted,
    /// This record and the one at line `twin` both follow the same record.
    Forked { twin: u64 },
    /// `seq` was already used earlier in the chain.
    Repeated { seq: u64 },
    /// Records `first..=last` are missing.
    Deleted {
        first: u64,
        last: u64,
        /// The gap falls between two files.
        across_files: bool,
    },
    /// Record `expected` comes later than its place.
    Reordered { expected: u64, found: u64 },
    /// The last line is incomplete and no recovery names it (yet).
    Torn,
    /// A recovery names torn lines that are not there.
    TornLinesMissing,
}

impl Fault {
    /// The kind of break, in one word or two.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Malformed => "malformed",
            Fault::Modified | Fault::Relinked => "modified",
            Fault::KeyMismatch => "key mismatch",
            Fault::Inserted | Fault::Forked { .. } | Fault::Repeated { .. } => {
                "inserted"
            }
            Fault::Deleted { .. } | Fault::TornLinesMissing => "deleted",
            Fault::Reordered { .. } => "reordered",
            Fault::Torn => "torn",
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.kind())?;
        match self {
            Fault::Malformed => f.write_str("not a sealed audit record"),
            Fault::Modified => f.write_str("content does not match its hash"),
            Fault::Relinked => f.write_str(
                "prev does not match the record before; one of the two \
                 was rewritten",
            ),
            Fault::KeyMismatch => f.write_str(
                "no record verifies under this key, though the records \
                 link to each other; give the key the trail was written \
                 with (--hmac-key-file)",
            ),
            Fault::Inserted => f.write_str(
                "the record after this one links to the one before it",
            ),
            Fault::Forked { twin } => write!(
                f,
                "this record and the one at line {twin} follow the same record"
            ),
            Fault::Repeated { seq } => {
                write!(f, "seq {seq} was already used")
            }
            Fault::Deleted {
                first,
                last,
                across_files,
            } => {
                if first == last {
                    write!(f, "record {first} is missing")?;
                } else {
                    write!(f, "records {first} to {last} are missing")?;
                }
                if *across_files {
                    f.write_str(" (a rotated file may be missing)")?;
                }
                Ok(())
            }
            Fault::Reordered { expected, found } => write!(
                f,
                "seq {found} where {expected} was expected; {expected} \
                 comes later"
            ),
            Fault::Torn => f.write_str(
                "last line is incomplete (a crash cut a write short); the \
                 proxy records a recovery for it at its next start",
            ),
            Fault::TornLinesMissing => f.write_str(
                "this recovery names torn lines that are not before it",
            ),
        }
    }
}

/// The first bad record found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file that holds it.
    pub file: PathBuf,
    /// 1-based line number within `file`.
    pub line: u64,
    /// What is wrong.
    pub fault: Fault,
}

/// Torn lines named by a recovery record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornLines {
    /// The file that holds them.
    pub file: PathBuf,
    /// 1-based number of the first torn line.
    pub line: u64,
    /// How many.
    pub lines: u64,
}

/// The result of checking one replica's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The active file's name, which names the trail.
    pub trail: String,
    /// Files checked.
    pub files: usize,
    /// Records that verified before the first problem, or all of them.
    pub records: usize,
    /// `seq` of the chain's first record; above 1 when older files are
    /// not part of the check.
    pub first_seq: Option<u64>,
    /// Torn lines passed, each named by a recovery record.
    pub torn: Vec<TornLines>,
    /// The first break, if any.
    pub problem: Option<Problem>,
}

impl Report {
    /// True when the chain verified to its end.
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

/// Checks every trail under `path` (a file, or a folder of trails).
pub fn verify_path(
    path: &Path,
    key: Option<&ChainKey>,
) -> std::io::Result<Vec<Report>> {
    files::trails(path)?
        .into_iter()
        .map(|trail| walk::check(trail.name, trail.files, key))
        .collect()
}

/// Checks the files of one trail, oldest first, as one chain.
pub fn verify_files(
    files: Vec<PathBuf>,
    key: Option<&ChainKey>,
) -> std::io::Result<Report> {
    let name = files
        .last()
        .and_then(|f| f.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    walk::check(name, files, key)
}

/// Checks the chain of one unkeyed audit file.
pub fn verify_file(path: &Path) -> std::io::Result<Report> {
    verify_files(vec![path.to_path_buf()], None)
}

//! `cancelguard audit show`: records as a table for people or as JSON
//! lines for tools, filtered, read one line at a time so that files of
//! any size stream through in little memory.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::files;

/// Why `show` stopped.
#[derive(Debug, thiserror::Error)]
pub enum ShowError {
    /// A `--since` or `--until` that is not a time.
    #[error(
        "'{0}' is not a UTC time like 2026-12-03T18:15:00Z or a date like \
         2026-12-03"
    )]
    BadTime(String),
    /// A file or folder that cannot be read.
    #[error("{path}: cannot read: {source}")]
    Unreadable { path: PathBuf, source: io::Error },
    /// Stdout failed (other than a closed pipe).
    #[error("cannot write the output: {0}")]
    Output(io::Error),
}

/// Which records to show; every filter set must match.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Records at or after this time (as written in `ts`).
    pub since: Option<String>,
    /// Records before this time.
    pub until: Option<String>,
    /// The caller's oid or upn, case-insensitive; also matches claims of
    /// tokens that failed verification (`unverified`).
    pub caller: Option<String>,
    /// The request id that was to be cancelled.
    pub target: Option<String>,
    /// `allow` or `deny`.
    pub decision: Option<String>,
    /// A reason code such as `no_matching_rule`.
    pub reason: Option<String>,
    /// An event such as `decision` or `recovery`.
    pub event: Option<String>,
}

impl Filter {
    /// A time bound from `2026-12-03T18:15:00Z`, `2026-12-03 18:15:00.5`
    /// or `2026-12-03` (midnight UTC), in the form records are written in,
    /// so that bounds compare with `ts` as text.
    pub fn time(text: &str) -> Result<String, ShowError> {
        let full = if text.len() == 10 {
            format!("{text}T00:00:00Z")
        } else {
            text.to_owned()
        };
        let at = humantime::parse_rfc3339_weak(&full)
            .map_err(|_| ShowError::BadTime(text.into()))?;
        Ok(humantime::format_rfc3339_micros(at).to_string())
    }

    fn matches(&self, row: &Row) -> bool {
        let same = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_none_or(|w| {
                have.as_ref().is_some_and(|h| h.eq_ignore_ascii_case(w))
            })
        };
        let caller_matches = self.caller.as_ref().is_none_or(|want| {
            [&row.caller, &row.unverified]
                .into_iter()
                .flatten()
                .any(|who| {
                    [&who.oid, &who.upn]
                        .into_iter()
                        .flatten()
                        .any(|id| id.eq_ignore_ascii_case(want))
                })
        });
        self.since.as_ref().is_none_or(|s| row.ts >= *s)
            && self.until.as_ref().is_none_or(|u| row.ts < *u)
            && caller_matches
            && same(&self.target, &row.target)
            && same(&self.decision, &row.decision)
            && same(&self.reason, &row.reason)
            && same(&self.event, &Some(row.event.clone()))
    }
}

/// The fields `show` reads from a record.
#[derive(Debug, Deserialize)]
struct Row {
    ts: String,
    event: String,
    decision: Option<String>,
    reason: Option<String>,
    caller: Option<Who>,
    unverified: Option<Who>,
    target: Option<String>,
    status: Option<u16>,
}

#[derive(Debug, Deserialize)]
struct Who {
    oid: Option<String>,
    upn: Option<String>,
}

/// How output is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A table for people.
    Table,
    /// Matching lines exactly as written, hash included.
    Json,
}

/// Counts of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shown {
    /// Records shown.
    pub matched: u64,
    /// Lines that are not records, reported to `warn` and skipped.
    pub skipped: u64,
}

/// Writes the records under `path` (a file or a folder of trails) that
/// match `filter`, one replica's trail after another, each oldest first.
pub fn show(
    path: &Path,
    filter: &Filter,
    format: Format,
    out: &mut dyn Write,
    warn: &mut dyn Write,
) -> Result<Shown, ShowError> {
    let unreadable = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ShowError::Unreadable { path, source }
    };
    let trails = files::trails(path).map_err(unreadable(path))?;
    let mut shown = Shown::default();
    if format == Format::Table {
        write_row(out, &HEADER).map_err(ShowError::Output)?;
    }
    for file in trails.iter().flat_map(|t| &t.files) {
        let reader = File::open(file).map_err(unreadable(file))?;
        let mut reader = BufReader::new(reader);
        let mut line = Vec::new();
        let mut number = 0u64;
        loop {
            line.clear();
            let read = reader.read_until(b'\n', &mut line);
            if read.map_err(unreadable(file))? == 0 {
                break;
            }
            number += 1;
            let content = line.strip_suffix(b"\n").unwrap_or(&line);
            let Ok(row) = serde_json::from_slice::<Row>(content) else {
                shown.skipped += 1;
                let _ = writeln!(
                    warn,
                    "{}:{number}: not an audit record; skipped",
                    file.display()
                );
                continue;
            };
            if !filter.matches(&row) {
                continue;
            }
            shown.matched += 1;
            let written = match format {
                Format::Json => {
                    out.write_all(content).and_then(|()| out.write_all(b"\n"))
                }
                Format::Table => write_row(out, &cells(&row)),
            };
            match written {
                Ok(()) => {}
                // A reader such as `head` that has seen enough.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                    return Ok(shown);
                }
                Err(e) => return Err(ShowError::Output(e)),
            }
        }
    }
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(ShowError::Output(e))
        }
        _ => Ok(shown),
    }
}

const HEADER: [&str; 7] = [
    "TS", "EVENT", "DECISION", "REASON", "CALLER", "TARGET", "STATUS",
];

/// Column widths; longer values overflow rather than being cut, since a
/// cut id is worse than a ragged line.
const WIDTHS: [usize; 6] = [27, 9, 8, 22, 32, 36];

fn cells(row: &Row) -> [String; 7] {
    let who = |w: &Option<Who>| {
        w.as_ref()
            .and_then(|w| w.upn.clone().or_else(|| w.oid.clone()))
    };
    let caller = who(&row.caller)
        .or_else(|| who(&row.unverified).map(|c| format!("{c} (unverified)")));
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    [
        row.ts.clone(),
        row.event.clone(),
        dash(row.decision.clone()),
        dash(row.reason.clone()),
        dash(caller),
        dash(row.target.clone()),
        dash(row.status.map(|s| s.to_string())),
    ]
}

fn write_row<S: AsRef<str>>(
    out: &mut dyn Write,
    cells: &[S; 7],
) -> io::Result<()> {
    let mut line = String::new();
    for (cell, width) in cells.iter().zip(WIDTHS) {
        line.push_str(&format!("{:<width$} ", cell.as_ref()));
    }
    line.push_str(cells[6].as_ref());
    writeln!(out, "{line}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_bounds_take_dates_and_times() {
        assert_eq!(
            Filter::time("2026-12-03").expect("date"),
            "2026-12-03T00:00:00.000000Z"
        );
        assert_eq!(
            Filter::time("2026-12-03T18:15:00.5Z").expect("time"),
            "2026-12-03T18:15:00.500000Z"
        );
        assert!(Filter::time("yesterday").is_err());
    }
}

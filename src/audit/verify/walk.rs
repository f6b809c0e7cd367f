//! Walking one chain line by line, and naming what broke it.
//!
//! A break is classified from the records around it: a record whose
//! successor links to its predecessor was inserted; a gap in `seq` is a
//! deletion unless the missing record turns up later (reordered); a line
//! run that no key opens but that links to itself is a key mismatch.

use std::io;
use std::path::PathBuf;

use super::lines::{Line, Lines};
use super::{Fault, Problem, Report, TornLines};
use crate::audit::chain::{self, ChainKey};
use crate::audit::record::Link;
use crate::audit::tail::{self, MAX_TORN_LINES};

/// How many failing lines that link to each other mean a wrong key rather
/// than edits, when the file goes on past them.
const KEY_WINDOW: u64 = 16;

/// A record that verified: where the chain stands.
#[derive(Debug, Clone)]
struct Place {
    seq: u64,
    hash: String,
    file: usize,
    line: u64,
}

/// What follows a run of lines that do not verify.
enum After {
    /// A record that verifies, in the same file.
    Record(Link),
    /// The end of the file.
    EndOfFile,
    /// The run is too long to be a torn tail.
    TooLong,
}

/// A run of lines that do not verify, starting at the line at hand.
struct Run {
    lines: u64,
    /// Lines that do not even parse as sealed records.
    unsealed: u64,
    /// The sealed lines link to each other by `seq` and `prev`.
    self_linked: bool,
    after: After,
}

struct Walk<'k> {
    key: Option<&'k ChainKey>,
    lines: Lines,
    last: Option<Place>,
    before_last: Option<Place>,
    /// Torn lines were just passed; the next record is their recovery.
    torn_passed: bool,
    report: Report,
}

/// Checks `files`, oldest first, as one chain named `name`.
pub(super) fn check(
    name: String,
    files: Vec<PathBuf>,
    key: Option<&ChainKey>,
) -> io::Result<Report> {
    let mut walk = Walk {
        key,
        report: Report {
            trail: name,
            files: files.len(),
            records: 0,
            first_seq: None,
            torn: Vec::new(),
            problem: None,
        },
        lines: Lines::new(files),
        last: None,
        before_last: None,
        torn_passed: false,
    };
    walk.run()?;
    Ok(walk.report)
}

impl Walk<'_> {
    fn run(&mut self) -> io::Result<()> {
        while let Some(line) = self.lines.next_line()? {
            let sealed = tail::sealed(self.key, &line.bytes);
            let fault = match sealed {
                Some(s) if s.stored == s.computed && line.complete => {
                    self.record(&line, s.link, s.stored)?
                }
                _ => self.bad_line(&line)?,
            };
            if let Some(fault) = fault {
                self.report.problem = Some(Problem {
                    file: self.lines.file(line.file).clone(),
                    line: line.number,
                    fault,
                });
                return Ok(());
            }
        }
        Ok(())
    }

    /// A record that verifies: does it continue the chain?
    fn record(
        &mut self,
        line: &Line,
        link: Link,
        hash: String,
    ) -> io::Result<Option<Fault>> {
        let torn_passed = std::mem::take(&mut self.torn_passed);
        if link.is_torn_recovery() && !torn_passed {
            return Ok(Some(Fault::TornLinesMissing));
        }
        if let Some(fault) = self.link_fault(line, &link)? {
            return Ok(Some(fault));
        }
        self.report.first_seq.get_or_insert(link.seq);
        self.report.records += 1;
        self.before_last = self.last.replace(Place {
            seq: link.seq,
            hash,
            file: line.file,
            line: line.number,
        });
        Ok(None)
    }

    fn link_fault(
        &mut self,
        line: &Line,
        link: &Link,
    ) -> io::Result<Option<Fault>> {
        let Some(last) = self.last.clone() else {
            // A chain may start mid-way (older files left out), but a
            // first record must start from the genesis hash.
            let bad_start = link.seq == 1 && link.prev != chain::GENESIS;
            return Ok(bad_start.then_some(Fault::Relinked));
        };
        let expected = last.seq + 1;
        if link.prev == last.hash && link.seq == expected {
            return Ok(None);
        }
        if let Some(before) = &self.before_last
            && link.prev == before.hash
            && link.seq == before.seq + 1
        {
            return Ok(Some(Fault::Forked { twin: last.line }));
        }
        if link.seq > expected {
            if self.seq_comes_later(expected)? {
                return Ok(Some(Fault::Reordered {
                    expected,
                    found: link.seq,
                }));
            }
            return Ok(Some(Fault::Deleted {
                first: expected,
                last: link.seq - 1,
                across_files: line.file != last.file,
            }));
        }
        if link.seq < expected {
            return Ok(Some(Fault::Repeated { seq: link.seq }));
        }
        Ok(Some(Fault::Relinked))
    }

    /// Reads on to the end of the chain looking for record `seq`.
    fn seq_comes_later(&mut self, seq: u64) -> io::Result<bool> {
        while let Some(line) = self.lines.next_line()? {
            if tail::sealed(self.key, &line.bytes)
                .is_some_and(|s| s.stored == s.computed && s.link.seq == seq)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// A line that does not verify: torn and recovered, or a fault.
    fn bad_line(&mut self, line: &Line) -> io::Result<Option<Fault>> {
        let run = self.run_from(line)?;
        let links_to_last = |link: &Link| match &self.last {
            Some(last) => link.prev == last.hash && link.seq == last.seq + 1,
            None => link.seq == 1 && link.prev == chain::GENESIS,
        };

        match &run.after {
            After::Record(link)
                if link.is_torn_recovery()
                    && link.torn_range() == Some((line.number, run.lines)) =>
            {
                for _ in 1..run.lines {
                    self.lines.next_line()?;
                }
                self.report.torn.push(TornLines {
                    file: self.lines.file(line.file).clone(),
                    line: line.number,
                    lines: run.lines,
                });
                self.torn_passed = true;
                return Ok(None);
            }
            After::EndOfFile if run.unsealed == run.lines || !line.complete => {
                return Ok(Some(Fault::Torn));
            }
            After::Record(link) if links_to_last(link) => {
                return Ok(Some(Fault::Inserted));
            }
            _ => {}
        }
        let looks_keyed = run.unsealed == 0
            && run.self_linked
            && run.lines >= 2
            && (run.lines >= KEY_WINDOW
                || matches!(run.after, After::EndOfFile | After::TooLong));
        Ok(Some(if tail::sealed(self.key, &line.bytes).is_none() {
            Fault::Malformed
        } else if looks_keyed {
            Fault::KeyMismatch
        } else {
            Fault::Modified
        }))
    }

    /// Measures the run of lines that do not verify, starting at `first`
    /// (already read), without consuming the lines after it.
    fn run_from(&mut self, first: &Line) -> io::Result<Run> {
        let key = self.key;
        let opened = tail::sealed(key, &first.bytes);
        let mut run = Run {
            lines: 1,
            unsealed: u64::from(opened.is_none()),
            self_linked: true,
            after: After::EndOfFile,
        };
        let mut prev = opened.map(|s| (s.link.seq, s.stored));
        let mut k = 0;
        loop {
            if run.lines > MAX_TORN_LINES {
                run.after = After::TooLong;
                return Ok(run);
            }
            let Some(next) = self.lines.peek(k)? else {
                return Ok(run);
            };
            if next.file != first.file {
                return Ok(run);
            }
            match tail::sealed(key, &next.bytes) {
                Some(s) if s.stored == s.computed && next.complete => {
                    run.after = After::Record(s.link);
                    return Ok(run);
                }
                Some(s) => {
                    let linked = prev.as_ref().is_some_and(|(seq, hash)| {
                        s.link.seq == seq + 1 && s.link.prev == *hash
                    });
                    run.self_linked &= linked;
                    prev = Some((s.link.seq, s.stored));
                }
                None => {
                    run.unsealed += 1;
                    prev = None;
                }
            }
            run.lines += 1;
            k += 1;
        }
    }
}

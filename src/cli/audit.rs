//! `cancelguard audit verify` and `cancelguard audit show`: the commands an
//! auditor runs, on a copy of the trail or in place.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::audit::chain::ChainKey;
use crate::audit::show::{self, Filter, Format};
use crate::audit::verify::{self, Fault, Report};

/// Exit status of `verify` when every chain is intact.
const INTACT: u8 = 0;
/// Exit status of `verify` when a chain is broken.
const BROKEN: u8 = 1;
/// Exit status when the trail cannot be read.
const UNREADABLE: u8 = 2;

#[derive(Debug, Subcommand)]
pub(super) enum AuditCommand {
    /// Check the hash chains of an audit file, or of a folder holding one
    /// or more replicas' active and rotated files. Exit 0 intact, 1 broken
    /// or tampered, 2 unreadable.
    Verify {
        /// An audit file, or a folder of them.
        path: PathBuf,
        /// The key of a keyed chain (`audit.hmac_key_file`).
        #[arg(long)]
        hmac_key_file: Option<PathBuf>,
    },
    /// Print audit records, filtered: a table, or JSON lines with --json.
    Show(ShowArgs),
}

#[derive(Debug, Args)]
pub(super) struct ShowArgs {
    /// An audit file, or a folder of them.
    path: PathBuf,
    /// Records at or after this UTC time (2026-12-03T18:15:00Z or
    /// 2026-12-03).
    #[arg(long)]
    since: Option<String>,
    /// Records before this UTC time.
    #[arg(long)]
    until: Option<String>,
    /// The caller's oid or upn (also matches unverified claims).
    #[arg(long)]
    caller: Option<String>,
    /// The scheduledPermissionsRequest id.
    #[arg(long)]
    target: Option<String>,
    /// allow or deny.
    #[arg(long)]
    decision: Option<String>,
    /// A reason such as no_matching_rule or token_expired.
    #[arg(long)]
    reason: Option<String>,
    /// start, stop, config, decision, outcome or recovery.
    #[arg(long)]
    event: Option<String>,
    /// Print matching records as they are written (JSON lines).
    #[arg(long)]
    json: bool,
}

/// Runs one audit command.
pub(super) fn run(command: AuditCommand) -> ExitCode {
    match command {
        AuditCommand::Verify {
            path,
            hmac_key_file,
        } => verify(&path, hmac_key_file.as_deref()),
        AuditCommand::Show(args) => show(args),
    }
}

fn verify(path: &Path, key_file: Option<&Path>) -> ExitCode {
    let key = match key_file.map(ChainKey::read).transpose() {
        Ok(key) => key,
        Err(error) => return unreadable(&error),
    };
    let reports = match verify::verify_path(path, key.as_ref()) {
        Ok(reports) => reports,
        Err(error) => {
            return unreadable(&format!(
                "{}: cannot read: {error}",
                path.display()
            ));
        }
    };
    if reports.is_empty() {
        return unreadable(&format!("{}: no audit files", path.display()));
    }

    let mut out = std::io::stdout().lock();
    for report in &reports {
        let _ = print_report(&mut out, report);
    }
    let files: usize = reports.iter().map(|r| r.files).sum();
    let records: usize = reports.iter().map(|r| r.records).sum();
    let broken = reports.iter().filter(|r| !r.is_intact()).count();
    let verdict = if broken == 0 {
        "intact".to_string()
    } else {
        format!("{broken} broken")
    };
    let chains = reports.len();
    let _ = writeln!(
        out,
        "{chains} {}, {files} {}, {records} records checked: {verdict}",
        plural(chains, "chain", "chains"),
        plural(files, "file", "files"),
    );
    ExitCode::from(if broken == 0 { INTACT } else { BROKEN })
}

fn print_report(out: &mut dyn Write, report: &Report) -> std::io::Result<()> {
    for torn in &report.torn {
        writeln!(
            out,
            "{}:{}: torn (recovered): {} incomplete line(s) left by a crash, \
             named by the recovery record after them",
            torn.file.display(),
            torn.line,
            torn.lines
        )?;
    }
    match &report.problem {
        None => {
            writeln!(
                out,
                "{}: ok, {} records in {} {}",
                report.trail,
                report.records,
                report.files,
                plural(report.files, "file", "files"),
            )?;
            if let Some(seq) = report.first_seq.filter(|s| *s > 1) {
                writeln!(
                    out,
                    "{}: note: the chain starts at seq {seq}; earlier \
                     records are not in the files checked",
                    report.trail
                )?;
            }
            Ok(())
        }
        Some(problem) => {
            // A lone record cannot show a wrong key apart from an edit.
            let hint = match (&problem.fault, report.records) {
                (Fault::Modified, 0) => {
                    "; or the trail is keyed and needs --hmac-key-file"
                }
                _ => "",
            };
            writeln!(
                out,
                "{}:{}: {}{hint} ({} records verified before it)",
                problem.file.display(),
                problem.line,
                problem.fault,
                report.records
            )
        }
    }
}

fn show(args: ShowArgs) -> ExitCode {
    let time = |t: &Option<String>| t.as_deref().map(Filter::time).transpose();
    let (since, until) = match (time(&args.since), time(&args.until)) {
        (Ok(since), Ok(until)) => (since, until),
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("cancelguard: {error}");
            return ExitCode::FAILURE;
        }
    };
    let filter = Filter {
        since,
        until,
        caller: args.caller,
        target: args.target,
        decision: args.decision,
        reason: args.reason,
        event: args.event,
    };
    let format = if args.json {
        Format::Json
    } else {
        Format::Table
    };
    // Buffered: a table of a large trail is many small writes.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut warn = std::io::stderr().lock();
    match show::show(&args.path, &filter, format, &mut out, &mut warn) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error @ show::ShowError::Unreadable { .. }) => unreadable(&error),
        Err(error) => {
            eprintln!("cancelguard: {error}");
            ExitCode::FAILURE
        }
    }
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

fn unreadable(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("cancelguard: {error}");
    ExitCode::from(UNREADABLE)
}

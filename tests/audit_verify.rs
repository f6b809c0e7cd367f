//! `audit verify` against every kind of break: trails are written by the
//! real writer, then edited the way an attacker or a crash would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cancelguard::audit::verify::{self, Fault};
use cancelguard::audit::{Audit, Event, Record, chain};
use cancelguard::config::{AuditConfig, SyncMode};

const BIN: &str = env!("CARGO_BIN_EXE_cancelguard");

/// Writes `count` decisions to a fresh trail; returns its folder, its
/// active file and its lines.
async fn trail(
    count: usize,
    key: Option<chain::ChainKey>,
    rotate_bytes: u64,
) -> (tempfile::TempDir, PathBuf, Vec<String>) {
    let dir = tempfile::tempdir().expect("dir");
    let config = AuditConfig {
        sync: SyncMode::None,
        hmac_key: key,
        rotate_bytes,
        ..AuditConfig::new(dir.path().join("trail.jsonl"), "r1")
    };
    let audit = Audit::start(&config).expect("start");
    for n in 0..count {
        let mut record = Record::new(Event::Decision, format!("call-{n}"));
        record.decision = Some("deny");
        record.target = Some(format!("request-{n}"));
        audit.record_durable(record).await.expect("written");
    }
    audit.close().await;
    let path = audit.path().to_path_buf();
    let text = std::fs::read_to_string(&path).expect("trail");
    let lines = text.lines().map(str::to_owned).collect();
    (dir, path, lines)
}

fn write(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").expect("write");
}

/// The first problem of one file: (line, fault).
fn problem_of(path: &Path, key: Option<&chain::ChainKey>) -> (u64, Fault) {
    let report =
        verify::verify_files(vec![path.into()], key).expect("readable");
    let problem = report.problem.expect("a break must be found");
    (problem.line, problem.fault)
}

fn key() -> chain::ChainKey {
    chain::ChainKey::from_bytes(b"0123456789abcdef0123456789abcdef")
}

/// A record sealed by someone who knows the (unkeyed) format.
fn forged(seq: u64, prev: &str) -> String {
    let unsealed = format!(
        r#"{{"v":1,"seq":{seq},"id":"forged","event":"decision","decision":"allow","prev":"{prev}"}}"#
    );
    String::from_utf8(chain::seal(unsealed.as_bytes()).0).expect("utf8")
}

fn field(line: &str, name: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(line).expect("JSON");
    value[name].as_str().expect("string field").to_owned()
}

#[tokio::test]
async fn an_intact_trail_verifies() {
    let (_dir, path, _) = trail(6, None, 0).await;
    let report = verify::verify_file(&path).expect("readable");
    assert_eq!(report.problem, None);
    assert_eq!((report.records, report.files), (6, 1));
}

#[tokio::test]
async fn a_modified_record_is_named() {
    let (_dir, path, mut lines) = trail(6, None, 0).await;
    lines[2] = lines[2].replace("\"deny\"", "\"allow\"");
    write(&path, &lines);
    assert_eq!(problem_of(&path, None), (3, Fault::Modified));

    // Rewritten with a recomputed hash: the next record's link breaks.
    let (_dir, path, mut lines) = trail(6, None, 0).await;
    let unsealed = lines[2].replace("\"deny\"", "\"allow\"");
    let unsealed = format!("{}}}", &unsealed[..unsealed.len() - 75]);
    lines[2] =
        String::from_utf8(chain::seal(unsealed.as_bytes()).0).expect("utf8");
    write(&path, &lines);
    let (line, fault) = problem_of(&path, None);
    assert_eq!((line, fault.kind()), (4, "modified"));
}

#[tokio::test]
async fn an_inserted_record_is_named() {
    // Keyed: a forger cannot seal, and the next record skips the forgery.
    let (_dir, path, mut lines) = trail(6, Some(key()), 0).await;
    let hash3 = field(&lines[2], "hash");
    lines.insert(3, forged(4, &hash3));
    write(&path, &lines);
    assert_eq!(problem_of(&path, Some(&key())), (4, Fault::Inserted));

    // Unkeyed, sealed properly: two records then claim the same place.
    let (_dir, path, mut lines) = trail(6, None, 0).await;
    let hash3 = field(&lines[2], "hash");
    lines.insert(3, forged(4, &hash3));
    write(&path, &lines);
    assert_eq!(problem_of(&path, None), (5, Fault::Forked { twin: 4 }));

    // A copy of an earlier record.
    let (_dir, path, mut lines) = trail(6, None, 0).await;
    lines.insert(4, lines[1].clone());
    write(&path, &lines);
    let (line, fault) = problem_of(&path, None);
    assert_eq!((line, fault.kind()), (5, "inserted"));
}

#[tokio::test]
async fn a_deleted_record_is_named() {
    let (_dir, path, mut lines) = trail(6, None, 0).await;
    lines.remove(2);
    write(&path, &lines);
    let expected = Fault::Deleted {
        first: 3,
        last: 3,
        across_files: false,
    };
    assert_eq!(problem_of(&path, None), (3, expected));
}

#[tokio::test]
async fn reordered_records_are_named() {
    let (_dir, path, mut lines) = trail(6, None, 0).await;
    lines.swap(2, 4);
    write(&path, &lines);
    let expected = Fault::Reordered {
        expected: 3,
        found: 5,
    };
    assert_eq!(problem_of(&path, None), (3, expected));
}

#[tokio::test]
async fn an_unrecovered_torn_line_and_garbage_are_named() {
    let (_dir, path, lines) = trail(4, None, 0).await;
    let mut text = lines.join("\n") + "\n";
    text.push_str(&lines[3][..40]);
    std::fs::write(&path, text).expect("write");
    assert_eq!(problem_of(&path, None), (5, Fault::Torn));

    let (_dir, path, mut lines) = trail(4, None, 0).await;
    lines[1] = "not a record".into();
    write(&path, &lines);
    assert_eq!(problem_of(&path, None), (2, Fault::Malformed));
}

#[tokio::test]
async fn a_recovery_whose_torn_lines_were_removed_is_named() {
    let (_dir, path, lines) = trail(3, None, 0).await;
    std::fs::write(&path, lines.join("\n") + "\n{\"v\":1,\"se").expect("w");
    let config = AuditConfig {
        sync: SyncMode::None,
        ..AuditConfig::new(path.with_file_name("trail.jsonl"), "r1")
    };
    let audit = Audit::start(&config).expect("recovers");
    audit.close().await;
    assert_eq!(verify::verify_file(&path).expect("read").problem, None);

    let text = std::fs::read_to_string(&path).expect("trail");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.remove(3);
    write(&path, &lines);
    assert_eq!(problem_of(&path, None), (4, Fault::TornLinesMissing));
}

#[tokio::test]
async fn a_missing_rotated_file_shows_as_a_gap() {
    let (dir, _path, _) = trail(60, None, 4096).await;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    std::fs::remove_file(&files[1]).expect("remove middle file");

    let reports = verify::verify_path(dir.path(), None).expect("readable");
    let problem = reports[0].problem.clone().expect("a gap");
    assert_eq!(problem.file, files[2]);
    assert_eq!(problem.line, 1);
    assert!(
        matches!(
            problem.fault,
            Fault::Deleted {
                across_files: true,
                ..
            }
        ),
        "{:?}",
        problem.fault
    );
}

fn cancelguard(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn verify_exits_0_intact_1_tampered_2_unreadable() {
    // Two replicas' trails gathered in one folder.
    let (dir, path, _) = trail(5, Some(key()), 0).await;
    let (_other, other_path, _) = trail(3, Some(key()), 0).await;
    let copied = dir.path().join("trail-r2.jsonl");
    std::fs::copy(&other_path, &copied).expect("gather");
    // The key lives apart: every file in the folder is taken as a trail.
    let keys = tempfile::tempdir().expect("key dir");
    let key_file = keys.path().join("hmac.key");
    std::fs::write(&key_file, b"0123456789abcdef0123456789abcdef").expect("k");
    let folder = dir.path().display().to_string();
    let key_arg = key_file.display().to_string();

    let ok =
        cancelguard(&["audit", "verify", &folder, "--hmac-key-file", &key_arg]);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    assert!(
        stdout(&ok).contains("2 chains, 2 files, 8 records"),
        "{}",
        stdout(&ok)
    );

    let unkeyed = cancelguard(&["audit", "verify", &folder]);
    assert_eq!(unkeyed.status.code(), Some(1));
    assert!(
        stdout(&unkeyed).contains("key mismatch"),
        "{}",
        stdout(&unkeyed)
    );

    let text = std::fs::read_to_string(&path).expect("trail");
    std::fs::write(&path, text.replacen("\"deny\"", "\"allow\"", 1))
        .expect("w");
    let tampered =
        cancelguard(&["audit", "verify", &folder, "--hmac-key-file", &key_arg]);
    assert_eq!(tampered.status.code(), Some(1));
    let out = stdout(&tampered);
    assert!(out.contains("trail-r1.jsonl:1: modified"), "{out}");
    assert!(out.contains("1 broken"), "{out}");

    let missing = cancelguard(&["audit", "verify", "/nonexistent/audit"]);
    assert_eq!(missing.status.code(), Some(2));
    let no_key = cancelguard(&[
        "audit",
        "verify",
        &folder,
        "--hmac-key-file",
        "/nonexistent/key",
    ]);
    assert_eq!(no_key.status.code(), Some(2));
}

/// The auditor's script printed in the README's audit section.
fn readme_script() -> String {
    let readme = include_str!("../README.md");
    let section =
        &readme[readme.find("### What `hash` covers").expect("sec")..];
    let start = section.find("```python\n").expect("a python block") + 10;
    let end = start + section[start..].find("```").expect("its end");
    section[start..end].to_owned()
}

#[tokio::test]
async fn the_readme_script_checks_what_the_writer_wrote() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("python3 not found; the README script is not run");
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let script = dir.path().join("verify.py");
    std::fs::write(&script, readme_script()).expect("script");
    let key_file = dir.path().join("hmac.key");
    std::fs::write(&key_file, b"0123456789abcdef0123456789abcdef\n")
        .expect("k");
    let key = chain::ChainKey::read(&key_file).expect("key");

    // Keyed, rotated, and with a torn tail the writer recovered.
    let (trail_dir, path, _) = trail(40, Some(key.clone()), 4096).await;
    let mut bytes = std::fs::read(&path).expect("trail");
    bytes.extend_from_slice(b"{\"v\":1,\"seq\":41,\"t");
    std::fs::write(&path, bytes).expect("tear");
    let config = AuditConfig {
        sync: SyncMode::None,
        hmac_key: Some(key.clone()),
        rotate_bytes: 4096,
        ..AuditConfig::new(trail_dir.path().join("trail.jsonl"), "r1")
    };
    let audit = Audit::start(&config).expect("recovers");
    audit
        .record_durable(Record::fresh(Event::Stop))
        .await
        .expect("w");
    audit.close().await;
    let mut files: Vec<PathBuf> = std::fs::read_dir(trail_dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    // Rotated names sort before the active one ('-' before '.').
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    let reports = verify::verify_path(trail_dir.path(), Some(&key)).expect("r");
    assert_eq!(reports[0].problem, None);
    assert_eq!(reports[0].torn.len(), 1);

    let run = |files: &[PathBuf]| {
        Command::new("python3")
            .arg(&script)
            .arg("--key")
            .arg(&key_file)
            .args(files)
            .output()
            .expect("python3 runs")
    };
    let ok = run(&files);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(stdout(&ok).trim(), "intact");

    let text = std::fs::read_to_string(&files[1]).expect("middle file");
    std::fs::write(&files[1], text.replacen("\"deny\"", "\"allow\"", 1))
        .expect("tamper");
    assert!(!run(&files).status.success(), "tampering went unnoticed");
}

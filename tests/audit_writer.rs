//! The audit writer on its own: group commit, sync modes, the bounded
//! queue, failing closed and recovering, rotation, the keyed chain and
//! recovery from a torn tail.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cancelguard::audit::verify::{self, Fault};
use cancelguard::audit::{Audit, AuditError, Event, Record, chain};
use cancelguard::config::{AuditConfig, SyncMode};

fn decision(n: usize) -> Record {
    let mut record = Record::new(Event::Decision, format!("call-{n}"));
    record.decision = Some("allow");
    record.target = Some(format!("request-{n}"));
    record
}

fn config(dir: &Path, sync: SyncMode) -> AuditConfig {
    AuditConfig {
        sync,
        ..AuditConfig::new(dir.join("audit/trail.jsonl"), "unit")
    }
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("trail readable")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// Writes `callers` x `each` decisions concurrently and waits for all.
async fn drive(audit: &Audit, callers: usize, each: usize) {
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let audit = audit.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..each {
                let record = decision(caller * each + n);
                audit.record_durable(record).await.expect("durable");
            }
        }));
    }
    for task in tasks {
        task.await.expect("caller task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_records_share_fsyncs_in_batch_mode() {
    let dir = tempfile::tempdir().expect("dir");
    let audit =
        Audit::start(&config(dir.path(), SyncMode::Batch)).expect("start");
    drive(&audit, 64, 20).await;

    let syncs = audit.syncs();
    assert!(syncs > 0, "batch mode must fsync");
    assert!(
        1280 / syncs >= 2,
        "1280 records took {syncs} fsyncs: no group commit"
    );
    audit.close().await;
    assert_eq!(lines(audit.path()).len(), 1280);
    let report = verify::verify_file(audit.path()).expect("readable");
    assert_eq!(report.problem, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_mode_fsyncs_every_record_and_none_mode_never() {
    let dir = tempfile::tempdir().expect("dir");
    let audit =
        Audit::start(&config(dir.path(), SyncMode::Always)).expect("start");
    drive(&audit, 8, 10).await;
    assert_eq!(audit.syncs(), 80);
    audit.close().await;

    let dir = tempfile::tempdir().expect("dir");
    let audit =
        Audit::start(&config(dir.path(), SyncMode::None)).expect("start");
    drive(&audit, 8, 10).await;
    audit.close().await;
    assert_eq!(audit.syncs(), 0);
    assert_eq!(lines(audit.path()).len(), 80);
}

#[tokio::test]
async fn a_full_queue_refuses_after_the_queue_timeout() {
    // A pipe that nobody reads: the writer blocks once its buffer is full,
    // so the queue behind it fills up.
    let dir = tempfile::tempdir().expect("dir");
    let fifo = dir.path().join("stuck");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let config = AuditConfig {
        queue_timeout: Duration::from_millis(200),
        ..AuditConfig::new(&fifo, "unit")
    };
    let audit = Audit::start(&config).expect("start");
    assert_eq!(audit.path(), fifo, "a pipe is used as it is");

    // Bounded: the queue holds a few thousand records.
    for n in 0..20_000 {
        audit.record(decision(n)).await;
        if audit.write_failures() > 0 {
            break;
        }
    }
    assert_eq!(audit.write_failures(), 1, "the queue never filled");

    let started = Instant::now();
    let refused = audit.record_durable(decision(0)).await;
    let waited = started.elapsed();
    assert!(
        matches!(refused, Err(AuditError::QueueFull { .. })),
        "{refused:?}"
    );
    assert!(
        waited >= Duration::from_millis(150),
        "gave up after {waited:?}"
    );
    assert!(waited < Duration::from_secs(2), "waited {waited:?}");
    assert_eq!(audit.write_failures(), 2);

    // The proxy answers such a refusal with 503 and forwards nothing.
    let error = refused.expect_err("refused");
    let rejection = cancelguard::error::Rejection::from(error);
    assert_eq!(rejection.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(rejection.reason(), "audit_unavailable");
}

#[tokio::test]
async fn a_full_disk_fails_closed_then_recovers_by_itself() {
    let dir = tempfile::tempdir().expect("dir");
    let config = config(dir.path(), SyncMode::Batch);
    let active = config.active_path();
    std::fs::create_dir_all(active.parent().expect("folder")).expect("mkdir");
    // Writes through this link fail with ENOSPC, as on a full disk.
    std::os::unix::fs::symlink("/dev/full", &active).expect("symlink");

    let audit = Audit::start(&config).expect("start");
    for n in 0..3 {
        let result = audit.record_durable(decision(n)).await;
        assert!(
            matches!(result, Err(AuditError::Write { .. })),
            "{result:?}"
        );
    }
    assert!(!audit.is_healthy());
    assert_eq!(audit.write_failures(), 3);

    // Space again, and no traffic: the writer must notice on its own.
    std::fs::remove_file(&active).expect("unlink");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !audit.is_healthy() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(audit.is_healthy(), "did not recover within 10s");
    audit
        .record_durable(decision(9))
        .await
        .expect("writes again");
    audit.close().await;

    let records = lines(&active);
    assert_eq!(records[0]["event"], "recovery");
    assert_eq!(records[0]["reason"], "write_failed");
    assert_eq!(records[0]["detail"]["failed_records"], 3);
    assert!(
        records[0]["detail"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("No space left")),
        "{}",
        records[0]
    );
    assert_eq!(records[1]["id"], "call-9");
    let report = verify::verify_file(&active).expect("readable");
    assert_eq!(report.problem, None);
}

fn rotated_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("folder")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn rotation_keeps_one_chain_across_files() {
    let dir = tempfile::tempdir().expect("dir");
    let config = AuditConfig {
        rotate_bytes: 4096,
        ..config(dir.path(), SyncMode::Batch)
    };
    let audit = Audit::start(&config).expect("start");
    for n in 0..60 {
        audit.record_durable(decision(n)).await.expect("durable");
    }
    audit.close().await;

    let folder = dir.path().join("audit");
    let files = rotated_files(&folder);
    assert!(files.len() >= 3, "{files:?}");
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().expect("name").to_string_lossy().into())
        .collect();
    assert_eq!(names.last().map(String::as_str), Some("trail-unit.jsonl"));
    for name in &names[..names.len() - 1] {
        assert!(name.starts_with("trail-unit-2"), "{name}");
        assert!(name.ends_with("Z.jsonl"), "{name}");
    }
    for file in &files[..files.len() - 1] {
        let size = std::fs::metadata(file).expect("meta").len();
        assert!(size <= 4096, "{} holds {size} bytes", file.display());
    }
    // Each file's first record links to the last one of the file before.
    for pair in files.windows(2) {
        let before = lines(&pair[0]);
        let after = lines(&pair[1]);
        let last = before.last().expect("records");
        assert_eq!(after[0]["prev"], last["hash"]);
        assert_eq!(after[0]["seq"], last["seq"].as_u64().expect("seq") + 1);
    }
    let reports = verify::verify_path(&folder, None).expect("readable");
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].problem, None);
    assert_eq!(reports[0].records, 60);
    assert_eq!(reports[0].files, files.len());
}

#[tokio::test]
async fn a_restart_after_rotation_continues_from_the_rotated_file() {
    let dir = tempfile::tempdir().expect("dir");
    let config = AuditConfig {
        rotate_bytes: 4096,
        ..config(dir.path(), SyncMode::Batch)
    };
    let audit = Audit::start(&config).expect("start");
    for n in 0..20 {
        audit.record_durable(decision(n)).await.expect("durable");
    }
    audit.close().await;
    // As if the process died right after renaming the full file.
    std::fs::remove_file(config.active_path()).expect("remove active");

    let audit = Audit::start(&config).expect("restart");
    audit.record_durable(decision(99)).await.expect("durable");
    audit.close().await;
    let reports =
        verify::verify_path(&dir.path().join("audit"), None).expect("read");
    assert_eq!(reports[0].problem, None, "{reports:?}");
}

fn key(byte: u8) -> chain::ChainKey {
    chain::ChainKey::from_bytes(&[byte; 32])
}

#[tokio::test]
async fn a_keyed_chain_verifies_only_under_its_key() {
    let dir = tempfile::tempdir().expect("dir");
    let config = AuditConfig {
        hmac_key: Some(key(1)),
        ..config(dir.path(), SyncMode::Batch)
    };
    let audit = Audit::start(&config).expect("start");
    for n in 0..5 {
        audit.record_durable(decision(n)).await.expect("durable");
    }
    audit.close().await;
    let path = config.active_path();

    let check = |k: Option<&chain::ChainKey>| {
        verify::verify_files(vec![path.clone()], k).expect("readable")
    };
    assert_eq!(check(Some(&key(1))).problem, None);
    for wrong in [None, Some(&key(2))] {
        let problem = check(wrong).problem.expect("must not verify");
        assert_eq!((problem.line, problem.fault), (1, Fault::KeyMismatch));
    }

    // The chain cannot be continued under another key.
    let other = AuditConfig {
        hmac_key: Some(key(2)),
        ..config.clone()
    };
    let refused = Audit::start(&other).err();
    assert!(
        matches!(refused, Some(AuditError::Unverifiable { .. })),
        "{refused:?}"
    );
    let text = std::fs::read_to_string(&path).expect("trail");
    assert!(!text.contains(&"01".repeat(32)), "the key leaked");
}

#[tokio::test]
async fn a_torn_tail_is_left_in_place_and_named_by_a_recovery() {
    let dir = tempfile::tempdir().expect("dir");
    let config = config(dir.path(), SyncMode::Batch);
    let audit = Audit::start(&config).expect("start");
    for n in 0..3 {
        audit.record_durable(decision(n)).await.expect("durable");
    }
    audit.close().await;
    let path = config.active_path();
    let intact = std::fs::read(&path).expect("trail");
    let last_hash = lines(&path)[2]["hash"].clone();
    let mut torn = intact.clone();
    torn.extend_from_slice(br#"{"v":1,"seq":4,"ts":"2026-12-03T1"#);
    std::fs::write(&path, &torn).expect("tear");

    let audit = Audit::start(&config).expect("restart after a crash");
    audit.record_durable(decision(3)).await.expect("durable");
    audit.close().await;

    let after = std::fs::read(&path).expect("trail");
    assert!(after.starts_with(&torn), "a written byte was changed");
    let text = String::from_utf8(after).expect("utf8");
    let recovery: serde_json::Value =
        serde_json::from_str(text.lines().nth(4).expect("line 5"))
            .expect("recovery is JSON");
    assert_eq!(recovery["event"], "recovery");
    assert_eq!(recovery["reason"], "torn_tail");
    assert_eq!(recovery["prev"], last_hash);
    assert_eq!(recovery["seq"], 4);
    assert_eq!(recovery["detail"]["line"], 4);
    assert_eq!(recovery["detail"]["lines"], 1);
    assert_eq!(recovery["detail"]["file"], "trail-unit.jsonl");

    let report = verify::verify_file(&path).expect("readable");
    assert_eq!(report.problem, None, "{report:?}");
    assert_eq!(report.torn.len(), 1);
    assert_eq!(report.torn[0].line, 4);
    assert_eq!(report.records, 5);
}

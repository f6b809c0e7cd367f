//! Throughput of the audit writer under 64 concurrent callers, for each
//! `audit.sync` mode: decision records per second, fsyncs per second, and
//! records per fsync (how well group commit shares them).
//!
//! ```sh
//! cargo bench --bench audit_throughput
//! AUDIT_BENCH_SECS=10 AUDIT_BENCH_DIR=/var/lib/x cargo bench --bench audit_throughput
//! ```
//!
//! Each caller waits for its record to be durable before sending the next,
//! as a request waits before it is forwarded. The trail is written to a
//! temporary folder under `AUDIT_BENCH_DIR` (default: the system's temp
//! folder); put that on the disk you mean to measure, since a RAM-backed
//! folder makes fsync free.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cancelguard::audit::{Audit, Caller, Event, Record};
use cancelguard::config::{AuditConfig, SyncMode};

const CALLERS: usize = 64;

/// What one mode achieved.
struct Run {
    records: u64,
    syncs: u64,
    elapsed: Duration,
}

fn main() {
    let seconds = std::env::var("AUDIT_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(3.0);
    let duration = Duration::from_secs_f64(seconds);
    let base = std::env::var_os("AUDIT_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime for the callers");

    println!(
        "audit writer, {CALLERS} concurrent callers, {seconds}s per mode, \
         in {}",
        base.display()
    );
    println!(
        "{:<7} {:>9} {:>11} {:>10} {:>14}",
        "sync", "records", "records/s", "fsyncs/s", "records/fsync"
    );
    for sync in [SyncMode::Batch, SyncMode::Always, SyncMode::None] {
        let dir = tempfile::tempdir_in(&base).expect("a temporary folder");
        let config = AuditConfig {
            sync,
            rotate_bytes: 0,
            ..AuditConfig::new(dir.path().join("bench.jsonl"), "bench")
        };
        let run = runtime.block_on(drive(&config, duration));
        let secs = run.elapsed.as_secs_f64();
        let per_sync = if run.syncs == 0 {
            "-".to_string()
        } else {
            format!("{:.1}", run.records as f64 / run.syncs as f64)
        };
        println!(
            "{:<7} {:>9} {:>11.0} {:>10.0} {:>14}",
            sync.as_str(),
            run.records,
            run.records as f64 / secs,
            run.syncs as f64 / secs,
            per_sync
        );
    }
}

/// Runs `CALLERS` callers against one writer for `duration`.
async fn drive(config: &AuditConfig, duration: Duration) -> Run {
    let audit = Audit::start(config).expect("the writer starts");
    let records = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut callers = Vec::with_capacity(CALLERS);
    for caller in 0..CALLERS {
        let (audit, records) = (audit.clone(), records.clone());
        callers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                audit
                    .record_durable(decision(caller))
                    .await
                    .expect("the record is written");
                records.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for caller in callers {
        caller.await.expect("a caller finishes");
    }
    let elapsed = started.elapsed();
    // Read before close: closing is not part of the measured load.
    let syncs = audit.syncs();
    audit.close().await;
    Run {
        records: records.load(Ordering::Relaxed),
        syncs,
        elapsed,
    }
}

/// A decision record the size of a real one.
fn decision(caller: usize) -> Record {
    let mut record = Record::fresh(Event::Decision);
    record.client_request_id = Some(uuid::Uuid::new_v4().to_string());
    record.remote_addr = Some(format!("127.0.0.1:{}", 40000 + caller));
    record.method = Some("POST".into());
    record.path = Some(
        "/beta/identityGovernance/permissionsManagement/\
         scheduledPermissionsRequests/7c1f0c2e-5b8a-4d5e-9f00-000000000001/\
         cancelAll"
            .into(),
    );
    record.target = Some("7c1f0c2e-5b8a-4d5e-9f00-000000000001".into());
    record.caller = Some(Caller {
        tid: Some("72f988bf-0000-0000-0000-000000000000".into()),
        oid: Some("a11ce000-0000-4000-8000-000000000001".into()),
        upn: Some("alice@contoso.example".into()),
        app: Some("0a0b0c0d-0000-4000-8000-0000000000ff".into()),
        token_id: Some("e9cdc69a4f2b4c1d9d8e7f6a5b4c3d2e".into()),
    });
    record.decision = Some("allow");
    record.reason = Some("allowed_by_rule".into());
    record.rule = Some("permissions-admins".into());
    record.mode = Some("enforce");
    record
}

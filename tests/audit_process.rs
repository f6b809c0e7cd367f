//! The audit trail of the real binary, run as a child process: killed with
//! SIGKILL under load and restarted, copying records to stdout, and failing
//! closed on a full disk. Everything listens on loopback, and every loop is
//! bounded in count and time.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cancelguard::demo::{DEMO_TENANT, PERMISSIONS_ADMIN_ROLE};
use common::*;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

const BIN: &str = env!("CARGO_BIN_EXE_cancelguard");

/// A running `cancelguard run` and what it has logged so far.
struct Proxy {
    child: Child,
    listen: String,
    admin: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

/// Writes a config for a proxy in front of `graph` into `dir`.
fn write_config(dir: &Path, graph: &StandIn, audit_extra: &str) -> PathBuf {
    std::fs::write(dir.join("jwks.json"), issuer().jwks_json()).expect("jwks");
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
shutdown_grace = "2s"

[upstream]
url = "https://127.0.0.1:{port}"
ca_file = "ca.pem"

[auth]
jwks_file = "jwks.json"
tenants = ["{DEMO_TENANT}"]

[[policy.rules]]
name = "admins"
effect = "allow"
directory_roles = ["{PERMISSIONS_ADMIN_ROLE}"]

[audit]
file = "audit/trail.jsonl"
replica = "child"
{audit_extra}

[log]
format = "json"
"#,
        port = graph.addr.port(),
    );
    let path = dir.join("proxy.toml");
    std::fs::write(&path, config).expect("config");
    path
}

fn active(dir: &Path) -> PathBuf {
    dir.join("audit/trail-child.jsonl")
}

impl Proxy {
    /// Starts the binary and waits (at most 30s) until it serves.
    fn start(config: &Path) -> Self {
        let mut child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let pipe = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().expect("lock").push(line);
            }
        });

        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let serving = stderr.lock().expect("lock").iter().find_map(|l| {
                let log: serde_json::Value = serde_json::from_str(l).ok()?;
                let fields = &log["fields"];
                (fields["message"] == "cancelguard serving").then(|| {
                    let field = |k: &str| fields[k].as_str().map(str::to_owned);
                    (field("listen"), field("admin"))
                })
            });
            if let Some((Some(listen), Some(admin))) = serving {
                return Self {
                    child,
                    listen,
                    admin,
                    stderr,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("proxy exited with {status}: {:?}", stderr.lock());
            }
            assert!(Instant::now() < deadline, "proxy did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits (at most 20s) for a clean exit.
    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "exit after SIGTERM: {status}");
    }

    fn logged(&self, message: &str) -> usize {
        let lines = self.stderr.lock().expect("lock");
        lines.iter().filter(|l| l.contains(message)).count()
    }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// POSTs cancelAll with `client-request-id: id`; `None` when the
/// connection fails (the proxy is gone).
async fn cancel(
    client: &HttpClient,
    addr: &str,
    id: &str,
) -> Option<StatusCode> {
    let request = Request::post(format!("http://{addr}{}", cancel_path()))
        .header("authorization", format!("Bearer {}", admin_token()))
        .header("client-request-id", id)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = client.request(request).await.ok()?;
    let status = response.status();
    let _ = response.into_body().collect().await;
    Some(status)
}

async fn get(client: &HttpClient, addr: &str, path: &str) -> StatusCode {
    let request = Request::get(format!("http://{addr}{path}"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    client
        .request(request)
        .await
        .expect("admin answers")
        .status()
}

fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("trail")
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_forwarded_decision_and_recovers() {
    let dir = tempfile::tempdir().expect("dir");
    let graph = StandIn::start(
        &dir.path().join("ca.pem"),
        active(dir.path()),
        GraphBehavior::default(),
    )
    .await;
    let config = write_config(dir.path(), &graph, "sync = \"batch\"");
    let proxy = Proxy::start(&config);

    // 16 callers in a loop until the kill; each stops at its first
    // failed connection, and after 2000 calls at most.
    let stop = Arc::new(AtomicBool::new(false));
    let mut callers = Vec::new();
    for caller in 0..16 {
        let (stop, addr, client) =
            (stop.clone(), proxy.listen.clone(), client());
        callers.push(tokio::spawn(async move {
            for n in 0..2000 {
                let id = format!("0000{caller:04}-0000-4000-8000-{n:012}");
                if stop.load(Ordering::Relaxed)
                    || cancel(&client, &addr, &id).await.is_none()
                {
                    return;
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while graph.received().len() < 50 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut child = proxy.child;
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.await.expect("caller");
    }

    let received = graph.received();
    assert!(received.len() >= 50, "load too light: {}", received.len());
    let trail = records(&active(dir.path()));
    for call in &received {
        let id = call.headers["client-request-id"].to_str().expect("ascii");
        assert!(
            call.decision_on_disk,
            "{id} reached Graph before its record"
        );
        assert!(
            trail.iter().any(|r| r["event"] == "decision"
                && r["client_request_id"] == id
                && r["decision"] == "allow"),
            "{id} was forwarded without a durable decision record"
        );
    }

    // A SIGKILL cannot cut one write(2) to a regular file short, but power
    // loss can: leave the torn line such a crash leaves.
    let path = active(dir.path());
    let mut bytes = std::fs::read(&path).expect("trail");
    assert!(bytes.ends_with(b"\n"));
    let last_hash = trail.last().expect("records")["hash"].clone();
    let torn_line = bytes.iter().filter(|b| **b == b'\n').count() + 1;
    bytes.extend_from_slice(br#"{"v":1,"seq":999999,"ts":"2026-"#);
    std::fs::write(&path, &bytes).expect("tear");

    let proxy = Proxy::start(&config);
    let after = cancel(&client(), &proxy.listen, "restart-call").await;
    assert_eq!(after, Some(StatusCode::NO_CONTENT));
    proxy.terminate();

    let trail = records(&path);
    let recovery = trail
        .iter()
        .find(|r| r["event"] == "recovery")
        .expect("a recovery record");
    assert_eq!(recovery["reason"], "torn_tail");
    assert_eq!(recovery["prev"], last_hash);
    assert_eq!(recovery["detail"]["line"], torn_line);
    assert!(std::fs::read(&path).expect("trail").starts_with(&bytes));

    let folder = dir.path().join("audit");
    let verify = Command::new(BIN)
        .args(["audit", "verify"])
        .arg(&folder)
        .output()
        .expect("verify runs");
    let out = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!(":{torn_line}: torn (recovered)")),
        "{out}"
    );
}

#[tokio::test]
async fn audit_stdout_copies_each_record_and_logs_stay_on_stderr() {
    let dir = tempfile::tempdir().expect("dir");
    let graph = StandIn::start(
        &dir.path().join("ca.pem"),
        active(dir.path()),
        GraphBehavior::default(),
    )
    .await;
    let config = write_config(dir.path(), &graph, "stdout = true");
    let mut proxy = Proxy::start(&config);
    let stdout = proxy.child.stdout.take().expect("piped");
    let client = client();
    let allowed = cancel(&client, &proxy.listen, "stdout-call-1").await;
    assert_eq!(allowed, Some(StatusCode::NO_CONTENT));
    let logs = proxy.stderr.clone();
    proxy.terminate();

    let copied: Vec<String> = BufReader::new(stdout)
        .lines()
        .map(|l| l.expect("utf8"))
        .collect();
    let written = std::fs::read_to_string(active(dir.path())).expect("trail");
    let written: Vec<&str> = written.lines().collect();
    assert_eq!(copied, written, "stdout must carry the records as written");
    let events: Vec<String> = copied
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON"))
        .map(|r| r["event"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(events, ["start", "config", "decision", "outcome", "stop"]);
    let start: serde_json::Value = serde_json::from_str(&copied[0]).expect("");
    assert_eq!(start["detail"]["replica"], "child");
    assert_eq!(start["detail"]["hash"], "sha256");
    let recorded: serde_json::Value =
        serde_json::from_str(&copied[1]).expect("config record");
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        &std::fs::read(&config).expect("config"),
    );
    assert_eq!(recorded["detail"]["sha256"], hex::encode(digest));
    assert_eq!(recorded["mode"], "enforce");

    let logs = logs.lock().expect("lock");
    assert!(logs.iter().any(|l| l.contains("cancelguard serving")));
    assert!(logs.iter().all(|l| !l.contains("\"prev\":")), "{logs:?}");
}

#[tokio::test]
async fn full_disk_fails_closed_logs_once_and_resumes_by_itself() {
    let dir = tempfile::tempdir().expect("dir");
    let graph = StandIn::start(
        &dir.path().join("ca.pem"),
        active(dir.path()),
        GraphBehavior::default(),
    )
    .await;
    let config = write_config(dir.path(), &graph, "");
    std::fs::create_dir_all(dir.path().join("audit")).expect("mkdir");
    // Writes through this link fail with ENOSPC, as on a full disk.
    std::os::unix::fs::symlink("/dev/full", active(dir.path())).expect("ln");

    let proxy = Proxy::start(&config);
    let client = client();
    for n in 0..5 {
        let status = cancel(&client, &proxy.listen, &format!("full-{n}")).await;
        assert_eq!(status, Some(StatusCode::SERVICE_UNAVAILABLE));
    }
    assert!(graph.received().is_empty(), "forwarded without a record");
    let ready = get(&client, &proxy.admin, "/readyz").await;
    assert_eq!(ready, StatusCode::SERVICE_UNAVAILABLE);
    // Let the writer retry on its own a few times.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(proxy.logged("audit write failed"), 1, "{:?}", proxy.stderr);

    std::fs::remove_file(active(dir.path())).expect("space again");
    let deadline = Instant::now() + Duration::from_secs(15);
    while get(&client, &proxy.admin, "/readyz").await != StatusCode::OK {
        assert!(Instant::now() < deadline, "not ready again within 15s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(proxy.logged("audit file writable again"), 1);
    let status = cancel(&client, &proxy.listen, "after-full").await;
    assert_eq!(status, Some(StatusCode::NO_CONTENT));
    proxy.terminate();

    let trail = records(&active(dir.path()));
    assert_eq!(trail[0]["event"], "recovery");
    assert_eq!(trail[0]["reason"], "write_failed");
    // start (config is not tried once start fails), five decisions.
    assert_eq!(trail[0]["detail"]["failed_records"], 6);
}

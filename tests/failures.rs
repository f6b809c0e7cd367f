//! When something around the proxy fails, it fails closed and says so:
//! upstream down or slow, audit trail not writable.

mod common;

use std::time::Duration;

use common::keyserver::KeyServer;
use common::*;
use http::StatusCode;

#[tokio::test]
async fn upstream_refusing_connections_gets_502() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let setup = Setup {
        upstream_url: Some(format!("https://127.0.0.1:{port}")),
        ..Setup::default()
    };
    let proxy = Harness::start(setup).await;
    let reply = proxy.post(&cancel_path(), Some(&admin_token())).await;

    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.body);
    assert_eq!(reply.json()["error"]["code"], "BadGateway");
    let id = audit_id(&reply);
    let outcome = proxy.outcome(&id).await;
    assert_eq!(outcome["status"], 502);
    assert_eq!(outcome["reason"], "upstream_connect");
    proxy.stop_verified().await;
}

#[tokio::test]
async fn upstream_too_slow_gets_504() {
    let setup = Setup {
        graph: GraphBehavior {
            delay: Duration::from_secs(5),
            ..GraphBehavior::default()
        },
        upstream_timeout: "200ms",
        ..Setup::default()
    };
    let proxy = Harness::start(setup).await;
    let reply = proxy.post(&cancel_path(), Some(&admin_token())).await;

    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT, "{}", reply.body);
    let id = audit_id(&reply);
    let outcome = proxy.outcome(&id).await;
    assert_eq!(outcome["reason"], "upstream_timeout");
    proxy.stop_verified().await;
}

#[tokio::test]
async fn full_disk_gets_503_and_nothing_is_forwarded() {
    // Writes to /dev/full fail with ENOSPC, as on a full disk.
    let setup = Setup {
        audit_file: Some("/dev/full".into()),
        ..Setup::default()
    };
    let proxy = Harness::start(setup).await;
    let reply = proxy.post(&cancel_path(), Some(&admin_token())).await;

    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(reply.headers.contains_key("x-cancelguard-audit-id"));
    assert!(
        proxy.graph.received().is_empty(),
        "a call was forwarded without its audit record"
    );
    let ready = proxy.admin_get("/readyz").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        ready.body.contains("audit file not writable"),
        "{}",
        ready.body
    );
    let metrics = proxy.admin_get("/metrics").await.body;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("cancelguard_audit_write_failures_total ")
                && l != "cancelguard_audit_write_failures_total 0"),
        "{metrics}"
    );
    assert!(
        metrics.lines().any(|l| l == "cancelguard_audit_writable 0"),
        "{metrics}"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn audit_path_that_cannot_be_created_gets_503() {
    let dir = tempfile::tempdir().expect("dir");
    let not_a_dir = dir.path().join("plain-file");
    std::fs::write(&not_a_dir, b"").expect("file");
    let setup = Setup {
        audit_file: Some(not_a_dir.join("audit.jsonl")),
        ..Setup::default()
    };
    let proxy = Harness::start(setup).await;

    let ready = proxy.admin_get("/readyz").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    let reply = proxy.post(&cancel_path(), Some(&admin_token())).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["error"]["code"], "ServiceUnavailable");
    assert!(
        proxy.graph.received().is_empty(),
        "a call was forwarded without its audit record"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn keys_fetched_from_a_jwks_url_verify_tokens() {
    let keys = KeyServer::start(issuer().jwks_json()).await;
    let setup = Setup {
        jwks_url: Some(keys.jwks_url()),
        ..Setup::default()
    };
    let proxy = Harness::start(setup).await;
    let reply = proxy.post(&cancel_path(), Some(&admin_token())).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(proxy.graph.received().len(), 1);
    proxy.stop_verified().await;
}

#[tokio::test]
async fn key_server_down_at_start_means_not_ready_and_503() {
    let keys = KeyServer::start("oops".into()).await;
    keys.answer(|a| a.status = StatusCode::INTERNAL_SERVER_ERROR);
    let setup = Setup {
        jwks_url: Some(keys.jwks_url()),
        ..Setup::default()
    };
    let proxy = Harness::start(setup).await;

    let ready = proxy.admin_get("/readyz").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        ready.body.contains("signing keys not loaded"),
        "{}",
        ready.body
    );
    let reply = proxy.post(&cancel_path(), Some(&admin_token())).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(
        proxy.decision(&audit_id(&reply))["reason"],
        "keys_not_loaded"
    );
    assert!(proxy.graph.received().is_empty());
    proxy.stop_verified().await;
}

//! The guarded cancelAll path end to end: what reaches the stand-in Graph,
//! what the caller hears, and what the audit trail keeps.

mod common;

use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::Full;

#[tokio::test]
async fn allowed_caller_gets_204_and_graph_gets_one_canonical_call() {
    let proxy = Harness::start(Setup::default()).await;
    let token = admin_token();
    let spelt = format!(
        "/BETA//permissionsManagement/ScheduledPermissionsRequests('{REQUEST_ID}')/microsoft.graph.cancelAll"
    );
    let request = Request::post(spelt)
        .header("authorization", format!("Bearer {token}"))
        .header("client-request-id", "5f0e6a4c-1111-4222-8333-444455556666")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "drop me")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let reply = proxy.send(request).await;

    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    let received = proxy.graph.received();
    assert_eq!(received.len(), 1, "Graph must receive exactly one call");
    let call = &received[0];
    assert_eq!(call.method, http::Method::POST);
    assert_eq!(call.path, cancel_path());
    assert_eq!(
        call.headers["authorization"],
        format!("Bearer {token}").as_str()
    );
    assert_eq!(
        call.headers["client-request-id"],
        "5f0e6a4c-1111-4222-8333-444455556666"
    );
    assert_eq!(
        call.headers["host"],
        format!("127.0.0.1:{}", proxy.graph.addr.port()).as_str()
    );
    assert!(
        !call.headers.contains_key("x-hop"),
        "headers named by Connection are hop-by-hop"
    );

    let id = audit_id(&reply);
    let decision = proxy.decision(&id);
    assert_eq!(decision["decision"], "allow");
    assert_eq!(decision["reason"], "allowed_by_rule");
    assert_eq!(decision["rule"], "admins");
    assert_eq!(decision["target"], REQUEST_ID);
    assert_eq!(decision["caller"]["upn"], "alice@contoso.example");
    assert_eq!(
        decision["client_request_id"],
        "5f0e6a4c-1111-4222-8333-444455556666"
    );
    let outcome = proxy.outcome(&id).await;
    assert_eq!(outcome["status"], 204);
    assert!(outcome["upstream_ms"].is_u64());
    proxy.stop_verified().await;
}

#[tokio::test]
async fn decision_is_durable_before_graph_sees_the_call() {
    let proxy = Harness::start(Setup::default()).await;
    for _ in 0..3 {
        let reply = proxy.post(&cancel_path(), Some(&admin_token())).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
    }
    let received = proxy.graph.received();
    assert_eq!(received.len(), 3);
    assert!(
        received.iter().all(|r| r.decision_on_disk),
        "a call reached Graph before its decision record was on disk"
    );
    proxy.stop_verified().await;
}

#[tokio::test]
async fn graph_error_is_relayed_as_it_came() {
    let graph = GraphBehavior {
        status: StatusCode::CONFLICT,
        ..GraphBehavior::default()
    };
    let proxy = Harness::start(Setup {
        graph,
        ..Setup::default()
    })
    .await;
    let reply = proxy.post(&cancel_path(), Some(&admin_token())).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(proxy.graph.received().len(), 1);
    proxy.stop_verified().await;
}

#[tokio::test]
async fn caller_without_matching_rule_gets_403_and_graph_gets_nothing() {
    let proxy = Harness::start(Setup::default()).await;
    let token = issuer().sign(&claims("bob@contoso.example", false));
    let reply = proxy.post(&cancel_path(), Some(&token)).await;

    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.json()["error"]["code"], "Authorization_RequestDenied");
    assert!(
        proxy.graph.received().is_empty(),
        "a denied call reached Graph"
    );
    let decision = proxy.decision(&audit_id(&reply));
    assert_eq!(decision["decision"], "deny");
    assert_eq!(decision["reason"], "no_matching_rule");
    assert_eq!(decision["status"], 403);
    proxy.stop_verified().await;
}

#[tokio::test]
async fn deny_rule_beats_allow_rule() {
    let proxy = Harness::start(Setup::default()).await;
    // Mallory holds the admin role (allow) and is named by a deny rule.
    let token = issuer().sign(&claims("mallory@contoso.example", true));
    let reply = proxy.post(&cancel_path(), Some(&token)).await;

    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(
        proxy.graph.received().is_empty(),
        "a denied call reached Graph"
    );
    let decision = proxy.decision(&audit_id(&reply));
    assert_eq!(decision["reason"], "denied_by_rule");
    assert_eq!(decision["rule"], "blocked");
    // The reply does not reveal which rule denied.
    assert!(!reply.body.contains("blocked"));
    proxy.stop_verified().await;
}

#[tokio::test]
async fn group_rule_allows_its_members() {
    let proxy = Harness::start(Setup::default()).await;
    let mut claims = claims("carol@contoso.example", false);
    claims["groups"] = serde_json::json!([OPS_GROUP.to_uppercase()]);
    let reply = proxy
        .post(&cancel_path(), Some(&issuer().sign(&claims)))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(proxy.decision(&audit_id(&reply))["rule"], "ops");
    proxy.stop_verified().await;
}

#[tokio::test]
async fn wrong_shapes_are_refused_and_never_forwarded() {
    let proxy = Harness::start(Setup::default()).await;
    let token = format!("Bearer {}", admin_token());
    let empty = || Full::new(Bytes::new());

    let get = Request::get(cancel_path())
        .header("authorization", &token)
        .body(empty())
        .expect("req");
    let reply = proxy.send(get).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers["allow"], "POST");

    let body = Request::post(cancel_path())
        .header("authorization", &token)
        .body(Full::new(Bytes::from_static(b"{}")))
        .expect("req");
    assert_eq!(proxy.send(body).await.status, StatusCode::BAD_REQUEST);

    let query = Request::post(format!("{}?force=true", cancel_path()))
        .header("authorization", &token)
        .body(empty())
        .expect("req");
    assert_eq!(proxy.send(query).await.status, StatusCode::BAD_REQUEST);

    let overridden = Request::get(cancel_path())
        .header("authorization", &token)
        .header("x-http-method-override", "POST")
        .body(empty())
        .expect("req");
    assert_eq!(proxy.send(overridden).await.status, StatusCode::BAD_REQUEST);

    let encoded = format!(
        "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests%2F{REQUEST_ID}/cancelAll"
    );
    let reply = proxy.post(&encoded, Some(&admin_token())).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"]["code"], "BadRequest");

    let other = proxy.post("/v1.0/me", Some(&admin_token())).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert!(other.headers.contains_key("x-cancelguard-audit-id"));

    assert!(
        proxy.graph.received().is_empty(),
        "a refused call reached Graph"
    );
    let reasons: Vec<String> = proxy
        .audit_records()
        .iter()
        .filter(|r| r["event"] == "decision")
        .map(|r| r["reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        reasons,
        [
            "method_not_allowed",
            "body_not_allowed",
            "query_not_allowed",
            "method_override",
            "malformed_target"
        ]
    );
    proxy.stop_verified().await;
}

#[tokio::test]
async fn error_bodies_have_graphs_shape() {
    let proxy = Harness::start(Setup::default()).await;
    let request = Request::post(cancel_path())
        .header("client-request-id", "0d0e0f00-aaaa-4bbb-8ccc-dddddddddddd")
        .body(Full::new(Bytes::new()))
        .expect("req");
    let reply = proxy.send(request).await;
    let body = reply.json();
    let inner = &body["error"]["innerError"];
    assert_eq!(inner["request-id"], audit_id(&reply).as_str());
    assert_eq!(
        inner["client-request-id"],
        "0d0e0f00-aaaa-4bbb-8ccc-dddddddddddd"
    );
    assert!(inner["date"].as_str().is_some_and(|d| d.ends_with('Z')));
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert_eq!(reply.headers["content-type"], "application/json");
    proxy.stop_verified().await;
}

#[tokio::test]
async fn health_and_readiness_answer_on_the_admin_listener() {
    let proxy = Harness::start(Setup::default()).await;
    assert_eq!(proxy.admin_get("/healthz").await.status, StatusCode::OK);
    let ready = proxy.admin_get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    proxy.stop_verified().await;
}

#[tokio::test]
async fn shutdown_records_stop_and_leaves_a_verifiable_chain() {
    let proxy = Harness::start(Setup::default()).await;
    proxy.post(&cancel_path(), Some(&admin_token())).await;
    let audit_file = proxy.audit_file.clone();
    let _dir = proxy.stop().await;
    let records = std::fs::read_to_string(&audit_file).expect("trail");
    let events: Vec<serde_json::Value> = records
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(
        events.first().map(|r| r["event"].clone()),
        Some("start".into())
    );
    assert_eq!(
        events.last().map(|r| r["event"].clone()),
        Some("stop".into())
    );
    let report =
        cancelguard::audit::verify::verify_file(&audit_file).expect("readable");
    assert_eq!(report.problem, None);
}

#[tokio::test]
async fn http2_callers_are_served_too() {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let proxy = Harness::start(Setup::default()).await;
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let request =
        Request::post(format!("http://{}{}", proxy.addr, cancel_path()))
            .header("authorization", format!("Bearer {}", admin_token()))
            .body(Full::new(Bytes::new()))
            .expect("request");
    let response = client.request(request).await.expect("h2 answer");
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(proxy.graph.received().len(), 1);

    let with_body =
        Request::post(format!("http://{}{}", proxy.addr, cancel_path()))
            .header("authorization", format!("Bearer {}", admin_token()))
            .body(Full::new(Bytes::from_static(b"smuggled")))
            .expect("request");
    let response = client.request(with_body).await.expect("h2 answer");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(proxy.graph.received().len(), 1, "a body went to Graph");
    proxy.stop_verified().await;
}

#[tokio::test]
async fn metrics_count_responses_and_decisions() {
    let proxy = Harness::start(Setup::default()).await;
    proxy.post(&cancel_path(), Some(&admin_token())).await;
    let bob = issuer().sign(&claims("bob@contoso.example", false));
    proxy.post(&cancel_path(), Some(&bob)).await;
    proxy.post(&cancel_path(), Some(&bob)).await;

    let reply = proxy.admin_get("/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.headers["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/plain"))
    );
    let text = reply.body;
    let has = |line: &str| text.lines().any(|l| l == line);
    assert!(
        has(
            r#"cancelguard_responses_total{route="cancel_all",status="204"} 1"#
        ),
        "{text}"
    );
    assert!(
        has(
            r#"cancelguard_responses_total{route="cancel_all",status="403"} 2"#
        ),
        "{text}"
    );
    assert!(
        has(
            r#"cancelguard_decisions_total{decision="allow",reason="allowed_by_rule"} 1"#
        ),
        "{text}"
    );
    assert!(
        has(
            r#"cancelguard_decisions_total{decision="deny",reason="no_matching_rule"} 2"#
        ),
        "{text}"
    );
    assert!(
        has("cancelguard_upstream_duration_seconds_count 1"),
        "{text}"
    );
    assert!(has("cancelguard_signing_keys_loaded 1"), "{text}");
    assert!(has("cancelguard_token_signature_checks_total 2"), "{text}");
    let fsyncs = text
        .lines()
        .find_map(|l| l.strip_prefix("cancelguard_audit_fsyncs_total "))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(fsyncs.is_some_and(|n| n > 0), "{text}");
    proxy.stop_verified().await;
}

#[tokio::test]
async fn dry_run_forwards_denied_calls_and_records_the_denial() {
    let setup = Setup {
        policy_mode: "dry-run",
        ..Setup::default()
    };
    let proxy = Harness::start(setup).await;
    let bob = issuer().sign(&claims("bob@contoso.example", false));
    let reply = proxy.post(&cancel_path(), Some(&bob)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(proxy.graph.received().len(), 1);
    assert!(proxy.graph.received()[0].decision_on_disk);
    let decision = proxy.decision(&audit_id(&reply));
    assert_eq!(decision["decision"], "deny");
    assert_eq!(decision["reason"], "no_matching_rule");
    assert_eq!(decision["mode"], "dry-run");

    // Tokens are still required in dry-run.
    let reply = proxy.post(&cancel_path(), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(proxy.graph.received().len(), 1);
    proxy.stop_verified().await;
}

//! Routes other than cancelAll: forwarded untouched when configured,
//! `$batch` inspected, method overrides refused everywhere.

mod common;

use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::json;

fn forwarding() -> Setup {
    Setup {
        forward_other_routes: true,
        ..Setup::default()
    }
}

fn batch_body(urls: &[String]) -> Bytes {
    let requests: Vec<_> = urls
        .iter()
        .enumerate()
        .map(|(i, url)| json!({"id": i.to_string(), "method": "POST", "url": url}))
        .collect();
    Bytes::from(json!({ "requests": requests }).to_string())
}

fn post_batch(path: &str, body: Bytes) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("content-type", "application/json")
        .header("authorization", "Bearer not-checked-here")
        .body(Full::new(body))
        .expect("request")
}

fn cancel_relative() -> String {
    format!(
        "identityGovernance/permissionsManagement/scheduledPermissionsRequests/{REQUEST_ID}/cancelAll"
    )
}

#[tokio::test]
async fn other_routes_are_forwarded_untouched_when_configured() {
    let proxy = Harness::start(forwarding()).await;
    let request = Request::post(
        "/v1.0/users/Alice%40contoso.com/sendMail?$select=id&x=%2F",
    )
    .header("x-custom", "kept")
    .header("authorization", "Bearer opaque")
    .body(Full::new(Bytes::from_static(b"{\"message\":{}}")))
    .expect("request");
    let reply = proxy.send(request).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);

    let received = proxy.graph.received();
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert_eq!(got.method, http::Method::POST);
    assert_eq!(
        got.target,
        "/v1.0/users/Alice%40contoso.com/sendMail?$select=id&x=%2F"
    );
    assert_eq!(got.body.as_ref(), b"{\"message\":{}}");
    assert_eq!(got.headers["x-custom"], "kept");
    assert_eq!(got.headers["authorization"], "Bearer opaque");
    assert_eq!(
        got.headers["host"],
        format!("127.0.0.1:{}", proxy.graph.addr.port()).as_str()
    );

    let records = proxy.audit_records();
    assert!(
        records.iter().all(|r| r["event"] != "decision"),
        "other routes are not audited"
    );
    proxy.stop_verified().await;
}

#[tokio::test]
async fn other_routes_get_404_when_not_forwarded() {
    let proxy = Harness::start(Setup::default()).await;
    let reply = proxy.post("/v1.0/me", None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(proxy.graph.received().is_empty());
    proxy.stop_verified().await;
}

#[tokio::test]
async fn method_override_is_refused_on_every_route() {
    let proxy = Harness::start(forwarding()).await;
    for name in [
        "X-HTTP-Method-Override",
        "X-HTTP-Method",
        "X-Method-Override",
    ] {
        let request = Request::get("/v1.0/me")
            .header(name, "DELETE")
            .body(Full::new(Bytes::new()))
            .expect("request");
        let reply = proxy.send(request).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{name}");
    }
    assert!(proxy.graph.received().is_empty());
    proxy.stop_verified().await;
}

#[tokio::test]
async fn batch_holding_cancel_all_is_refused_and_audited() {
    let proxy = Harness::start(forwarding()).await;
    let spellings = [
        cancel_relative(),
        format!("/{}", cancel_relative()),
        format!(
            "PermissionsManagement/scheduledPermissionsRequests('{REQUEST_ID}')/Microsoft.Graph.CancelAll"
        ),
    ];
    for (path, url) in [
        ("/beta/$batch", &spellings[0]),
        ("/V1.0/%24BATCH", &spellings[1]),
        ("/beta//$batch/", &spellings[2]),
    ] {
        let body = batch_body(&["/me".to_string(), url.clone()]);
        let reply = proxy.send(post_batch(path, body)).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path} {url}");
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(message.contains("directly"), "{message}");
        let decision = proxy.decision(&audit_id(&reply));
        assert_eq!(decision["reason"], "cancelall_in_batch");
        assert_eq!(decision["target"], REQUEST_ID);
    }
    assert!(
        proxy.graph.received().is_empty(),
        "a batch holding cancelAll reached Graph"
    );
    proxy.stop_verified().await;
}

#[tokio::test]
async fn doubtful_batches_are_refused_with_400() {
    let setup = Setup {
        max_batch_bytes: 4096,
        ..forwarding()
    };
    let proxy = Harness::start(setup).await;
    let too_many = batch_body(&vec!["/me".to_string(); 21]);
    let too_large = batch_body(&["/me".to_string(), "x".repeat(5000)]);
    let refused_inside = batch_body(&[format!("{}/../cancelAll", "/me")]);
    let cases: [(&str, Bytes); 5] = [
        ("not JSON", Bytes::from_static(b"{\"requests\": [")),
        ("more than 20", too_many),
        ("over the size limit", too_large),
        ("refused sub-request", refused_inside),
        ("nested batch", batch_body(&["$batch".to_string()])),
    ];
    for (name, body) in cases {
        let reply = proxy.send(post_batch("/beta/$batch", body)).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{name}: {}",
            reply.body
        );
        assert_eq!(
            proxy.decision(&audit_id(&reply))["reason"],
            "batch_refused",
            "{name}"
        );
    }
    let get = Request::get("/beta/$batch")
        .body(Full::new(Bytes::new()))
        .expect("req");
    assert_eq!(proxy.send(get).await.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        proxy.graph.received().is_empty(),
        "a refused batch reached Graph"
    );
    proxy.stop_verified().await;
}

#[tokio::test]
async fn clean_batch_is_forwarded_with_its_body_unchanged() {
    let proxy = Harness::start(forwarding()).await;
    let body = batch_body(&["/me".to_string(), "users?$top=1".to_string()]);
    let reply = proxy.send(post_batch("/v1.0/$batch", body.clone())).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let received = proxy.graph.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].target, "/v1.0/$batch");
    assert_eq!(received[0].body, body);
    proxy.stop_verified().await;
}

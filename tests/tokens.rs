//! Tokens that must not get a call through: each is answered 401 with an
//! RFC 6750 challenge, reaches nothing upstream, and is audited without the
//! token itself.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use cancelguard::demo::{DEMO_TENANT, Issuer};
use common::*;
use http::{Request, StatusCode};
use http_body_util::Full;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

fn with(changes: Value) -> Value {
    let mut claims = claims("alice@contoso.example", true);
    for (key, value) in changes.as_object().expect("an object of changes") {
        if value.is_null() {
            claims.as_object_mut().expect("object").remove(key);
        } else {
            claims[key] = value.clone();
        }
    }
    claims
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// A token whose header is written by hand, signed with HMAC-SHA256 under
/// `secret`: the classic key-confusion forgery.
fn hmac_forgery(secret: &[u8]) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("test-key-1".into());
    let key = EncodingKey::from_secret(secret).expect("any secret");
    jsonwebtoken::encode(&header, &claims("alice@contoso.example", true), &key)
        .expect("signs")
}

/// The issuer's public RSA modulus, as an attacker would read it from the
/// published key set.
fn public_key_bytes() -> Vec<u8> {
    let jwks: Value =
        serde_json::from_str(&issuer().jwks_json()).expect("JWKS");
    URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["n"].as_str().expect("n"))
        .expect("base64url")
}

#[tokio::test]
async fn bad_tokens_get_401_and_reach_nothing() {
    let proxy = Harness::start(Setup::default()).await;
    let other_issuer = Issuer::generate("test-key-1").expect("second key");
    let other_tenant = "99999999-0000-4000-8000-000000000000";

    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no token", None, "token_missing"),
        ("garbage", Some("not-a-token".into()), "token_malformed"),
        (
            "expired",
            Some(issuer().sign(&with(json!({"exp": now() - 3600})))),
            "token_expired",
        ),
        (
            "not yet valid",
            Some(issuer().sign(&with(json!({"nbf": now() + 3600})))),
            "token_not_yet_valid",
        ),
        (
            "issued in the future",
            Some(issuer().sign(&with(json!({"iat": now() + 3600})))),
            "token_iat_future",
        ),
        (
            "no exp",
            Some(issuer().sign(&with(json!({"exp": null})))),
            "token_claims",
        ),
        (
            "wrong audience",
            Some(issuer().sign(&with(json!({"aud": "api://someone-else"})))),
            "token_audience",
        ),
        (
            "no audience",
            Some(issuer().sign(&with(json!({"aud": null})))),
            "token_audience",
        ),
        (
            "wrong issuer",
            Some(issuer().sign(&with(json!({"iss": "https://evil.example/"})))),
            "token_issuer",
        ),
        (
            "issuer of another tenant",
            Some(issuer().sign(&with(
                json!({"iss": format!("https://sts.windows.net/{other_tenant}/")}),
            ))),
            "token_issuer",
        ),
        (
            "tenant not allowed",
            Some(issuer().sign(&with(json!({
                "tid": other_tenant,
                "iss": format!("https://sts.windows.net/{other_tenant}/"),
            })))),
            "token_tenant",
        ),
        (
            "alg none",
            Some(format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT"})),
                b64(&claims("alice@contoso.example", true))
            )),
            "token_malformed",
        ),
        (
            "HS256 with the public key",
            Some(hmac_forgery(&public_key_bytes())),
            "token_algorithm",
        ),
        (
            "HS256 with the JWKS text",
            Some(hmac_forgery(issuer().jwks_json().as_bytes())),
            "token_algorithm",
        ),
        (
            "unknown kid",
            Some(
                Issuer::generate("rotated-away")
                    .expect("key")
                    .sign(&claims("a@b.c", true)),
            ),
            "token_unknown_key",
        ),
        (
            "signed by another key",
            Some(other_issuer.sign(&claims("alice@contoso.example", true))),
            "token_signature",
        ),
        (
            "oversized",
            Some(issuer().sign(&with(json!({"pad": "x".repeat(20_000)})))),
            "token_too_large",
        ),
    ];

    for (name, token, reason) in cases {
        let reply = proxy.post(&cancel_path(), token.as_deref()).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{name}: {}",
            reply.body
        );
        let challenge = reply
            .headers
            .get("www-authenticate")
            .unwrap_or_else(|| panic!("{name}: no challenge"));
        assert!(
            challenge.to_str().is_ok_and(|c| c.starts_with("Bearer")),
            "{name}"
        );
        let decision = proxy.decision(&audit_id(&reply));
        assert_eq!(decision["reason"], reason, "{name}");
        assert_eq!(decision["status"], 401, "{name}");
        assert!(
            decision.get("caller").is_none(),
            "{name}: unverified claims recorded as the caller"
        );
        if let Some(token) = &token {
            assert!(
                !reply.body.contains(token.as_str()),
                "{name}: token echoed to the caller"
            );
        }
    }

    assert!(
        proxy.graph.received().is_empty(),
        "a bad token got a call through to Graph"
    );
    proxy.stop_verified().await;
}

#[tokio::test]
async fn challenge_describes_the_problem() {
    let proxy = Harness::start(Setup::default()).await;
    let expired = issuer().sign(&with(json!({"exp": now() - 3600})));
    let reply = proxy.post(&cancel_path(), Some(&expired)).await;
    let challenge = reply.headers["www-authenticate"].to_str().expect("ascii");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains("expired"), "{challenge}");
    let decision = proxy.decision(&audit_id(&reply));
    assert_eq!(decision["unverified"]["upn"], "alice@contoso.example");
    proxy.stop_verified().await;
}

#[tokio::test]
async fn second_authorization_header_is_refused() {
    let proxy = Harness::start(Setup::default()).await;
    let good = format!("Bearer {}", admin_token());
    let request = Request::post(cancel_path())
        .header("authorization", &good)
        .header("authorization", &good)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let reply = proxy.send(request).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(proxy.decision(&audit_id(&reply))["reason"], "token_several");

    let basic = Request::post(cancel_path())
        .header("authorization", "Basic YWxpY2U6cGFzc3dvcmQ=")
        .body(Full::new(Bytes::new()))
        .expect("request");
    assert_eq!(proxy.send(basic).await.status, StatusCode::UNAUTHORIZED);
    assert!(proxy.graph.received().is_empty());
    proxy.stop_verified().await;
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let proxy = Harness::start(Setup::default()).await;
    let request = Request::post(cancel_path())
        .header("authorization", format!("bEaReR {}", admin_token()))
        .body(Full::new(Bytes::new()))
        .expect("request");
    assert_eq!(proxy.send(request).await.status, StatusCode::NO_CONTENT);
    assert_eq!(proxy.graph.received().len(), 1);
    proxy.stop_verified().await;
}

#[tokio::test]
async fn tokens_never_reach_the_audit_trail() {
    let proxy = Harness::start(Setup::default()).await;
    let good = admin_token();
    let expired = issuer().sign(&with(json!({"exp": now() - 3600})));
    proxy.post(&cancel_path(), Some(&good)).await;
    proxy.post(&cancel_path(), Some(&expired)).await;
    let trail = std::fs::read_to_string(&proxy.audit_file).expect("trail");
    for token in [&good, &expired] {
        let signature = token.rsplit('.').next().expect("three parts");
        assert!(
            !trail.contains(signature),
            "a token's signature is in the audit trail"
        );
        let payload = token.split('.').nth(1).expect("three parts");
        assert!(
            !trail.contains(payload),
            "a token's payload is in the audit trail"
        );
    }
    assert!(
        trail.contains(DEMO_TENANT),
        "the caller's tenant is recorded"
    );
    proxy.stop_verified().await;
}

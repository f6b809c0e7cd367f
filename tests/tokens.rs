//! Tokens that must not get a call through: each is answered 401 with an
//! RFC 6750 challenge that says what is wrong, reaches nothing upstream,
//! and is audited with its reason but without the token itself. Also the
//! Graph `nonce` tokens Entra issues, which must get through.

mod common;

use aws_lc_rs::digest;
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

fn b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

/// A token with this exact header and payload text, RS256-signed by the
/// test issuer over exactly those bytes.
fn forge(header: &str, payload: &str) -> String {
    let message = format!("{}.{}", b64(header), b64(payload));
    let signature = issuer().sign_message(message.as_bytes());
    format!("{message}.{signature}")
}

fn admin_claims() -> String {
    claims("alice@contoso.example", true).to_string()
}

/// A token minted the way Entra mints Graph tokens: the header carries
/// `nonce`, and the signature covers the same header with the nonce
/// replaced by the base64url SHA-256 of it.
fn entra_nonce_token(nonce: &str) -> String {
    let header = |value: &str| {
        format!(
            r#"{{"typ":"JWT","nonce":"{value}","alg":"RS256","x5t":"abc","kid":"test-key-1"}}"#
        )
    };
    let hashed = URL_SAFE_NO_PAD
        .encode(digest::digest(&digest::SHA256, nonce.as_bytes()));
    let payload = b64(&admin_claims());
    let signed = format!("{}.{payload}", b64(&header(&hashed)));
    let signature = issuer().sign_message(signed.as_bytes());
    format!("{}.{payload}.{signature}", b64(&header(nonce)))
}

fn hmac_forgery(secret: &[u8], alg: Algorithm) -> String {
    let mut header = Header::new(alg);
    header.kid = Some("test-key-1".into());
    let key = EncodingKey::from_secret(secret).expect("any secret");
    jsonwebtoken::encode(&header, &claims("alice@contoso.example", true), &key)
        .expect("signs")
}

/// The issuer's public RSA modulus, as an attacker reads it from the JWKS.
fn public_key_bytes() -> Vec<u8> {
    let jwks: Value =
        serde_json::from_str(&issuer().jwks_json()).expect("JWKS");
    URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["n"].as_str().expect("n"))
        .expect("base64url")
}

/// Sends every case and checks 401, the challenge, the audit reason, and
/// that nothing reached Graph.
async fn assert_refused(proxy: &Harness, cases: Vec<(&str, String, &str)>) {
    for (name, token, reason) in cases {
        let reply = proxy.post(&cancel_path(), Some(&token)).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{name}: {}",
            reply.body
        );
        let challenge =
            reply.headers["www-authenticate"].to_str().expect("ascii");
        assert!(
            challenge.starts_with(
                "Bearer error=\"invalid_token\", error_description=\""
            ),
            "{name}: {challenge}"
        );
        let decision = proxy.decision(&audit_id(&reply));
        assert_eq!(decision["reason"], reason, "{name}");
        assert_eq!(decision["status"], 401, "{name}");
        assert!(
            decision.get("caller").is_none(),
            "{name}: unverified claims as caller"
        );
        let body = reply.json();
        let message = body["error"]["message"].as_str().expect("message");
        assert!(
            challenge.contains(message),
            "{name}: body and challenge differ"
        );
        assert!(!reply.body.contains(&token), "{name}: token echoed");
    }
    assert!(
        proxy.graph.received().is_empty(),
        "a bad token reached Graph"
    );
}

#[tokio::test]
async fn lifetime_audience_issuer_and_tenant_are_checked() {
    let proxy = Harness::start(Setup::default()).await;
    let other = "99999999-0000-4000-8000-000000000000";
    let sign = |changes| issuer().sign(&with(changes));
    let cases = vec![
        (
            "expired",
            sign(json!({"exp": now() - 3600})),
            "token_expired",
        ),
        (
            "not yet valid",
            sign(json!({"nbf": now() + 3600})),
            "token_not_yet_valid",
        ),
        (
            "issued in the future",
            sign(json!({"iat": now() + 3600})),
            "token_iat_future",
        ),
        ("no exp", sign(json!({"exp": null})), "token_claims"),
        (
            "wrong audience",
            sign(json!({"aud": "api://other"})),
            "token_audience",
        ),
        ("no audience", sign(json!({"aud": null})), "token_audience"),
        (
            "wrong issuer",
            sign(json!({"iss": "https://evil.example/"})),
            "token_issuer",
        ),
        (
            "issuer of another tenant",
            sign(json!({"iss": format!("https://sts.windows.net/{other}/")})),
            "token_issuer",
        ),
        (
            "tenant not allowed",
            sign(
                json!({"tid": other, "iss": format!("https://sts.windows.net/{other}/")}),
            ),
            "token_tenant",
        ),
    ];
    assert_refused(&proxy, cases).await;

    // Both Entra issuer forms pass for the right tenant.
    let v2 = format!("https://login.microsoftonline.com/{DEMO_TENANT}/v2.0");
    let reply = proxy
        .post(&cancel_path(), Some(&sign(json!({"iss": v2}))))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    proxy.stop_verified().await;
}

#[tokio::test]
async fn hostile_tokens_are_refused_precisely() {
    let proxy = Harness::start(Setup::default()).await;
    let claims = admin_claims();
    let unsigned = |alg: &str| {
        format!(
            "{}.{}.",
            b64(&format!(r#"{{"alg":"{alg}"}}"#)),
            b64(&claims)
        )
    };
    let cases = vec![
        ("garbage", "not-a-token".to_string(), "token_not_jws"),
        (
            "two segments",
            format!("{}.{}", b64("{}"), b64("{}")),
            "token_not_jws",
        ),
        (
            "four segments",
            format!("{}.sig.x", forge(r#"{"alg":"RS256"}"#, &claims)),
            "token_not_jws",
        ),
        (
            "JWE, five segments",
            "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d".into(),
            "token_not_jws",
        ),
        ("alg none", unsigned("none"), "token_not_jws"),
        (
            "alg none, signed part",
            format!("{}c2ln", unsigned("none")),
            "token_unsigned",
        ),
        (
            "alg NONE",
            format!("{}c2ln", unsigned("NONE")),
            "token_unsigned",
        ),
        (
            "alg nOnE",
            format!("{}c2ln", unsigned("nOnE")),
            "token_unsigned",
        ),
        (
            "HS256 with the public key",
            hmac_forgery(&public_key_bytes(), Algorithm::HS256),
            "token_hmac",
        ),
        (
            "HS512 with the JWKS text",
            hmac_forgery(issuer().jwks_json().as_bytes(), Algorithm::HS512),
            "token_hmac",
        ),
        (
            "algorithm not allowed",
            forge(r#"{"alg":"RS384","kid":"test-key-1"}"#, &claims),
            "token_algorithm",
        ),
        (
            "unknown algorithm",
            forge(r#"{"alg":"XY999","kid":"test-key-1"}"#, &claims),
            "token_algorithm",
        ),
        (
            "jku",
            forge(
                r#"{"alg":"RS256","kid":"test-key-1","jku":"https://evil.example/k"}"#,
                &claims,
            ),
            "token_embedded_key",
        ),
        (
            "x5u",
            forge(
                r#"{"alg":"RS256","kid":"test-key-1","x5u":"https://evil.example/c"}"#,
                &claims,
            ),
            "token_embedded_key",
        ),
        (
            "embedded jwk",
            forge(
                r#"{"alg":"RS256","kid":"test-key-1","jwk":{"kty":"RSA"}}"#,
                &claims,
            ),
            "token_embedded_key",
        ),
        (
            "crit",
            forge(
                r#"{"alg":"RS256","kid":"test-key-1","crit":["exp"]}"#,
                &claims,
            ),
            "token_crit",
        ),
        (
            "bad base64",
            format!("a.{}.c2ln", b64(&claims)),
            "token_base64",
        ),
        ("header not JSON", forge("not json", &claims), "token_json"),
        (
            "claims not JSON",
            forge(r#"{"alg":"RS256","kid":"test-key-1"}"#, "[1,2]"),
            "token_json",
        ),
        (
            "duplicate header key",
            forge(r#"{"alg":"RS256","kid":"test-key-1","kid":"x"}"#, &claims),
            "token_duplicate_key",
        ),
        (
            "duplicate claim",
            forge(
                r#"{"alg":"RS256","kid":"test-key-1"}"#,
                &claims.replacen(
                    '{',
                    &format!(r#"{{"tid":"{DEMO_TENANT}","#),
                    1,
                ),
            ),
            "token_duplicate_key",
        ),
        (
            "unknown kid",
            Issuer::generate("rotated-away")
                .expect("key")
                .sign(&with(json!({}))),
            "token_unknown_key",
        ),
        (
            "signed by another key",
            Issuer::generate("test-key-1")
                .expect("key")
                .sign(&with(json!({}))),
            "token_signature",
        ),
        (
            "oversized",
            issuer().sign(&with(json!({"pad": "x".repeat(20_000)}))),
            "token_too_large",
        ),
    ];
    assert_refused(&proxy, cases).await;
    proxy.stop_verified().await;
}

#[tokio::test]
async fn algorithm_must_fit_the_key() {
    let setup = Setup {
        auth_extra: r#"algorithms = ["RS256", "PS256", "ES256"]"#.into(),
        ..Setup::default()
    };
    let proxy = Harness::start(setup).await;
    let claims = admin_claims();
    let cases = vec![
        // The key set pins the key to RS256.
        (
            "PS256 on an RS256 key",
            forge(r#"{"alg":"PS256","kid":"test-key-1"}"#, &claims),
            "token_key_mismatch",
        ),
        (
            "ES256 on an RSA key",
            forge(r#"{"alg":"ES256","kid":"test-key-1"}"#, &claims),
            "token_key_mismatch",
        ),
    ];
    assert_refused(&proxy, cases).await;
    proxy.stop_verified().await;
}

#[tokio::test]
async fn token_without_kid_is_refused_when_several_keys_are_trusted() {
    let second = Issuer::generate("second").expect("key");
    let mut jwks: Value =
        serde_json::from_str(&issuer().jwks_json()).expect("jwks");
    let other: Value = serde_json::from_str(&second.jwks_json()).expect("jwks");
    jwks["keys"]
        .as_array_mut()
        .expect("keys")
        .push(other["keys"][0].clone());
    let setup = Setup {
        jwks: Some(jwks.to_string()),
        ..Setup::default()
    };
    let proxy = Harness::start(setup).await;
    let token = forge(r#"{"alg":"RS256"}"#, &admin_claims());
    assert_refused(&proxy, vec![("no kid", token, "token_missing_kid")]).await;
    proxy.stop_verified().await;
}

#[tokio::test]
async fn token_without_kid_passes_when_one_key_is_trusted() {
    let proxy = Harness::start(Setup::default()).await;
    let token = forge(r#"{"alg":"RS256","typ":"JWT"}"#, &admin_claims());
    let reply = proxy.post(&cancel_path(), Some(&token)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    proxy.stop_verified().await;
}

#[tokio::test]
async fn graph_nonce_tokens_pass_only_as_entra_signs_them() {
    let proxy = Harness::start(Setup::default()).await;
    let token = entra_nonce_token("AQAB-nonce_value/with+odd=chars");
    let reply = proxy.post(&cancel_path(), Some(&token)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(proxy.graph.received().len(), 1);
    // The token Graph receives is the caller's, byte for byte.
    let forwarded = &proxy.graph.received()[0].headers["authorization"];
    assert_eq!(forwarded, format!("Bearer {token}").as_str());

    // A nonce changed after signing breaks the signature.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let header =
        String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[0]).expect("b64"))
            .expect("utf8");
    parts[0] = b64(&header.replace("AQAB-nonce", "AQAC-nonce"));
    let altered = parts.join(".");
    let reply = proxy.post(&cancel_path(), Some(&altered)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        proxy.decision(&audit_id(&reply))["reason"],
        "token_signature"
    );
    assert_eq!(proxy.graph.received().len(), 1);
    proxy.stop_verified().await;
}

#[tokio::test]
async fn graph_nonce_tokens_fail_with_the_setting_off() {
    let setup = Setup {
        auth_extra: "graph_nonce = false".into(),
        ..Setup::default()
    };
    let proxy = Harness::start(setup).await;
    let token = entra_nonce_token("some-nonce");
    assert_refused(
        &proxy,
        vec![("nonce, setting off", token, "token_signature")],
    )
    .await;
    proxy.stop_verified().await;
}

#[tokio::test]
async fn tokens_must_come_once_and_only_in_authorization() {
    let proxy = Harness::start(Setup::default()).await;
    let good = format!("Bearer {}", admin_token());
    let cases: Vec<(&str, Request<Full<Bytes>>, &str)> = vec![
        (
            "two Authorization headers",
            Request::post(cancel_path())
                .header("authorization", &good)
                .header("authorization", &good),
            "token_several",
        ),
        (
            "comma-joined",
            Request::post(cancel_path())
                .header("authorization", format!("{good}, {good}")),
            "token_several",
        ),
        (
            "also in the query",
            Request::post(format!("{}?ACCESS_token=abc", cancel_path()))
                .header("authorization", &good),
            "token_in_query",
        ),
        (
            "escaped name in the query",
            Request::post(format!("{}?x=1&access%5Ftoken=abc", cancel_path()))
                .header("authorization", &good),
            "token_in_query",
        ),
        (
            "also in a cookie",
            Request::post(cancel_path())
                .header("authorization", &good)
                .header("cookie", "a=b; Access_Token=abc"),
            "token_in_cookie",
        ),
        (
            "Basic scheme",
            Request::post(cancel_path()).header("authorization", "Basic YTpi"),
            "token_not_bearer",
        ),
    ]
    .into_iter()
    .map(|(name, builder, reason)| {
        (
            name,
            builder.body(Full::new(Bytes::new())).expect("request"),
            reason,
        )
    })
    .collect();
    for (name, request, reason) in cases {
        let reply = proxy.send(request).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(
            proxy.decision(&audit_id(&reply))["reason"],
            reason,
            "{name}"
        );
    }
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
    let reply = proxy.post(&cancel_path(), Some(&expired)).await;
    assert_eq!(
        proxy.decision(&audit_id(&reply))["unverified"]["upn"],
        "alice@contoso.example"
    );
    let audit_file = proxy.audit_file.clone();
    let _dir = proxy.stop().await;
    let trail = std::fs::read_to_string(audit_file).expect("trail");
    for token in [&good, &expired] {
        for part in token.split('.').skip(1) {
            assert!(
                !trail.contains(part),
                "a token part is in the audit trail"
            );
        }
    }
    assert!(
        trail.contains(DEMO_TENANT),
        "the caller's tenant is recorded"
    );
}

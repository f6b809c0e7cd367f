//! Key lifecycle against a stand-in key server that rotates keys, goes
//! down, answers slowly and answers garbage; and the verified-token cache.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cancelguard::auth::keys::{KeySet, KeyStore};
use cancelguard::auth::{AuthError, Verifier};
use cancelguard::config::{Config, KeySource};
use cancelguard::demo::Issuer;
use common::keyserver::KeyServer;
use common::*;
use http::StatusCode;
use serde_json::Value;

/// A JWKS holding the keys of all `issuers`.
fn jwks_of(issuers: &[&Issuer]) -> String {
    let keys: Vec<Value> = issuers
        .iter()
        .map(|i| {
            let set: Value =
                serde_json::from_str(&i.jwks_json()).expect("jwks");
            set["keys"][0].clone()
        })
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

fn token_of(issuer: &Issuer) -> String {
    issuer.sign(&claims("alice@contoso.example", true))
}

fn url_setup(keys: &KeyServer, extra: &str) -> Setup {
    Setup {
        jwks_url: Some(keys.jwks_url()),
        auth_extra: extra.into(),
        ..Setup::default()
    }
}

#[tokio::test]
async fn rotated_key_is_fetched_once_for_its_first_token() {
    let keys = KeyServer::start(jwks_of(&[issuer()])).await;
    let proxy = Harness::start(url_setup(&keys, "")).await;
    assert_eq!(keys.hits(), 1, "keys load once at start");

    // The issuer rotates: a new key appears in its key set.
    let rotated = Issuer::generate("key-2").expect("key");
    keys.answer(|a| a.body = jwks_of(&[issuer(), &rotated]));
    let reply = proxy.post(&cancel_path(), Some(&token_of(&rotated))).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(keys.hits(), 2, "one refetch for the unknown kid");

    // Another unknown kid within jwks_min_refetch does not fetch again.
    let forged = Issuer::generate("key-3").expect("key");
    let reply = proxy.post(&cancel_path(), Some(&token_of(&forged))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(keys.hits(), 2, "refetches are rate-limited");
    proxy.stop_verified().await;
}

#[tokio::test]
async fn concurrent_unknown_kids_share_one_refetch() {
    let keys = KeyServer::start(jwks_of(&[issuer()])).await;
    let proxy = Arc::new(Harness::start(url_setup(&keys, "")).await);
    let rotated = Issuer::generate("key-2").expect("key");
    keys.answer(|a| {
        a.body = jwks_of(&[issuer(), &rotated]);
        a.delay = Duration::from_millis(100);
    });

    let token = Arc::new(token_of(&rotated));
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let (proxy, token) = (proxy.clone(), token.clone());
            tokio::spawn(async move {
                proxy.post(&cancel_path(), Some(&token)).await.status
            })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.expect("task"), StatusCode::NO_CONTENT);
    }
    assert_eq!(keys.hits(), 2, "eight requests, one refetch");
}

/// A name and a way to break the key server.
type Failure = (&'static str, Box<dyn Fn(&mut common::keyserver::Answer)>);

#[tokio::test]
async fn last_good_keys_serve_while_the_key_server_fails() {
    let keys = KeyServer::start(jwks_of(&[issuer()])).await;
    let setup =
        url_setup(&keys, "jwks_timeout = \"300ms\"\njwks_min_refetch = \"0s\"");
    let proxy = Harness::start(setup).await;
    let unknown = token_of(&Issuer::generate("key-9").expect("key"));

    let failures: [Failure; 3] = [
        (
            "down",
            Box::new(|a| a.status = StatusCode::SERVICE_UNAVAILABLE),
        ),
        ("slow", Box::new(|a| a.delay = Duration::from_secs(3))),
        ("garbage", Box::new(|a| a.body = "<html>oops</html>".into())),
    ];
    for (name, failure) in failures {
        keys.answer(|a| {
            *a = common::keyserver::Answer {
                status: StatusCode::OK,
                body: jwks_of(&[issuer()]),
                delay: Duration::ZERO,
            };
            failure(a);
        });
        // An unknown kid makes the proxy try the key server now.
        let reply = proxy.post(&cancel_path(), Some(&unknown)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}");

        let ready = proxy.admin_get("/readyz").await;
        assert_eq!(
            ready.status,
            StatusCode::OK,
            "{name}: stale keys still serve"
        );
        assert!(
            ready.body.contains("last good keys"),
            "{name}: {}",
            ready.body
        );
        let reply = proxy.post(&cancel_path(), Some(&admin_token())).await;
        assert_eq!(
            reply.status,
            StatusCode::NO_CONTENT,
            "{name}: {}",
            reply.body
        );
    }
    proxy.stop_verified().await;
}

#[tokio::test]
async fn keys_come_from_an_openid_discovery_document() {
    let keys = KeyServer::start(jwks_of(&[issuer()])).await;
    let setup = Setup {
        openid_url: Some(keys.discovery_url()),
        ..Setup::default()
    };
    let proxy = Harness::start(setup).await;
    let reply = proxy.post(&cancel_path(), Some(&admin_token())).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    proxy.stop_verified().await;
}

#[test]
fn key_set_keeps_good_entries_and_skips_the_rest() {
    let good: Value =
        serde_json::from_str(&issuer().jwks_json()).expect("jwks");
    let good = good["keys"][0].clone();
    let mut encryption = good.clone();
    encryption["use"] = "enc".into();
    encryption["kid"] = "enc-key".into();
    let mut wrong_type = good.clone();
    wrong_type["alg"] = "ES256".into();
    wrong_type["kid"] = "wrong-type".into();
    let document = serde_json::json!({"keys": [
        {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
        {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
        {"kty": "what"},
        encryption,
        wrong_type,
        good,
    ]});
    let set =
        KeySet::parse(document.to_string().as_bytes()).expect("one good key");
    assert_eq!(set.len(), 1);
    assert!(set.has_kid("test-key-1"));
    assert!(KeySet::parse(br#"{"keys":[{"kty":"oct","k":"eA"}]}"#).is_err());
    assert!(KeySet::parse(b"<html>").is_err());
}

// === the verified-token cache ===

static FAKE_NOW: AtomicU64 = AtomicU64::new(0);

fn fake_now() -> u64 {
    FAKE_NOW.load(Ordering::SeqCst)
}

/// A verifier over a JWKS file in `dir`, with `cache_entries` entries.
async fn verifier(
    dir: &std::path::Path,
    jwks: &str,
    cache_entries: usize,
) -> Verifier {
    std::fs::write(dir.join("jwks.json"), jwks).expect("jwks");
    let config = format!(
        "[auth]\njwks_file = \"jwks.json\"\ncache_entries = {cache_entries}\n\
         tenants = [\"{}\"]\n",
        cancelguard::demo::DEMO_TENANT
    );
    std::fs::write(dir.join("proxy.toml"), config).expect("config");
    let config = Config::load(&dir.join("proxy.toml")).expect("config");
    let client =
        cancelguard::upstream::build_client(&config.upstream).expect("client");
    assert!(matches!(config.auth.keys, KeySource::File(_)));
    let keys = Arc::new(KeyStore::new(
        config.auth.keys.clone(),
        client,
        Duration::from_secs(1),
        Duration::ZERO,
    ));
    keys.load().await.expect("keys");
    Verifier::new(&config.auth, keys)
}

#[tokio::test]
async fn repeated_token_skips_the_signature_check() {
    let dir = tempfile::tempdir().expect("dir");
    let verifier = verifier(dir.path(), &issuer().jwks_json(), 100).await;
    let token = admin_token();
    for _ in 0..5 {
        verifier.verify(&token).await.expect("valid");
    }
    assert_eq!(verifier.signature_checks(), 1);
    assert_eq!(verifier.cached_tokens(), 1);

    // A different token is checked on its own.
    verifier.verify(&admin_token()).await.expect("valid");
    assert_eq!(verifier.signature_checks(), 2);
}

#[tokio::test]
async fn cache_entry_never_outlives_its_token() {
    let dir = tempfile::tempdir().expect("dir");
    let real_now = jsonwebtoken::get_current_timestamp();
    FAKE_NOW.store(real_now, Ordering::SeqCst);
    let verifier = verifier(dir.path(), &issuer().jwks_json(), 100)
        .await
        .with_clock(fake_now);
    let token = admin_token();
    verifier.verify(&token).await.expect("valid");
    verifier.verify(&token).await.expect("valid");
    assert_eq!(verifier.signature_checks(), 1);

    // Past the token's exp the cached entry is dropped, not used.
    FAKE_NOW.store(real_now + 3600, Ordering::SeqCst);
    let _ = verifier.verify(&token).await;
    assert_eq!(verifier.signature_checks(), 2, "an expired entry was used");
}

#[tokio::test]
async fn cache_forgets_tokens_of_a_removed_key() {
    let dir = tempfile::tempdir().expect("dir");
    let verifier = verifier(dir.path(), &issuer().jwks_json(), 100).await;
    let token = admin_token();
    verifier.verify(&token).await.expect("valid");

    let replacement = Issuer::generate("key-2").expect("key");
    std::fs::write(dir.path().join("jwks.json"), replacement.jwks_json())
        .expect("jwks");
    verifier.keys().load().await.expect("reload");
    assert_eq!(
        verifier.verify(&token).await.err(),
        Some(AuthError::UnknownKey)
    );
}

#[tokio::test]
async fn cache_is_bounded() {
    let dir = tempfile::tempdir().expect("dir");
    let verifier = verifier(dir.path(), &issuer().jwks_json(), 4).await;
    for _ in 0..50 {
        verifier.verify(&admin_token()).await.expect("valid");
    }
    assert!(
        verifier.cached_tokens() <= 4,
        "{}",
        verifier.cached_tokens()
    );
}

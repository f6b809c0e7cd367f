//! Cost of verifying one token: the full check (signature included) and a
//! repeat of a token the verified-token cache remembers.
//!
//!     cargo bench --bench verify

use std::sync::Arc;
use std::time::Duration;

use cancelguard::auth::Verifier;
use cancelguard::auth::keys::KeyStore;
use cancelguard::config::Config;
use cancelguard::demo::{DEMO_TENANT, Issuer, PERMISSIONS_ADMIN_ROLE};
use criterion::{Criterion, criterion_group, criterion_main};

/// A verifier over a fresh key, with `cache_entries` cache entries.
fn verifier(
    runtime: &tokio::runtime::Runtime,
    issuer: &Issuer,
    cache_entries: usize,
) -> Verifier {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("jwks.json"), issuer.jwks_json())
        .expect("jwks");
    let config = format!(
        "[auth]\njwks_file = \"jwks.json\"\n\
         cache_entries = {cache_entries}\ntenants = [\"{DEMO_TENANT}\"]\n"
    );
    std::fs::write(dir.path().join("proxy.toml"), config).expect("config");
    let config = Config::load(&dir.path().join("proxy.toml")).expect("config");
    let client =
        cancelguard::upstream::build_client(&config.upstream).expect("client");
    let keys = Arc::new(KeyStore::new(
        config.auth.keys.clone(),
        client,
        Duration::from_secs(1),
        Duration::from_secs(30),
    ));
    runtime.block_on(keys.load()).expect("keys");
    Verifier::new(&config.auth, keys)
}

fn verification(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let issuer = Issuer::generate("bench").expect("key");
    let claims = Issuer::user_claims(
        "alice@contoso.example",
        "a11ce000-0000-4000-8000-000000000001",
        &[PERMISSIONS_ADMIN_ROLE],
        Duration::from_secs(3600),
    );
    let token = issuer.sign(&claims);

    let uncached = verifier(&runtime, &issuer, 0);
    c.bench_function("verify/uncached", |b| {
        b.to_async(&runtime)
            .iter(|| async { uncached.verify(&token).await.expect("valid") })
    });

    let cached = verifier(&runtime, &issuer, 1000);
    runtime.block_on(cached.verify(&token)).expect("valid");
    c.bench_function("verify/cached", |b| {
        b.to_async(&runtime)
            .iter(|| async { cached.verify(&token).await.expect("valid") })
    });
}

criterion_group!(benches, verification);
criterion_main!(benches);

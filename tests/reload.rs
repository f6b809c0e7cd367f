//! Reloading the config while serving: a good file changes the policy from
//! the next call on and is recorded; a bad one is refused and the running
//! configuration stays.

mod common;

use common::*;
use http::StatusCode;

fn config_path(proxy: &Harness) -> std::path::PathBuf {
    proxy.dir.path().join("proxy.toml")
}

#[tokio::test]
async fn reload_applies_a_new_policy_and_refuses_a_bad_file() {
    let proxy = Harness::start(Setup::default()).await;
    let bob = issuer().sign(&claims("bob@contoso.example", false));
    assert_eq!(
        proxy.post(&cancel_path(), Some(&bob)).await.status,
        StatusCode::FORBIDDEN
    );
    let original =
        std::fs::read_to_string(config_path(&proxy)).expect("config");

    // A file that does not parse is refused; the running policy stays.
    std::fs::write(
        config_path(&proxy),
        format!("{original}\n[[policy.rules]\n"),
    )
    .expect("write");
    let refused = proxy.reload.reload().await;
    assert!(refused.is_err_and(|e| e.contains("proxy.toml")));
    assert_eq!(
        proxy.post(&cancel_path(), Some(&bob)).await.status,
        StatusCode::FORBIDDEN
    );

    // A key source that cannot be read is refused too.
    let broken_keys = original
        .replace("jwks_file = \"jwks.json\"", "jwks_file = \"missing.json\"");
    std::fs::write(config_path(&proxy), broken_keys).expect("write");
    assert!(proxy.reload.reload().await.is_err());
    let reply = proxy.post(&cancel_path(), Some(&admin_token())).await;
    assert_eq!(
        reply.status,
        StatusCode::NO_CONTENT,
        "the old keys must still serve"
    );

    // A good file allowing Bob takes effect from the next call on.
    let allow_bob = format!(
        "{original}\n[[policy.rules]]\nname = \"bob\"\neffect = \"allow\"\nusers = [\"bob@contoso.example\"]\n"
    );
    std::fs::write(config_path(&proxy), allow_bob).expect("write");
    let warnings = proxy.reload.reload().await.expect("reload");
    assert!(
        warnings.iter().all(|w| !w.contains("restart")),
        "{warnings:?}"
    );
    let reply = proxy.post(&cancel_path(), Some(&bob)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(proxy.decision(&audit_id(&reply))["rule"], "bob");

    let reloads: Vec<_> = proxy
        .audit_records()
        .into_iter()
        .filter(|r| r["event"] == "config" && r["reason"] == "reload")
        .collect();
    assert_eq!(reloads.len(), 1, "one config record per applied reload");
    proxy.stop_verified().await;
}

#[tokio::test]
async fn reload_says_which_changes_need_a_restart() {
    let proxy = Harness::start(Setup::default()).await;
    let original =
        std::fs::read_to_string(config_path(&proxy)).expect("config");
    let changed =
        original.replace("shutdown_grace = \"2s\"", "shutdown_grace = \"3s\"");
    assert_ne!(changed, original);
    std::fs::write(config_path(&proxy), changed).expect("write");
    let warnings = proxy.reload.reload().await.expect("reload");
    assert!(
        warnings.iter().any(|w| w.contains("need a restart")),
        "{warnings:?}"
    );
    proxy.stop_verified().await;
}

use super::*;

fn minimal() -> RawConfig {
    let mut raw = RawConfig::default();
    raw.auth.jwks_file = Some("keys.json".into());
    raw
}

fn error_key(raw: RawConfig) -> &'static str {
    match Config::from_raw(raw, Path::new("/etc/cancelguard")) {
        Ok(_) => panic!("config accepted"),
        Err((key, _)) => key,
    }
}

#[test]
fn defaults_are_secure() {
    let config = Config::from_raw(minimal(), Path::new("/etc/cancelguard"))
        .expect("valid");
    assert_eq!(config.upstream.url.scheme_str(), Some("https"));
    assert_eq!(config.auth.algorithms, vec![Algorithm::RS256]);
    assert_eq!(config.audit.sync, SyncMode::Batch);
    assert_eq!(config.policy.mode(), Mode::Enforce);
    assert!(config.policy.is_empty());
    assert_eq!(
        config.audit.file,
        Path::new("/etc/cancelguard/audit/cancelguard.jsonl")
    );
    assert!(config.warnings.iter().any(|w| w.contains("auth.tenants")));
    assert!(config.warnings.iter().any(|w| w.contains("no allow rule")));
}

/// A config key and a change that must make it invalid.
type Case = (&'static str, Box<dyn Fn(&mut RawConfig)>);

#[test]
fn bad_values_name_their_key() {
    let cases: Vec<Case> = vec![
        (
            "server.listen",
            Box::new(|r| r.server.listen = "localhost".into()),
        ),
        (
            "server.shutdown_grace",
            Box::new(|r| r.server.shutdown_grace = "soon".into()),
        ),
        (
            "upstream.url",
            Box::new(|r| r.upstream.url = "ftp://graph".into()),
        ),
        (
            "upstream.url",
            Box::new(|r| r.upstream.url = "https://graph/beta".into()),
        ),
        (
            "upstream.credential",
            Box::new(|r| r.upstream.credential = "on-behalf-of".into()),
        ),
        (
            "auth",
            Box::new(|r| r.auth.jwks_url = Some("https://keys".into())),
        ),
        (
            "auth.algorithms",
            Box::new(|r| r.auth.algorithms = vec!["none".into()]),
        ),
        (
            "auth.algorithms",
            Box::new(|r| r.auth.algorithms = vec!["HS256".into()]),
        ),
        ("auth.algorithms", Box::new(|r| r.auth.algorithms.clear())),
        ("auth.leeway", Box::new(|r| r.auth.leeway = "6m".into())),
        ("auth.issuers", Box::new(|r| r.auth.issuers.clear())),
        ("auth.audiences", Box::new(|r| r.auth.audiences.clear())),
        ("policy.mode", Box::new(|r| r.policy.mode = "audit".into())),
        (
            "audit.sync",
            Box::new(|r| r.audit.sync = "sometimes".into()),
        ),
        ("log.format", Box::new(|r| r.log.format = "xml".into())),
    ];
    for (key, change) in cases {
        let mut raw = minimal();
        change(&mut raw);
        assert_eq!(error_key(raw), key);
    }
}

#[test]
fn same_fixed_port_for_both_listeners_is_refused() {
    let mut raw = minimal();
    raw.server.admin_listen = raw.server.listen.clone();
    assert_eq!(error_key(raw), "server.admin_listen");
}

#[test]
fn plain_http_upstream_is_accepted_with_a_warning() {
    let mut raw = minimal();
    raw.upstream.url = "http://127.0.0.1:9999".into();
    let config = Config::from_raw(raw, Path::new(".")).expect("valid");
    assert!(config.warnings.iter().any(|w| w.contains("plain http")));
}

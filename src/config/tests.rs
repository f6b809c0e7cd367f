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
    assert_eq!(config.audit.rotate_bytes, 64 * 1024 * 1024);
    assert_eq!(config.audit.queue_timeout, Duration::from_secs(2));
    assert!(config.audit.hmac_key.is_none());
    assert!(crate::audit::files::is_valid_replica(&config.audit.replica));
}

#[test]
fn the_replica_names_the_active_file() {
    let mut raw = minimal();
    raw.audit.replica = Some("pod-a".into());
    let config = Config::from_raw(raw, Path::new("/srv")).expect("valid");
    assert_eq!(
        config.audit.active_path(),
        Path::new("/srv/audit/cancelguard-pod-a.jsonl")
    );
}

#[test]
fn a_short_hmac_key_is_refused_by_file_name_and_keys_never_print() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("short.key"), b"too short").expect("w");
    let mut raw = minimal();
    raw.audit.hmac_key_file = Some("short.key".into());
    let Err((key, message)) = Config::from_raw(raw, dir.path()) else {
        panic!("a 9-byte key was accepted");
    };
    assert_eq!(key, "audit.hmac_key_file");
    assert!(message.contains("short.key") && message.contains("9 bytes"));

    let secret = "k".repeat(40);
    std::fs::write(dir.path().join("good.key"), &secret).expect("w");
    let mut raw = minimal();
    raw.audit.hmac_key_file = Some("good.key".into());
    let config = Config::from_raw(raw, dir.path()).expect("valid");
    assert!(config.audit.hmac_key.is_some());
    assert!(!format!("{config:?}").contains(&secret));
}

#[test]
fn load_digests_the_file_it_read() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("proxy.toml");
    let text = "[auth]\njwks_file = \"keys.json\"\n";
    std::fs::write(&path, text).expect("w");
    let config = Config::load(&path).expect("valid");
    let digest =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    assert_eq!(config.source.sha256, hex::encode(digest));
    assert_eq!(config.source.file, path.display().to_string());
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
        (
            "audit.rotate_bytes",
            Box::new(|r| r.audit.rotate_bytes = 100),
        ),
        (
            "audit.replica",
            Box::new(|r| r.audit.replica = Some("pod/a".into())),
        ),
        (
            "audit.queue_timeout",
            Box::new(|r| r.audit.queue_timeout = "forever".into()),
        ),
        (
            "audit.queue_timeout",
            Box::new(|r| r.audit.queue_timeout = "2m".into()),
        ),
        (
            "audit.hmac_key_file",
            Box::new(|r| r.audit.hmac_key_file = Some("missing.key".into())),
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
fn listener_tls_needs_both_files_and_plain_http_off_loopback_warns() {
    let mut raw = minimal();
    raw.server.tls_cert_file = Some("cert.pem".into());
    assert_eq!(error_key(raw), "server");

    let mut raw = minimal();
    raw.server.listen = "0.0.0.0:8443".into();
    let config = Config::from_raw(raw, Path::new(".")).expect("valid");
    assert!(config.warnings.iter().any(|w| w.contains("in clear")));

    let mut raw = minimal();
    raw.server.listen = "0.0.0.0:8443".into();
    raw.server.tls_cert_file = Some("cert.pem".into());
    raw.server.tls_key_file = Some("key.pem".into());
    let config = Config::from_raw(raw, Path::new("/etc/cg")).expect("valid");
    assert!(config.warnings.iter().all(|w| !w.contains("in clear")));
    let tls = config.server.tls.expect("tls");
    assert_eq!(tls.cert, Path::new("/etc/cg/cert.pem"));
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

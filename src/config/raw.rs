//! The configuration as written: `proxy.toml` plus environment overrides.
//!
//! These types mirror the file one to one, so that serde can report an
//! unknown or mistyped key by its dotted name. Every section refuses keys it
//! does not know: a misspelt security setting must stop the proxy, not be
//! silently ignored. The checked form lives in the parent module.

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub server: RawServer,
    pub upstream: RawUpstream,
    pub auth: RawAuth,
    pub policy: RawPolicy,
    pub audit: RawAudit,
    pub log: RawLog,
}

/// `[server]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub listen: String,
    pub admin_listen: String,
    pub shutdown_grace: String,
    pub max_batch_bytes: usize,
    pub tls_cert_file: Option<String>,
    pub tls_key_file: Option<String>,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            admin_listen: "127.0.0.1:9090".into(),
            shutdown_grace: "20s".into(),
            max_batch_bytes: 1024 * 1024,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

/// `[upstream]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawUpstream {
    pub url: String,
    pub credential: String,
    pub timeout: String,
    pub connect_timeout: String,
    pub ca_file: Option<String>,
    pub forward_other_routes: bool,
}

impl Default for RawUpstream {
    fn default() -> Self {
        Self {
            url: "https://graph.microsoft.com".into(),
            credential: "passthrough".into(),
            timeout: "30s".into(),
            connect_timeout: "5s".into(),
            ca_file: None,
            forward_other_routes: false,
        }
    }
}

/// `[auth]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAuth {
    pub jwks_url: Option<String>,
    pub jwks_file: Option<String>,
    pub openid_configuration_url: Option<String>,
    pub jwks_refresh: String,
    pub jwks_min_refetch: String,
    pub jwks_timeout: String,
    pub issuers: Vec<String>,
    pub audiences: Vec<String>,
    pub tenants: Vec<String>,
    pub algorithms: Vec<String>,
    pub leeway: String,
    pub required_scopes: Vec<String>,
    pub max_token_bytes: usize,
    pub graph_nonce: bool,
    pub cache_entries: usize,
}

impl Default for RawAuth {
    fn default() -> Self {
        Self {
            jwks_url: None,
            jwks_file: None,
            openid_configuration_url: None,
            jwks_refresh: "1h".into(),
            jwks_min_refetch: "30s".into(),
            jwks_timeout: "10s".into(),
            issuers: vec![
                "https://sts.windows.net/{tenantid}/".into(),
                "https://login.microsoftonline.com/{tenantid}/v2.0".into(),
            ],
            audiences: vec![
                "https://graph.microsoft.com".into(),
                "00000003-0000-0000-c000-000000000000".into(),
            ],
            tenants: Vec::new(),
            algorithms: vec!["RS256".into()],
            leeway: "60s".into(),
            required_scopes: Vec::new(),
            max_token_bytes: 16 * 1024,
            graph_nonce: true,
            cache_entries: 10_000,
        }
    }
}

/// `[policy]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPolicy {
    pub mode: String,
    pub rules: Vec<RawRule>,
}

impl Default for RawPolicy {
    fn default() -> Self {
        Self {
            mode: "enforce".into(),
            rules: Vec::new(),
        }
    }
}

/// One `[[policy.rules]]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRule {
    pub name: String,
    pub effect: String,
    pub tenants: Vec<String>,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub apps: Vec<String>,
    pub roles: Vec<String>,
    pub directory_roles: Vec<String>,
    pub requests: Vec<String>,
}

/// `[audit]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAudit {
    pub file: String,
    pub sync: String,
    pub stdout: bool,
    pub hmac_key_file: Option<String>,
    pub rotate_bytes: u64,
    pub replica: Option<String>,
    pub queue_timeout: String,
}

impl Default for RawAudit {
    fn default() -> Self {
        Self {
            file: "audit/cancelguard.jsonl".into(),
            sync: "batch".into(),
            stdout: false,
            hmac_key_file: None,
            rotate_bytes: 64 * 1024 * 1024,
            replica: None,
            queue_timeout: "2s".into(),
        }
    }
}

/// `[log]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    pub level: String,
    pub format: String,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: "json".into(),
        }
    }
}

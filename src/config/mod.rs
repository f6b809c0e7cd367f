//! Configuration: `proxy.toml` plus `CANCELGUARD__SECTION__KEY` overrides,
//! read into [`raw`] types and checked into [`Config`].
//!
//! Everything a request needs later is parsed here once (addresses, URLs,
//! durations, algorithms, the compiled allowlist), so the hot path never
//! parses or copies configuration. Relative paths in the file are taken
//! relative to the folder that holds the file.

mod audit;
mod auth;
pub mod raw;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ::config::{Environment, File, FileFormat};
use http::Uri;
use jsonwebtoken::Algorithm;

use crate::policy::{Mode, Policy};
use crate::tls::TlsFiles;
pub use audit::{AuditConfig, SyncMode};
use raw::RawConfig;

/// Environment variables that override keys start with this, followed by
/// `__SECTION__KEY`.
pub const ENV_PREFIX: &str = "CANCELGUARD";

/// The longest clock leeway accepted: more would let expired tokens live on.
const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// A configuration problem, named by file and key.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {}{message}", key_prefix(key))]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub message: String,
}

/// The checked configuration.
#[derive(Debug)]
pub struct Config {
    pub server: ServerConfig,
    pub upstream: UpstreamConfig,
    pub auth: AuthConfig,
    pub policy: Policy,
    pub audit: AuditConfig,
    pub log: LogConfig,
    /// Non-fatal remarks for `check` and the startup log.
    pub warnings: Vec<String>,
    /// The file and environment this was read from.
    pub source: Source,
}

/// `[server]`, checked.
#[derive(Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub shutdown_grace: Duration,
    /// Largest `$batch` body read for inspection.
    pub max_batch_bytes: usize,
    /// TLS on `listen`, when set.
    pub tls: Option<TlsFiles>,
}

/// `[upstream]`, checked.
#[derive(Debug)]
pub struct UpstreamConfig {
    /// Scheme and authority only; the path is always built by the proxy.
    pub url: Uri,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub ca_file: Option<PathBuf>,
    /// Forward routes other than cancelAll instead of answering 404.
    pub forward_other_routes: bool,
}

/// Where signing keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    File(PathBuf),
    Url(Uri),
    /// An OpenID discovery document whose `jwks_uri` names the keys.
    Discovery(Uri),
}

/// `[auth]`, checked.
#[derive(Debug)]
pub struct AuthConfig {
    pub keys: KeySource,
    pub jwks_refresh: Duration,
    /// Least time between refetches caused by unknown `kid`s.
    pub jwks_min_refetch: Duration,
    /// How long one key or discovery fetch may take.
    pub jwks_timeout: Duration,
    pub issuers: Vec<String>,
    pub audiences: Vec<String>,
    /// Lowercased tenant ids; empty means any tenant.
    pub tenants: Vec<String>,
    pub algorithms: Vec<Algorithm>,
    pub leeway: Duration,
    pub required_scopes: Vec<String>,
    pub max_token_bytes: usize,
    /// Rebuild the header Entra signed for Graph tokens with a `nonce`.
    pub graph_nonce: bool,
    /// Verified tokens remembered; 0 turns the cache off.
    pub cache_entries: usize,
}

/// Where the configuration came from, for the audit trail's `config`
/// record: an auditor can compare the digest with a file they hold.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// The config file as given.
    pub file: String,
    /// SHA-256 (hex) of the bytes read.
    pub sha256: String,
    /// Names of the `CANCELGUARD__…` variables set, which override keys
    /// of the file. Values are left out: they may be sensitive.
    pub overrides: Vec<String>,
}

/// `[log]`, checked.
#[derive(Debug)]
pub struct LogConfig {
    pub level: String,
    pub json: bool,
}

impl Config {
    /// Reads `path`, applies environment overrides and checks the result.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let err = |key: &str, message: String| ConfigError {
            file: file.clone(),
            key: key.into(),
            message,
        };

        if !path.is_file() {
            return Err(err("", "no such file".into()));
        }
        // Parsed from the very bytes that are digested, so the `config`
        // audit record names exactly what was read.
        let bytes = std::fs::read(path).map_err(|e| err("", format!("{e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| err("", "is not UTF-8".into()))?;
        let mut overrides: Vec<String> = std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .filter(|name| name.starts_with(&format!("{ENV_PREFIX}__")))
            .collect();
        overrides.sort();
        let source = Source {
            file,
            sha256: hex::encode(aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                text.as_bytes(),
            )),
            overrides,
        };
        let file = source.file.clone();
        let err = |key: &str, message: String| ConfigError {
            file: file.clone(),
            key: key.into(),
            message,
        };
        let env = Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .list_separator(",")
            .with_list_parse_key("auth.issuers")
            .with_list_parse_key("auth.audiences")
            .with_list_parse_key("auth.tenants")
            .with_list_parse_key("auth.algorithms")
            .with_list_parse_key("auth.required_scopes")
            .try_parsing(true);
        let raw: RawConfig = ::config::Config::builder()
            .add_source(File::from_str(&text, FileFormat::Toml))
            .add_source(env)
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| err("", e.to_string()))?;

        let base = path.parent().unwrap_or(Path::new("."));
        let config = Self::from_raw(raw, base)
            .map_err(|(key, message)| err(key, message))?;
        Ok(Self { source, ..config })
    }

    /// Checks a raw configuration; relative paths are joined to `base`.
    pub fn from_raw(
        raw: RawConfig,
        base: &Path,
    ) -> Result<Self, (&'static str, String)> {
        let mut warnings = Vec::new();
        let resolve = |p: &str| base.join(p);

        let server = ServerConfig {
            listen: addr("server.listen", &raw.server.listen)?,
            admin_listen: addr(
                "server.admin_listen",
                &raw.server.admin_listen,
            )?,
            shutdown_grace: duration(
                "server.shutdown_grace",
                &raw.server.shutdown_grace,
            )?,
            max_batch_bytes: raw.server.max_batch_bytes,
            tls: match (&raw.server.tls_cert_file, &raw.server.tls_key_file) {
                (Some(cert), Some(key)) => Some(TlsFiles {
                    cert: resolve(cert),
                    key: resolve(key),
                }),
                (None, None) => None,
                _ => {
                    return Err((
                        "server",
                        "set both tls_cert_file and tls_key_file, or neither"
                            .into(),
                    ));
                }
            },
        };
        if server.tls.is_none() && !server.listen.ip().is_loopback() {
            warnings.push(format!(
                "server.listen {} is not loopback and TLS is off: bearer \
                 tokens cross the network in clear",
                server.listen
            ));
        }
        if server.max_batch_bytes == 0 {
            return Err(("server.max_batch_bytes", "must be above 0".into()));
        }
        // Port 0 asks the OS for any free port, so two such can coexist.
        if server.listen == server.admin_listen && server.listen.port() != 0 {
            return Err((
                "server.admin_listen",
                "must differ from server.listen".into(),
            ));
        }

        let upstream = check_upstream(&raw.upstream, &mut warnings)?;
        let upstream = UpstreamConfig {
            ca_file: raw.upstream.ca_file.as_deref().map(resolve),
            ..upstream
        };

        let auth = auth::check_auth(&raw.auth, base, &mut warnings)?;

        let policy = Policy::compile(&raw.policy.rules)?;
        let mode = match raw.policy.mode.as_str() {
            "enforce" => Mode::Enforce,
            "dry-run" => {
                warnings.push(
                    "policy.mode is dry-run: denied calls are forwarded".into(),
                );
                Mode::DryRun
            }
            other => {
                return Err((
                    "policy.mode",
                    format!("'{other}' is not one of enforce, dry-run"),
                ));
            }
        };
        let policy = policy.with_mode(mode);
        if !policy.has_allow_rule() {
            warnings.push(
                "policy.rules has no allow rule: every cancelAll is denied"
                    .into(),
            );
        }

        let audit = audit::check(&raw.audit, base, &mut warnings)?;

        let json = match raw.log.format.as_str() {
            "json" => true,
            "text" => false,
            other => {
                return Err((
                    "log.format",
                    format!("'{other}' is not one of json, text"),
                ));
            }
        };
        tracing_subscriber::EnvFilter::try_new(&raw.log.level)
            .map_err(|e| ("log.level", e.to_string()))?;
        let log = LogConfig {
            level: raw.log.level,
            json,
        };

        Ok(Self {
            server,
            upstream,
            auth,
            policy,
            audit,
            log,
            warnings,
            source: Source::default(),
        })
    }
}

fn check_upstream(
    raw: &raw::RawUpstream,
    warnings: &mut Vec<String>,
) -> Result<UpstreamConfig, (&'static str, String)> {
    let url = https_url(
        "upstream.url",
        &raw.url,
        "tokens cross the wire unencrypted",
        warnings,
    )?;
    if !matches!(url.path(), "" | "/") || url.query().is_some() {
        return Err((
            "upstream.url",
            "must be scheme and host only: the proxy builds the path".into(),
        ));
    }
    if raw.credential != "passthrough" {
        return Err((
            "upstream.credential",
            format!(
                "'{}' is not supported by this version; use passthrough",
                raw.credential
            ),
        ));
    }
    Ok(UpstreamConfig {
        url,
        timeout: duration("upstream.timeout", &raw.timeout)?,
        connect_timeout: duration(
            "upstream.connect_timeout",
            &raw.connect_timeout,
        )?,
        ca_file: None,
        forward_other_routes: raw.forward_other_routes,
    })
}

/// Checks a URL the proxy connects to: https, or plain http with a
/// warning that says what is at `risk`, for loopback stand-ins.
fn https_url(
    key: &'static str,
    url: &str,
    risk: &str,
    warnings: &mut Vec<String>,
) -> Result<Uri, (&'static str, String)> {
    let uri: Uri = url.parse().map_err(|e| (key, format!("not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") => warnings.push(format!(
            "{key} {uri} is plain http: {risk}; use it only for loopback \
             stand-ins"
        )),
        _ => return Err((key, "must start with https://".into())),
    }
    if uri.authority().is_none() {
        return Err((key, "must name a host".into()));
    }
    Ok(uri)
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

fn addr(
    key: &'static str,
    value: &str,
) -> Result<SocketAddr, (&'static str, String)> {
    value.parse().map_err(|_| {
        (
            key,
            format!("'{value}' is not an address like 127.0.0.1:8080"),
        )
    })
}

fn duration(
    key: &'static str,
    value: &str,
) -> Result<Duration, (&'static str, String)> {
    humantime::parse_duration(value).map_err(|e| {
        (
            key,
            format!("'{value}' is not a duration like \"30s\": {e}"),
        )
    })
}

#[cfg(test)]
mod tests;

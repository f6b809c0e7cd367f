//! Checking `[auth]`: where keys come from, which tokens are accepted.

use std::path::Path;

use http::Uri;
use jsonwebtoken::Algorithm;

use super::raw::RawAuth;
use super::{AuthConfig, KeySource, MAX_LEEWAY, duration, https_url};

pub(super) fn check_auth(
    raw: &RawAuth,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<AuthConfig, (&'static str, String)> {
    let keys =
        match (&raw.jwks_file, &raw.jwks_url, &raw.openid_configuration_url) {
            (Some(file), None, None) => KeySource::File(base.join(file)),
            (None, Some(url), None) => {
                KeySource::Url(key_url("auth.jwks_url", url, warnings)?)
            }
            (None, None, Some(url)) => KeySource::Discovery(key_url(
                "auth.openid_configuration_url",
                url,
                warnings,
            )?),
            (None, None, None) => {
                return Err((
                    "auth",
                    "set one of jwks_url, jwks_file, openid_configuration_url"
                        .into(),
                ));
            }
            _ => {
                return Err((
                "auth",
                "set only one of jwks_url, jwks_file, openid_configuration_url"
                    .into(),
            ));
            }
        };

    if raw.issuers.is_empty() {
        return Err(("auth.issuers", "must list at least one issuer".into()));
    }
    if raw.audiences.is_empty() {
        return Err((
            "auth.audiences",
            "must list at least one audience".into(),
        ));
    }
    if raw.tenants.is_empty() {
        warnings.push(
            "auth.tenants is empty: tokens from any tenant are accepted".into(),
        );
    }

    let mut algorithms = Vec::new();
    for name in &raw.algorithms {
        let alg = match name.as_str() {
            "RS256" => Algorithm::RS256,
            "RS384" => Algorithm::RS384,
            "RS512" => Algorithm::RS512,
            "PS256" => Algorithm::PS256,
            "PS384" => Algorithm::PS384,
            "PS512" => Algorithm::PS512,
            "ES256" => Algorithm::ES256,
            "ES384" => Algorithm::ES384,
            other => {
                // HMAC would let anyone holding the public key mint tokens,
                // and `none` needs no key at all.
                return Err((
                    "auth.algorithms",
                    format!(
                        "'{other}' is not allowed; use RS256, RS384, RS512, \
                         PS256, PS384, PS512, ES256 or ES384"
                    ),
                ));
            }
        };
        algorithms.push(alg);
    }
    if algorithms.is_empty() {
        return Err(("auth.algorithms", "must list at least one".into()));
    }

    let leeway = duration("auth.leeway", &raw.leeway)?;
    if leeway > MAX_LEEWAY {
        return Err(("auth.leeway", "must be at most 5m".into()));
    }
    if raw.max_token_bytes < 256 {
        return Err(("auth.max_token_bytes", "must be at least 256".into()));
    }

    Ok(AuthConfig {
        keys,
        jwks_refresh: duration("auth.jwks_refresh", &raw.jwks_refresh)?,
        jwks_min_refetch: duration(
            "auth.jwks_min_refetch",
            &raw.jwks_min_refetch,
        )?,
        jwks_timeout: duration("auth.jwks_timeout", &raw.jwks_timeout)?,
        graph_nonce: raw.graph_nonce,
        cache_entries: raw.cache_entries,
        issuers: raw.issuers.clone(),
        audiences: raw.audiences.clone(),
        tenants: raw.tenants.iter().map(|t| t.to_ascii_lowercase()).collect(),
        algorithms,
        leeway,
        required_scopes: raw.required_scopes.clone(),
        max_token_bytes: raw.max_token_bytes,
    })
}

/// A URL keys are fetched from.
fn key_url(
    key: &'static str,
    url: &str,
    warnings: &mut Vec<String>,
) -> Result<Uri, (&'static str, String)> {
    https_url(key, url, "keys could be swapped in transit", warnings)
}

//! Step 3: authenticate the caller by its Entra ID access token.
//!
//! The token must arrive exactly once, as `Authorization: Bearer`, and pass
//! signature, lifetime, issuer, audience, tenant and scope checks. Only
//! algorithms from the configuration are accepted; keys named by the token
//! itself (`jku`, `x5u`, `jwk`) are never used, and `crit` is refused since
//! no extension is understood.

pub mod keys;

use std::sync::Arc;

use aws_lc_rs::digest;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use crate::config::AuthConfig;
use keys::KeyStore;

/// Why a token was not accepted. Each message says what to fix and is safe
/// to show the caller: it never holds the token or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token; send 'Authorization: Bearer <token>'")]
    MissingToken,
    #[error("more than one Authorization header; send exactly one")]
    SeveralTokens,
    #[error("the Authorization header is not a bearer token")]
    NotBearer,
    #[error("the token is longer than this proxy accepts")]
    TooLarge,
    #[error("the token is not a well-formed signed JWT")]
    Malformed,
    #[error("the token's signing algorithm is not accepted")]
    AlgorithmNotAllowed,
    #[error(
        "the token names key material of its own (jku, x5u or jwk), which is not accepted"
    )]
    EmbeddedKey,
    #[error("the token has critical header extensions, which are not accepted")]
    CriticalHeader,
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired; get a new one")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's issue time is in the future")]
    IssuedInFuture,
    #[error("the token is not meant for this audience")]
    WrongAudience,
    #[error("the token's issuer is not accepted")]
    WrongIssuer,
    #[error("the token's tenant is not accepted")]
    WrongTenant,
    #[error("the token lacks a required scope")]
    MissingScope,
    #[error("the token's claims are missing or malformed")]
    BadClaims,
    #[error("signing keys are not loaded yet; try again shortly")]
    KeysNotLoaded,
}

impl AuthError {
    /// The audit `reason` for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "token_missing",
            AuthError::SeveralTokens => "token_several",
            AuthError::NotBearer => "token_not_bearer",
            AuthError::TooLarge => "token_too_large",
            AuthError::Malformed => "token_malformed",
            AuthError::AlgorithmNotAllowed => "token_algorithm",
            AuthError::EmbeddedKey => "token_embedded_key",
            AuthError::CriticalHeader => "token_crit",
            AuthError::UnknownKey => "token_unknown_key",
            AuthError::BadSignature => "token_signature",
            AuthError::Expired => "token_expired",
            AuthError::NotYetValid => "token_not_yet_valid",
            AuthError::IssuedInFuture => "token_iat_future",
            AuthError::WrongAudience => "token_audience",
            AuthError::WrongIssuer => "token_issuer",
            AuthError::WrongTenant => "token_tenant",
            AuthError::MissingScope => "token_scope",
            AuthError::BadClaims => "token_claims",
            AuthError::KeysNotLoaded => "keys_not_loaded",
        }
    }
}

/// The claims cancelguard reads from an Entra ID access token.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Claims {
    pub iss: Option<String>,
    pub tid: Option<String>,
    pub oid: Option<String>,
    pub upn: Option<String>,
    pub preferred_username: Option<String>,
    pub unique_name: Option<String>,
    pub appid: Option<String>,
    pub azp: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub wids: Vec<String>,
    pub scp: Option<String>,
    pub iat: Option<i64>,
    pub uti: Option<String>,
    pub jti: Option<String>,
}

impl Claims {
    /// The user's sign-in name, from whichever claim the token version has.
    pub fn user_name(&self) -> Option<&str> {
        self.upn
            .as_deref()
            .or(self.preferred_username.as_deref())
            .or(self.unique_name.as_deref())
    }

    /// The calling application's id (v1 `appid`, v2 `azp`).
    pub fn app(&self) -> Option<&str> {
        self.appid.as_deref().or(self.azp.as_deref())
    }
}

/// A token that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    pub claims: Claims,
    /// `uti`/`jti`, or a short digest: names the token without revealing it.
    pub token_id: String,
}

/// Verifies bearer tokens against the configured keys and rules.
pub struct Verifier {
    keys: Arc<KeyStore>,
    /// One prepared validation per accepted algorithm, built once.
    validations: Vec<(Algorithm, Validation)>,
    issuers: Vec<String>,
    tenants: Vec<String>,
    required_scopes: Vec<String>,
    leeway_secs: i64,
    max_token_bytes: usize,
}

impl Verifier {
    /// Prepares a verifier; `keys` may still be empty.
    pub fn new(config: &AuthConfig, keys: Arc<KeyStore>) -> Self {
        let validations = config
            .algorithms
            .iter()
            .map(|alg| {
                let mut v = Validation::new(*alg);
                v.leeway = config.leeway.as_secs();
                v.set_audience(&config.audiences);
                v.set_required_spec_claims(&["exp", "aud"]);
                v.validate_nbf = true;
                (*alg, v)
            })
            .collect();
        Self {
            keys,
            validations,
            issuers: config.issuers.clone(),
            tenants: config.tenants.clone(),
            required_scopes: config.required_scopes.clone(),
            leeway_secs: config.leeway.as_secs() as i64,
            max_token_bytes: config.max_token_bytes,
        }
    }

    /// The key store behind this verifier.
    pub fn keys(&self) -> &Arc<KeyStore> {
        &self.keys
    }

    /// Verifies a token taken from the request by [`bearer_token`].
    pub fn verify(&self, token: &str) -> Result<Verified, AuthError> {
        if token.len() > self.max_token_bytes {
            return Err(AuthError::TooLarge);
        }
        if token.split('.').count() != 3 {
            return Err(AuthError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Malformed)?;
        if header.jku.is_some() || header.x5u.is_some() || header.jwk.is_some()
        {
            return Err(AuthError::EmbeddedKey);
        }
        if header.crit.is_some() {
            return Err(AuthError::CriticalHeader);
        }
        let validation = self
            .validations
            .iter()
            .find(|(alg, _)| *alg == header.alg)
            .map(|(_, v)| v)
            .ok_or(AuthError::AlgorithmNotAllowed)?;

        let keys = self.keys.current().ok_or(AuthError::KeysNotLoaded)?;
        let key = keys
            .find(header.kid.as_deref())
            .ok_or(AuthError::UnknownKey)?;
        if key.family != header.alg.family() {
            return Err(AuthError::AlgorithmNotAllowed);
        }

        let data =
            jsonwebtoken::decode::<Claims>(token, &key.decoding, validation)
                .map_err(map_jwt_error)?;
        let claims = data.claims;
        self.check_claims(&claims)?;

        let token_id = claims
            .uti
            .clone()
            .or_else(|| claims.jti.clone())
            .unwrap_or_else(|| token_digest(token));
        Ok(Verified { claims, token_id })
    }

    fn check_claims(&self, claims: &Claims) -> Result<(), AuthError> {
        let tid = claims.tid.as_deref().ok_or(AuthError::BadClaims)?;
        let iss = claims.iss.as_deref().ok_or(AuthError::WrongIssuer)?;
        // `{tenantid}` is filled from the token's own tenant, so a token from
        // one tenant can never pass as another's.
        let issuer_ok = self
            .issuers
            .iter()
            .any(|template| template.replace("{tenantid}", tid) == iss);
        if !issuer_ok {
            return Err(AuthError::WrongIssuer);
        }

        if !self.tenants.is_empty()
            && !self.tenants.iter().any(|t| t.eq_ignore_ascii_case(tid))
        {
            return Err(AuthError::WrongTenant);
        }

        if let Some(iat) = claims.iat {
            let now = jsonwebtoken::get_current_timestamp() as i64;
            if iat > now + self.leeway_secs {
                return Err(AuthError::IssuedInFuture);
            }
        }

        let granted: Vec<&str> = claims
            .scp
            .as_deref()
            .map(|s| s.split(' ').collect())
            .unwrap_or_default();
        if !self
            .required_scopes
            .iter()
            .all(|s| granted.contains(&s.as_str()))
        {
            return Err(AuthError::MissingScope);
        }
        Ok(())
    }
}

/// Takes the single bearer token from a request's headers.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(AuthError::MissingToken)?;
    if values.next().is_some() {
        return Err(AuthError::SeveralTokens);
    }

    let value = value.to_str().map_err(|_| AuthError::Malformed)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::NotBearer);
    }
    let token = token.trim_start_matches(' ');
    let charset_ok = !token.is_empty()
        && token.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
        });
    if !charset_ok {
        return Err(AuthError::Malformed);
    }
    Ok(token)
}

/// Claims read without verification, for the audit record of a refused
/// token. Never used for a decision.
pub fn unverified_claims(token: &str) -> Option<Claims> {
    jsonwebtoken::dangerous::insecure_decode_claims(token).ok()
}

/// A short, stable name for a token that reveals nothing of it.
pub fn token_digest(token: &str) -> String {
    let digest = digest::digest(&digest::SHA256, token.as_bytes());
    format!("sha256:{}", hex::encode(&digest.as_ref()[..8]))
}

fn map_jwt_error(error: jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm => AuthError::AlgorithmNotAllowed,
        ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => {
            AuthError::WrongAudience
        }
        ErrorKind::MissingRequiredClaim(_)
        | ErrorKind::InvalidClaimFormat(_) => AuthError::BadClaims,
        ErrorKind::Json(_) | ErrorKind::Utf8(_) => AuthError::BadClaims,
        _ => AuthError::Malformed,
    }
}

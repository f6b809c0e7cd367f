//! Step 3: authenticate the caller by its Entra ID access token.
//!
//! The token must arrive exactly once, as `Authorization: Bearer`, never
//! also in the query or a cookie, and pass the checks in [`verify`]:
//! structure, algorithm, key, signature, lifetime, issuer, audience, tenant
//! and scopes. Keys come from [`keys`]; tokens that passed are remembered
//! in [`cache`]; [`jose`] reads a token's parts before any key is touched.

pub mod cache;
pub mod jose;
pub mod keys;
mod verify;

use aws_lc_rs::digest;
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, Uri};
use serde::Deserialize;

pub use verify::Verifier;

/// The query parameter and cookie name some clients put tokens in.
const ACCESS_TOKEN: &str = "access_token";

/// Why a token was not accepted. Each message says what to fix and is safe
/// to show the caller: it never holds the token, key material or claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token; send 'Authorization: Bearer <token>'")]
    MissingToken,
    #[error("more than one token; send exactly one Authorization header")]
    SeveralTokens,
    #[error("token sent in the query string; send it only in Authorization")]
    TokenInQuery,
    #[error("token sent in a cookie; send it only in Authorization")]
    TokenInCookie,
    #[error("the Authorization header is not a bearer token")]
    NotBearer,
    #[error("the token is longer than this proxy accepts")]
    TooLarge,
    #[error("the token holds characters a JWT cannot hold")]
    Malformed,
    #[error("the token is not a signed JWT of three parts")]
    NotJws,
    #[error("the token is not valid base64url")]
    BadBase64,
    #[error("the token's header or claims are not a JSON object")]
    BadJson,
    #[error("the token's header or claims repeat a key")]
    DuplicateKey,
    #[error("unsigned tokens (alg none) are not accepted")]
    Unsigned,
    #[error("tokens signed with a shared secret (HMAC) are not accepted")]
    SharedSecret,
    #[error("the token's signing algorithm is not accepted")]
    AlgorithmNotAllowed,
    #[error("the token's algorithm does not fit its signing key")]
    KeyMismatch,
    #[error(
        "the token names key material of its own (jku, x5u or jwk), \
         which is not accepted"
    )]
    EmbeddedKey,
    #[error("the token has critical header extensions, which are not accepted")]
    CriticalHeader,
    #[error("the token names no key (kid) and several keys are trusted")]
    MissingKid,
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
            AuthError::TokenInQuery => "token_in_query",
            AuthError::TokenInCookie => "token_in_cookie",
            AuthError::NotBearer => "token_not_bearer",
            AuthError::TooLarge => "token_too_large",
            AuthError::Malformed => "token_malformed",
            AuthError::NotJws => "token_not_jws",
            AuthError::BadBase64 => "token_base64",
            AuthError::BadJson => "token_json",
            AuthError::DuplicateKey => "token_duplicate_key",
            AuthError::Unsigned => "token_unsigned",
            AuthError::SharedSecret => "token_hmac",
            AuthError::AlgorithmNotAllowed => "token_algorithm",
            AuthError::KeyMismatch => "token_key_mismatch",
            AuthError::EmbeddedKey => "token_embedded_key",
            AuthError::CriticalHeader => "token_crit",
            AuthError::MissingKid => "token_missing_kid",
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
    pub exp: Option<u64>,
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

/// Takes the single bearer token from a request's headers.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(AuthError::MissingToken)?;
    if values.next().is_some() {
        return Err(AuthError::SeveralTokens);
    }

    let value = value.to_str().map_err(|_| AuthError::Malformed)?;
    // `Bearer a, Bearer b`: a proxy that joins repeated headers made one.
    if value.contains(',') {
        return Err(AuthError::SeveralTokens);
    }
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

/// Refuses a token that also travels in the query string or in a cookie:
/// it would leak into logs and caches there, and a second copy invites
/// confusion over which one was checked. Query parameter names are
/// compared as Graph compares them, without regard to case.
pub fn token_elsewhere(
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), AuthError> {
    let in_query = uri.query().is_some_and(|query| {
        query.split('&').any(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            let name = percent_decoded(name);
            name.trim().eq_ignore_ascii_case(ACCESS_TOKEN)
        })
    });
    if in_query {
        return Err(AuthError::TokenInQuery);
    }

    let in_cookie = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.split('=').next())
        .any(|name| name.trim().eq_ignore_ascii_case(ACCESS_TOKEN));
    if in_cookie {
        return Err(AuthError::TokenInCookie);
    }
    Ok(())
}

/// Decodes `%XX` escapes leniently, for comparing names only.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

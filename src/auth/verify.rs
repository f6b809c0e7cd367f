//! The token check itself, cheapest and most telling tests first.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use jsonwebtoken::{Algorithm, Validation};

use super::cache::{Cached, TokenCache};
use super::jose::{self, Jws};
use super::keys::KeyStore;
use super::{AuthError, Claims, Verified, token_digest};
use crate::config::AuthConfig;

/// Seconds since the epoch; replaceable so tests can move time.
pub type Clock = fn() -> u64;

/// Verifies bearer tokens against the configured keys and rules.
pub struct Verifier {
    keys: Arc<KeyStore>,
    /// One prepared validation per accepted algorithm, built once.
    validations: Vec<(Algorithm, Validation)>,
    issuers: Vec<String>,
    tenants: Vec<String>,
    required_scopes: Vec<String>,
    leeway_secs: u64,
    max_token_bytes: usize,
    graph_nonce: bool,
    cache: TokenCache,
    clock: Clock,
    /// Signature checks performed: cache hits do not count.
    signature_checks: AtomicU64,
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
            leeway_secs: config.leeway.as_secs(),
            max_token_bytes: config.max_token_bytes,
            graph_nonce: config.graph_nonce,
            cache: TokenCache::new(config.cache_entries),
            clock: jsonwebtoken::get_current_timestamp,
            signature_checks: AtomicU64::new(0),
        }
    }

    /// Replaces the clock used for cache expiry (tests and benches).
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }

    /// The key store behind this verifier.
    pub fn keys(&self) -> &Arc<KeyStore> {
        &self.keys
    }

    /// How many signatures were checked; cached tokens skip the check.
    pub fn signature_checks(&self) -> u64 {
        self.signature_checks.load(Ordering::Relaxed)
    }

    /// Number of tokens in the verified-token cache.
    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }

    /// Verifies a token taken from the request by
    /// [`bearer_token`](super::bearer_token).
    pub async fn verify(
        &self,
        token: &str,
    ) -> Result<Arc<Verified>, AuthError> {
        // The size limit comes before any decoding, so an oversized token
        // costs nothing.
        if token.len() > self.max_token_bytes {
            return Err(AuthError::TooLarge);
        }
        let mut keys = self.keys.current().ok_or(AuthError::KeysNotLoaded)?;
        // A byte-identical token passes the same content checks again; only
        // its expiry and its key's presence can have changed, and the
        // cache checks both.
        let digest = TokenCache::digest(token);
        if let Some(hit) = self.cache.get(&digest, &keys, (self.clock)()) {
            return Ok(hit);
        }

        let jws = Jws::split(token)?;
        let header = jws.header_fields()?;
        jws.check_payload()?;
        let (alg, validation) = self.validation_for(&header.alg)?;

        if header.kid.is_some() && keys.find(header.kid.as_deref()).is_none() {
            // The issuer may have rotated keys since the last refresh.
            self.keys.refetch_for_unknown_kid().await;
            keys = self.keys.current().ok_or(AuthError::KeysNotLoaded)?;
        }
        let key = match keys.find(header.kid.as_deref()) {
            Some(key) => key,
            None if header.kid.is_none() => return Err(AuthError::MissingKid),
            None => return Err(AuthError::UnknownKey),
        };
        if key.family != alg.family() || key.alg.is_some_and(|a| a != alg) {
            return Err(AuthError::KeyMismatch);
        }

        // Entra signs Graph tokens over a header whose nonce is hashed;
        // verify against that header, leaving the token itself untouched.
        let signed_form = match (&header.nonce, self.graph_nonce) {
            (Some((nonce, span)), true) => {
                Some(jose::nonce_signed_token(&jws, nonce, span))
            }
            _ => None,
        };
        self.signature_checks.fetch_add(1, Ordering::Relaxed);
        let data = jsonwebtoken::decode::<Claims>(
            signed_form.as_deref().unwrap_or(token),
            &key.decoding,
            validation,
        )
        .map_err(map_jwt_error)?;
        let claims = data.claims;
        self.check_claims(&claims)?;

        let token_id = claims
            .uti
            .clone()
            .or_else(|| claims.jti.clone())
            .unwrap_or_else(|| token_digest(token));
        let exp = claims.exp.unwrap_or_default();
        let verified = Arc::new(Verified { claims, token_id });
        if exp > (self.clock)() {
            let cached = Cached {
                verified: verified.clone(),
                kid: header.kid,
                exp,
            };
            self.cache.insert(digest, cached);
        }
        Ok(verified)
    }

    fn validation_for(
        &self,
        alg: &str,
    ) -> Result<(Algorithm, &Validation), AuthError> {
        if alg.eq_ignore_ascii_case("none") {
            return Err(AuthError::Unsigned);
        }
        if alg.len() >= 2 && alg[..2].eq_ignore_ascii_case("hs") {
            return Err(AuthError::SharedSecret);
        }
        let alg = Algorithm::from_str(alg)
            .map_err(|_| AuthError::AlgorithmNotAllowed)?;
        self.validations
            .iter()
            .find(|(known, _)| *known == alg)
            .map(|(known, v)| (*known, v))
            .ok_or(AuthError::AlgorithmNotAllowed)
    }

    fn check_claims(&self, claims: &Claims) -> Result<(), AuthError> {
        let tid = claims.tid.as_deref().ok_or(AuthError::BadClaims)?;
        let iss = claims.iss.as_deref().ok_or(AuthError::WrongIssuer)?;
        // `{tenantid}` is filled from the token's own tenant, so a token
        // from one tenant can never pass as another's.
        let issuer_ok = self.issuers.iter().any(|template| {
            match template.split_once("{tenantid}") {
                Some((head, tail)) => {
                    iss.len() == head.len() + tid.len() + tail.len()
                        && iss.starts_with(head)
                        && iss.ends_with(tail)
                        && &iss[head.len()..head.len() + tid.len()] == tid
                }
                None => template == iss,
            }
        });
        if !issuer_ok {
            return Err(AuthError::WrongIssuer);
        }

        if !self.tenants.is_empty()
            && !self.tenants.iter().any(|t| t.eq_ignore_ascii_case(tid))
        {
            return Err(AuthError::WrongTenant);
        }

        if let Some(iat) = claims.iat {
            let now = (self.clock)() as i64;
            if iat > now + self.leeway_secs as i64 {
                return Err(AuthError::IssuedInFuture);
            }
        }

        let granted: Vec<&str> = claims
            .scp
            .as_deref()
            .map(|s| s.split(' ').collect())
            .unwrap_or_default();
        let has_scopes = self
            .required_scopes
            .iter()
            .all(|s| granted.contains(&s.as_str()));
        if !has_scopes {
            return Err(AuthError::MissingScope);
        }
        Ok(())
    }
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
        | ErrorKind::InvalidClaimFormat(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => AuthError::BadClaims,
        ErrorKind::Base64(_) => AuthError::BadBase64,
        _ => AuthError::BadSignature,
    }
}

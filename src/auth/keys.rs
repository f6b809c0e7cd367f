//! Signing keys: loaded from a JWKS file, a JWKS URL or an OpenID discovery
//! document, held behind an atomic pointer so that every request reads the
//! current set without a lock or a copy, and refreshed in the background.
//!
//! A token naming an unknown `kid` may mean the issuer rotated keys, so it
//! triggers one refetch; all requests waiting for the same refetch share it,
//! and refetches are at most one per `jwks_min_refetch`, so a stream of
//! forged `kid`s cannot turn the proxy against the key server. When a fetch
//! fails, the last good keys keep serving.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::{AuthConfig, KeySource};
use crate::upstream::{HttpClient, empty_body};

/// Largest key or discovery document accepted; Entra's are a few KiB.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// How soon a failed first load is tried again.
const RETRY_INTERVAL: Duration = Duration::from_secs(5);

/// Why a key set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("fetch of {url} failed: {reason}")]
    Fetch { url: String, reason: String },
    #[error("discovery document has no usable jwks_uri: {0}")]
    Discovery(String),
    #[error("key document is not a JWKS: {0}")]
    NotJwks(String),
    #[error("key document holds no usable signing key")]
    NoUsableKey,
}

/// One verification key.
pub struct Key {
    pub decoding: DecodingKey,
    pub family: AlgorithmFamily,
    /// The algorithm the key set pins this key to, if it says.
    pub alg: Option<Algorithm>,
}

/// A loaded set of keys, looked up by `kid`.
pub struct KeySet {
    by_kid: HashMap<String, Key>,
    without_kid: Vec<Key>,
}

impl KeySet {
    /// Parses a JWKS document, keeping every usable signing key and
    /// skipping the rest: one bad entry must not take the good ones down.
    pub fn parse(document: &[u8]) -> Result<Self, KeyError> {
        #[derive(serde::Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let doc: Document = serde_json::from_slice(document)
            .map_err(|e| KeyError::NotJwks(e.to_string()))?;

        let mut set = KeySet {
            by_kid: HashMap::new(),
            without_kid: Vec::new(),
        };
        for entry in doc.keys {
            let Some((kid, key)) = usable_key(entry) else {
                continue;
            };
            match kid {
                Some(kid) => {
                    set.by_kid.insert(kid, key);
                }
                None => set.without_kid.push(key),
            }
        }
        if set.is_empty() {
            return Err(KeyError::NoUsableKey);
        }
        Ok(set)
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.by_kid.len() + self.without_kid.len()
    }

    /// True when the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when a key with this `kid` is in the set.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }

    /// The key for a token's `kid`. A token without `kid` is only matched
    /// when the set holds exactly one key, so that it cannot pick among
    /// several.
    pub fn find(&self, kid: Option<&str>) -> Option<&Key> {
        match kid {
            Some(kid) => self.by_kid.get(kid),
            None if self.len() == 1 => self
                .without_kid
                .first()
                .or_else(|| self.by_kid.values().next()),
            None => None,
        }
    }
}

/// A JWKS entry as a verification key, or `None` when it is not one: not
/// for signatures, a shared secret, or not a key this crate can use.
fn usable_key(entry: serde_json::Value) -> Option<(Option<String>, Key)> {
    let jwk = serde_json::from_value::<Jwk>(entry).ok()?;
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature)
    {
        return None;
    }
    let alg = match jwk.common.key_algorithm {
        Some(declared) => {
            Some(Algorithm::from_str(&declared.to_string()).ok()?)
        }
        None => None,
    };
    let decoding = DecodingKey::from_jwk(&jwk).ok()?;
    let family = decoding.family();
    let fits = alg.is_none_or(|a| a.family() == family);
    if family == AlgorithmFamily::Hmac || !fits {
        return None;
    }
    let key = Key {
        decoding,
        family,
        alg,
    };
    Some((jwk.common.key_id, key))
}

/// The current key set and where it comes from.
pub struct KeyStore {
    current: ArcSwapOption<KeySet>,
    source: KeySource,
    client: HttpClient,
    timeout: Duration,
    min_refetch: Duration,
    /// When the last refetch for an unknown `kid` started; the lock also
    /// makes concurrent requests wait for one refetch instead of each
    /// starting their own.
    last_refetch: Mutex<Option<Instant>>,
    /// True while the latest load failed and older keys are serving.
    stale: AtomicBool,
}

impl KeyStore {
    /// A store with no keys yet.
    pub fn new(
        source: KeySource,
        client: HttpClient,
        timeout: Duration,
        min_refetch: Duration,
    ) -> Self {
        Self {
            current: ArcSwapOption::empty(),
            source,
            client,
            timeout,
            min_refetch,
            last_refetch: Mutex::new(None),
            stale: AtomicBool::new(false),
        }
    }

    /// A store for the `[auth]` key settings, with no keys yet.
    pub fn from_config(config: &AuthConfig, client: HttpClient) -> Self {
        Self::new(
            config.keys.clone(),
            client,
            config.jwks_timeout,
            config.jwks_min_refetch,
        )
    }

    /// The current keys, or `None` before the first successful load.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.current.load_full()
    }

    /// True once keys have been loaded.
    pub fn is_loaded(&self) -> bool {
        self.current.load().is_some()
    }

    /// True while the latest refresh failed and the last good keys serve.
    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Acquire)
    }

    /// Loads the keys once and makes them current. On failure the keys
    /// already loaded stay current.
    pub async fn load(&self) -> Result<usize, KeyError> {
        let result = self.fetch_set().await;
        match &result {
            Ok(set) => {
                self.current.store(Some(set.clone()));
                self.stale.store(false, Ordering::Release);
            }
            Err(_) => self.stale.store(true, Ordering::Release),
        }
        result.map(|set| set.len())
    }

    async fn fetch_set(&self) -> Result<Arc<KeySet>, KeyError> {
        let document = match &self.source {
            KeySource::File(path) => tokio::fs::read(path)
                .await
                .map(Bytes::from)
                .map_err(|e| KeyError::Read {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?,
            KeySource::Url(url) => self.fetch(url).await?,
            KeySource::Discovery(url) => {
                let jwks = self.jwks_uri(url).await?;
                self.fetch(&jwks).await?
            }
        };
        KeySet::parse(&document).map(Arc::new)
    }

    /// Reads `jwks_uri` from an OpenID discovery document. It must be
    /// https, unless the document itself came over plain http (a loopback
    /// stand-in).
    async fn jwks_uri(&self, url: &http::Uri) -> Result<http::Uri, KeyError> {
        #[derive(serde::Deserialize)]
        struct Discovery {
            jwks_uri: String,
        }
        let document = self.fetch(url).await?;
        let discovery: Discovery = serde_json::from_slice(&document)
            .map_err(|e| KeyError::Discovery(e.to_string()))?;
        let jwks: http::Uri = discovery
            .jwks_uri
            .parse()
            .map_err(|_| KeyError::Discovery("not a URL".into()))?;
        let allowed = match jwks.scheme_str() {
            Some("https") => true,
            Some("http") => url.scheme_str() == Some("http"),
            _ => false,
        };
        if !allowed || jwks.authority().is_none() {
            return Err(KeyError::Discovery("jwks_uri must be https".into()));
        }
        Ok(jwks)
    }

    async fn fetch(&self, url: &http::Uri) -> Result<Bytes, KeyError> {
        let fail = |reason: String| KeyError::Fetch {
            url: url.to_string(),
            reason,
        };
        let request = http::Request::get(url.clone())
            .body(empty_body())
            .map_err(|e| fail(e.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| fail(e.to_string()))?;
            if !response.status().is_success() {
                return Err(fail(format!("status {}", response.status())));
            }
            Limited::new(response.into_body(), MAX_DOCUMENT_BYTES)
                .collect()
                .await
                .map(|body| body.to_bytes())
                .map_err(|e| fail(e.to_string()))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| fail(format!("no answer within {:?}", self.timeout)))?
    }

    /// Reloads keys because a token named an unknown `kid`, unless a
    /// reload started less than `min_refetch` ago. Requests that arrive
    /// while one runs wait for it and then use its result.
    pub async fn refetch_for_unknown_kid(&self) {
        let mut last = self.last_refetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.min_refetch) {
            return;
        }
        *last = Some(Instant::now());
        match self.load().await {
            Ok(count) => {
                tracing::info!(keys = count, "keys refetched for unknown kid")
            }
            Err(error) => tracing::warn!(%error, "key refetch failed"),
        }
    }

    /// Keeps the keys fresh until the process ends: retries quickly until
    /// the first load succeeds, then reloads every `refresh`. A failed
    /// reload keeps the last good keys.
    pub async fn refresh_forever(self: Arc<Self>, refresh: Duration) {
        loop {
            let wait = if self.is_loaded() {
                refresh
            } else {
                RETRY_INTERVAL
            };
            tokio::time::sleep(wait).await;

            match self.load().await {
                Ok(count) => {
                    tracing::debug!(keys = count, "signing keys refreshed")
                }
                Err(error) => tracing::warn!(
                    %error,
                    serving_last_good = self.is_loaded(),
                    "signing key refresh failed"
                ),
            }
        }
    }
}

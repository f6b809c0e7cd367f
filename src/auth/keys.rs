//! Signing keys: loaded from a JWKS file or URL, held behind an atomic
//! pointer so that every request reads the current set without a lock or a
//! copy, and refreshed in the background.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{AlgorithmFamily, DecodingKey};

use crate::config::KeySource;
use crate::upstream::{HttpClient, empty_body};

/// Largest JWKS document accepted; Entra's is a few kilobytes.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// How long one key fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// How soon a failed first load is tried again.
const RETRY_INTERVAL: Duration = Duration::from_secs(5);

/// Why a key set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("key fetch from {url} failed: {reason}")]
    Fetch { url: String, reason: String },
    #[error("key document is not a JWKS: {0}")]
    NotJwks(String),
    #[error("key document holds no usable signing key")]
    NoUsableKey,
}

/// One verification key.
pub struct Key {
    pub decoding: DecodingKey,
    pub family: AlgorithmFamily,
}

/// A loaded set of keys, looked up by `kid`.
pub struct KeySet {
    by_kid: HashMap<String, Key>,
    without_kid: Vec<Key>,
}

impl KeySet {
    /// Parses a JWKS document, keeping every usable key and skipping the
    /// rest: one bad entry must not take the good ones down with it.
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
            let Ok(jwk) = serde_json::from_value::<Jwk>(entry) else {
                continue;
            };
            if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature)
            {
                continue;
            }
            let Ok(decoding) = DecodingKey::from_jwk(&jwk) else {
                continue;
            };
            let family = decoding.family();
            // Shared secrets are never verification keys here.
            if family == AlgorithmFamily::Hmac {
                continue;
            }
            let key = Key { decoding, family };
            match jwk.common.key_id {
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

/// The current key set and where it comes from.
pub struct KeyStore {
    current: ArcSwapOption<KeySet>,
    source: KeySource,
    client: HttpClient,
}

impl KeyStore {
    /// A store with no keys yet.
    pub fn new(source: KeySource, client: HttpClient) -> Self {
        Self {
            current: ArcSwapOption::empty(),
            source,
            client,
        }
    }

    /// The current keys, or `None` before the first successful load.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.current.load_full()
    }

    /// True once keys have been loaded.
    pub fn is_loaded(&self) -> bool {
        self.current.load().is_some()
    }

    /// Loads the keys once and makes them current.
    pub async fn load(&self) -> Result<usize, KeyError> {
        let document = match &self.source {
            KeySource::File(path) => tokio::fs::read(path)
                .await
                .map(Bytes::from)
                .map_err(|e| KeyError::Read {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?,
            KeySource::Url(url) => self.fetch(url).await?,
        };
        let set = KeySet::parse(&document)?;
        let count = set.len();
        self.current.store(Some(Arc::new(set)));
        Ok(count)
    }

    async fn fetch(&self, url: &http::Uri) -> Result<Bytes, KeyError> {
        let fail = |reason: String| KeyError::Fetch {
            url: url.to_string(),
            reason,
        };
        let request = http::Request::get(url.clone())
            .body(empty_body())
            .map_err(|e| fail(e.to_string()))?;
        let response =
            tokio::time::timeout(FETCH_TIMEOUT, self.client.request(request))
                .await
                .map_err(|_| fail("timed out".into()))?
                .map_err(|e| fail(e.to_string()))?;
        if !response.status().is_success() {
            return Err(fail(format!("status {}", response.status())));
        }
        let body = Limited::new(response.into_body(), MAX_JWKS_BYTES);
        let collected = tokio::time::timeout(FETCH_TIMEOUT, body.collect())
            .await
            .map_err(|_| fail("timed out".into()))?
            .map_err(|e| fail(e.to_string()))?;
        Ok(collected.to_bytes())
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

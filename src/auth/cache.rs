//! Tokens that passed verification, remembered by a SHA-256 digest of the
//! whole token, so that a caller reusing a token is not verified twice.
//!
//! An entry is only ever used while its token is unexpired and while the
//! key that signed it is still in the key set; a hit that fails either test
//! is dropped. The cache holds a bounded number of entries.

use std::sync::Arc;

use aws_lc_rs::digest;

use super::Verified;
use super::keys::KeySet;

/// A remembered verification.
pub struct Cached {
    pub verified: Arc<Verified>,
    /// The `kid` of the key that verified the token, if it named one.
    pub kid: Option<String>,
    /// The token's `exp`, in seconds since the epoch.
    pub exp: u64,
}

/// The verified-token cache.
pub struct TokenCache {
    entries: Option<quick_cache::sync::Cache<[u8; 32], Arc<Cached>>>,
}

impl TokenCache {
    /// A cache of at most `capacity` tokens; 0 turns caching off.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: (capacity > 0)
                .then(|| quick_cache::sync::Cache::new(capacity)),
        }
    }

    /// The key under which `token` is remembered.
    pub fn digest(token: &str) -> [u8; 32] {
        let hash = digest::digest(&digest::SHA256, token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(hash.as_ref());
        key
    }

    /// A remembered verification that may still be used at `now`.
    pub fn get(
        &self,
        key: &[u8; 32],
        keys: &KeySet,
        now: u64,
    ) -> Option<Arc<Verified>> {
        let entries = self.entries.as_ref()?;
        let cached = entries.get(key)?;
        let key_present = match &cached.kid {
            Some(kid) => keys.has_kid(kid),
            None => keys.len() == 1,
        };
        if now >= cached.exp || !key_present {
            entries.remove(key);
            return None;
        }
        Some(cached.verified.clone())
    }

    /// Remembers a verification.
    pub fn insert(&self, key: [u8; 32], cached: Cached) {
        if let Some(entries) = &self.entries {
            entries.insert(key, Arc::new(cached));
        }
    }

    /// Number of remembered tokens.
    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, |e| e.len())
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

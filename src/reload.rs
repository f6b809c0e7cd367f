//! Reloading the configuration on SIGHUP.
//!
//! What decides a call can change without a restart: the policy and every
//! `[auth]` setting, keys included. A reload builds the new verifier and
//! policy first, loads new keys if their source changed, and only then puts
//! them in force, so a bad file, or a key source that cannot be read, is
//! reported and the running configuration kept. Listeners, the upstream,
//! the audit trail and logging are fixed at start; changes to them are
//! reported as needing a restart and otherwise ignored.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::audit::{Detail, Event, Record};
use crate::auth::Verifier;
use crate::auth::keys::KeyStore;
use crate::config::{AuthConfig, Config};
use crate::proxy::{Proxy, Rules};
use crate::upstream::HttpClient;

/// Why a reload was refused; the running configuration stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("new signing keys cannot be loaded: {0}")]
    Keys(#[from] crate::auth::keys::KeyError),
}

/// What a reload compares against and keeps running.
pub struct Reloader {
    path: PathBuf,
    /// The sections fixed at start, as they were then.
    fixed: String,
    /// The key source settings the running key store was built from.
    key_settings: String,
    keys: Arc<KeyStore>,
    refresh: JoinHandle<()>,
    client: HttpClient,
}

impl Reloader {
    /// Remembers the running configuration and its key store.
    pub fn new(
        config: &Config,
        keys: Arc<KeyStore>,
        refresh: JoinHandle<()>,
        client: HttpClient,
    ) -> Self {
        Self {
            path: PathBuf::from(&config.source.file),
            fixed: fixed_sections(config),
            key_settings: key_settings(&config.auth),
            keys,
            refresh,
            client,
        }
    }

    /// Reads the config file again and puts its policy and auth settings
    /// in force. Returns the warnings of the new file.
    pub async fn reload(
        &mut self,
        proxy: &Proxy,
    ) -> Result<Vec<String>, ReloadError> {
        let config = Config::load(&self.path)?;
        let mut warnings = config.warnings.clone();
        if fixed_sections(&config) != self.fixed {
            warnings.push(
                "changes to [server], [upstream], [audit] or [log] need a \
                 restart and were not applied"
                    .into(),
            );
        }

        let settings = key_settings(&config.auth);
        let new_keys = if settings != self.key_settings {
            let keys = Arc::new(KeyStore::from_config(
                &config.auth,
                self.client.clone(),
            ));
            keys.load().await?;
            Some(keys)
        } else {
            None
        };

        if let Some(keys) = new_keys {
            self.refresh.abort();
            self.refresh = tokio::spawn(
                keys.clone().refresh_forever(config.auth.jwks_refresh),
            );
            self.keys = keys;
            self.key_settings = settings;
        }
        let mode = config.policy.mode();
        proxy.replace_rules(Rules {
            verifier: Verifier::new(&config.auth, self.keys.clone()),
            policy: config.policy,
        });

        // The trail shows from which record on the new policy decided.
        let mut record = Record::fresh(Event::Config);
        record.mode = Some(mode.as_str());
        record.reason = Some("reload".into());
        record.detail = Some(Detail::Config {
            file: config.source.file.clone(),
            sha256: config.source.sha256.clone(),
            overrides: config.source.overrides.clone(),
        });
        if let Err(error) = proxy.audit.record_durable(record).await {
            tracing::error!(%error, "reload not recorded");
        }
        Ok(warnings)
    }

    /// Stops the key refresh of the running key store.
    pub fn stop(&self) {
        self.refresh.abort();
    }
}

/// The sections that only a restart applies, in a comparable form.
fn fixed_sections(config: &Config) -> String {
    format!(
        "{:?}{:?}{:?}{:?}",
        config.server, config.upstream, config.audit, config.log
    )
}

/// The settings a key store is built from.
fn key_settings(auth: &AuthConfig) -> String {
    format!(
        "{:?}{:?}{:?}{:?}",
        auth.keys, auth.jwks_refresh, auth.jwks_timeout, auth.jwks_min_refetch
    )
}

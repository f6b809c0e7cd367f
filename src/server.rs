//! Startup, the accept loops and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::admin;
use crate::audit::{Audit, Detail, Event, Record, chain};
use crate::auth::Verifier;
use crate::auth::keys::KeyStore;
use crate::config::{AuditConfig, Config, KeySource, Source};
use crate::policy::Mode;
use crate::proxy::{Proxy, Routing};
use crate::upstream::{Upstream, build_client};

/// A proxy whose listeners are bound and whose state is built, ready to
/// serve.
pub struct Server {
    proxy: Arc<Proxy>,
    listener: TcpListener,
    admin: TcpListener,
    grace: Duration,
    refresh: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Builds the pipeline from a checked config and binds both listeners.
    /// Errors name their cause in one line (bad key file, port in use).
    pub async fn bind(config: Config) -> anyhow::Result<Self> {
        let client =
            build_client(&config.upstream).context("upstream client")?;
        let keys = Arc::new(KeyStore::new(
            config.auth.keys.clone(),
            client.clone(),
            config.auth.jwks_timeout,
            config.auth.jwks_min_refetch,
        ));
        match (&config.auth.keys, keys.load().await) {
            (_, Ok(count)) => {
                tracing::info!(keys = count, "signing keys loaded")
            }
            // A local file that cannot be read is a setup error; a key
            // server that is down now may be up in a moment.
            (KeySource::File(_), Err(error)) => return Err(error.into()),
            (KeySource::Url(_) | KeySource::Discovery(_), Err(error)) => {
                tracing::warn!(%error, "signing keys not loaded yet; not ready")
            }
        }
        let refresh = tokio::spawn(
            keys.clone().refresh_forever(config.auth.jwks_refresh),
        );

        let audit = Audit::start(&config.audit)?;
        tracing::info!(path = %audit.path().display(), "audit trail open");
        let mode = config.policy.mode();
        let verifier = Verifier::new(&config.auth, keys);
        let upstream = Upstream::new(&config.upstream, client);
        let routing = Routing {
            forward_other_routes: config.upstream.forward_other_routes,
            max_batch_bytes: config.server.max_batch_bytes,
        };
        let proxy = Arc::new(Proxy::new(
            verifier,
            config.policy,
            audit,
            upstream,
            routing,
        ));

        let listener =
            TcpListener::bind(config.server.listen).await.with_context(
                || format!("cannot listen on {}", config.server.listen),
            )?;
        let admin = TcpListener::bind(config.server.admin_listen)
            .await
            .with_context(|| {
                format!("cannot listen on {}", config.server.admin_listen)
            })?;

        for record in startup_records(&config.audit, &config.source, mode) {
            if let Err(error) = proxy.audit.record_durable(record).await {
                tracing::error!(%error, "start not recorded; not ready");
                break;
            }
        }
        Ok(Self {
            proxy,
            listener,
            admin,
            grace: config.server.shutdown_grace,
            refresh: Some(refresh),
        })
    }

    /// The address the proxy listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The address the admin endpoints listen on.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then stops accepting, lets calls
    /// in flight finish within the grace period, and closes the audit trail.
    pub async fn serve(
        mut self,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tracing::info!(
            listen = %self.local_addr(),
            admin = %self.admin_addr(),
            "cancelguard serving"
        );
        let graceful = GracefulShutdown::new();
        let admin_task =
            tokio::spawn(serve_admin(self.admin, self.proxy.clone()));
        tokio::pin!(shutdown);

        loop {
            let (stream, remote) = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        // Out of file descriptors and the like: back off
                        // instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let proxy = self.proxy.clone();
            let service = service_fn(move |request| {
                let proxy = proxy.clone();
                async move {
                    Ok::<_, Infallible>(proxy.handle(request, remote).await)
                }
            });
            let connection = builder()
                .serve_connection(TokioIo::new(stream), service)
                .into_owned();
            let watched = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(error) = watched.await {
                    tracing::debug!(%error, %remote, "connection ended with an error");
                }
            });
        }

        tracing::info!(grace = ?self.grace, "shutting down");
        self.proxy.start_draining();
        drop(self.listener);
        if tokio::time::timeout(self.grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("grace period over; dropping calls still in flight");
        }
        admin_task.abort();
        if let Some(refresh) = self.refresh.take() {
            refresh.abort();
        }

        let stop = Record::fresh(Event::Stop);
        if let Err(error) = self.proxy.audit.record_durable(stop).await {
            tracing::error!(%error, "stop not recorded");
        }
        self.proxy.audit.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// `start`, saying what writes the trail, and `config`, saying which
/// configuration is in force, so that an auditor sees when it changed.
fn startup_records(
    audit: &AuditConfig,
    source: &Source,
    mode: Mode,
) -> [Record; 2] {
    let mut start = Record::fresh(Event::Start);
    start.detail = Some(Detail::Start {
        version: env!("CARGO_PKG_VERSION"),
        replica: audit.replica.clone(),
        hash: chain::algorithm(audit.hmac_key.as_ref()),
    });
    let mut config = Record::fresh(Event::Config);
    config.mode = Some(mode.as_str());
    config.detail = Some(Detail::Config {
        file: source.file.clone(),
        sha256: source.sha256.clone(),
        overrides: source.overrides.clone(),
    });
    [start, config]
}

fn builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Slow-header clients must not hold connections forever.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    builder
}

async fn serve_admin(listener: TcpListener, proxy: Arc<Proxy>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = admin::handle(&proxy, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = builder()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term =
        signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int =
        signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}

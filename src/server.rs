//! Startup, the accept loops, config reload and graceful shutdown.

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
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsAcceptor;

use crate::admin;
use crate::audit::{Audit, Detail, Event, Record, chain};
use crate::auth::Verifier;
use crate::auth::keys::KeyStore;
use crate::config::{AuditConfig, Config, KeySource, Source};
use crate::policy::Mode;
use crate::proxy::{Proxy, Routing, Rules};
use crate::reload::Reloader;
use crate::upstream::{Upstream, build_client};

/// How long a client may take over the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A proxy whose listeners are bound and whose state is built, ready to
/// serve.
pub struct Server {
    proxy: Arc<Proxy>,
    listener: TcpListener,
    admin: TcpListener,
    grace: Duration,
    tls: Option<TlsAcceptor>,
    reloader: Reloader,
    reloads: mpsc::Receiver<ReloadRequest>,
    reload_sender: mpsc::Sender<ReloadRequest>,
}

/// A reload asked for, and where its result goes.
type ReloadRequest = oneshot::Sender<Result<Vec<String>, String>>;

/// Asks a serving proxy to reload its config, as SIGHUP does.
#[derive(Clone)]
pub struct ReloadHandle {
    sender: mpsc::Sender<ReloadRequest>,
}

impl ReloadHandle {
    /// Reloads and returns the new file's warnings, or why it was refused.
    pub async fn reload(&self) -> Result<Vec<String>, String> {
        let (done, result) = oneshot::channel();
        self.sender
            .send(done)
            .await
            .map_err(|_| "the proxy is not serving".to_string())?;
        result
            .await
            .map_err(|_| "the proxy stopped during the reload".to_string())?
    }
}

impl Server {
    /// Builds the pipeline from a checked config and binds both listeners.
    /// Errors name their cause in one line (bad key file, port in use).
    pub async fn bind(config: Config) -> anyhow::Result<Self> {
        let client =
            build_client(&config.upstream).context("upstream client")?;
        let keys =
            Arc::new(KeyStore::from_config(&config.auth, client.clone()));
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
        let verifier = Verifier::new(&config.auth, keys.clone());
        let upstream = Upstream::new(&config.upstream, client.clone());
        let routing = Routing {
            forward_other_routes: config.upstream.forward_other_routes,
            max_batch_bytes: config.server.max_batch_bytes,
        };
        let reloader = Reloader::new(&config, keys, refresh, client);
        let rules = Rules {
            verifier,
            policy: config.policy,
        };
        let proxy = Arc::new(Proxy::new(rules, audit, upstream, routing));

        let tls = config
            .server
            .tls
            .as_ref()
            .map(crate::tls::acceptor)
            .transpose()?;
        let listener =
            TcpListener::bind(config.server.listen).await.with_context(
                || format!("cannot listen on {}", config.server.listen),
            )?;
        let admin = TcpListener::bind(config.server.admin_listen)
            .await
            .with_context(|| {
                format!("cannot listen on {}", config.server.admin_listen)
            })?;

        let (reload_sender, reloads) = mpsc::channel(4);
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
            tls,
            reloader,
            reloads,
            reload_sender,
        })
    }

    /// A handle that reloads the config as SIGHUP does.
    pub fn reload_handle(&self) -> ReloadHandle {
        ReloadHandle {
            sender: self.reload_sender.clone(),
        }
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
        self,
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
        // Installed before the first call is accepted, so that a SIGHUP
        // can never meet the default action (ending the process).
        let hangup = tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::hangup(),
        );
        if let Err(error) = &hangup {
            tracing::warn!(%error, "no SIGHUP handler; reload unavailable");
        }
        let (stop_reloads, stopped) = oneshot::channel();
        let reload_task = tokio::spawn(serve_reloads(
            self.reloader,
            self.reloads,
            hangup.ok(),
            self.proxy.clone(),
            stopped,
        ));
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
            let watcher = graceful.watcher();
            let tls = self.tls.clone();
            tokio::spawn(async move {
                let served = match tls {
                    None => {
                        let io = TokioIo::new(stream);
                        let connection = builder()
                            .serve_connection(io, service)
                            .into_owned();
                        watcher.watch(connection).await
                    }
                    Some(tls) => {
                        // The handshake runs on the connection's own task,
                        // bounded, so a slow client holds up nobody.
                        let handshake = tokio::time::timeout(
                            HANDSHAKE_TIMEOUT,
                            tls.accept(stream),
                        );
                        let stream = match handshake.await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(error)) => {
                                tracing::debug!(%error, %remote, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%remote, "TLS handshake timed out");
                                return;
                            }
                        };
                        let io = TokioIo::new(stream);
                        let connection = builder()
                            .serve_connection(io, service)
                            .into_owned();
                        watcher.watch(connection).await
                    }
                };
                if let Err(error) = served {
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
        let _ = stop_reloads.send(());
        let _ = reload_task.await;

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

/// Reloads on SIGHUP and on request until told to stop; then stops the
/// key refresh too.
async fn serve_reloads(
    mut reloader: Reloader,
    mut requests: mpsc::Receiver<ReloadRequest>,
    mut hangup: Option<tokio::signal::unix::Signal>,
    proxy: Arc<Proxy>,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        let hangup_received = async {
            match hangup.as_mut() {
                Some(hangup) => hangup.recv().await,
                None => std::future::pending().await,
            }
        };
        let done = tokio::select! {
            _ = &mut stop => break,
            _ = hangup_received => None,
            request = requests.recv() => match request {
                Some(done) => Some(done),
                None => break,
            },
        };

        let result = reloader.reload(&proxy).await.map_err(|e| e.to_string());
        match &result {
            Ok(warnings) => {
                for warning in warnings {
                    tracing::warn!("{warning}");
                }
                tracing::info!("configuration reloaded");
            }
            Err(error) => tracing::error!(
                %error,
                "configuration reload refused; the running one stays"
            ),
        }
        if let Some(done) = done {
            let _ = done.send(result);
        }
    }
    reloader.stop();
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

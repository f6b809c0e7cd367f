//! Test harness: the real proxy, in process, on ephemeral ports, in front of
//! a stand-in Graph served over TLS by a test CA, with tokens signed by a
//! local issuer whose key set is a JWKS file.
#![allow(dead_code)]

pub mod keyserver;
pub mod lenient;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use cancelguard::config::Config;
use cancelguard::demo::{DEMO_TENANT, Issuer, PERMISSIONS_ADMIN_ROLE};
use cancelguard::server::Server;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const REQUEST_ID: &str = "0b2a8c5e-1f3d-4e6a-9b7c-2d4e6f8a0b1c";
pub const OPS_GROUP: &str = "9e0f1a2b-0000-4000-8000-00000000090a";
/// The replica name the harness's proxies write under.
pub const REPLICA: &str = "test";

/// The canonical cancelAll path for [`REQUEST_ID`].
pub fn cancel_path() -> String {
    format!(
        "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests/{REQUEST_ID}/cancelAll"
    )
}

/// One issuer for the whole test binary: RSA key generation is not free.
pub fn issuer() -> &'static Issuer {
    static ISSUER: OnceLock<Issuer> = OnceLock::new();
    ISSUER.get_or_init(|| {
        Issuer::generate("test-key-1").expect("generating a test key")
    })
}

/// Claims of a valid token for `upn`, with the admin role when `admin`.
pub fn claims(upn: &str, admin: bool) -> serde_json::Value {
    let wids: &[&str] = if admin {
        &[PERMISSIONS_ADMIN_ROLE]
    } else {
        &[]
    };
    Issuer::user_claims(
        upn,
        "0a0b0c0d-0000-4000-8000-0000000000ff",
        wids,
        Duration::from_secs(600),
    )
}

/// A valid token for an allowed admin.
pub fn admin_token() -> String {
    issuer().sign(&claims("alice@contoso.example", true))
}

/// What the stand-in Graph saw of one request.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub path: String,
    /// Path and query exactly as received.
    pub target: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Whether Graph's lenient router would have run cancelAll for this
    /// request (directly or inside a batch).
    pub routes_to_cancel_all: bool,
    /// Whether the audit file already held this call's decision record
    /// when the request arrived.
    pub decision_on_disk: bool,
}

/// How the stand-in Graph answers.
#[derive(Debug, Clone)]
pub struct GraphBehavior {
    pub status: StatusCode,
    pub delay: Duration,
}

impl Default for GraphBehavior {
    fn default() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            delay: Duration::ZERO,
        }
    }
}

/// A stand-in Graph over TLS that records every request.
pub struct StandIn {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl StandIn {
    /// Starts the stand-in; writes its CA certificate to `ca_path`.
    pub async fn start(
        ca_path: &Path,
        audit_file: PathBuf,
        behavior: GraphBehavior,
    ) -> Self {
        let (ca_pem, server_config) = test_tls();
        std::fs::write(ca_path, ca_pem).expect("writing the test CA");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the stand-in");
        let addr = listener.local_addr().expect("bound");
        let received = Arc::new(Mutex::new(Vec::new()));

        let log = received.clone();
        let audit_file = Arc::new(audit_file);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let log = log.clone();
                let audit_file = audit_file.clone();
                let behavior = behavior.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = service_fn(move |request| {
                        answer(
                            request,
                            log.clone(),
                            audit_file.clone(),
                            behavior.clone(),
                        )
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self { addr, received }
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
}

/// Records one request the way the stand-in Graph sees it, then answers.
async fn answer(
    request: Request<Incoming>,
    log: Arc<Mutex<Vec<Received>>>,
    audit_file: Arc<PathBuf>,
    behavior: GraphBehavior,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let client_id = request
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let decision_on_disk = decision_on_disk(&audit_file, &client_id);

    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let target = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let routes_to_cancel_all = lenient::routes_to_cancel_all(&target, &body);
    log.lock().expect("lock").push(Received {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        target,
        headers: parts.headers,
        body,
        routes_to_cancel_all,
        decision_on_disk,
    });

    tokio::time::sleep(behavior.delay).await;
    let mut response = hyper::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = behavior.status;
    Ok(response)
}

fn decision_on_disk(audit_file: &Path, client_request_id: &str) -> bool {
    // Devices such as /dev/full read forever; only regular files count.
    if !std::fs::metadata(audit_file).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(audit_file) else {
        return false;
    };
    let needle = format!("\"client_request_id\":\"{client_request_id}\"");
    !client_request_id.is_empty()
        && text.lines().any(|l| {
            l.contains("\"event\":\"decision\"") && l.contains(&needle)
        })
}

/// A test CA and a server certificate for 127.0.0.1 signed by it.
fn test_tls() -> (String, rustls::ServerConfig) {
    use rcgen::{
        BasicConstraints, CertificateParams, IsCa, Issuer as CaIssuer, KeyPair,
    };
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let ca = CaIssuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf_params = CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
    ])
    .expect("leaf params");
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca)
        .expect("leaf certificate");

    let key =
        rustls_pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der())
            .expect("leaf key DER");
    let provider = cancelguard::tls::provider();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .expect("server config");
    (ca_cert.pem(), config)
}

/// How to set up one proxy under test.
pub struct Setup {
    pub graph: GraphBehavior,
    /// Replaces the stand-in's URL (for an upstream that is down).
    pub upstream_url: Option<String>,
    /// Replaces the audit file path.
    pub audit_file: Option<PathBuf>,
    pub upstream_timeout: &'static str,
    /// Fetch keys from this URL instead of the JWKS file.
    pub jwks_url: Option<String>,
    /// Fetch keys through this OpenID discovery document instead.
    pub openid_url: Option<String>,
    /// Contents of the JWKS file, instead of the test issuer's key.
    pub jwks: Option<String>,
    /// More lines for the `[auth]` section.
    pub auth_extra: String,
    /// `policy.mode`.
    pub policy_mode: &'static str,
    /// More lines for the `[server]` section.
    pub server_extra: String,
    pub forward_other_routes: bool,
    pub max_batch_bytes: usize,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            graph: GraphBehavior::default(),
            upstream_url: None,
            audit_file: None,
            upstream_timeout: "5s",
            jwks_url: None,
            openid_url: None,
            jwks: None,
            auth_extra: String::new(),
            policy_mode: "enforce",
            server_extra: String::new(),
            forward_other_routes: false,
            max_batch_bytes: 1024 * 1024,
        }
    }
}

/// The proxy's answer to one request.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// The body parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body {:?} is not JSON: {e}", self.body))
    }
}

/// A running proxy and its stand-in Graph.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub graph: StandIn,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub audit_file: PathBuf,
    /// Reloads the config file in `dir`, as SIGHUP does.
    pub reload: cancelguard::server::ReloadHandle,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Harness {
    /// Starts a proxy with the default test policy.
    pub async fn start(setup: Setup) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let configured = setup
            .audit_file
            .clone()
            .unwrap_or_else(|| dir.path().join("audit/trail.jsonl"));
        // The proxy appends to the configured name plus its replica name.
        let audit_file = cancelguard::audit::active_path(&configured, REPLICA);
        let graph = StandIn::start(
            &dir.path().join("ca.pem"),
            audit_file.clone(),
            setup.graph,
        )
        .await;
        let jwks = setup.jwks.clone().unwrap_or_else(|| issuer().jwks_json());
        std::fs::write(dir.path().join("jwks.json"), jwks)
            .expect("writing jwks");

        let upstream = setup.upstream_url.unwrap_or_else(|| {
            format!("https://127.0.0.1:{}", graph.addr.port())
        });
        let config = format!(
            r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
shutdown_grace = "2s"
max_batch_bytes = {max_batch}
{server_extra}

[upstream]
url = "{upstream}"
ca_file = "ca.pem"
timeout = "{timeout}"
connect_timeout = "2s"
forward_other_routes = {forward}

[auth]
{keys}
{auth_extra}
tenants = ["{DEMO_TENANT}"]

[policy]
mode = "{policy_mode}"

[[policy.rules]]
name = "admins"
effect = "allow"
directory_roles = ["{PERMISSIONS_ADMIN_ROLE}"]

[[policy.rules]]
name = "ops"
effect = "allow"
groups = ["{OPS_GROUP}"]

[[policy.rules]]
name = "blocked"
effect = "deny"
users = ["MALLORY@contoso.example"]

[audit]
file = "{audit}"
sync = "batch"
replica = "{REPLICA}"
"#,
            timeout = setup.upstream_timeout,
            max_batch = setup.max_batch_bytes,
            forward = setup.forward_other_routes,
            keys = match (&setup.jwks_url, &setup.openid_url) {
                (Some(url), _) => format!("jwks_url = \"{url}\""),
                (_, Some(url)) => {
                    format!("openid_configuration_url = \"{url}\"")
                }
                _ => "jwks_file = \"jwks.json\"".into(),
            },
            auth_extra = setup.auth_extra,
            policy_mode = setup.policy_mode,
            server_extra = setup.server_extra,
            audit = configured.display(),
        );
        let config_path = dir.path().join("proxy.toml");
        std::fs::write(&config_path, config).expect("writing config");
        let config = Config::load(&config_path).expect("test config loads");

        let server = Server::bind(config).await.expect("proxy binds");
        let addr = server.local_addr();
        let admin = server.admin_addr();
        let reload = server.reload_handle();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self {
            dir,
            graph,
            addr,
            admin,
            audit_file,
            reload,
            stop: Some(stop),
            task: Some(task),
            client,
        }
    }

    /// Sends a request built by the test; its URI is a path on the proxy.
    pub async fn send(&self, mut request: Request<Full<Bytes>>) -> Reply {
        let target = format!("http://{}{}", self.addr, request.uri());
        *request.uri_mut() = target.parse().expect("target");
        self.send_absolute(request).await
    }

    async fn send_absolute(&self, request: Request<Full<Bytes>>) -> Reply {
        let response =
            self.client.request(request).await.expect("proxy answers");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// A bodiless POST to `path` with an optional bearer token.
    pub async fn post(&self, path: &str, token: Option<&str>) -> Reply {
        let mut builder = Request::post(path);
        if let Some(token) = token {
            builder =
                builder.header("authorization", format!("Bearer {token}"));
        }
        self.send(builder.body(Full::new(Bytes::new())).expect("request"))
            .await
    }

    /// GET on the admin listener.
    pub async fn admin_get(&self, path: &str) -> Reply {
        let request = Request::get(format!("http://{}{path}", self.admin))
            .body(Full::new(Bytes::new()))
            .expect("request");
        self.send_absolute(request).await
    }

    /// Every audit record on disk, parsed.
    pub fn audit_records(&self) -> Vec<serde_json::Value> {
        let text =
            std::fs::read_to_string(&self.audit_file).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
            .collect()
    }

    /// The decision record with audit id `id`.
    pub fn decision(&self, id: &str) -> serde_json::Value {
        self.audit_records()
            .into_iter()
            .find(|r| r["id"] == id && r["event"] == "decision")
            .unwrap_or_else(|| panic!("no decision record for {id}"))
    }

    /// The outcome record with audit id `id`. Outcomes are written after
    /// the reply is relayed, so this waits a little for it.
    pub async fn outcome(&self, id: &str) -> serde_json::Value {
        for _ in 0..200 {
            let found = self
                .audit_records()
                .into_iter()
                .find(|r| r["id"] == id && r["event"] == "outcome");
            if let Some(record) = found {
                return record;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("no outcome record for {id}");
    }

    /// Asserts the audit file's hash chain is intact.
    pub fn assert_chain_verifies(&self) {
        let report = cancelguard::audit::verify::verify_file(&self.audit_file)
            .expect("audit file readable");
        assert_eq!(report.problem, None, "audit chain broken: {report:?}");
        assert!(report.records > 0, "audit file holds no records");
    }

    /// Stops the proxy, then asserts the audit file's hash chain is intact
    /// from `start` to `stop`.
    pub async fn stop_verified(self) {
        let audit_file = self.audit_file.clone();
        let _dir = self.stop().await;
        let report = cancelguard::audit::verify::verify_file(&audit_file)
            .expect("audit file readable");
        assert_eq!(report.problem, None, "audit chain broken: {report:?}");
        assert!(
            report.records >= 2,
            "audit file lacks start and stop records"
        );
    }

    /// Stops the proxy as SIGTERM would and waits for it; hands back the
    /// folder so that its files can still be read.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("serve task").expect("clean shutdown");
        }
        self.dir
    }
}

/// The audit id a reply names.
pub fn audit_id(reply: &Reply) -> String {
    reply
        .headers
        .get("x-cancelguard-audit-id")
        .and_then(|v| v.to_str().ok())
        .expect("every reply names its audit record")
        .to_owned()
}

//! `cancelguard demo`: a self-contained local run.
//!
//! It plays every outside party on loopback: a stand-in Graph that accepts
//! cancelAll, a local token issuer with a fresh RSA key published as a JWKS
//! file, and two users, one allowed and one not. The proxy in the middle is
//! the real one, started from a config file written for the occasion.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::server::{Server, shutdown_signal};
use crate::upstream::{Body, empty_body};

/// Tenant id used by the demo's tokens.
pub const DEMO_TENANT: &str = "4d3c2b1a-0000-4000-8000-00000000c0de";

/// Entra's "Permissions Management Administrator" role template id.
pub const PERMISSIONS_ADMIN_ROLE: &str = "af78dc32-cf4d-46f9-ba4e-4428526346b5";

/// A local token issuer: an RSA signing key and its public JWKS.
pub struct Issuer {
    key: EncodingKey,
    kid: String,
    jwks: JwkSet,
}

impl Issuer {
    /// Generates a fresh 2048-bit RSA key named `kid`.
    pub fn generate(kid: &str) -> anyhow::Result<Self> {
        let pair = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
        let der = pair.as_der().context("encoding the RSA key")?;
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref()));
        let key = EncodingKey::from_rsa_pem(pem.as_bytes())
            .context("loading the RSA key")?;

        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256)
            .context("deriving the public JWK")?;
        jwk.common.key_id = Some(kid.into());
        jwk.common.public_key_use =
            Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        Ok(Self {
            key,
            kid: kid.into(),
            jwks: JwkSet { keys: vec![jwk] },
        })
    }

    /// The public keys as a JWKS document.
    pub fn jwks_json(&self) -> String {
        serde_json::to_string(&self.jwks).expect("a JWKS always serializes")
    }

    /// This issuer's key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The base64url RS256 signature of `message` under this issuer's key,
    /// for tests that build tokens byte by byte.
    pub fn sign_message(&self, message: &[u8]) -> String {
        jsonwebtoken::crypto::sign(message, &self.key, Algorithm::RS256)
            .expect("signing with a valid RSA key")
    }

    /// Signs `claims` as an RS256 token under this issuer's key.
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key)
            .expect("signing with a valid RSA key")
    }

    /// Claims of a delegated Graph token for a user of [`DEMO_TENANT`],
    /// valid for `lifetime` from now.
    pub fn user_claims(
        upn: &str,
        oid: &str,
        wids: &[&str],
        lifetime: Duration,
    ) -> serde_json::Value {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_secs();
        json!({
            "aud": "https://graph.microsoft.com",
            "iss": format!("https://sts.windows.net/{DEMO_TENANT}/"),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime.as_secs(),
            "tid": DEMO_TENANT,
            "oid": oid,
            "upn": upn,
            "appid": "5e4d3c2b-0000-4000-8000-0000000000a1",
            "scp": "ScheduledPermissions.ReadWrite.All",
            "wids": wids,
            "uti": uuid::Uuid::new_v4().simple().to_string(),
        })
    }
}

/// Runs the demo until Ctrl-C.
pub async fn run() -> anyhow::Result<()> {
    let dir = std::env::temp_dir()
        .join(format!("cancelguard-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;

    let graph = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the stand-in Graph")?;
    let graph_addr = graph.local_addr()?;
    tokio::spawn(serve_stand_in(graph));

    let issuer = Issuer::generate("demo-key-1")?;
    std::fs::write(dir.join("jwks.json"), issuer.jwks_json())
        .context("writing jwks.json")?;

    let listen = free_port(8080).await?;
    let admin = free_port(9090).await?;
    let config_path = dir.join("proxy.toml");
    std::fs::write(&config_path, demo_config(listen, admin, graph_addr))
        .context("writing proxy.toml")?;
    let config = Config::load(&config_path)?;
    let audit_file = config.audit.active_path();
    let server = Server::bind(config).await?;

    let day = Duration::from_secs(3600);
    let alice = issuer.sign(&Issuer::user_claims(
        "alice@contoso.example",
        "a11ce000-0000-4000-8000-000000000001",
        &[PERMISSIONS_ADMIN_ROLE],
        day,
    ));
    let bob = issuer.sign(&Issuer::user_claims(
        "bob@contoso.example",
        "b0b00000-0000-4000-8000-000000000002",
        &[],
        day,
    ));
    print_instructions(&dir, &audit_file, listen, admin, &alice, &bob);

    server.serve(shutdown_signal()).await?;
    crate::cli::say(&format!(
        "\ndemo stopped; its files stay in {}\n",
        dir.display()
    ));
    Ok(())
}

fn demo_config(
    listen: SocketAddr,
    admin: SocketAddr,
    graph: SocketAddr,
) -> String {
    format!(
        r#"# Written by `cancelguard demo`.
[server]
listen = "{listen}"
admin_listen = "{admin}"
shutdown_grace = "5s"

[upstream]
# The demo's stand-in Graph; real deployments use https://graph.microsoft.com
url = "http://{graph}"

[auth]
jwks_file = "jwks.json"
tenants = ["{DEMO_TENANT}"]

[policy]
mode = "enforce"

[[policy.rules]]
name = "permissions-admins"
effect = "allow"
directory_roles = ["{PERMISSIONS_ADMIN_ROLE}"]

[audit]
file = "audit/cancelguard.jsonl"
sync = "batch"

[log]
format = "text"
"#
    )
}

fn print_instructions(
    dir: &Path,
    audit: &Path,
    listen: SocketAddr,
    admin: SocketAddr,
    alice: &str,
    bob: &str,
) {
    let url = format!(
        "http://{listen}/beta/identityGovernance/permissionsManagement/\
         scheduledPermissionsRequests/7c1f0c2e-5b8a-4d5e-9f00-demo00000001/cancelAll"
    );
    crate::cli::say(&format!(
        r#"
cancelguard demo is running (files in {dir}).

Alice holds the Permissions Management Administrator role: allowed, 204.
  curl -i -X POST '{url}' -H 'Authorization: Bearer {alice}'

Bob holds no such role: denied, 403, and the stand-in Graph receives nothing.
  curl -i -X POST '{url}' -H 'Authorization: Bearer {bob}'

No token at all: 401.
  curl -i -X POST '{url}'

Readiness:   curl -i http://{admin}/readyz
Audit trail: {audit}
  cargo run --release -- audit verify '{folder}'
  cargo run --release -- audit show '{folder}'

Press Ctrl-C to stop.
"#,
        dir = dir.display(),
        audit = audit.display(),
        folder = audit.parent().unwrap_or(dir).display(),
    ));
}

/// `preferred` if it is free on loopback, else any free port.
async fn free_port(preferred: u16) -> anyhow::Result<SocketAddr> {
    let listener = match TcpListener::bind(("127.0.0.1", preferred)).await {
        Ok(listener) => listener,
        Err(_) => TcpListener::bind("127.0.0.1:0")
            .await
            .context("finding a free port")?,
    };
    Ok(listener.local_addr()?)
}

/// A stand-in Graph: 204 for cancelAll at the canonical path, 404 else.
async fn serve_stand_in(listener: TcpListener) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(async move {
            let service = service_fn(|request: Request<Incoming>| async move {
                Ok::<_, Infallible>(stand_in_answer(&request))
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn stand_in_answer(request: &Request<Incoming>) -> Response<Body> {
    let path = request.uri().path();
    let is_cancel = request.method() == Method::POST
        && path.starts_with(
            "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests/",
        )
        && path.ends_with("/cancelAll");
    crate::cli::say(&format!(
        "stand-in Graph received {} {path}\n",
        request.method()
    ));
    let mut response = Response::new(empty_body());
    *response.status_mut() = if is_cancel {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    };
    response
}

//! End-to-end load on loopback: allowed cancelAll calls through the real
//! proxy (token check, policy, durable decision record, forward, outcome
//! record) to a stand-in Graph, from concurrent keep-alive clients.
//!
//!     cargo bench --bench proxy_throughput [-- SECONDS CLIENTS]
//!
//! Prints calls per second and latency percentiles. Every run is bounded
//! in time and sends traffic to 127.0.0.1 only.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cancelguard::config::Config;
use cancelguard::demo::{DEMO_TENANT, Issuer, PERMISSIONS_ADMIN_ROLE};
use cancelguard::server::Server;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

const PATH: &str = "/beta/identityGovernance/permissionsManagement/\
                    scheduledPermissionsRequests/r-1/cancelAll";

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let clients: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(run(Duration::from_secs(seconds), clients));
}

async fn run(duration: Duration, clients: usize) {
    let graph = stand_in().await;
    let dir = tempfile::tempdir().expect("dir");
    let issuer = Issuer::generate("bench").expect("key");
    std::fs::write(dir.path().join("jwks.json"), issuer.jwks_json())
        .expect("jwks");
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
         [upstream]\nurl = \"http://{graph}\"\n\
         [auth]\njwks_file = \"jwks.json\"\ntenants = [\"{DEMO_TENANT}\"]\n\
         [[policy.rules]]\nname = \"admins\"\neffect = \"allow\"\n\
         directory_roles = [\"{PERMISSIONS_ADMIN_ROLE}\"]\n\
         [audit]\nfile = \"audit/trail.jsonl\"\nsync = \"batch\"\n\
         replica = \"bench\"\n[log]\nlevel = \"error\"\n"
    );
    std::fs::write(dir.path().join("proxy.toml"), config).expect("config");
    let config = Config::load(&dir.path().join("proxy.toml")).expect("config");
    let server = Server::bind(config).await.expect("bind");
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));

    let claims = Issuer::user_claims(
        "alice@contoso.example",
        "a11ce000-0000-4000-8000-000000000001",
        &[PERMISSIONS_ADMIN_ROLE],
        Duration::from_secs(3600),
    );
    let bearer = format!("Bearer {}", issuer.sign(&claims));
    let url = format!("http://{addr}{PATH}");
    let deadline = Instant::now() + duration;
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (url, bearer) = (url.clone(), bearer.clone());
            tokio::spawn(async move {
                let client = Client::builder(TokioExecutor::new())
                    .build_http::<Empty<Bytes>>();
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let request = Request::post(url.as_str())
                        .header("authorization", bearer.as_str())
                        .body(Empty::new())
                        .expect("request");
                    let started = Instant::now();
                    let response =
                        client.request(request).await.expect("answer");
                    assert_eq!(response.status(), StatusCode::NO_CONTENT);
                    let _ = response.into_body().collect().await;
                    latencies.push(started.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.expect("worker"));
    }
    let _ = stop.send(());
    serving.await.expect("serve").expect("clean stop");

    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    println!(
        "{clients} clients, {:?}: {} calls, {:.0} calls/s, latency p50 {:?} \
         p99 {:?} max {:?}",
        duration,
        latencies.len(),
        latencies.len() as f64 / duration.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        latencies.last().copied().unwrap_or_default()
    );
}

/// A stand-in Graph on loopback answering 204 to everything.
async fn stand_in() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_request| async {
                    let mut response =
                        hyper::Response::new(Empty::<Bytes>::new());
                    *response.status_mut() = StatusCode::NO_CONTENT;
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(
                    TokioExecutor::new(),
                )
                .serve_connection(TokioIo::new(stream), service)
                .await;
            });
        }
    });
    addr
}

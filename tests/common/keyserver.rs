//! A stand-in key server on loopback (plain HTTP) whose answers a test can
//! change at any time: rotate keys, go down, answer slowly or with garbage.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// What the key server answers to every key request.
#[derive(Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: String,
    pub delay: Duration,
}

/// A running key server.
pub struct KeyServer {
    pub addr: SocketAddr,
    answer: Arc<Mutex<Answer>>,
    hits: Arc<AtomicUsize>,
}

impl KeyServer {
    /// Serves `jwks` at `/keys` and a discovery document pointing there at
    /// `/.well-known/openid-configuration`.
    pub async fn start(jwks: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let answer = Arc::new(Mutex::new(Answer {
            status: StatusCode::OK,
            body: jwks,
            delay: Duration::ZERO,
        }));
        let hits = Arc::new(AtomicUsize::new(0));
        let (shared, counter) = (answer.clone(), hits.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (answer, hits) = (shared.clone(), counter.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        respond(request, addr, answer.clone(), hits.clone())
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        TokioExecutor::new(),
                    )
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                });
            }
        });
        Self { addr, answer, hits }
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        format!("http://{}/keys", self.addr)
    }

    /// The discovery document URL.
    pub fn discovery_url(&self) -> String {
        format!("http://{}/.well-known/openid-configuration", self.addr)
    }

    /// Changes what key requests get from now on.
    pub fn answer(&self, change: impl FnOnce(&mut Answer)) {
        change(&mut self.answer.lock().expect("lock"));
    }

    /// How many key documents were requested.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn respond(
    request: hyper::Request<hyper::body::Incoming>,
    addr: SocketAddr,
    answer: Arc<Mutex<Answer>>,
    hits: Arc<AtomicUsize>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    if request.uri().path() == "/.well-known/openid-configuration" {
        let doc = format!(r#"{{"jwks_uri":"http://{addr}/keys"}}"#);
        return Ok(hyper::Response::new(Full::new(Bytes::from(doc))));
    }
    hits.fetch_add(1, Ordering::SeqCst);
    let answer = answer.lock().expect("lock").clone();
    tokio::time::sleep(answer.delay).await;
    let mut response =
        hyper::Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() = answer.status;
    Ok(response)
}

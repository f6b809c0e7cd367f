//! Step 7: forward an allowed call to Graph and relay its answer.
//!
//! The upstream's scheme and host are fixed by configuration; the caller's
//! `Host` never chooses them. Hop-by-hop headers are dropped both ways, and
//! `client-request-id` is passed on so that Graph's logs and the audit trail
//! can be joined.

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::UpstreamConfig;

/// Boxed error for bodies of any origin.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type used for everything the proxy sends or relays.
pub type Body = BoxBody<Bytes, BoxError>;

/// The pooled HTTP/1.1 and HTTP/2 client used for every outbound call.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Body>;

/// Header that ties a call together across caller, proxy and Graph.
pub const CLIENT_REQUEST_ID: &str = "client-request-id";

/// Headers that describe one connection, never forwarded (RFC 9110 7.6.1).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Why a call could not be relayed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot connect to upstream: {0}")]
    Connect(String),
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration),
    #[error("upstream call failed: {0}")]
    Failed(String),
}

/// Why the outbound client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

/// An empty body.
pub fn empty_body() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A body of known bytes.
pub fn full_body(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// Builds the outbound client: bundled web PKI roots plus `ca_file`.
pub fn build_client(
    config: &UpstreamConfig,
) -> Result<HttpClient, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &config.ca_file {
        let fail = |reason: String| ClientError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        for cert in crate::tls::pem_certificates(path).map_err(fail)? {
            roots.add(cert).map_err(|e| fail(e.to_string()))?;
        }
    }

    let tls =
        rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();

    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(config.connect_timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

/// The configured upstream.
pub struct Upstream {
    client: HttpClient,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    host: HeaderValue,
    timeout: Duration,
}

impl Upstream {
    /// Wraps a client for the configured upstream.
    pub fn new(config: &UpstreamConfig, client: HttpClient) -> Self {
        let parts = config.url.clone().into_parts();
        let scheme = parts.scheme.expect("config checked the scheme");
        let authority = parts.authority.expect("config checked the host");
        let host = HeaderValue::from_str(authority.as_str())
            .expect("an authority is a valid header value");
        Self {
            client,
            scheme,
            authority,
            host,
            timeout: config.timeout,
        }
    }

    /// The shared client, for other outbound calls (key fetches).
    pub fn client(&self) -> &HttpClient {
        &self.client
    }

    /// Sends a bodiless POST to `path` with the caller's end-to-end headers.
    pub async fn post_empty(
        &self,
        path: &str,
        caller_headers: &HeaderMap,
        client_request_id: &str,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let mut headers = HeaderMap::with_capacity(caller_headers.len() + 2);
        copy_end_to_end(caller_headers, &mut headers);
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        if let Ok(value) = HeaderValue::from_str(client_request_id) {
            headers.insert(CLIENT_REQUEST_ID, value);
        }
        self.send(Method::POST, path, headers, empty_body()).await
    }

    /// Forwards a request that is not cancelAll as it came: same method,
    /// path and query bytes, end-to-end headers and body.
    pub async fn pass_through(
        &self,
        method: Method,
        path_and_query: &str,
        caller_headers: &HeaderMap,
        body: Body,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let mut headers = HeaderMap::with_capacity(caller_headers.len());
        copy_end_to_end(caller_headers, &mut headers);
        self.send(method, path_and_query, headers, body).await
    }

    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        mut headers: HeaderMap,
        body: Body,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|e| UpstreamError::Failed(e.to_string()))?;
        // The upstream is fixed by configuration, never by the caller.
        headers.insert(header::HOST, self.host.clone());

        let mut request = Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;

        match tokio::time::timeout(self.timeout, self.client.request(request))
            .await
        {
            Err(_) => Err(UpstreamError::Timeout(self.timeout)),
            Ok(Err(error)) if error.is_connect() => {
                Err(UpstreamError::Connect(error_chain(&error)))
            }
            Ok(Err(error)) => Err(UpstreamError::Failed(error_chain(&error))),
            Ok(Ok(response)) => Ok(response),
        }
    }
}

/// Prepares an upstream response for relaying: hop-by-hop headers dropped,
/// everything else as it came.
pub fn relay(response: Response<Incoming>) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    copy_end_to_end(&parts.headers, &mut headers);
    parts.headers = headers;
    Response::from_parts(parts, body.map_err(BoxError::from).boxed())
}

/// Copies all headers except hop-by-hop ones and those the `Connection`
/// header names.
fn copy_end_to_end(from: &HeaderMap, to: &mut HeaderMap) {
    let named: Vec<HeaderName> = from
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    for (name, value) in from {
        if HOP_BY_HOP.contains(&name.as_str()) || named.contains(name) {
            continue;
        }
        to.append(name.clone(), value.clone());
    }
}

/// Joins an error with its sources, for logs and audit reasons.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

//! TLS on the proxy's own listener, for gateways reached over a network.

mod common;

use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rcgen::{
    BasicConstraints, CertificateParams, IsCa, Issuer as CaIssuer, KeyPair,
};

/// Writes a CA and a certificate for 127.0.0.1 signed by it into `dir`;
/// returns the CA certificate.
fn write_listener_cert(
    dir: &std::path::Path,
) -> rustls_pki_types::CertificateDer<'static> {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA");
    let ca = CaIssuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("key");
    let params =
        CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
    let cert = params.signed_by(&key, &ca).expect("cert");
    std::fs::write(dir.join("listener.pem"), cert.pem()).expect("cert");
    std::fs::write(dir.join("listener.key"), key.serialize_pem()).expect("key");
    ca_cert.der().clone()
}

#[tokio::test]
async fn callers_reach_the_proxy_over_tls() {
    let certs = tempfile::tempdir().expect("dir");
    let ca = write_listener_cert(certs.path());
    let setup = Setup {
        server_extra: format!(
            "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
            certs.path().join("listener.pem").display(),
            certs.path().join("listener.key").display()
        ),
        ..Setup::default()
    };
    let proxy = Harness::start(setup).await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).expect("root");
    let provider = cancelguard::tls::provider();
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .enable_http2()
        .build();
    let client =
        Client::builder(TokioExecutor::new()).build::<_, Full<Bytes>>(https);
    let request = Request::post(format!(
        "https://127.0.0.1:{}{}",
        proxy.addr.port(),
        cancel_path()
    ))
    .header("authorization", format!("Bearer {}", admin_token()))
    .body(Full::new(Bytes::new()))
    .expect("request");
    let response = client.request(request).await.expect("TLS answer");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(response.version(), http::Version::HTTP_2, "ALPN offers h2");
    let _ = response.into_body().collect().await;
    assert_eq!(proxy.graph.received().len(), 1);

    // Plain HTTP to the TLS listener gets nowhere.
    let plain =
        Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request =
        Request::post(format!("http://{}{}", proxy.addr, cancel_path()))
            .header("authorization", format!("Bearer {}", admin_token()))
            .body(Full::new(Bytes::new()))
            .expect("request");
    assert!(plain.request(request).await.is_err());
    assert_eq!(proxy.graph.received().len(), 1);
    proxy.stop_verified().await;
}

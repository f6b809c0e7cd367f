//! Optional TLS on the proxy's listener, for a gateway that callers reach
//! over the network: their bearer tokens must not cross it in clear. A
//! sidecar on loopback can do without.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// The certificate chain and key files of the listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why the listener's TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read TLS certificates from {path}: {reason}")]
    Certificates { path: String, reason: String },
    #[error("cannot read a TLS private key from {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("TLS certificate and key do not fit together: {0}")]
    Mismatch(String),
}

/// Builds the acceptor: HTTP/2 and HTTP/1.1 offered by ALPN, TLS 1.2 and
/// 1.3 only.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let certs = pem_certificates(&files.cert).map_err(|reason| {
        TlsError::Certificates {
            path: files.cert.display().to_string(),
            reason,
        }
    })?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        TlsError::Key {
            path: files.key.display().to_string(),
            reason: e.to_string(),
        }
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Mismatch(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Mismatch(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The crypto provider of every TLS session cancelguard makes: the one
/// that also backs token verification and hashing.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Every certificate in a PEM file; a file with none is an error, since
/// it is surely not the file that was meant.
pub fn pem_certificates(
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no PEM certificate in the file".into());
    }
    Ok(certs)
}

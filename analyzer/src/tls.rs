//! The process-wide TLS crypto provider.
//!
//! reqwest is built on rustls without a bundled provider so that the ring
//! provider (a plain C build, no cmake) can be chosen here; every HTTP client
//! in the process needs it installed first. Idempotent. Also the reading of
//! a certificate and key pair, checked at config load and used by the
//! server's TLS (`serve_tls`).

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;

/// Installs the ring provider unless one is installed already.
pub fn install_crypto_provider() {
    // Err means a provider is already installed: that one wins, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The start of every HTTP client Verdict builds: the crypto provider
/// installed and Verdict's user agent set. Callers add their timeouts,
/// headers and certificates.
pub fn client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder().user_agent(concat!("verdict/", env!("CARGO_PKG_VERSION")))
}

/// Reads a certificate chain and its private key from PEM files and checks
/// that they belong together.
pub fn load_certified_key(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| format!("cannot read certificate file {}: {e}", cert_file.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| {
            format!(
                "{} is not a PEM certificate chain: {e}",
                cert_file.display()
            )
        })?;
    if chain.is_empty() {
        return Err(format!("{} holds no certificate", cert_file.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
        format!(
            "cannot read a PEM private key from {}: {e}",
            key_file.display()
        )
    })?;
    CertifiedKey::from_der(chain, key, &rustls::crypto::ring::default_provider()).map_err(|e| {
        format!(
            "{} and {} are not a usable certificate and key: {e}",
            cert_file.display(),
            key_file.display()
        )
    })
}

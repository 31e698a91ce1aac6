//! The process-wide TLS crypto provider.
//!
//! reqwest is built on rustls without a bundled provider so that the ring
//! provider (a plain C build, no cmake) can be chosen here; every HTTP client
//! in the process needs it installed first. Idempotent.

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

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

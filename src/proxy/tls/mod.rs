//! TLS on both ends, with rustls (the `ring` provider):
//! - [`server`]: a filter chain's `DownstreamTlsContext` (certificates, ALPN, client
//!   certificates); the listener wraps each accepted socket, and the handshake runs on the
//!   connection's first read, off the accept loop.
//! - [`client`]: a cluster's `UpstreamTlsContext` (v3 `transport_socket` or v2 `tls_context`):
//!   SNI, ALPN, and certificate validation against `validation_context.trusted_ca`. As in
//!   Envoy, a context without a trusted CA does not verify the upstream's certificate, and one
//!   with a CA verifies the chain but not the name (that is `match_typed_subject_alt_names`).
//!
//! Both keep Envoy's `ssl.*` stats under the listener's or the cluster's prefix.

pub mod client;
pub mod server;

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::{CipherSuite, CommonState, ProtocolVersion, RootCertStore};

use crate::config::model::DataSource;
use crate::config::pem::{self, PemError};
use crate::proxy::stats::{Counter, Store};

/// Why a TLS context could not be built. The config loader checks PEM data already; what is
/// left is what only rustls can say.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Pem(#[from] PemError),
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
    #[error(
        "a DownstreamTlsContext needs a certificate: add `common_tls_context.tls_certificates`"
    )]
    NoCertificate,
    #[error("`require_client_certificate` needs `validation_context.trusted_ca` to verify client certificates against")]
    ClientCertificateWithoutCa,
    #[error("trusted_ca: {0}")]
    Verifier(String),
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca: &DataSource) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in pem::certificates("trusted_ca", ca)? {
        roots
            .add(cert)
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
    }
    Ok(roots)
}

fn chain(
    pair: &(DataSource, DataSource),
) -> Result<
    (
        Vec<CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ),
    TlsError,
> {
    Ok((
        pem::certificates("certificate_chain", &pair.0)?,
        pem::private_key("private_key", &pair.1)?,
    ))
}

/// `<prefix>ssl.*` (Envoy's `ssl_socket` stats): the fixed counters, and the per-version,
/// per-cipher and per-curve ones, created on first use.
#[derive(Clone)]
pub struct SslStats {
    store: Store,
    prefix: String,
    pub handshake: Counter,
    pub connection_error: Counter,
    pub no_certificate: Counter,
    pub fail_verify_error: Counter,
    pub fail_verify_no_cert: Counter,
}

impl SslStats {
    /// `prefix` ends with a dot: `listener.0.0.0.0_8443.` or `cluster.service1.`.
    pub fn new(store: &Store, prefix: &str) -> Self {
        let p = format!("{prefix}ssl.");
        SslStats {
            store: store.clone(),
            handshake: store.counter(&format!("{p}handshake")),
            connection_error: store.counter(&format!("{p}connection_error")),
            no_certificate: store.counter(&format!("{p}no_certificate")),
            fail_verify_error: store.counter(&format!("{p}fail_verify_error")),
            fail_verify_no_cert: store.counter(&format!("{p}fail_verify_no_cert")),
            prefix: p,
        }
    }

    /// A handshake that completed: `handshake`, `versions.<v>`, `ciphers.<c>`, `curves.<g>`,
    /// with BoringSSL's names as Envoy prints them.
    pub fn completed(&self, conn: &CommonState) {
        self.handshake.inc();
        if let Some(v) = conn.protocol_version().and_then(version_name) {
            self.dynamic("versions.", v);
        }
        if let Some(suite) = conn.negotiated_cipher_suite() {
            self.dynamic("ciphers.", &cipher_name(suite.suite()));
        }
        if let Some(group) = conn.negotiated_key_exchange_group() {
            let name = match group.name() {
                rustls::NamedGroup::X25519 => "X25519".to_string(),
                rustls::NamedGroup::secp256r1 => "P-256".to_string(),
                rustls::NamedGroup::secp384r1 => "P-384".to_string(),
                other => format!("{other:?}"),
            };
            self.dynamic("curves.", &name);
        }
        if conn.peer_certificates().is_none_or(|c| c.is_empty()) {
            self.no_certificate.inc();
        }
    }

    /// A handshake that failed: `connection_error`, and `fail_verify_*` when the peer's
    /// certificate was the reason.
    pub fn failed(&self, error: &std::io::Error) {
        self.connection_error.inc();
        let tls = error
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>());
        match tls {
            Some(rustls::Error::InvalidCertificate(_)) => self.fail_verify_error.inc(),
            Some(rustls::Error::NoCertificatesPresented) => self.fail_verify_no_cert.inc(),
            _ => {}
        }
    }

    fn dynamic(&self, kind: &str, name: &str) {
        self.store
            .counter(&format!("{}{kind}{name}", self.prefix))
            .inc();
    }
}

fn version_name(v: ProtocolVersion) -> Option<&'static str> {
    match v {
        ProtocolVersion::TLSv1_2 => Some("TLSv1.2"),
        ProtocolVersion::TLSv1_3 => Some("TLSv1.3"),
        _ => None,
    }
}

/// BoringSSL's (OpenSSL's) cipher names, which Envoy's `ssl.ciphers.*` stats use.
fn cipher_name(suite: CipherSuite) -> String {
    let name = match suite {
        CipherSuite::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        CipherSuite::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => {
            "ECDHE-ECDSA-CHACHA20-POLY1305"
        }
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        other => return format!("{other:?}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boringssl_names() {
        assert_eq!(
            cipher_name(CipherSuite::TLS13_AES_128_GCM_SHA256),
            "TLS_AES_128_GCM_SHA256"
        );
        assert_eq!(
            cipher_name(CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
            "ECDHE-RSA-AES128-GCM-SHA256"
        );
        assert_eq!(version_name(ProtocolVersion::TLSv1_3), Some("TLSv1.3"));
    }
}

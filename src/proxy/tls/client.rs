//! Upstream TLS: a cluster's `UpstreamTlsContext` as a rustls client config, and the stream
//! an upstream connection runs on.
//!
//! Validation follows Envoy: with `validation_context.trusted_ca` the upstream's chain must
//! lead to that CA (the certificate's names are not compared: Envoy checks them only with
//! `match_typed_subject_alt_names`); without it the certificate is not verified at all.
//! SNI is sent only when `sni` is set. ALPN offers `alpn_protocols`, else (Envoy's fallback)
//! `h2` on HTTP/2 connections and `http/1.1` on HTTP/1.1 ones.

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::{chain, provider, roots, SslStats, TlsError};
use crate::config::model::UpstreamTls;
use crate::proxy::stats::Store;

/// A cluster's TLS: one client config per upstream protocol (they differ in ALPN only).
pub struct Connector {
    http1: TlsConnector,
    http2: TlsConnector,
    sni: Option<ServerName<'static>>,
    stats: SslStats,
}

impl Connector {
    /// `stat_prefix` is the cluster's (`cluster.service1.`).
    pub fn new(tls: &UpstreamTls, store: &Store, stat_prefix: &str) -> Result<Self, TlsError> {
        let sni = match &tls.sni {
            Some(name) => Some(
                ServerName::try_from(name.clone())
                    .map_err(|e| TlsError::Verifier(format!("sni `{name}`: {e}")))?,
            ),
            None => None,
        };
        let build = |fallback: &str| -> Result<TlsConnector, TlsError> {
            let mut config = client_config(tls)?;
            config.alpn_protocols = if tls.common.alpn_protocols.is_empty() {
                vec![fallback.as_bytes().to_vec()]
            } else {
                tls.common
                    .alpn_protocols
                    .iter()
                    .map(|p| p.as_bytes().to_vec())
                    .collect()
            };
            config.enable_sni = sni.is_some();
            Ok(TlsConnector::from(Arc::new(config)))
        };
        Ok(Connector {
            http1: build("http/1.1")?,
            http2: build("h2")?,
            sni,
            stats: SslStats::new(store, stat_prefix),
        })
    }

    /// The TLS handshake over an open TCP connection to `ip`.
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        ip: IpAddr,
        http2: bool,
    ) -> io::Result<UpstreamStream> {
        let connector = if http2 { &self.http2 } else { &self.http1 };
        // Without `sni` nothing is sent (enable_sni is off); rustls still wants a name, and
        // the verifiers here never compare it.
        let name = self.sni.clone().unwrap_or(ServerName::IpAddress(ip.into()));
        match connector.connect(name, tcp).await {
            Ok(stream) => {
                self.stats.completed(stream.get_ref().1);
                Ok(UpstreamStream::Tls(Box::new(stream)))
            }
            Err(error) => {
                self.stats.failed(&error);
                Err(error)
            }
        }
    }
}

pub fn client_config(tls: &UpstreamTls) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match &tls.common.trusted_ca {
        Some(ca) => Arc::new(ChainOnly(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots(ca)?), provider.clone())
                .build()
                .map_err(|e| TlsError::Verifier(e.to_string()))?,
        )),
        None => Arc::new(NoVerification(provider.clone())),
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    Ok(match tls.common.certificates.first() {
        Some(pair) => {
            let (certs, key) = chain(pair)?;
            builder.with_client_auth_cert(certs, key)?
        }
        None => builder.with_no_client_auth(),
    })
}

/// `trusted_ca` without subject-alt-name matchers: the chain is verified, the name is not.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain first and the name last, so a name error means the chain
        // itself was good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// No validation context: Envoy accepts any upstream certificate. The handshake's signatures
/// are still checked (the peer must hold the key of the certificate it sent).
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What an upstream connection runs on: the plain socket, or TLS over it.
pub enum UpstreamStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            UpstreamStream::Plain(s) => s.is_write_vectored(),
            UpstreamStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_flush(cx),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

//! Downstream TLS: a filter chain's `DownstreamTlsContext` as a rustls server config, and the
//! stream the listener serves HTTP on.
//!
//! The handshake runs lazily, on the connection's first read or write, inside the
//! connection's own task: the accept loop never waits for a slow client. HTTP/2 over TLS needs
//! no special case: with ALPN `h2` the client opens with the HTTP/2 preface, which the
//! listener's HTTP/1.1-or-HTTP/2 detection already recognises.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{Accept, TlsAcceptor};

use super::{chain, provider, roots, SslStats, TlsError};
use crate::config::model::DownstreamTls;
use crate::proxy::stats::Store;

/// A listener's TLS: the server config and the listener's `ssl.*` stats.
pub struct Acceptor {
    acceptor: TlsAcceptor,
    stats: SslStats,
}

impl Acceptor {
    /// `stat_prefix` is the listener's (`listener.0.0.0.0_8443.`).
    pub fn new(tls: &DownstreamTls, store: &Store, stat_prefix: &str) -> Result<Self, TlsError> {
        let config = server_config(tls)?;
        Ok(Acceptor {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            stats: SslStats::new(store, stat_prefix),
        })
    }

    /// Wraps an accepted socket; the handshake happens on first use.
    pub fn accept(&self, stream: TcpStream) -> DownstreamStream {
        DownstreamStream::Handshaking(Box::new((self.acceptor.accept(stream), self.stats.clone())))
    }
}

pub fn server_config(tls: &DownstreamTls) -> Result<ServerConfig, TlsError> {
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match &tls.common.trusted_ca {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider());
            // Envoy asks for a client certificate whenever a validation context is set, and
            // insists on one only with `require_client_certificate`.
            let verifier = if tls.require_client_certificate {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| TlsError::Verifier(e.to_string()))?,
            )
        }
        None if tls.require_client_certificate => return Err(TlsError::ClientCertificateWithoutCa),
        None => builder.with_no_client_auth(),
    };
    // Envoy picks among several certificates by key type and SNI; meshsim serves the first.
    let pair = tls
        .common
        .certificates
        .first()
        .ok_or(TlsError::NoCertificate)?;
    let (certs, key) = chain(pair)?;
    let mut config = builder.with_single_cert(certs, key)?;
    // Without `alpn_protocols` Envoy negotiates no ALPN, so clients speak HTTP/1.1 (curl does).
    config.alpn_protocols = tls
        .common
        .alpn_protocols
        .iter()
        .map(|p| p.as_bytes().to_vec())
        .collect();
    Ok(config)
}

/// What a listener serves HTTP on: the plain socket, or TLS over it.
pub enum DownstreamStream {
    Plain(TcpStream),
    /// Boxed: a handshake in progress holds the whole rustls state machine.
    Handshaking(Box<(Accept<TcpStream>, SslStats)>),
    Tls(Box<TlsStream<TcpStream>>),
    /// The handshake failed; every further operation fails too.
    Failed,
}

impl DownstreamStream {
    /// Drives the handshake; `Ready(Ok)` once the stream is usable.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let DownstreamStream::Handshaking(handshake) = self {
            let (accept, stats) = &mut **handshake;
            match ready!(Pin::new(accept).poll(cx)) {
                Ok(stream) => {
                    stats.completed(stream.get_ref().1);
                    *self = DownstreamStream::Tls(Box::new(stream));
                }
                Err(error) => {
                    stats.failed(&error);
                    tracing::debug!(%error, "downstream TLS handshake failed");
                    *self = DownstreamStream::Failed;
                    return Poll::Ready(Err(error));
                }
            }
        }
        match self {
            DownstreamStream::Failed => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "TLS handshake failed",
            ))),
            _ => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncRead for DownstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_ready(cx))?;
        match this {
            DownstreamStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            DownstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            _ => unreachable!("poll_ready leaves a usable stream"),
        }
    }
}

impl AsyncWrite for DownstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_ready(cx))?;
        match this {
            DownstreamStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            DownstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            _ => unreachable!("poll_ready leaves a usable stream"),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_ready(cx))?;
        match this {
            DownstreamStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            DownstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            _ => unreachable!("poll_ready leaves a usable stream"),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            DownstreamStream::Plain(s) => s.is_write_vectored(),
            DownstreamStream::Tls(s) => s.is_write_vectored(),
            _ => false,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_ready(cx))?;
        match this {
            DownstreamStream::Plain(s) => Pin::new(s).poll_flush(cx),
            DownstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            _ => unreachable!("poll_ready leaves a usable stream"),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this {
            DownstreamStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            DownstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            // Closing before (or after a failed) handshake: nothing to flush.
            _ => Poll::Ready(Ok(())),
        }
    }
}

//! `--tls-cert/--tls-key`: the app serves HTTPS instead of plain HTTP, offering `h2` and
//! `http/1.1` by ALPN (a proxy with an `UpstreamTlsContext` reaches it as Envoy would reach an
//! HTTPS backend). The handshake's SNI and ALPN go into each request's extensions
//! ([`TlsInfo`]), so `/echo` can show what the client sent.
//!
//! A plain-HTTP request on the TLS port gets a plain-HTTP 400 saying so (nginx does the same),
//! which also keeps the supervisor's "does it answer?" probe working.

use std::io;
use std::path::Path;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::ServiceError;

/// What the TLS handshake of the request's connection said.
#[derive(Debug, Clone, Default)]
pub struct TlsInfo {
    pub sni: Option<String>,
    pub alpn: Option<String>,
}

/// The server config from a PEM certificate chain and key.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, ServiceError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| {
            ServiceError::InvalidArgument(format!("cannot read {}: {e}", path.display()))
        })
    };
    let bad = |path: &Path, e: &dyn std::fmt::Display| {
        ServiceError::InvalidArgument(format!("{}: {e}", path.display()))
    };
    let cert_pem = read(cert)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(cert, &e))?;
    if certs.is_empty() {
        return Err(bad(cert, &"no PEM certificate"));
    }
    let key_der = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|e| bad(key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(cert, &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| bad(key, &e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The handshake, or `None` when the client spoke something else (answered here) or failed.
pub async fn accept(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
) -> Option<(TlsStream<TcpStream>, TlsInfo)> {
    let mut first = [0u8; 1];
    // A TLS connection opens with a handshake record (content type 22).
    match stream.peek(&mut first).await {
        Ok(1) if first[0] == 0x16 => {}
        Ok(1) => {
            let _ = plain_http_refused(stream).await;
            return None;
        }
        _ => return None,
    }
    let tls = acceptor.accept(stream).await.ok()?;
    let (_, conn) = tls.get_ref();
    let info = TlsInfo {
        sni: conn.server_name().map(str::to_owned),
        alpn: conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
    };
    Some((tls, info))
}

async fn plain_http_refused(mut stream: TcpStream) -> io::Result<()> {
    let body = "400 Bad Request: a plain HTTP request was sent to this HTTPS port\n";
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

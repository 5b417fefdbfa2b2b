//! Serving one downstream connection. HTTP/1.1 requests of the common shape (no body, no
//! upgrade, no `Expect`) are read and answered by our own fast path ([`http1`]); anything
//! else — HTTP/2 (h2c prior knowledge, or ALPN over TLS), a request with a body, an upgrade,
//! a head the fast path will not parse — is hyper's: the fast path stops at that request's
//! boundary and hands hyper the connection with what it has read of it ([`prefixed`]).
//!
//! Why: hyper's server spent about a quarter of the proxy's instructions on each HTTP/1.1
//! request (its dispatcher, a boxed service future copied whole, its I/O wrappers), and the
//! smuggling checker re-scanned every head hyper then parsed again. The fast path parses a
//! head once, runs the HCM's future in place, and writes the head and a ready body in one
//! system call. What it writes follows hyper's rules ([`response`]), so a client cannot tell
//! which of the two answered.

mod http1;
mod prefixed;
mod request;
mod response;

use std::convert::Infallible;
use std::pin::pin;
use std::sync::atomic::AtomicU8;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::config::model::CodecType;
use crate::proxy::body;
use crate::proxy::hardening::framing::Framed;
use crate::proxy::hardening::watchdog::{ConnWatch, StreamGuard};
use crate::proxy::hcm::{ConnInfo, HttpConnectionManager};

use prefixed::Prefixed;

/// How a connection failed: hyper's error, an I/O error, or [`HeaderTimeout`].
pub type ConnError = Box<dyn std::error::Error + Send + Sync>;

/// A request head did not complete within `request_headers_timeout` of its first byte.
#[derive(Debug, thiserror::Error)]
#[error("request headers not complete within request_headers_timeout")]
pub struct HeaderTimeout;

/// Everything serving one connection needs from its listener.
pub struct Connection {
    pub hcm: HttpConnectionManager,
    pub info: ConnInfo,
    pub watch: Arc<ConnWatch>,
    /// Which protocol the connection speaks, noted at its first request for the stats.
    pub protocol: Arc<AtomicU8>,
    /// The listener's drain signal (true once draining).
    pub drain: watch::Receiver<bool>,
    /// hyper, configured by the listener, for what the fast path hands over.
    pub hyper: Arc<auto::Builder<TokioExecutor>>,
    pub codec: CodecType,
    /// Headers per request (`max_headers_count`).
    pub max_headers: usize,
    /// The longest request head (`max_request_headers_kb`).
    pub max_head_bytes: usize,
    pub headers_timeout: Option<Duration>,
}

impl Connection {
    /// Serves the connection until it closes.
    pub async fn serve<IO>(self, mut io: IO) -> Result<(), ConnError>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut buf = BytesMut::new();
        if self.codec != CodecType::Http2 {
            match http1::serve(&self, &mut io, &mut buf).await? {
                http1::Served::Closed => return Ok(()),
                http1::Served::HandOver => {}
            }
        }
        self.serve_with_hyper(Prefixed::new(buf, io)).await
    }

    /// hyper serves the rest of the connection. HTTP/1 request framing is checked before
    /// hyper parses it (ambiguous lengths, see [`Framed`]); on the drain signal hyper finishes
    /// what is in flight and closes.
    async fn serve_with_hyper<IO>(self, io: IO) -> Result<(), ConnError>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (hcm, info, seen, watch) = (
            self.hcm.clone(),
            self.info,
            self.protocol.clone(),
            self.watch.clone(),
        );
        let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let hcm = hcm.clone();
            crate::proxy::listener::note_protocol(&seen, req.version(), hcm.stats());
            // Dropped unanswered when the client resets the stream (hyper drops this future,
            // and with it the upstream request): that is what the reset guard counts.
            let stream = StreamGuard::new(watch.clone());
            // Boxed: the request's future is several kilobytes, and on HTTP/2 hyper moves
            // it whole into a task of its own (copied about five times on the way); a box
            // moves as a pointer. h2c +7 % requests/s, HTTP/1.1 unchanged (README).
            Box::pin(async move {
                let response = hcm.handle(req.map(body::boxed), info).await;
                stream.answered();
                Ok::<_, Infallible>(response)
            })
        });
        let mut connection = pin!(self
            .hyper
            .serve_connection_with_upgrades(TokioIo::new(Framed::new(io)), service));
        let mut drain = self.drain.clone();
        let mut drained = pin!(drain.wait_for(|draining| *draining));
        let mut draining = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => return result,
                _ = drained.as_mut(), if !draining => {
                    draining = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

//! Serving one downstream connection. HTTP/1.1 requests of the common shape (no body, no
//! upgrade, no `Expect`) are read and answered by our own fast path ([`http1`]); any other
//! HTTP/1 request — one with a body, an upgrade, a head the fast path will not parse — is
//! hyper's: the fast path stops at that request's boundary and hands hyper the connection
//! with what it has read of it ([`prefixed`]). A connection that opens with the HTTP/2
//! preface (h2c prior knowledge, or h2 over TLS) is served by our HTTP/2 server ([`http2`],
//! on the codec in [`crate::proxy::http2_wire`]).
//!
//! Why: hyper's server spent about a quarter of the proxy's instructions on each HTTP/1.1
//! request (its dispatcher, a boxed service future copied whole, its I/O wrappers), and the
//! smuggling checker re-scanned every head hyper then parsed again. The fast path parses a
//! head once, runs the HCM's future in place, and writes the head and a ready body in one
//! system call. What it writes follows hyper's rules ([`response`]), so a client cannot tell
//! which of the two answered.

mod http1;
pub mod http2;
mod prefixed;
mod request;
mod response;

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::AtomicU8;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use hyper::server::conn::http1 as hyper_http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::config::model::CodecType;
use crate::proxy::body;
use crate::proxy::hardening::framing::Framed;
use crate::proxy::hardening::watchdog::{ConnWatch, StreamGuard};
use crate::proxy::hardening::write_stall::WriteStall;
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
    /// hyper, configured by the listener, for the HTTP/1 requests the fast path hands over.
    pub hyper: Arc<hyper_http1::Builder>,
    pub codec: CodecType,
    /// Headers per request (`max_headers_count`).
    pub max_headers: usize,
    /// The header budget (`max_request_headers_kb`): HTTP/2's header list, and HTTP/1's head
    /// ([`Connection::max_head_bytes`]).
    pub max_header_list_size: u32,
    pub headers_timeout: Option<Duration>,
}

/// The longest HTTP/1 request head for a header budget: the budget, at least hyper's minimum
/// read buffer of 8 KiB.
pub fn http1_head_limit(max_header_list_size: u32) -> usize {
    (max_header_list_size as usize).max(8192)
}

/// The first error of type `T` in `error`'s chain of causes, and the ones after it.
pub fn causes<'e, T: std::error::Error + 'static>(
    error: &'e (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'e T> {
    std::iter::successors(Some(error), |e| e.source()).filter_map(|e| e.downcast_ref::<T>())
}

impl Connection {
    /// The longest HTTP/1 request head the fast path parses; past it, hyper answers 431.
    fn max_head_bytes(&self) -> usize {
        http1_head_limit(self.max_header_list_size)
    }

    /// Ready once the listener drains (at once if it already is).
    fn drained(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut drain = self.drain.clone();
        async move {
            let _ = drain.wait_for(|draining| *draining).await;
        }
    }

    /// Serves the connection until it closes.
    pub async fn serve<IO>(self, io: IO) -> Result<(), ConnError>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // Read once per connection: it bounds both a stalled socket and (HTTP/2) a stalled
        // window.
        let stream_idle_timeout = self.hcm.stream_idle_timeout();
        let mut io = WriteStall::new(
            io,
            stream_idle_timeout,
            self.hcm.stats().downstream_rq_idle_timeout.clone(),
        );
        let mut buf = BytesMut::new();
        if self.codec != CodecType::Http2 {
            match http1::serve(&self, &mut io, &mut buf).await? {
                http1::Served::Closed => return Ok(()),
                http1::Served::HandOver => {}
            }
            if self.codec == CodecType::Http1 {
                return self.serve_with_hyper(Prefixed::new(buf, io)).await;
            }
            match self.opening(&mut io, &mut buf).await? {
                Opening::Http2 => {}
                Opening::Http1 => return self.serve_with_hyper(Prefixed::new(buf, io)).await,
                Opening::Closed => return Ok(()),
            }
        }
        http2::serve(&self, Prefixed::new(buf, io), stream_idle_timeout).await
    }

    /// hyper serves the rest of an HTTP/1 connection. Request framing is checked before hyper
    /// parses it (ambiguous lengths, see [`Framed`]); on the drain signal hyper finishes what
    /// is in flight and closes.
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
            // Boxed: the request's future is several kilobytes; a box moves as a pointer.
            Box::pin(async move {
                let response = hcm.handle(req.map(body::boxed), info).await;
                stream.answered();
                Ok::<_, Infallible>(response)
            })
        });
        let mut connection = pin!(self
            .hyper
            .serve_connection(TokioIo::new(Framed::new(io)), service)
            .with_upgrades());
        let mut drained = pin!(self.drained());
        let mut draining = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => return result.map_err(Into::into),
                _ = drained.as_mut(), if !draining => {
                    draining = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// The client connection preface every HTTP/2 connection opens with (RFC 9113 §3.4).
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What the bytes the fast path handed over open.
enum Opening {
    Http2,
    Http1,
    /// The client went away, or the listener drained, before the bytes decided it.
    Closed,
}

impl Connection {
    /// Whether what the fast path handed over is the HTTP/2 preface, reading until the bytes
    /// decide it (or the listener drains: a client stalled inside a preface is idle).
    async fn opening<IO>(&self, io: &mut IO, buf: &mut BytesMut) -> std::io::Result<Opening>
    where
        IO: AsyncRead + Unpin,
    {
        use tokio::io::AsyncReadExt;
        let mut drained = pin!(self.drained());
        while buf.len() < HTTP2_PREFACE.len() && HTTP2_PREFACE.starts_with(buf) {
            tokio::select! {
                read = io.read_buf(buf) => if read? == 0 {
                    return Ok(Opening::Closed);
                },
                _ = drained.as_mut() => return Ok(Opening::Closed),
            }
        }
        Ok(if buf.starts_with(HTTP2_PREFACE) {
            Opening::Http2
        } else {
            Opening::Http1
        })
    }
}

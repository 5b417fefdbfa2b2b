//! Opens upstream TCP connections for a cluster's pool: applies `connect_timeout`, and keeps the
//! connection counters Envoy keeps, per cluster and per host, for the whole connection lifetime.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::proxy::cluster::{ClusterCore, Host};

/// Why a connection could not be opened. Carried through hyper's error chain so the router can
/// tell a timeout from a refusal (they get different access-log details and stats).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connection timeout")]
    Timeout,
    #[error("connection failure: {0}")]
    Io(#[from] io::Error),
    #[error("upstream URI has no IP address: {0}")]
    BadUri(Uri),
}

#[derive(Clone)]
pub struct Connector {
    core: Arc<ClusterCore>,
    http2: bool,
}

impl Connector {
    pub fn new(core: Arc<ClusterCore>, http2: bool) -> Self {
        Connector { core, http2 }
    }

    fn host(&self, addr: SocketAddr) -> Option<Arc<Host>> {
        self.core
            .hosts
            .load()
            .hosts
            .iter()
            .find(|h| h.address == addr)
            .cloned()
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = Tracked;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Tracked, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let addr: SocketAddr = uri
                .authority()
                .and_then(|a| a.as_str().parse().ok())
                .ok_or_else(|| ConnectError::BadUri(uri.clone()))?;
            let host = this.host(addr);
            let stats = &this.core.stats;
            let started = Instant::now();
            let timeout = this.core.config.connect_timeout;
            let result = tokio::time::timeout(timeout, TcpStream::connect(addr)).await;
            let fail = |e: ConnectError| {
                stats.upstream_cx_connect_fail.inc();
                if let Some(h) = &host {
                    h.stats.cx_connect_fail.fetch_add(1, Ordering::Relaxed);
                }
                e
            };
            let stream = match result {
                Err(_) => {
                    stats.upstream_cx_connect_timeout.inc();
                    return Err(fail(ConnectError::Timeout));
                }
                Ok(Err(e)) => return Err(fail(ConnectError::Io(e))),
                Ok(Ok(s)) => s,
            };
            let _ = stream.set_nodelay(true);
            stats
                .upstream_cx_connect_ms
                .record(started.elapsed().as_millis() as u64);
            stats.upstream_cx_total.inc();
            if this.http2 {
                stats.upstream_cx_http2_total.inc();
            } else {
                stats.upstream_cx_http1_total.inc();
            }
            stats.upstream_cx_active.inc();
            if let Some(h) = &host {
                h.stats.cx_total.fetch_add(1, Ordering::Relaxed);
                h.stats.cx_active.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Tracked {
                io: TokioIo::new(stream),
                guard: ConnectionGuard {
                    core: this.core.clone(),
                    host,
                    opened: Instant::now(),
                },
                http2: this.http2,
            })
        })
    }
}

/// Balances the connection gauges when hyper's pool drops the connection.
struct ConnectionGuard {
    core: Arc<ClusterCore>,
    host: Option<Arc<Host>>,
    opened: Instant,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let stats = &self.core.stats;
        stats.upstream_cx_active.dec();
        stats.upstream_cx_destroy.inc();
        stats
            .upstream_cx_length_ms
            .record(self.opened.elapsed().as_millis() as u64);
        if let Some(h) = &self.host {
            h.stats.cx_active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

pin_project_lite::pin_project! {
    /// An upstream connection that updates the counters when it closes.
    pub struct Tracked {
        #[pin]
        io: TokioIo<TcpStream>,
        guard: ConnectionGuard,
        http2: bool,
    }
}

impl Connection for Tracked {
    fn connected(&self) -> Connected {
        let connected = Connected::new();
        if self.http2 {
            connected.negotiated_h2()
        } else {
            connected
        }
    }
}

impl Read for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().io.poll_read(cx, buf)
    }
}

impl Write for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write_vectored(cx, bufs)
    }
}

//! Opens upstream TCP connections for a host's pool: applies `connect_timeout` (which, as in
//! Envoy, covers the TLS handshake of a cluster with an `UpstreamTlsContext`), and keeps the
//! connection counters Envoy keeps, per cluster and per host, for the whole connection lifetime.

use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::proxy::cluster::{ClusterCore, Host};
use crate::proxy::tls::client::UpstreamStream;

/// Why a connection could not be opened. Carried through hyper's error chain so the router can
/// tell a timeout from a refusal (they get different access-log details and stats).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connection timeout")]
    Timeout,
    #[error("connection failure: {0}")]
    Io(#[from] io::Error),
    /// The TCP connection opened but the TLS handshake failed (Envoy: "transport failure").
    #[error("TLS handshake: {0}")]
    Tls(io::Error),
}

/// Opens a TCP connection to `host` under the cluster's `connect_timeout`, counting it as
/// Envoy does; the returned stream keeps the gauges up until it closes. The caller has taken a
/// circuit-breaker connection slot: a failed attempt gives it back here, an open connection
/// when it closes.
pub async fn connect(
    core: &Arc<ClusterCore>,
    host: &Arc<Host>,
    http2: bool,
) -> Result<Tracked, ConnectError> {
    let stats = &core.stats;
    let started = Instant::now();
    let result = tokio::time::timeout(core.config.connect_timeout, async {
        let tcp = TcpStream::connect(host.address)
            .await
            .map_err(ConnectError::Io)?;
        let _ = tcp.set_nodelay(true);
        match &core.tls {
            None => Ok(UpstreamStream::Plain(tcp)),
            Some(tls) => tls
                .handshake(tcp, host.address.ip(), http2)
                .await
                .map_err(ConnectError::Tls),
        }
    })
    .await;
    let fail = |e: ConnectError| {
        core.breakers.connection_closed();
        stats.upstream_cx_connect_fail.inc();
        host.stats.cx_connect_fail.fetch_add(1, Ordering::Relaxed);
        e
    };
    let stream = match result {
        Err(_) => {
            stats.upstream_cx_connect_timeout.inc();
            return Err(fail(ConnectError::Timeout));
        }
        Ok(Err(e)) => return Err(fail(e)),
        Ok(Ok(s)) => s,
    };
    stats
        .upstream_cx_connect_ms
        .record(started.elapsed().as_millis() as u64);
    stats.upstream_cx_total.inc();
    if http2 {
        stats.upstream_cx_http2_total.inc();
    } else {
        stats.upstream_cx_http1_total.inc();
    }
    stats.upstream_cx_active.inc();
    host.stats.cx_total.fetch_add(1, Ordering::Relaxed);
    host.stats.cx_active.fetch_add(1, Ordering::Relaxed);
    Ok(Tracked {
        io: stream,
        guard: ConnectionGuard {
            core: Arc::downgrade(core),
            host: Arc::downgrade(host),
            opened: Instant::now(),
        },
    })
}

/// Balances the connection gauges when the connection closes. It holds weak references: the
/// host owns its pooled connections, so a strong one would keep a removed host (and its open
/// socket) alive forever.
struct ConnectionGuard {
    core: Weak<ClusterCore>,
    host: Weak<Host>,
    opened: Instant,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if let Some(core) = self.core.upgrade() {
            core.breakers.connection_closed();
            let stats = &core.stats;
            stats.upstream_cx_active.dec();
            stats.upstream_cx_destroy.inc();
            stats
                .upstream_cx_length_ms
                .record(self.opened.elapsed().as_millis() as u64);
        }
        if let Some(h) = self.host.upgrade() {
            h.stats.cx_active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

pin_project_lite::pin_project! {
    /// An upstream connection that updates the counters when it closes.
    pub struct Tracked {
        #[pin]
        io: UpstreamStream,
        guard: ConnectionGuard,
    }
}

impl Tracked {
    /// Whether the peer has sent something while nobody asked, which on an idle HTTP/1.1
    /// connection means it was closed (or broken: bytes nobody asked for). Pending (nothing
    /// there) registers `cx`'s waker, to be told when that changes.
    pub fn poll_idle_ended(&mut self, cx: &mut Context<'_>) -> bool {
        // A TLS stream may read a record that carries no data (a TLS 1.3 session ticket) and
        // then report Pending: that connection is still open.
        let mut scratch = [0u8; 1];
        let mut buf = ReadBuf::new(&mut scratch);
        !Pin::new(&mut self.io).poll_read(cx, &mut buf).is_pending()
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().io.poll_read(cx, buf)
    }
}

impl AsyncWrite for Tracked {
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

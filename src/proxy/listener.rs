//! A listener: accepts TCP connections and serves HTTP/1.1 and h2c (prior knowledge) on the same
//! port through its HTTP connection manager, until told to drain. How one connection is served
//! is [`crate::proxy::downstream`]'s.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1 as hyper_http1;
use hyper_util::rt::TokioTimer;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::model::CodecType;
use crate::proxy::downstream::http2::ProtocolError;
use crate::proxy::downstream::{causes, http1_head_limit, Connection, HeaderTimeout};
use crate::proxy::hardening::watchdog::{supervise, ConnWatch, Ending};
use crate::proxy::hcm::{ConnInfo, HcmStats, HttpConnectionManager};
use crate::proxy::stats::{Counter, Gauge, Histogram, Store};

/// `listener.<addr>.` stats.
pub struct ListenerStats {
    pub downstream_cx_total: Counter,
    pub downstream_cx_destroy: Counter,
    pub downstream_cx_active: Gauge,
    pub downstream_cx_length_ms: Histogram,
}

impl ListenerStats {
    pub fn new(store: &Store, stat_addr: &str) -> Self {
        let p = format!("listener.{stat_addr}.");
        ListenerStats {
            downstream_cx_total: store.counter(&format!("{p}downstream_cx_total")),
            downstream_cx_destroy: store.counter(&format!("{p}downstream_cx_destroy")),
            downstream_cx_active: store.gauge(&format!("{p}downstream_cx_active")),
            downstream_cx_length_ms: store.histogram(&format!("{p}downstream_cx_length_ms")),
        }
    }
}

pub struct Listener {
    pub name: String,
    pub socket: TcpListener,
    pub local_addr: SocketAddr,
    pub codec: CodecType,
    pub hcm: HttpConnectionManager,
    pub stats: ListenerStats,
    pub max_headers: usize,
    pub max_header_list_size: u32,
    /// HCM `request_headers_timeout`, or the hardening default when unset
    /// ([`hardening::DEFAULT_REQUEST_HEADERS_TIMEOUT`]); bounds every HTTP/1 request head and
    /// the wait for a connection's first request.
    pub request_headers_timeout: Option<std::time::Duration>,
    /// `common_http_protocol_options.idle_timeout`: a connection without a request this long
    /// is closed.
    pub idle_timeout: Option<std::time::Duration>,
    /// The filter chain's `DownstreamTlsContext`: connections are TLS, handshaken on first read.
    pub tls: Option<crate::proxy::tls::server::Acceptor>,
}

/// Which protocol a connection turned out to speak, learned from its first request, so the
/// `downstream_cx_http1/2_active` gauges can be balanced when it closes.
const PROTO_UNKNOWN: u8 = 0;
const PROTO_HTTP1: u8 = 1;
const PROTO_HTTP2: u8 = 2;

impl Listener {
    /// Accepts until `drain` flips to true, then lets open connections finish their in-flight
    /// requests for up to `drain_time` (Envoy's drain), then closes them.
    pub async fn serve(self, mut drain: watch::Receiver<bool>, drain_time: Duration) {
        let hyper = Arc::new(self.hyper_builder());
        let listener = Arc::new(self);
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let (stream, remote) = tokio::select! {
                accepted = listener.socket.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(listener = %listener.name, %error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = drain.changed() => break,
            };
            let _ = stream.set_nodelay(true);
            let stream = match &listener.tls {
                Some(tls) => tls.accept(stream),
                None => crate::proxy::tls::server::DownstreamStream::Plain(stream),
            };
            let opened = Instant::now();
            listener.stats.downstream_cx_total.inc();
            listener.stats.downstream_cx_active.inc();
            let hcm_stats = listener.hcm.stats();
            hcm_stats.downstream_cx_total.inc();
            hcm_stats.downstream_cx_active.inc();
            let protocol = Arc::new(AtomicU8::new(PROTO_UNKNOWN));
            let watch = ConnWatch::new();
            let connection = Connection {
                hcm: listener.hcm.clone(),
                info: ConnInfo {
                    remote,
                    local: listener.local_addr,
                    tls: listener.tls.is_some(),
                },
                watch: watch.clone(),
                protocol: protocol.clone(),
                drain: drain.clone(),
                hyper: hyper.clone(),
                codec: listener.codec,
                max_headers: listener.max_headers,
                max_header_list_size: listener.max_header_list_size,
                headers_timeout: listener.request_headers_timeout,
            };
            let guard = ConnectionGuard {
                listener: listener.clone(),
                opened,
                protocol,
            };
            let headers_timeout = listener.request_headers_timeout;
            let idle_timeout = listener.idle_timeout;
            connections.spawn(async move {
                let stats = guard.listener.hcm.stats();
                let served = connection.serve(stream);
                match supervise(served, &watch, headers_timeout, idle_timeout).await {
                    Ending::Finished(Ok(())) => {}
                    Ending::Finished(Err(error)) => {
                        if is_header_timeout(error.as_ref()) {
                            stats.downstream_rq_header_timeout.inc();
                        } else if is_protocol_error(error.as_ref()) {
                            stats.downstream_cx_protocol_error.inc();
                        }
                        tracing::debug!(%remote, %error, "downstream connection error");
                    }
                    Ending::HeadersTimeout => {
                        stats.downstream_rq_header_timeout.inc();
                        tracing::debug!(%remote, "no request head within request_headers_timeout");
                    }
                    Ending::IdleTimeout => {
                        stats.downstream_cx_idle_timeout.inc();
                        tracing::debug!(%remote, "closing an idle connection (idle_timeout)");
                    }
                    Ending::TooManyPrematureResets => {
                        stats.downstream_rq_too_many_premature_resets.inc();
                        tracing::info!(%remote, "closing a connection that reset too many streams early");
                    }
                }
                drop(guard);
            });
            // Reap finished connections so the set holds only live ones.
            while connections.try_join_next().is_some() {}
        }
        drop(listener);
        // Every connection has seen the drain signal: idle ones close, busy ones answer what
        // they have in flight (HTTP/1 with `connection: close`, HTTP/2 with GOAWAY).
        let drained = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(drain_time, drained).await.is_err() {
            tracing::info!("drain time elapsed; closing remaining connections");
            connections.abort_all();
        }
        while connections.join_next().await.is_some() {}
    }

    /// hyper's HTTP/1 server, for the requests the fast path hands over.
    fn hyper_builder(&self) -> hyper_http1::Builder {
        let mut builder = hyper_http1::Builder::new();
        // The header budget (`max_request_headers_kb`, 60 KiB by default) bounds HTTP/1 heads
        // too: hyper answers 431 past it. Both limits: the buffer's alone lets a head through
        // when one read brings all of it into a buffer grown earlier on the connection.
        builder
            .timer(TokioTimer::new())
            .max_headers(self.max_headers)
            .max_buf_size(http1_head_limit(self.max_header_list_size))
            .max_header_size(http1_head_limit(self.max_header_list_size))
            .header_read_timeout(self.request_headers_timeout)
            // One flattened write per response instead of writev(head, body): measured ~6% more
            // requests/s for typical small responses (bench/proxy.sh, interleaved A/B); large
            // bodies pay one memcpy per chunk, cheap next to a syscall.
            .writev(false);
        builder
    }
}

/// Balances the connection stats when a connection ends, however it ends (closed, failed, or
/// aborted after the drain time).
struct ConnectionGuard {
    listener: Arc<Listener>,
    opened: Instant,
    protocol: Arc<AtomicU8>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let stats = &self.listener.stats;
        stats.downstream_cx_active.dec();
        stats.downstream_cx_destroy.inc();
        let length = self.opened.elapsed().as_millis() as u64;
        stats.downstream_cx_length_ms.record(length);
        let hcm_stats = self.listener.hcm.stats();
        hcm_stats.downstream_cx_active.dec();
        hcm_stats.downstream_cx_destroy.inc();
        hcm_stats.downstream_cx_length_ms.record(length);
        match self.protocol.load(Ordering::Relaxed) {
            PROTO_HTTP1 => hcm_stats.downstream_cx_http1_active.dec(),
            PROTO_HTTP2 => hcm_stats.downstream_cx_http2_active.dec(),
            _ => {}
        }
    }
}

/// Envoy counts `downstream_cx_protocol_error` for malformed traffic, not for peers that
/// simply went away: on HTTP/1 a head that does not parse; on HTTP/2 a connection we closed
/// with a GOAWAY naming the client's error. Not a flood cut off with `ENHANCE_YOUR_CALM`,
/// which Envoy counts apart from codec errors.
fn is_protocol_error(error: &(dyn std::error::Error + 'static)) -> bool {
    if hyper_error(error).is_some_and(|h| h.is_parse() || h.is_parse_status()) {
        return true;
    }
    causes::<ProtocolError>(error).next().is_some_and(|e| {
        !matches!(
            e.reason,
            h2::Reason::NO_ERROR | h2::Reason::ENHANCE_YOUR_CALM
        )
    })
}

/// A request head took longer than `request_headers_timeout` (the fast path's timer, or
/// hyper's `header_read_timeout`).
fn is_header_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    error.is::<HeaderTimeout>() || hyper_error(error).is_some_and(hyper::Error::is_timeout)
}

fn hyper_error<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e hyper::Error> {
    causes::<hyper::Error>(error).next()
}

pub(crate) fn note_protocol(seen: &AtomicU8, version: http::Version, stats: &HcmStats) {
    let proto = if version == http::Version::HTTP_2 {
        PROTO_HTTP2
    } else {
        PROTO_HTTP1
    };
    if seen
        .compare_exchange(PROTO_UNKNOWN, proto, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
    {
        if proto == PROTO_HTTP2 {
            stats.downstream_cx_http2_total.inc();
            stats.downstream_cx_http2_active.inc();
        } else {
            stats.downstream_cx_http1_total.inc();
            stats.downstream_cx_http1_active.inc();
        }
    }
}

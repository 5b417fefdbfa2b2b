//! One request/response exchange from the HCM's point of view: what happened so far, and the
//! bookkeeping done exactly once when the response stream ends (completion stats, upstream
//! gauges, the access log line).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::{HeaderMap, Method, Response, Version};

use crate::proxy::access_log::{Protocol, ResponseFlags, StreamInfo};
use crate::proxy::body::{Body, EndOfStream, Observed};
use crate::proxy::cluster::{ClusterCore, Host};

use super::Shared;

/// The downstream connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    pub local: SocketAddr,
    pub tls: bool,
}

/// The upstream attempt in flight, whose gauges must be balanced when the response ends.
pub struct UpstreamLeg {
    pub cluster: Arc<ClusterCore>,
    pub host: Arc<Host>,
    pub started: Instant,
    pub internal: bool,
}

/// Finished exactly once, when dropped: after the response body ended (via [`Exchange::respond`])
/// or because the request was cancelled before any response (the client went away, an HTTP/2
/// RST_STREAM). Either way every gauge it raised is lowered and the access log gets its line.
pub struct Exchange {
    pub shared: Arc<Shared>,
    pub start: Instant,
    /// Wall-clock start, read only when an access log will print it.
    pub start_time: Option<SystemTime>,
    pub conn: ConnInfo,
    pub method: Method,
    pub version: Version,
    /// The request URI as received (a cheap clone: it shares its bytes).
    pub uri: http::Uri,
    /// The request's authority, kept only when an access log will print it.
    pub authority: Option<String>,
    /// Request headers after the HCM's edits; kept only when an access log needs them.
    pub request_headers: Option<HeaderMap>,
    pub original_path: Option<String>,
    pub route_name: Option<String>,
    pub cluster_name: Option<String>,
    pub upstream_host: Option<SocketAddr>,
    pub response_flags: ResponseFlags,
    pub response_code_details: &'static str,
    pub bytes_received: Option<Arc<AtomicU64>>,
    pub upstream: Option<UpstreamLeg>,
    /// Start to first upstream response byte.
    pub response_duration: Option<std::time::Duration>,
    /// Upstream requests sent for this one: 1 plus its retries.
    pub attempts: u32,
    /// This request's place under the cluster's `max_requests`, held until it finishes.
    pub request_slot: Option<crate::proxy::cluster::circuit_breaker::RequestSlot>,
    /// Set by `respond`; None at drop time means the request was cancelled unanswered.
    response: Option<ResponseFacts>,
}

struct ResponseFacts {
    code: u16,
    headers: Option<HeaderMap>,
    bytes_sent: Option<Arc<AtomicU64>>,
}

impl Exchange {
    /// `:path` as received (path and query).
    pub fn path(&self) -> &str {
        self.uri.path_and_query().map_or("/", |p| p.as_str())
    }

    /// Whether an access log will consume this exchange's details.
    pub fn logged(&self) -> bool {
        !self.shared.access_logs.is_empty()
    }

    pub fn new(
        shared: Arc<Shared>,
        conn: ConnInfo,
        parts: &http::request::Parts,
        authority: Option<&str>,
        bytes_received: Option<Arc<AtomicU64>>,
    ) -> Self {
        let logged = !shared.access_logs.is_empty();
        Exchange {
            request_headers: logged.then(|| parts.headers.clone()),
            shared,
            start: Instant::now(),
            start_time: logged.then(SystemTime::now),
            conn,
            method: parts.method.clone(),
            version: parts.version,
            uri: parts.uri.clone(),
            authority: logged.then(|| authority.map(str::to_string)).flatten(),
            original_path: None,
            route_name: None,
            cluster_name: None,
            upstream_host: None,
            response_flags: ResponseFlags::empty(),
            response_code_details: "via_upstream",
            bytes_received,
            upstream: None,
            response_duration: None,
            attempts: 0,
            request_slot: None,
            response: None,
        }
    }

    /// Hands the response out, counting its class now and finishing the exchange when its body
    /// ends (or is dropped because the client went away).
    pub fn respond(mut self, response: Response<Body>) -> Response<Body> {
        let code = response.status().as_u16();
        self.shared.stats.record_response_class(code);
        let logged = self.logged();
        let bytes_sent = logged.then(|| Arc::new(AtomicU64::new(0)));
        self.response = Some(ResponseFacts {
            code,
            headers: logged.then(|| response.headers().clone()),
            bytes_sent: bytes_sent.clone(),
        });
        let (parts, body) = response.into_parts();
        let on_end = move |end: EndOfStream| {
            match end {
                EndOfStream::Complete => {}
                EndOfStream::Abandoned => {
                    self.response_flags
                        .insert(ResponseFlags::DOWNSTREAM_CONNECTION_TERMINATION);
                }
                EndOfStream::Error => {
                    self.response_flags
                        .insert(ResponseFlags::UPSTREAM_CONNECTION_TERMINATION);
                }
            }
            drop(self);
        };
        Response::from_parts(
            parts,
            crate::proxy::body::boxed(Observed::new(body, bytes_sent, Some(on_end))),
        )
    }

    fn finish(&mut self) {
        let now = Instant::now();
        let duration = now.duration_since(self.start);
        let answered = self.response.is_some();
        if let Some(leg) = &self.upstream {
            let stats = &leg.cluster.stats;
            if answered {
                if self.shared.dynamic_stats {
                    let upstream_time = now.duration_since(leg.started);
                    stats.record_completed(leg.internal, upstream_time.as_millis() as u64);
                }
            } else {
                // The downstream went away before the upstream answered: Envoy resets the
                // upstream request locally.
                stats.upstream_rq_tx_reset.inc();
            }
            stats.upstream_rq_active.dec();
            leg.host.stats.rq_active.fetch_sub(1, Ordering::Relaxed);
        }
        let stats = &self.shared.stats;
        if answered {
            stats.downstream_rq_completed.inc();
            stats.listener.downstream_rq_completed.inc();
        } else {
            stats.downstream_rq_rx_reset.inc();
            self.response_flags
                .insert(ResponseFlags::DOWNSTREAM_CONNECTION_TERMINATION);
        }
        stats.downstream_rq_time.record(duration.as_millis() as u64);
        stats.downstream_rq_active.dec();

        if !self.logged() {
            return;
        }
        let (code, response_headers, bytes_sent) = match self.response.take() {
            Some(r) => (
                Some(r.code),
                r.headers,
                r.bytes_sent.map_or(0, |b| b.load(Ordering::Relaxed)),
            ),
            None => (None, None, 0),
        };
        let info = StreamInfo {
            start_time: self.start_time.unwrap_or_else(SystemTime::now),
            protocol: match self.version {
                Version::HTTP_10 => Protocol::Http10,
                Version::HTTP_2 => Protocol::Http2,
                _ => Protocol::Http11,
            },
            request_headers: self.request_headers.take().unwrap_or_default(),
            method: self.method.clone(),
            path: self.path().to_string(),
            authority: self.authority.take(),
            scheme: Some(if self.conn.tls { "https" } else { "http" }.to_string()),
            original_path: self.original_path.take(),
            response_headers,
            response_trailers: None,
            response_code: code,
            response_code_details: Some(self.response_code_details.to_string()),
            response_flags: self.response_flags,
            bytes_received: self
                .bytes_received
                .as_ref()
                .map_or(0, |b| b.load(Ordering::Relaxed)),
            bytes_sent,
            duration: Some(duration),
            request_duration: None,
            response_duration: self.response_duration,
            upstream_host: self.upstream_host,
            upstream_cluster: self.cluster_name.take(),
            upstream_local_address: None,
            upstream_request_attempt_count: (self.attempts > 0).then_some(self.attempts),
            downstream_remote_address: Some(self.conn.remote),
            downstream_local_address: Some(self.conn.local),
            route_name: self.route_name.take(),
            requested_server_name: None,
        };
        for logger in &self.shared.access_logs {
            logger.log(&info);
        }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.finish();
    }
}

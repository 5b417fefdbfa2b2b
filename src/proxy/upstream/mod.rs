//! Sending a request to one upstream host: kept-alive HTTP/1.1 connections per host by default
//! (our own client, [`http1`]), one multiplexed HTTP/2 (h2c) connection per host when the
//! cluster asks for HTTP/2 (hyper's).
//!
//! The pool is our own (see [`pool`]) rather than hyper-util's legacy client for two reasons:
//! that client keys its pool on the URI authority, so an HTTP/2 request could not carry the
//! `:authority` the client sent (it would carry the upstream's IP); and its pool keeps every
//! host's connections under one mutex, held also while it expires idle ones and queues waiters.
//! Ours keeps each host's idle connections apart, locked for one push or pop only.

mod connector;
pub mod http1;
mod idle;
pub mod pool;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::HOST;
use http::{Request, Response, Uri, Version};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use crate::config::model::UpstreamProtocol;
use crate::proxy::body::{Body, BoxError};
use crate::proxy::cluster::circuit_breaker::PendingSlot;
use crate::proxy::cluster::{ClusterCore, Host};
use crate::proxy::turn_end::turn_end_if_one_worker;

pub use connector::ConnectError;
use http1::{Http1Body, Http1Connection};
pub use pool::HostConnections;
use pool::{Http2Connection, Http2Stream};

/// Why an upstream request produced no response. The variants map to Envoy's response flags
/// (UF for connect failures, UC for resets) and local-reply bodies.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("connection timeout")]
    ConnectTimeout,
    #[error("connection failure: {0}")]
    ConnectFailure(String),
    #[error("connection termination: {0}")]
    Reset(String),
    /// A circuit breaker is open: too many connections and pending requests.
    #[error("overflow")]
    Overflow,
}

impl UpstreamError {
    /// Envoy's wording after "reset reason: ".
    pub fn reset_reason(&self) -> &'static str {
        match self {
            UpstreamError::ConnectTimeout => "connection timeout",
            UpstreamError::ConnectFailure(_) => "connection failure",
            UpstreamError::Reset(_) => "connection termination",
            UpstreamError::Overflow => "overflow",
        }
    }
}

impl From<ConnectError> for UpstreamError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Timeout => UpstreamError::ConnectTimeout,
            ConnectError::Io(e) => UpstreamError::ConnectFailure(e.to_string()),
            ConnectError::Tls(e) => UpstreamError::ConnectFailure(format!("TLS handshake: {e}")),
        }
    }
}

fn reset(e: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::Reset(e.to_string())
}

/// A response body from upstream. It holds the request's use of its connection until it ends
/// or is dropped: an HTTP/1.1 connection, which then goes back to the pool; or a stream on the
/// shared HTTP/2 connection.
pub enum UpstreamBody {
    Http1(Http1Body),
    Http2 { body: Incoming, stream: Http2Stream },
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            UpstreamBody::Http1(body) => Pin::new(body).poll_frame(cx),
            UpstreamBody::Http2 { body, .. } => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|f| f.map_err(BoxError::from))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Http1(body) => body.is_end_stream(),
            UpstreamBody::Http2 { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Http1(body) => body.size_hint(),
            UpstreamBody::Http2 { body, .. } => body.size_hint(),
        }
    }
}

pub struct Upstream {
    core: Arc<ClusterCore>,
    protocol: UpstreamProtocol,
}

impl Upstream {
    pub fn new(core: Arc<ClusterCore>) -> Self {
        Upstream {
            protocol: core.config.upstream_protocol,
            core,
        }
    }

    /// Whether a request that arrived with `downstream` goes upstream as HTTP/2.
    pub fn uses_http2(&self, downstream: Version) -> bool {
        match self.protocol {
            UpstreamProtocol::Http1 => false,
            UpstreamProtocol::Http2 => true,
            UpstreamProtocol::UseDownstream => downstream == Version::HTTP_2,
        }
    }

    /// Sends `req` (whose URI holds only path and query, with the `Host` header set) to `host`.
    /// The response body holds the connection (or HTTP/2 stream) until it ends.
    pub async fn send(
        &self,
        host: &Arc<Host>,
        http2: bool,
        req: Request<Body>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        if http2 {
            self.send_http2(host, req).await
        } else {
            self.send_http1(host, req).await
        }
    }

    async fn send_http1(
        &self,
        host: &Arc<Host>,
        mut req: Request<Body>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        // A request from an HTTP/1.x client goes out with the others read in this turn, so the
        // upstream finds them together when it wakes (see `turn_end`).
        if req.version() < Version::HTTP_2 {
            turn_end_if_one_worker().await;
        }
        *req.version_mut() = Version::HTTP_11;
        loop {
            let (conn, reused) = match host.connections.take_http1() {
                Some(idle) => (idle, true),
                // Connecting is boxed (here and for HTTP/2): its future, with the TLS handshake
                // in it, is large, and it would otherwise be part of every request's future.
                None if self.core.breakers.try_connection() => {
                    let io = Box::pin(connector::connect(&self.core, host, false)).await?;
                    (Http1Connection::new(io), false)
                }
                None => {
                    // At `max_connections`: wait for one to be given back or to close, as one
                    // of at most `max_pending_requests` (the route timeout bounds the wait).
                    let _pending = PendingSlot::take(&self.core).ok_or(UpstreamError::Overflow)?;
                    let freed = self.core.breakers.connection_freed.notified();
                    match host.connections.take_http1() {
                        Some(idle) => (idle, true),
                        None => {
                            freed.await;
                            continue;
                        }
                    }
                }
            };
            match http1::send(conn, req, &self.core, host).await {
                Ok(response) => return Ok(response.map(UpstreamBody::Http1)),
                // A pooled connection the upstream closed as it was taken refuses the request
                // unsent; sending it on another connection is safe (hyper-util does the same).
                Err(http1::SendError::Unsent(unsent, _)) if reused => req = *unsent,
                Err(e) => return Err(reset(e)),
            }
        }
    }

    async fn send_http2(
        &self,
        host: &Arc<Host>,
        mut req: Request<Body>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        // HTTP/2 carries the host as `:authority`, taken from the absolute URI.
        let authority = req
            .headers_mut()
            .remove(HOST)
            .and_then(|h| h.to_str().ok().map(str::to_string))
            .unwrap_or_else(|| host.address.to_string());
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        *req.uri_mut() = Uri::try_from(format!("http://{authority}{path}"))
            .or_else(|_| Uri::try_from(format!("http://{}{path}", host.address)))
            .map_err(|e| UpstreamError::Reset(e.to_string()))?;
        *req.version_mut() = Version::HTTP_2;
        let shared = match host.connections.http2() {
            Some(conn) => conn,
            None => Box::pin(self.connect_http2(host)).await?,
        };
        let stream = host.connections.start_http2_stream(&self.core, &shared);
        let mut sender = shared.sender.clone();
        sender.ready().await.map_err(reset)?;
        let response = sender.send_request(req).await.map_err(reset)?;
        Ok(response.map(|body| UpstreamBody::Http2 { body, stream }))
    }

    async fn connect_http2(&self, host: &Arc<Host>) -> Result<Arc<Http2Connection>, UpstreamError> {
        let _one_at_a_time = host.connections.http2_connect_lock().await;
        if let Some(conn) = host.connections.http2() {
            return Ok(conn);
        }
        if !self.core.breakers.try_connection() {
            return Err(UpstreamError::Overflow);
        }
        let io = connector::connect(&self.core, host, true).await?;
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| UpstreamError::ConnectFailure(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(error) = conn.await {
                tracing::debug!(%error, "upstream HTTP/2 connection closed with an error");
            }
        });
        let conn = Arc::new(Http2Connection::new(sender));
        host.connections.set_http2(conn.clone());
        if let Some(timeout) = self.core.config.idle_timeout {
            idle::close_http2_when_idle(&self.core, host, &conn, timeout);
        }
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::io::{ErrorKind, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::path::Path;
    use std::pin::pin;
    use std::time::Duration;

    use http_body_util::BodyExt;
    use tokio::sync::watch;

    use super::*;
    use crate::dns::Resolver;
    use crate::proxy::cluster::discovery::Network;
    use crate::proxy::cluster::ClusterManager;
    use crate::proxy::stats::Store;

    /// Waits (on the runtime's clock, so the proxy side keeps running) until `f` has it.
    async fn wait_for<T>(mut f: impl FnMut() -> std::io::Result<T>) -> T {
        loop {
            match f() {
                Ok(v) => return v,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    tokio::time::sleep(Duration::from_millis(1)).await
                }
                Err(e) => panic!("upstream socket: {e}"),
            }
        }
    }

    /// Reads one request head from the raw upstream side and answers it.
    async fn answer(peer: &mut TcpStream) {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            wait_for(|| peer.read_exact(&mut byte)).await;
            head.push(byte[0]);
        }
        peer.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .unwrap();
    }

    fn request(version: Version) -> Request<Body> {
        let mut req = Request::new(crate::proxy::body::empty());
        *req.version_mut() = version;
        req.headers_mut().insert(HOST, "x".parse().unwrap());
        req
    }

    /// On a one-worker runtime (what `#[tokio::test]` is), a request from an HTTP/1.x client
    /// is not written when its send is first polled but at the turn's end, with the others
    /// read in that turn; one from an HTTP/2 client is written at once.
    #[tokio::test]
    async fn an_http1_clients_request_goes_upstream_at_the_turns_end() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let yaml = format!(
            "static_resources:
  clusters:
  - name: up
    load_assignment:
      cluster_name: up
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}}}
"
        );
        let loaded = crate::config::load_str("test.yaml", &yaml, Path::new(".")).unwrap();
        let net = Network {
            resolver: Resolver::with_nameserver("127.0.0.1:5".parse().unwrap()).unwrap(),
            pod_ip: None,
        };
        let (_shutdown, shutdown_rx) = watch::channel(false);
        let clusters =
            ClusterManager::build(&loaded.bootstrap.clusters, &Store::new(), &net, shutdown_rx)
                .await
                .unwrap();
        let cluster = clusters.get("up").unwrap();
        let host = cluster.core.choose_host(None).unwrap();

        // A first request opens the connection, which then waits in the pool.
        let first = tokio::spawn({
            let host = host.clone();
            let core = cluster.core.clone();
            async move {
                let upstream = Upstream::new(core);
                let response = upstream.send(&host, false, request(Version::HTTP_11)).await;
                response.unwrap().into_body().collect().await.unwrap();
            }
        });
        let (mut peer, _) = wait_for(|| listener.accept()).await;
        peer.set_nonblocking(true).unwrap();
        answer(&mut peer).await;
        first.await.unwrap();

        for (version, at_once) in [(Version::HTTP_11, false), (Version::HTTP_2, true)] {
            let mut send = pin!(cluster.upstream.send(&host, false, request(version)));
            let first_poll = std::future::poll_fn(|cx| Poll::Ready(send.as_mut().poll(cx))).await;
            assert!(
                first_poll.is_pending(),
                "{version:?}: the answer is still to come"
            );
            let written = match peer.peek(&mut [0u8; 1]) {
                Ok(n) => n > 0,
                Err(e) if e.kind() == ErrorKind::WouldBlock => false,
                Err(e) => panic!("upstream socket: {e}"),
            };
            assert_eq!(written, at_once, "{version:?}: written by the first poll");
            let (response, ()) = tokio::join!(send, answer(&mut peer));
            response.unwrap().into_body().collect().await.unwrap();
        }
    }
}

//! A cluster's upstream connection pools: kept-alive HTTP/1.1 connections per host by default,
//! one multiplexed HTTP/2 (h2c) connection per host when the cluster asks for HTTP/2.

mod connector;

use std::error::Error as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, Uri, Version};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::model::UpstreamProtocol;
use crate::proxy::body::Body;
use crate::proxy::cluster::ClusterCore;

pub use connector::ConnectError;
use connector::Connector;

/// Why an upstream request produced no response. The variants map to Envoy's response flags
/// (UF for connect failures, UC/UR for resets) and local-reply bodies.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("connection timeout")]
    ConnectTimeout,
    #[error("connection failure")]
    ConnectFailure(String),
    #[error("connection termination")]
    Reset(String),
}

impl UpstreamError {
    /// Envoy's wording after "reset reason: ".
    pub fn reset_reason(&self) -> &'static str {
        match self {
            UpstreamError::ConnectTimeout => "connection timeout",
            UpstreamError::ConnectFailure(_) => "connection failure",
            UpstreamError::Reset(_) => "connection termination",
        }
    }
}

pub struct Upstream {
    http1: Client<Connector, Body>,
    http2: Client<Connector, Body>,
    protocol: UpstreamProtocol,
}

/// Idle upstream connections are closed after this long (Envoy's default upstream idle timeout
/// is 1 h; a simulator keeps fewer sockets open).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

impl Upstream {
    pub fn new(core: Arc<ClusterCore>) -> Self {
        let protocol = core.config.upstream_protocol;
        let http1 = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .build(Connector::new(core.clone(), false));
        let http2 = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .http2_only(true)
            .build(Connector::new(core, true));
        Upstream {
            http1,
            http2,
            protocol,
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

    /// Sends `req` (whose URI holds only path and query) to `host`.
    pub async fn send(
        &self,
        host: SocketAddr,
        http2: bool,
        mut req: Request<Body>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        *req.uri_mut() = Uri::try_from(format!("http://{host}{path}"))
            .map_err(|e| UpstreamError::Reset(e.to_string()))?;
        let client = if http2 {
            *req.version_mut() = Version::HTTP_2;
            &self.http2
        } else {
            *req.version_mut() = Version::HTTP_11;
            &self.http1
        };
        client.request(req).await.map_err(classify)
    }
}

fn classify(error: hyper_util::client::legacy::Error) -> UpstreamError {
    let detail = {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    };
    let mut source = error.source();
    while let Some(s) = source {
        if let Some(c) = s.downcast_ref::<ConnectError>() {
            return match c {
                ConnectError::Timeout => UpstreamError::ConnectTimeout,
                _ => UpstreamError::ConnectFailure(detail),
            };
        }
        source = s.source();
    }
    if error.is_connect() {
        UpstreamError::ConnectFailure(detail)
    } else {
        UpstreamError::Reset(detail)
    }
}

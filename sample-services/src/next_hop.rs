//! The outgoing call of `/trace/N`: one HTTP/1.1 GET to the next hop, carrying the
//! tracing headers, so a chain of apps forms one trace through the mesh.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

use crate::dial::Dialer;

/// The request headers a traced app must pass on (Envoy's list for its tracers: request
/// id, Zipkin B3, Lightstep, Jaeger, W3C).
pub const TRACE_HEADERS: [&str; 10] = [
    "x-request-id",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "x-ot-span-context",
    "uber-trace-id",
    "traceparent",
    "tracestate",
];

/// Whole-call limit: a hop chain with injected delays still finishes, a hung hop doesn't
/// hold the request forever.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum NextHopError {
    #[error("{0}")]
    Connect(#[source] io::Error),
    #[error("HTTP exchange failed: {0}")]
    Http(#[source] hyper::Error),
    #[error("answered {0}")]
    Status(StatusCode),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// The copy of `headers` that is forwarded: only the tracing headers present.
pub fn trace_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in TRACE_HEADERS {
        for value in headers.get_all(name) {
            out.append(name, value.clone());
        }
    }
    out
}

#[derive(Debug, Clone)]
pub struct NextHop {
    pub url: Uri,
    pub dialer: Dialer,
}

impl NextHop {
    /// GET the next hop; any answer other than 2xx counts as a failure of the chain.
    pub async fn call(&self, forward: HeaderMap) -> Result<(), NextHopError> {
        tokio::time::timeout(CALL_TIMEOUT, self.exchange(forward))
            .await
            .map_err(|_| NextHopError::Timeout(CALL_TIMEOUT))?
    }

    async fn exchange(&self, forward: HeaderMap) -> Result<(), NextHopError> {
        let stream = self
            .dialer
            .connect(&self.url)
            .await
            .map_err(NextHopError::Connect)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(NextHopError::Http)?;
        // One request per connection (like the Flask sample's `requests.get`): the
        // driver ends when the exchange does.
        tokio::spawn(conn);

        let path = self
            .url
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned();
        let mut request = Request::get(path)
            .body(Empty::<Bytes>::new())
            .expect("a parsed URI's path is a valid request target");
        *request.headers_mut() = forward;
        if let Some(authority) = self.url.authority() {
            // The proxy routes on Host: it must name the next hop, not this pod's address.
            let host = HeaderValue::from_str(authority.as_str())
                .expect("a parsed authority is a valid header value");
            request.headers_mut().insert(HOST, host);
        }

        let response = sender
            .send_request(request)
            .await
            .map_err(NextHopError::Http)?;
        let status = response.status();
        // Read the answer to its end (without keeping it) so the hop's exchange
        // completes normally.
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            frame.map_err(NextHopError::Http)?;
        }
        if status.is_success() {
            Ok(())
        } else {
            Err(NextHopError::Status(status))
        }
    }
}

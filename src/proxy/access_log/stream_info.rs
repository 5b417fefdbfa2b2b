//! The per-request facts an access log line is rendered from.
//!
//! The proxy fills one [`StreamInfo`] per downstream request and hands it to
//! [`Format::render`](super::Format::render). It is a plain struct (not a
//! trait object as in Envoy) so that filling it is cheap and tests can build
//! one with struct-update syntax from `StreamInfo::default()`.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use super::flags::ResponseFlags;

/// Downstream HTTP protocol, printed by `%PROTOCOL%` the way Envoy spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// `HTTP/1.0`
    Http10,
    /// `HTTP/1.1` (the default because it is by far the most common downstream protocol).
    #[default]
    Http11,
    /// `HTTP/2`
    Http2,
    /// `HTTP/3`; not served by meshsim today, present so the mapping is complete.
    Http3,
}

impl Protocol {
    /// Envoy's protocol string (`Http::Utility::getProtocolString`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http10 => "HTTP/1.0",
            Protocol::Http11 => "HTTP/1.1",
            Protocol::Http2 => "HTTP/2",
            Protocol::Http3 => "HTTP/3",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a log line may need about one downstream request (filled by the proxy).
///
/// `None` / empty fields print as `-` in text formats and `null` in JSON formats,
/// exactly like Envoy's "unset" values.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    /// Wall-clock time the request started; `%START_TIME%`.
    pub start_time: SystemTime,
    /// Downstream protocol; `%PROTOCOL%`.
    pub protocol: Protocol,
    /// Regular request headers as received (after the proxy's own edits such as
    /// `x-request-id`). Pseudo headers are *not* looked up here: they come from
    /// the dedicated fields below, because `http::HeaderMap` cannot hold them.
    pub request_headers: http::HeaderMap,
    /// Served for `REQ(:METHOD)`.
    pub method: http::Method,
    /// `:path` as received (path + query); served for `REQ(:PATH)`. Empty means unset.
    pub path: String,
    /// `:authority` / `Host`; served for `REQ(:AUTHORITY)` and `REQ(HOST)`.
    pub authority: Option<String>,
    /// Served for `REQ(:SCHEME)`.
    pub scheme: Option<String>,
    /// `x-envoy-original-path`, set when a prefix rewrite changed the path. Served
    /// for `REQ(X-ENVOY-ORIGINAL-PATH)` before falling back to the request headers,
    /// so the default format logs the path the client actually sent.
    pub original_path: Option<String>,
    /// Response headers, if a response was started; `RESP(...)`.
    pub response_headers: Option<http::HeaderMap>,
    /// Response trailers, if any; `TRAILER(...)`.
    pub response_trailers: Option<http::HeaderMap>,
    /// Final response status; `%RESPONSE_CODE%` prints `0` when unset, as Envoy.
    pub response_code: Option<u16>,
    /// `%RESPONSE_CODE_DETAILS%`, e.g. `via_upstream`.
    pub response_code_details: Option<String>,
    /// `%RESPONSE_FLAGS%` / `%RESPONSE_FLAGS_LONG%`.
    pub response_flags: ResponseFlags,
    /// Body bytes received from downstream; `%BYTES_RECEIVED%`.
    pub bytes_received: u64,
    /// Body bytes sent downstream; `%BYTES_SENT%`.
    pub bytes_sent: u64,
    /// Total, start to last byte sent; `%DURATION%`.
    pub duration: Option<Duration>,
    /// Start to last request byte received; `%REQUEST_DURATION%`.
    pub request_duration: Option<Duration>,
    /// Start to first response byte from upstream; `%RESPONSE_DURATION%`.
    pub response_duration: Option<Duration>,
    /// Address of the upstream host that served the request; `%UPSTREAM_HOST%`,
    /// `%UPSTREAM_REMOTE_ADDRESS%`.
    pub upstream_host: Option<SocketAddr>,
    /// `%UPSTREAM_CLUSTER%`. Empty prints as unset, as in Envoy.
    pub upstream_cluster: Option<String>,
    /// Local address of the upstream connection; `%UPSTREAM_LOCAL_ADDRESS%`.
    pub upstream_local_address: Option<SocketAddr>,
    /// `%UPSTREAM_REQUEST_ATTEMPT_COUNT%`; prints `0` when unset, as Envoy.
    pub upstream_request_attempt_count: Option<u32>,
    /// `%DOWNSTREAM_REMOTE_ADDRESS%`.
    pub downstream_remote_address: Option<SocketAddr>,
    /// `%DOWNSTREAM_LOCAL_ADDRESS%`.
    pub downstream_local_address: Option<SocketAddr>,
    /// `%ROUTE_NAME%`. Empty prints as unset, as in Envoy.
    pub route_name: Option<String>,
    /// SNI; `%REQUESTED_SERVER_NAME%`. Empty prints as unset, as in Envoy.
    pub requested_server_name: Option<String>,
}

impl Default for StreamInfo {
    /// An "empty" stream: epoch start time, HTTP/1.1 GET with no path and nothing else set.
    fn default() -> Self {
        StreamInfo {
            start_time: SystemTime::UNIX_EPOCH,
            protocol: Protocol::default(),
            request_headers: http::HeaderMap::new(),
            method: http::Method::GET,
            path: String::new(),
            authority: None,
            scheme: None,
            original_path: None,
            response_headers: None,
            response_trailers: None,
            response_code: None,
            response_code_details: None,
            response_flags: ResponseFlags::empty(),
            bytes_received: 0,
            bytes_sent: 0,
            duration: None,
            request_duration: None,
            response_duration: None,
            upstream_host: None,
            upstream_cluster: None,
            upstream_local_address: None,
            upstream_request_attempt_count: None,
            downstream_remote_address: None,
            downstream_local_address: None,
            route_name: None,
            requested_server_name: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_strings_match_envoy() {
        assert_eq!(Protocol::Http10.as_str(), "HTTP/1.0");
        assert_eq!(Protocol::Http11.as_str(), "HTTP/1.1");
        assert_eq!(Protocol::Http2.as_str(), "HTTP/2");
        assert_eq!(Protocol::Http3.to_string(), "HTTP/3");
    }

    #[test]
    fn default_is_empty() {
        let info = StreamInfo::default();
        assert_eq!(info.start_time, SystemTime::UNIX_EPOCH);
        assert!(info.response_flags.is_empty());
        assert!(info.request_headers.is_empty());
        assert_eq!(info.method, http::Method::GET);
    }
}

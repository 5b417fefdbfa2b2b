//! Responses the proxy generates itself, with Envoy's exact bodies, because scripts and users
//! grep for them ("no healthy upstream", "upstream connect error or disconnect/reset before
//! headers. reset reason: connection failure", "upstream request timeout").

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Response, StatusCode};

use crate::proxy::body::{self, Body};

pub const NO_HEALTHY_UPSTREAM: &str = "no healthy upstream";
pub const UPSTREAM_TIMEOUT: &str = "upstream request timeout";

/// "upstream connect error or disconnect/reset before headers. reset reason: <reason>"
pub fn upstream_reset_body(reason: &str) -> String {
    format!("upstream connect error or disconnect/reset before headers. reset reason: {reason}")
}

/// A local reply: `text/plain` when there is a body, none otherwise (Envoy's 404 for an
/// unmatched route is empty). Direct responses may be binary; cloning `Bytes` only bumps a
/// reference count.
pub fn reply(status: u16, content: impl Into<Bytes>, head_request: bool) -> Response<Body> {
    let content = content.into();
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let length = content.len();
    let mut response = if content.is_empty() || head_request {
        Response::new(body::empty())
    } else {
        let mut r = Response::new(body::full(content));
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        r
    };
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(length));
    *response.status_mut() = status;
    response
}

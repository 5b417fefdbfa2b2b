//! Responses the proxy generates itself, with Envoy's exact bodies, because scripts and users
//! grep for them ("no healthy upstream", "upstream connect error or disconnect/reset before
//! headers. reset reason: connection failure", "upstream request timeout").

use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};

use crate::proxy::body::{self, Body};

pub const NO_HEALTHY_UPSTREAM: &str = "no healthy upstream";
pub const UPSTREAM_TIMEOUT: &str = "upstream request timeout";

/// "upstream connect error or disconnect/reset before headers. reset reason: <reason>"
pub fn upstream_reset_body(reason: &str) -> String {
    format!("upstream connect error or disconnect/reset before headers. reset reason: {reason}")
}

/// A local reply: `text/plain` when there is a body, none otherwise (Envoy's 404 for an
/// unmatched route is empty).
pub fn reply(status: u16, text: &str, head_request: bool) -> Response<Body> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = if text.is_empty() || head_request {
        Response::new(body::empty())
    } else {
        let mut r = Response::new(body::full(text.to_string()));
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        r
    };
    if !text.is_empty() {
        response
            .headers_mut()
            .insert(http::header::CONTENT_LENGTH, HeaderValue::from(text.len()));
    } else {
        response
            .headers_mut()
            .insert(http::header::CONTENT_LENGTH, HeaderValue::from(0));
    }
    *response.status_mut() = status;
    response
}

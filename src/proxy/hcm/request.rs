//! Downstream request rules applied before routing: `x-request-id`, `x-forwarded-for`,
//! `x-forwarded-proto`, and the internal/external decision.

use std::net::IpAddr;

use http::header::{HeaderName, HeaderValue, HOST};
use http::request::Parts;

use crate::config::model::HttpConnectionManager;
use crate::proxy::headers::{has_envoy_headers, header_tokens};

use super::ConnInfo;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_ENVOY_INTERNAL: HeaderName = HeaderName::from_static("x-envoy-internal");
pub const X_ENVOY_EXTERNAL_ADDRESS: HeaderName =
    HeaderName::from_static("x-envoy-external-address");

/// `:authority` (HTTP/2, absolute-form HTTP/1) or the `Host` header, as a value that does not
/// borrow the request: the `Host` header's is a cheap clone (no allocation per request). The
/// caller reads it with `to_str`, which refuses a `Host` that is not visible ASCII.
pub fn authority(parts: &Parts) -> Option<HeaderValue> {
    match parts.uri.authority() {
        Some(a) => HeaderValue::from_str(a.as_str()).ok(),
        None => parts.headers.get(HOST).cloned(),
    }
}

/// Headers only an internal (trusted) hop may send; Envoy removes them from external requests
/// at the edge so an internet client cannot, say, switch off the route timeout.
const INTERNAL_ONLY: [&str; 12] = [
    "x-envoy-upstream-rq-timeout-ms",
    "x-envoy-upstream-rq-per-try-timeout-ms",
    "x-envoy-retry-on",
    "x-envoy-retry-grpc-on",
    "x-envoy-max-retries",
    "x-envoy-expected-rq-timeout-ms",
    "x-envoy-original-path",
    "x-envoy-downstream-service-cluster",
    "x-envoy-downstream-service-node",
    "x-envoy-upstream-alt-stat-name",
    "x-envoy-hedge-on-per-try-timeout",
    "x-envoy-retriable-status-codes",
];

/// The protocol a request asks to upgrade to (lower-cased), taken out of the headers. An `h2c`
/// upgrade (what `curl --http2` sends over cleartext) is dropped, as Envoy's HTTP/1 codec
/// does, and the request is served as HTTP/1.1.
pub fn take_upgrade(headers: &mut http::HeaderMap) -> Option<String> {
    let wants_upgrade = header_tokens(headers, &http::header::CONNECTION)
        .any(|t| t.eq_ignore_ascii_case("upgrade"));
    let upgrade = headers
        .remove(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok().map(str::to_ascii_lowercase));
    if upgrade.as_deref() == Some("h2c") {
        headers.remove("http2-settings");
        return None;
    }
    upgrade.filter(|_| wants_upgrade)
}

/// Applies the HCM's downstream header rules and returns whether the request is internal
/// (which selects the `internal.`/`external.` cluster stats).
pub fn apply_downstream_rules(
    config: &HttpConnectionManager,
    parts: &mut Parts,
    conn: &ConnInfo,
) -> bool {
    let headers = &mut parts.headers;
    if config.generate_request_id {
        let keep = headers.get(X_REQUEST_ID).is_some_and(|v| !v.is_empty());
        if !keep {
            let id = uuid::Uuid::new_v4().to_string();
            headers.insert(
                X_REQUEST_ID,
                HeaderValue::from_str(&id).expect("a UUID is a valid header value"),
            );
        }
    }

    let scheme = if conn.tls { "https" } else { "http" };
    let internal;
    if config.use_remote_address {
        // The edge: this hop's peer address is the truth, so record it and decide from it.
        let peer = conn.remote.ip();
        if !config.skip_xff_append {
            append_xff(headers, peer);
        }
        internal = is_internal(peer);
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(scheme));
        if internal {
            headers.insert(X_ENVOY_INTERNAL, HeaderValue::from_static("true"));
            headers.remove(X_ENVOY_EXTERNAL_ADDRESS);
        } else {
            for name in INTERNAL_ONLY {
                headers.remove(name);
            }
            headers.remove(X_ENVOY_INTERNAL);
            if let Ok(v) = HeaderValue::from_str(&peer.to_string()) {
                headers.insert(X_ENVOY_EXTERNAL_ADDRESS, v);
            }
        }
    } else {
        // A sidecar or inner hop: trust what the edge decided.
        internal = has_envoy_headers(headers)
            && headers.get(X_ENVOY_INTERNAL).is_some_and(|v| v == "true");
        // One lookup, not one to ask and another to insert.
        headers
            .entry(X_FORWARDED_PROTO)
            .or_insert_with(|| HeaderValue::from_static(scheme));
    }
    internal
}

fn append_xff(headers: &mut http::HeaderMap, peer: IpAddr) {
    let value = match headers.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(existing) if !existing.is_empty() => format!("{existing},{peer}"),
        _ => peer.to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(X_FORWARDED_FOR, v);
    }
}

/// Envoy's default internal address set: RFC 1918, loopback, and their IPv6 equivalents.
fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().uri("/x");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn conn(remote: &str) -> ConnInfo {
        ConnInfo {
            remote: remote.parse().unwrap(),
            local: "127.0.0.1:8080".parse().unwrap(),
            tls: false,
        }
    }

    fn config(use_remote_address: bool) -> HttpConnectionManager {
        crate::proxy::test_support::hcm_config(use_remote_address)
    }

    #[test]
    fn generates_a_uuid4_request_id_only_when_absent() {
        let mut p = parts(&[]);
        apply_downstream_rules(&config(false), &mut p, &conn("10.0.0.1:5000"));
        let id = p.headers[X_REQUEST_ID].to_str().unwrap().to_string();
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 4);

        let mut p = parts(&[("x-request-id", "keep-me")]);
        apply_downstream_rules(&config(false), &mut p, &conn("10.0.0.1:5000"));
        assert_eq!(p.headers[X_REQUEST_ID], "keep-me");
    }

    #[test]
    fn edge_appends_xff_and_decides_internal_from_the_peer() {
        let mut p = parts(&[("x-forwarded-for", "1.2.3.4"), ("x-envoy-internal", "true")]);
        let internal = apply_downstream_rules(&config(true), &mut p, &conn("203.0.113.9:5000"));
        assert!(!internal);
        assert_eq!(p.headers[X_FORWARDED_FOR], "1.2.3.4,203.0.113.9");
        assert!(
            !p.headers.contains_key(X_ENVOY_INTERNAL),
            "spoofed header removed"
        );
        assert_eq!(p.headers[X_FORWARDED_PROTO], "http");

        let mut p = parts(&[]);
        assert!(apply_downstream_rules(
            &config(true),
            &mut p,
            &conn("10.1.2.3:5000")
        ));
        assert_eq!(p.headers[X_ENVOY_INTERNAL], "true");
    }

    #[test]
    fn edge_removes_internal_only_headers_from_external_requests() {
        let mut p = parts(&[
            ("x-envoy-upstream-rq-timeout-ms", "0"),
            ("x-envoy-original-path", "/admin"),
            ("x-envoy-retry-on", "5xx"),
        ]);
        apply_downstream_rules(&config(true), &mut p, &conn("203.0.113.9:5000"));
        assert!(!p.headers.contains_key("x-envoy-upstream-rq-timeout-ms"));
        assert!(!p.headers.contains_key("x-envoy-original-path"));
        assert!(!p.headers.contains_key("x-envoy-retry-on"));

        let mut p = parts(&[("x-envoy-upstream-rq-timeout-ms", "100")]);
        apply_downstream_rules(&config(true), &mut p, &conn("10.0.0.2:5000"));
        assert_eq!(
            p.headers["x-envoy-upstream-rq-timeout-ms"], "100",
            "internal keeps it"
        );
    }

    #[test]
    fn h2c_upgrades_are_ignored_and_websocket_is_taken() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("Upgrade, HTTP2-Settings"),
        );
        h.insert("upgrade", HeaderValue::from_static("h2c"));
        h.insert(
            "http2-settings",
            HeaderValue::from_static("AAMAAABkAAQAoAAAAAIAAAAA"),
        );
        assert_eq!(take_upgrade(&mut h), None);
        assert!(!h.contains_key("upgrade") && !h.contains_key("http2-settings"));

        let mut h = http::HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        h.insert("upgrade", HeaderValue::from_static("WebSocket"));
        assert_eq!(take_upgrade(&mut h).as_deref(), Some("websocket"));
    }

    #[test]
    fn inner_hop_keeps_xff_and_proto() {
        let mut p = parts(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
        ]);
        apply_downstream_rules(&config(false), &mut p, &conn("10.0.0.1:5000"));
        assert_eq!(p.headers[X_FORWARDED_FOR], "1.2.3.4");
        assert_eq!(p.headers[X_FORWARDED_PROTO], "https");
    }
}

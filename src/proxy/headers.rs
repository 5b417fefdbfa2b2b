//! Header rules every hop applies: hop-by-hop headers are connection-scoped and must never be
//! forwarded (RFC 9110 §7.6.1), in either direction, including any header named in `Connection`.
//! Forwarding them is how request-smuggling and h2→h1 downgrade attacks get through.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::config::model::{AppendAction, HeaderValueOption};

/// The fixed hop-by-hop set (plus `proxy-connection`, which some clients still send).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Headers a `Connection:` nomination may never remove: framing, routing identity, and the
/// headers this proxy itself sets. Otherwise a client could ask the edge to delete the
/// `x-forwarded-for` it just appended (hiding its address) or the request id.
fn protected(name: &HeaderName) -> bool {
    let n = name.as_str();
    n == "host"
        || n == "content-length"
        || n == "x-request-id"
        || n.starts_with("x-forwarded-")
        || n.starts_with("x-envoy-")
}

/// Removes hop-by-hop headers. `keep_upgrade` preserves `Connection: upgrade` + `Upgrade` for a
/// WebSocket handshake the HCM has decided to pass through. `te: trailers` survives (gRPC needs
/// it end to end, and Envoy keeps exactly that value).
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Most messages carry none of these: one pass over the names instead of ten lookups.
    let any = headers
        .keys()
        .any(|name| *name == header::UPGRADE || HOP_BY_HOP.contains(name));
    if !any {
        if keep_upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
        return;
    }
    let named: Vec<HeaderName> = header_tokens(headers, &header::CONNECTION)
        .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
        .filter(|name| !(protected(name) || keep_upgrade && name == header::UPGRADE))
        .collect();
    for name in named {
        headers.remove(name);
    }
    let te_trailers =
        header_tokens(headers, &header::TE).any(|t| t.eq_ignore_ascii_case("trailers"));
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// The comma-separated tokens of a list header (`Connection`, `TE`, `Upgrade`), trimmed, across
/// all its values.
pub fn header_tokens<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> impl Iterator<Item = &'h str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Applies `*_headers_to_add` entries as Envoy's `append_action` says.
pub fn apply_additions(headers: &mut HeaderMap, additions: &[CompiledHeader]) {
    for add in additions {
        match add.action {
            AppendAction::AppendIfExistsOrAdd => {
                headers.append(add.name.clone(), add.value.clone());
            }
            AppendAction::AddIfAbsent => {
                if !headers.contains_key(&add.name) {
                    headers.insert(add.name.clone(), add.value.clone());
                }
            }
            AppendAction::OverwriteIfExistsOrAdd => {
                headers.insert(add.name.clone(), add.value.clone());
            }
            AppendAction::OverwriteIfExists => {
                if headers.contains_key(&add.name) {
                    headers.insert(add.name.clone(), add.value.clone());
                }
            }
        }
    }
}

pub fn apply_removals(headers: &mut HeaderMap, removals: &[HeaderName]) {
    for name in removals {
        headers.remove(name);
    }
}

/// A header addition parsed once at config time, so the request path only clones.
#[derive(Debug, Clone)]
pub struct CompiledHeader {
    pub name: HeaderName,
    pub value: HeaderValue,
    pub action: AppendAction,
}

/// Why a configured header cannot be used; the decoder validated names, but values built from
/// the config still must not carry CR/LF (header injection).
#[derive(Debug, thiserror::Error)]
#[error("invalid header `{name}`: {reason}")]
pub struct InvalidHeader {
    pub name: String,
    pub reason: &'static str,
}

pub fn compile_additions(
    options: &[HeaderValueOption],
) -> Result<Vec<CompiledHeader>, InvalidHeader> {
    options
        .iter()
        .map(|o| {
            Ok(CompiledHeader {
                name: HeaderName::from_bytes(o.key.as_bytes()).map_err(|_| InvalidHeader {
                    name: o.key.clone(),
                    reason: "not a valid header name",
                })?,
                value: HeaderValue::from_str(&o.value).map_err(|_| InvalidHeader {
                    name: o.key.clone(),
                    reason: "the value contains control characters",
                })?,
                action: o.append_action,
            })
        })
        .collect()
}

pub fn compile_removals(names: &[String]) -> Result<Vec<HeaderName>, InvalidHeader> {
    names
        .iter()
        .map(|n| {
            HeaderName::from_bytes(n.as_bytes()).map_err(|_| InvalidHeader {
                name: n.clone(),
                reason: "not a valid header name",
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn strips_fixed_and_connection_named_headers() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("transfer-encoding", "chunked"),
            ("te", "gzip"),
            ("upgrade", "websocket"),
            ("x-kept", "yes"),
        ]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1);
        assert_eq!(h["x-kept"], "yes");
    }

    #[test]
    fn te_trailers_survives_for_grpc() {
        let mut h = map(&[("te", "trailers, deflate")]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h["te"], "trailers");
    }

    #[test]
    fn connection_cannot_nominate_protected_headers() {
        let mut h = map(&[
            (
                "connection",
                "x-forwarded-for, x-request-id, x-envoy-internal, host, x-other",
            ),
            ("x-forwarded-for", "1.2.3.4"),
            ("x-request-id", "r"),
            ("x-envoy-internal", "true"),
            ("host", "h"),
            ("x-other", "gone"),
        ]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 4);
        assert!(!h.contains_key("x-other"));
    }

    #[test]
    fn upgrade_survives_when_passing_a_websocket_through() {
        let mut h = map(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
    }

    #[test]
    fn append_actions_behave_as_envoy() {
        let adds = compile_additions(&[
            HeaderValueOption {
                key: "a".into(),
                value: "2".into(),
                append_action: AppendAction::AppendIfExistsOrAdd,
            },
            HeaderValueOption {
                key: "b".into(),
                value: "new".into(),
                append_action: AppendAction::AddIfAbsent,
            },
            HeaderValueOption {
                key: "c".into(),
                value: "new".into(),
                append_action: AppendAction::OverwriteIfExistsOrAdd,
            },
            HeaderValueOption {
                key: "d".into(),
                value: "new".into(),
                append_action: AppendAction::OverwriteIfExists,
            },
        ])
        .unwrap();
        let mut h = map(&[("a", "1"), ("b", "old"), ("c", "old")]);
        apply_additions(&mut h, &adds);
        assert_eq!(h.get_all("a").iter().collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(h["b"], "old");
        assert_eq!(h["c"], "new");
        assert!(!h.contains_key("d"));
    }

    #[test]
    fn header_values_with_newlines_are_rejected() {
        let err = compile_additions(&[HeaderValueOption {
            key: "x".into(),
            value: "a\r\nb".into(),
            append_action: AppendAction::AppendIfExistsOrAdd,
        }])
        .unwrap_err();
        assert!(err.to_string().contains("`x`"));
    }
}

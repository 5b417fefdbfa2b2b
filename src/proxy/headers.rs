//! Header rules every hop applies: hop-by-hop headers are connection-scoped and must never be
//! forwarded (RFC 9110 §7.6.1), in either direction, including any header named in `Connection`.
//! Forwarding them is how request-smuggling and h2→h1 downgrade attacks get through.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::config::model::{AppendAction, HeaderValueOption};

const HOP_BY_HOP_COUNT: usize = 8;

/// The fixed hop-by-hop set (plus `proxy-connection`, which some clients still send).
const HOP_BY_HOP: [HeaderName; HOP_BY_HOP_COUNT] = [
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
fn protected(token: &str) -> bool {
    let starts_with = |prefix: &str| {
        token.len() >= prefix.len()
            && token.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    };
    ["host", "content-length", "x-request-id"]
        .iter()
        .any(|name| token.eq_ignore_ascii_case(name))
        || starts_with("x-forwarded-")
        || starts_with("x-envoy-")
}

/// Removes hop-by-hop headers. `keep_upgrade` preserves `Connection: upgrade` + `Upgrade` for a
/// WebSocket handshake the HCM has decided to pass through. `te: trailers` survives (gRPC needs
/// it end to end, and Envoy keeps exactly that value).
///
/// Runs on every request and response, so it allocates nothing: one pass over the names finds
/// which of the fixed set are present (most messages carry none; a response often carries
/// `Connection: keep-alive`), and only those are looked up again.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let mut present = [false; HOP_BY_HOP_COUNT];
    let mut upgrade = false;
    for name in headers.keys() {
        // The length rules out almost every other name before any comparison.
        if !may_be_hop_by_hop(name) {
            continue;
        }
        match HOP_BY_HOP.iter().position(|h| h == name) {
            Some(i) => present[i] = true,
            None => upgrade |= name == header::UPGRADE,
        }
    }
    if present[CONNECTION_INDEX] {
        remove_nominated(headers);
    }
    let te_trailers = present[TE_INDEX]
        && header_tokens(headers, &header::TE).any(|t| t.eq_ignore_ascii_case("trailers"));
    for (name, _) in HOP_BY_HOP.iter().zip(present).filter(|(_, p)| *p) {
        headers.remove(name);
    }
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else if upgrade {
        headers.remove(header::UPGRADE);
    }
}

/// Whether `name` has the length of one of `HOP_BY_HOP` or `upgrade` (2, 7, 10, 16 to 19
/// bytes): a test that rules out most names without comparing them.
fn may_be_hop_by_hop(name: &HeaderName) -> bool {
    const LENGTHS: u32 = 1 << 2 | 1 << 7 | 1 << 10 | 1 << 16 | 1 << 17 | 1 << 18 | 1 << 19;
    let len = name.as_str().len();
    len < 32 && LENGTHS >> len & 1 == 1
}

const CONNECTION_INDEX: usize = 0;
const TE_INDEX: usize = 5;

/// Removes the headers `Connection:` names, except protected ones, those of the fixed set
/// (removed anyway) and `Upgrade` (the caller decides about that one).
fn remove_nominated(headers: &mut HeaderMap) {
    // Cloned (a reference count, not a copy) so the map can be edited while their tokens are
    // read; a second `Connection` line is rare enough to pay for a vector.
    let mut values = headers.get_all(header::CONNECTION).iter();
    let first = values.next().cloned();
    let rest: Vec<HeaderValue> = values.cloned().collect();
    for value in first.iter().chain(&rest) {
        let Ok(list) = value.to_str() else { continue };
        for token in list.split(',').map(str::trim) {
            let fixed = HOP_BY_HOP
                .iter()
                .any(|h| token.eq_ignore_ascii_case(h.as_str()));
            if token.is_empty()
                || fixed
                || token.eq_ignore_ascii_case("upgrade")
                || protected(token)
            {
                continue;
            }
            // A `&str` key is lower-cased on the stack: no `HeaderName` is built.
            headers.remove(token);
        }
    }
}

/// A header value holding `n` in decimal. The numbers every proxied response carries
/// (`x-envoy-upstream-service-time`, a few milliseconds) come from a table built once, whose
/// values share static bytes: cloning one allocates nothing, where `HeaderValue::from(n)`
/// allocates twice.
pub fn number_value(n: u64) -> HeaderValue {
    const TABLE_SIZE: usize = 1024;
    static TABLE: std::sync::OnceLock<Vec<HeaderValue>> = std::sync::OnceLock::new();
    let Some(i) = usize::try_from(n).ok().filter(|&i| i < TABLE_SIZE) else {
        return HeaderValue::from(n);
    };
    let table = TABLE.get_or_init(|| {
        (0..TABLE_SIZE)
            .map(|i| HeaderValue::from_static(i.to_string().leak()))
            .collect()
    });
    table[i].clone()
}

/// Whether any `x-envoy-*` header is present. Most requests carry none, and one scan of the
/// names is cheaper than looking up each control header Envoy reads.
pub fn has_envoy_headers(headers: &HeaderMap) -> bool {
    headers.keys().any(|k| k.as_str().starts_with("x-envoy-"))
}

/// The comma-separated tokens of a list header (`Connection`, `TE`, `Upgrade`), trimmed, across
/// all its values.
pub fn header_tokens<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> impl Iterator<Item = &'h str> {
    headers.get_all(name).iter().flat_map(value_tokens)
}

/// The comma-separated tokens of one value of a list header, trimmed (none if the value is not
/// visible ASCII).
pub fn value_tokens(value: &HeaderValue) -> impl Iterator<Item = &str> {
    value
        .to_str()
        .into_iter()
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
    use crate::proxy::test_support::header_map;

    #[test]
    fn the_length_test_lets_every_hop_by_hop_name_through() {
        for name in HOP_BY_HOP.iter().chain([&header::UPGRADE]) {
            assert!(may_be_hop_by_hop(name), "{name}");
        }
        for name in [header::HOST, header::CONTENT_LENGTH, header::SERVER] {
            assert!(!may_be_hop_by_hop(&name), "{name}");
        }
    }

    #[test]
    fn strips_fixed_and_connection_named_headers() {
        let mut h = header_map(&[
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
    fn nominations_are_case_insensitive_across_connection_lines() {
        let mut h = header_map(&[
            ("connection", "X-Secret"),
            ("x-secret", "1"),
            ("x-other", "2"),
            ("x-forwarded-for", "1.2.3.4"),
            ("x-kept", "yes"),
        ]);
        h.append(
            "connection",
            HeaderValue::from_static("close, X-Other, X-Forwarded-For"),
        );
        strip_hop_by_hop(&mut h, false);
        let mut left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["x-forwarded-for", "x-kept"]);
    }

    #[test]
    fn number_values_read_as_their_decimal() {
        for n in [0, 7, 10, 999, 1023, 1024, 15000, u64::MAX] {
            assert_eq!(number_value(n).to_str().unwrap(), n.to_string());
        }
    }

    #[test]
    fn fixed_set_indices_name_their_headers() {
        assert_eq!(HOP_BY_HOP[CONNECTION_INDEX], header::CONNECTION);
        assert_eq!(HOP_BY_HOP[TE_INDEX], header::TE);
    }

    #[test]
    fn te_trailers_survives_for_grpc() {
        let mut h = header_map(&[("te", "trailers, deflate")]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h["te"], "trailers");
    }

    #[test]
    fn connection_cannot_nominate_protected_headers() {
        let mut h = header_map(&[
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
        let mut h = header_map(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
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
        let mut h = header_map(&[("a", "1"), ("b", "old"), ("c", "old")]);
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

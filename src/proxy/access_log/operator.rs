//! The command operators: building them from `%NAME(ARG):LEN%` and evaluating
//! them against a [`StreamInfo`].
//!
//! Semantics follow Envoy's `stream_info_formatter.cc` / `http_specific_formatter.cc`
//! and `docs/root/configuration/observability/access_log/usage.rst`:
//! * numbers (`RESPONSE_CODE`, `BYTES_*`, `*DURATION`, ports, attempt count) are
//!   typed so JSON can emit them as numbers; `RESPONSE_CODE` and
//!   `UPSTREAM_REQUEST_ATTEMPT_COUNT` print `0` when unset, durations print `-`;
//! * strings that are unset (or, for cluster/route/SNI, empty) are "unset";
//! * only `REQ`/`RESP`/`TRAILER` take `:LENGTH`, which truncates the value;
//! * `REQ(X?Y)` uses `Y` only when `X` is absent (a present empty `X` wins).

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::OnceLock;

use super::format::FormatError;
use super::render::Value;
use super::stream_info::StreamInfo;
use super::time::TimeFormat;

/// Listed in [`FormatError::UnknownOperator`] messages.
pub(super) const SUPPORTED_OPERATORS: &str = "START_TIME, START_TIME(FORMAT), REQ(X?Y):Z, \
     RESP(X?Y):Z, TRAILER(X?Y):Z, PROTOCOL, RESPONSE_CODE, RESPONSE_CODE_DETAILS, \
     RESPONSE_CODE_DETAILS(ALLOW_WHITESPACES), RESPONSE_FLAGS, RESPONSE_FLAGS_LONG, \
     BYTES_RECEIVED, BYTES_SENT, DURATION, REQUEST_DURATION, RESPONSE_DURATION, UPSTREAM_HOST, \
     UPSTREAM_CLUSTER, UPSTREAM_LOCAL_ADDRESS, UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT, \
     UPSTREAM_LOCAL_PORT, UPSTREAM_REMOTE_ADDRESS, UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT, \
     UPSTREAM_REMOTE_PORT, UPSTREAM_REQUEST_ATTEMPT_COUNT, DOWNSTREAM_REMOTE_ADDRESS, \
     DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT, DOWNSTREAM_REMOTE_PORT, DOWNSTREAM_LOCAL_ADDRESS, \
     DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT, DOWNSTREAM_LOCAL_PORT, ROUTE_NAME, \
     REQUESTED_SERVER_NAME, HOSTNAME (and %% for a literal %)";

/// Which part of a socket address an address operator prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AddrPart {
    /// `10.0.0.1:80`, `[::1]:80` (Envoy's `asString()`).
    WithPort,
    /// `10.0.0.1`, `::1` (no brackets, as Envoy's `addressAsString()`).
    WithoutPort,
    /// `80`, typed as a number.
    Port,
}

/// Where a header operator looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeaderSource {
    Request,
    Response,
    Trailer,
}

/// A header to look up. Pseudo headers and a few special names are served from
/// [`StreamInfo`] fields because `http::HeaderMap` cannot hold pseudo headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HeaderKey {
    Method,
    Path,
    /// `:authority` and `host`: the authority field, else a `host` header.
    Authority,
    Scheme,
    /// `RESP(:status)`: the response code.
    Status,
    /// `x-envoy-original-path`: the field, else the header.
    OriginalPath,
    Named(http::HeaderName),
}

/// One command operator, fully validated.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Operator {
    StartTime(TimeFormat),
    Header {
        source: HeaderSource,
        main: HeaderKey,
        alt: Option<HeaderKey>,
        max_len: Option<usize>,
    },
    Protocol,
    ResponseCode,
    ResponseCodeDetails {
        allow_whitespace: bool,
    },
    ResponseFlags,
    ResponseFlagsLong,
    BytesReceived,
    BytesSent,
    Duration,
    RequestDuration,
    ResponseDuration,
    /// `UPSTREAM_HOST` and `UPSTREAM_REMOTE_ADDRESS*` (the same address in meshsim).
    UpstreamHost(AddrPart),
    UpstreamCluster,
    UpstreamLocalAddress(AddrPart),
    UpstreamRequestAttemptCount,
    DownstreamRemoteAddress(AddrPart),
    DownstreamLocalAddress(AddrPart),
    RouteName,
    RequestedServerName,
    /// Resolved once at configuration time, like Envoy.
    Hostname(Option<String>),
}

impl Operator {
    /// Builds an operator from a scanned command. `arg` is the text inside `(...)`,
    /// `max_len` the `:N` suffix.
    pub(super) fn build(
        name: &str,
        arg: Option<&str>,
        max_len: Option<usize>,
    ) -> Result<Operator, FormatError> {
        // Envoy treats `NAME()` like `NAME`.
        let arg = arg.filter(|a| !a.is_empty());
        let no_args = |op: Operator| {
            if arg.is_some() || max_len.is_some() {
                Err(FormatError::NoArguments {
                    name: name.to_owned(),
                })
            } else {
                Ok(op)
            }
        };
        match name {
            "START_TIME" => {
                if max_len.is_some() {
                    return Err(FormatError::LengthNotAllowed {
                        name: name.to_owned(),
                    });
                }
                let fmt = arg.unwrap_or("");
                TimeFormat::parse(fmt)
                    .map(Operator::StartTime)
                    .map_err(|reason| FormatError::InvalidTimeFormat {
                        format: fmt.to_owned(),
                        reason,
                    })
            }
            "REQ" => header_operator(name, HeaderSource::Request, arg, max_len),
            "RESP" => header_operator(name, HeaderSource::Response, arg, max_len),
            "TRAILER" => header_operator(name, HeaderSource::Trailer, arg, max_len),
            "RESPONSE_CODE_DETAILS" => {
                if max_len.is_some() {
                    return Err(FormatError::LengthNotAllowed {
                        name: name.to_owned(),
                    });
                }
                match arg {
                    None => Ok(Operator::ResponseCodeDetails {
                        allow_whitespace: false,
                    }),
                    Some("ALLOW_WHITESPACES") => Ok(Operator::ResponseCodeDetails {
                        allow_whitespace: true,
                    }),
                    Some(other) => Err(FormatError::InvalidArgument {
                        name: name.to_owned(),
                        arg: other.to_owned(),
                        reason: "the only parameter is ALLOW_WHITESPACES".to_owned(),
                    }),
                }
            }
            "PROTOCOL" => no_args(Operator::Protocol),
            "RESPONSE_CODE" => no_args(Operator::ResponseCode),
            "RESPONSE_FLAGS" => no_args(Operator::ResponseFlags),
            "RESPONSE_FLAGS_LONG" => no_args(Operator::ResponseFlagsLong),
            "BYTES_RECEIVED" => no_args(Operator::BytesReceived),
            "BYTES_SENT" => no_args(Operator::BytesSent),
            "DURATION" => no_args(Operator::Duration),
            "REQUEST_DURATION" => no_args(Operator::RequestDuration),
            "RESPONSE_DURATION" => no_args(Operator::ResponseDuration),
            "UPSTREAM_HOST" | "UPSTREAM_REMOTE_ADDRESS" => {
                no_args(Operator::UpstreamHost(AddrPart::WithPort))
            }
            "UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" => {
                no_args(Operator::UpstreamHost(AddrPart::WithoutPort))
            }
            "UPSTREAM_REMOTE_PORT" => no_args(Operator::UpstreamHost(AddrPart::Port)),
            "UPSTREAM_CLUSTER" => no_args(Operator::UpstreamCluster),
            "UPSTREAM_LOCAL_ADDRESS" => no_args(Operator::UpstreamLocalAddress(AddrPart::WithPort)),
            "UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT" => {
                no_args(Operator::UpstreamLocalAddress(AddrPart::WithoutPort))
            }
            "UPSTREAM_LOCAL_PORT" => no_args(Operator::UpstreamLocalAddress(AddrPart::Port)),
            "UPSTREAM_REQUEST_ATTEMPT_COUNT" => no_args(Operator::UpstreamRequestAttemptCount),
            "DOWNSTREAM_REMOTE_ADDRESS" => {
                no_args(Operator::DownstreamRemoteAddress(AddrPart::WithPort))
            }
            "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" => {
                no_args(Operator::DownstreamRemoteAddress(AddrPart::WithoutPort))
            }
            "DOWNSTREAM_REMOTE_PORT" => no_args(Operator::DownstreamRemoteAddress(AddrPart::Port)),
            "DOWNSTREAM_LOCAL_ADDRESS" => {
                no_args(Operator::DownstreamLocalAddress(AddrPart::WithPort))
            }
            "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT" => {
                no_args(Operator::DownstreamLocalAddress(AddrPart::WithoutPort))
            }
            "DOWNSTREAM_LOCAL_PORT" => no_args(Operator::DownstreamLocalAddress(AddrPart::Port)),
            "ROUTE_NAME" => no_args(Operator::RouteName),
            "REQUESTED_SERVER_NAME" => no_args(Operator::RequestedServerName),
            "HOSTNAME" => no_args(Operator::Hostname(hostname())),
            _ => Err(FormatError::UnknownOperator {
                name: name.to_owned(),
            }),
        }
    }

    /// Evaluates the operator. Never fails: everything was validated at build time.
    pub(super) fn eval<'a>(&'a self, info: &'a StreamInfo) -> Value<'a> {
        match self {
            Operator::StartTime(fmt) => {
                let mut s = String::with_capacity(32);
                fmt.render(info.start_time, &mut s);
                Value::Str(Cow::Owned(s))
            }
            Operator::Header {
                source,
                main,
                alt,
                max_len,
            } => {
                let found = lookup(*source, main, info).or_else(|| {
                    alt.as_ref()
                        .and_then(|alt_key| lookup(*source, alt_key, info))
                });
                match found {
                    Some(v) => Value::Str(truncate(v, *max_len)),
                    None => Value::Null,
                }
            }
            Operator::Protocol => Value::Str(Cow::Borrowed(info.protocol.as_str())),
            Operator::ResponseCode => Value::Num(u64::from(info.response_code.unwrap_or(0))),
            Operator::ResponseCodeDetails { allow_whitespace } => {
                match info.response_code_details.as_deref() {
                    None => Value::Null,
                    Some(d) if *allow_whitespace => Value::Str(Cow::Borrowed(d)),
                    Some(d) => Value::Str(replace_whitespace(d)),
                }
            }
            Operator::ResponseFlags => Value::Str(Cow::Owned(info.response_flags.short_string())),
            Operator::ResponseFlagsLong => {
                Value::Str(Cow::Owned(info.response_flags.long_string()))
            }
            Operator::BytesReceived => Value::Num(info.bytes_received),
            Operator::BytesSent => Value::Num(info.bytes_sent),
            Operator::Duration => millis(info.duration),
            Operator::RequestDuration => millis(info.request_duration),
            Operator::ResponseDuration => millis(info.response_duration),
            Operator::UpstreamHost(part) => address(info.upstream_host, *part),
            Operator::UpstreamCluster => non_empty(info.upstream_cluster.as_deref()),
            Operator::UpstreamLocalAddress(part) => address(info.upstream_local_address, *part),
            Operator::UpstreamRequestAttemptCount => {
                Value::Num(u64::from(info.upstream_request_attempt_count.unwrap_or(0)))
            }
            Operator::DownstreamRemoteAddress(part) => {
                address(info.downstream_remote_address, *part)
            }
            Operator::DownstreamLocalAddress(part) => address(info.downstream_local_address, *part),
            Operator::RouteName => non_empty(info.route_name.as_deref()),
            Operator::RequestedServerName => match info.requested_server_name.as_deref() {
                None | Some("") => Value::Null,
                Some(sni) => Value::Str(sanitize_sni(sni)),
            },
            Operator::Hostname(h) => match h {
                Some(h) => Value::Str(Cow::Borrowed(h)),
                None => Value::Null,
            },
        }
    }
}

fn header_operator(
    name: &str,
    source: HeaderSource,
    arg: Option<&str>,
    max_len: Option<usize>,
) -> Result<Operator, FormatError> {
    let Some(arg) = arg else {
        return Err(FormatError::MissingArgument {
            name: name.to_owned(),
            example: "x-request-id",
        });
    };
    let invalid = |reason: String| FormatError::InvalidArgument {
        name: name.to_owned(),
        arg: arg.to_owned(),
        reason,
    };
    let mut parts = arg.split('?');
    let main = parts.next().unwrap_or("");
    let alt = parts.next();
    if parts.next().is_some() {
        return Err(invalid(
            "more than one alternative header (use X?Y)".to_owned(),
        ));
    }
    if main.is_empty() {
        return Err(invalid("empty header name".to_owned()));
    }
    let main = header_key(source, main).map_err(invalid)?;
    let alt = match alt {
        None | Some("") => None,
        Some(a) => Some(header_key(source, a).map_err(invalid)?),
    };
    Ok(Operator::Header {
        source,
        main,
        alt,
        max_len,
    })
}

/// Header names are case-insensitive: they are lowercased here once.
fn header_key(source: HeaderSource, raw: &str) -> Result<HeaderKey, String> {
    let lower = raw.to_ascii_lowercase();
    if let Some(pseudo) = lower.strip_prefix(':') {
        return match (source, pseudo) {
            (HeaderSource::Request, "method") => Ok(HeaderKey::Method),
            (HeaderSource::Request, "path") => Ok(HeaderKey::Path),
            (HeaderSource::Request, "authority") => Ok(HeaderKey::Authority),
            (HeaderSource::Request, "scheme") => Ok(HeaderKey::Scheme),
            (HeaderSource::Response, "status") => Ok(HeaderKey::Status),
            _ => Err(format!(
                "pseudo header {raw} is not available here; REQ supports :method, :path, \
                 :authority and :scheme, RESP supports :status, TRAILER none"
            )),
        };
    }
    if source == HeaderSource::Request {
        match lower.as_str() {
            "host" => return Ok(HeaderKey::Authority),
            "x-envoy-original-path" => return Ok(HeaderKey::OriginalPath),
            _ => {}
        }
    }
    http::HeaderName::from_bytes(lower.as_bytes())
        .map(HeaderKey::Named)
        .map_err(|_| format!("{raw:?} is not a valid header name"))
}

fn lookup<'a>(source: HeaderSource, key: &HeaderKey, info: &'a StreamInfo) -> Option<Cow<'a, str>> {
    let map = match source {
        HeaderSource::Request => &info.request_headers,
        HeaderSource::Response => info.response_headers.as_ref()?,
        HeaderSource::Trailer => info.response_trailers.as_ref()?,
    };
    match key {
        HeaderKey::Method => Some(Cow::Borrowed(info.method.as_str())),
        HeaderKey::Path => (!info.path.is_empty()).then_some(Cow::Borrowed(info.path.as_str())),
        HeaderKey::Authority => info
            .authority
            .as_deref()
            .map(Cow::Borrowed)
            .or_else(|| header_value(map, &http::header::HOST)),
        HeaderKey::Scheme => info.scheme.as_deref().map(Cow::Borrowed),
        HeaderKey::Status => info.response_code.map(|c| Cow::Owned(c.to_string())),
        HeaderKey::OriginalPath => info
            .original_path
            .as_deref()
            .map(Cow::Borrowed)
            .or_else(|| header_value(map, "x-envoy-original-path")),
        HeaderKey::Named(name) => header_value(map, name),
    }
}

/// First value of a header (Envoy logs the first of repeated headers). Values that
/// are not UTF-8 (obs-text) are logged lossily rather than dropped.
fn header_value<'a>(
    map: &'a http::HeaderMap,
    name: impl http::header::AsHeaderName,
) -> Option<Cow<'a, str>> {
    map.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()))
}

/// Envoy truncates to `max_len` bytes; we cut at the last char boundary at or
/// below that so the output stays valid UTF-8.
fn truncate(v: Cow<'_, str>, max_len: Option<usize>) -> Cow<'_, str> {
    let Some(max) = max_len else { return v };
    if v.len() <= max {
        return v;
    }
    let mut cut = max;
    while !v.is_char_boundary(cut) {
        cut -= 1;
    }
    match v {
        Cow::Borrowed(s) => Cow::Borrowed(&s[..cut]),
        Cow::Owned(mut s) => {
            s.truncate(cut);
            Cow::Owned(s)
        }
    }
}

fn millis(d: Option<std::time::Duration>) -> Value<'static> {
    match d {
        Some(d) => Value::Num(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        None => Value::Null,
    }
}

fn non_empty(s: Option<&str>) -> Value<'_> {
    match s {
        None | Some("") => Value::Null,
        Some(s) => Value::Str(Cow::Borrowed(s)),
    }
}

fn address(addr: Option<SocketAddr>, part: AddrPart) -> Value<'static> {
    match (addr, part) {
        (None, _) => Value::Null,
        (Some(a), AddrPart::WithPort) => Value::Str(Cow::Owned(a.to_string())),
        (Some(a), AddrPart::WithoutPort) => Value::Str(Cow::Owned(a.ip().to_string())),
        (Some(a), AddrPart::Port) => Value::Num(u64::from(a.port())),
    }
}

/// Envoy's `StringUtil::replaceAllEmptySpace`: details must stay one token so
/// space-separated log lines remain parseable.
fn replace_whitespace(s: &str) -> Cow<'_, str> {
    const WS: [char; 6] = [' ', '\t', '\x0c', '\x0b', '\n', '\r'];
    if s.contains(WS) {
        Cow::Owned(s.replace(WS, "_"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Envoy's `StringUtil::sanitizeInvalidHostname`: SNI is client-controlled, so
/// anything but `[A-Za-z0-9.-]` becomes `_` and the value gets an `invalid:` prefix.
fn sanitize_sni(s: &str) -> Cow<'_, str> {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-';
    if s.chars().all(ok) {
        return Cow::Borrowed(s);
    }
    let cleaned: String = s.chars().map(|c| if ok(c) { c } else { '_' }).collect();
    Cow::Owned(format!("invalid:{cleaned}"))
}

/// The machine's host name, read once per process. Without libc we read the
/// kernel's value, then `/etc/hostname`, then `$HOSTNAME`.
fn hostname() -> Option<String> {
    static HOSTNAME: OnceLock<Option<String>> = OnceLock::new();
    HOSTNAME
        .get_or_init(|| {
            ["/proc/sys/kernel/hostname", "/etc/hostname"]
                .iter()
                .filter_map(|p| std::fs::read_to_string(p).ok())
                .chain(std::env::var("HOSTNAME").ok())
                .map(|s| s.trim().to_owned())
                .find(|s| !s.is_empty())
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_operator_builds() {
        let list = SUPPORTED_OPERATORS.split(" (and").next().unwrap();
        for entry in list.split(", ") {
            let (name, arg, len) = match entry.split_once('(') {
                None => (entry, None, None),
                Some((n, rest)) if n == "REQ" || n == "RESP" || n == "TRAILER" => {
                    let _ = rest;
                    (n, Some("x-a?x-b"), Some(3))
                }
                Some((n, _)) if n == "START_TIME" => (n, Some("%s"), None),
                Some((n, _)) => (n, Some("ALLOW_WHITESPACES"), None),
            };
            Operator::build(name, arg, len).unwrap_or_else(|e| panic!("{entry}: {e}"));
        }
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate(Cow::Borrowed("abcdef"), Some(3)), "abc");
        assert_eq!(truncate(Cow::Borrowed("abc"), Some(3)), "abc");
        assert_eq!(truncate(Cow::Borrowed("abc"), Some(0)), "");
        assert_eq!(truncate(Cow::Owned("héllo".into()), Some(2)), "h");
        assert_eq!(truncate(Cow::Borrowed("héllo"), Some(3)), "hé");
        assert_eq!(truncate(Cow::Borrowed("abc"), None), "abc");
    }

    #[test]
    fn whitespace_and_sni_sanitizing() {
        assert_eq!(replace_whitespace("via upstream\tx"), "via_upstream_x");
        assert!(matches!(
            replace_whitespace("via_upstream"),
            Cow::Borrowed(_)
        ));
        assert_eq!(sanitize_sni("api.example-1.com"), "api.example-1.com");
        assert_eq!(sanitize_sni("bad host\"x"), "invalid:bad_host_x");
    }
}

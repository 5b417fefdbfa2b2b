//! The live request tap: access-log lines of the proxies, parsed. Reads Envoy's default text
//! format (what `StdoutAccessLog` and `access_log_path` write unless told otherwise) and JSON
//! formats with the usual key names; any other line is not a request and is skipped.

use serde_json::Value;

/// One request, as a proxy logged it.
#[derive(Debug, Clone, PartialEq)]
pub struct TapEntry {
    /// The proxy pod that logged it (`front-envoy#1`).
    pub proxy: String,
    /// `HH:MM:SS.mmm` of the request's start, as logged.
    pub time: String,
    pub method: String,
    pub authority: String,
    pub path: String,
    /// 0 when no response was sent.
    pub status: u16,
    /// Envoy's response flags (`UH`, `UF,URX`…); `-` when none.
    pub flags: String,
    pub duration_ms: Option<u64>,
    /// `ip:port` of the endpoint that served it; `-` when none did.
    pub upstream: String,
    /// The proxy's cluster that has `upstream` as an endpoint (filled in by the model, which
    /// knows the clusters).
    pub cluster: Option<String>,
}

/// Parses one log line of `proxy`, or `None` when it is not an access-log entry.
pub fn parse(proxy: &str, line: &str) -> Option<TapEntry> {
    let line = line.trim();
    if line.starts_with('{') {
        parse_json(proxy, line)
    } else if line.starts_with('[') {
        parse_default(proxy, line)
    } else {
        None
    }
}

/// `[START] "METHOD PATH PROTO" CODE FLAGS RX TX DURATION UPSTREAM_TIME "XFF" "UA" "ID"
/// "AUTHORITY" "UPSTREAM_HOST"`.
fn parse_default(proxy: &str, line: &str) -> Option<TapEntry> {
    let (start, rest) = line[1..].split_once("] \"")?;
    let (request, rest) = rest.split_once('"')?;
    let mut request_parts = request.split(' ');
    let method = request_parts.next()?.to_string();
    let path = request_parts.next().unwrap_or("-").to_string();
    let mut fields = rest.split_whitespace();
    let status = fields.next()?.parse().ok()?;
    let flags = fields.next()?.to_string();
    let _received = fields.next()?;
    let _sent = fields.next()?;
    let duration_ms = fields.next()?.parse().ok();
    // The rest is quoted: XFF, user agent, request id, authority, upstream host.
    let quoted: Vec<&str> = rest.split('"').skip(1).step_by(2).collect();
    Some(TapEntry {
        proxy: proxy.to_string(),
        time: clock(start),
        method,
        authority: quoted.get(3).copied().unwrap_or("-").to_string(),
        path,
        status,
        flags,
        duration_ms,
        upstream: quoted.get(4).copied().unwrap_or("-").to_string(),
        cluster: None,
    })
}

fn parse_json(proxy: &str, line: &str) -> Option<TapEntry> {
    let doc: Value = serde_json::from_str(line).ok()?;
    let text = |keys: &[&str]| {
        keys.iter().find_map(|k| match &doc[*k] {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let status = text(&["response_code", "status", "code"])?.parse().ok()?;
    let method = text(&["method", ":method", "request_method"])?;
    Some(TapEntry {
        proxy: proxy.to_string(),
        time: text(&["start_time", "timestamp", "time"])
            .map(|t| clock(&t))
            .unwrap_or_default(),
        method,
        authority: text(&["authority", ":authority", "host"]).unwrap_or_else(|| "-".into()),
        path: text(&["path", "x-envoy-original-path", ":path", "request_path"])
            .unwrap_or_else(|| "-".into()),
        status,
        flags: text(&["response_flags", "flags"]).unwrap_or_else(|| "-".into()),
        duration_ms: text(&["duration", "duration_ms"]).and_then(|d| d.parse().ok()),
        upstream: text(&["upstream_host", "upstream"]).unwrap_or_else(|| "-".into()),
        cluster: None,
    })
}

/// `2026-11-21T19:56:31.164Z` → `19:56:31.164`; anything else as it came.
fn clock(start: &str) -> String {
    match start.split_once('T') {
        Some((_, time)) => time.trim_end_matches('Z').chars().take(12).collect(),
        None => start.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoys_default_format() {
        let line = r#"[2026-11-21T19:56:31.164Z] "GET /service/1 HTTP/1.1" 200 - 0 82 3 2 "-" "curl/8.5.0" "4b0c-77" "localhost:8080" "127.0.3.2:8000""#;
        let e = parse("front-envoy#1", line).unwrap();
        assert_eq!(
            (
                e.time.as_str(),
                e.method.as_str(),
                e.path.as_str(),
                e.status
            ),
            ("19:56:31.164", "GET", "/service/1", 200)
        );
        assert_eq!(
            (
                e.flags.as_str(),
                e.duration_ms,
                e.authority.as_str(),
                e.upstream.as_str()
            ),
            ("-", Some(3), "localhost:8080", "127.0.3.2:8000")
        );
        let failed = r#"[2026-11-21T19:56:32.000Z] "GET /service/2 HTTP/1.1" 503 UH 0 19 0 - "-" "curl/8.5.0" "1" "localhost:8080" "-""#;
        let e = parse("front-envoy#1", failed).unwrap();
        assert_eq!(
            (e.status, e.flags.as_str(), e.upstream.as_str()),
            (503, "UH", "-")
        );
    }

    #[test]
    fn json_formats_with_common_keys() {
        let line = r#"{"method":"POST","path":"/user","response_code":201,"duration":12,"upstream_host":"10.0.0.2:80","authority":"api"}"#;
        let e = parse("edge#1", line).unwrap();
        assert_eq!(
            (e.method.as_str(), e.status, e.duration_ms),
            ("POST", 201, Some(12))
        );
    }

    #[test]
    fn other_lines_are_not_requests() {
        assert_eq!(parse("p", "2026-11-21T19:56:31Z  INFO listening"), None);
        assert_eq!(parse("p", "[info] starting"), None);
        assert_eq!(parse("p", r#"{"level":"info"}"#), None);
        assert_eq!(parse("p", ""), None);
    }
}

//! Request-head checks the codecs leave to the application: the URI length (414), the header
//! count on HTTP/2 (hyper counts headers only for HTTP/1), and RFC 9112 §3.2's Host rules.

use http::header::HOST;
use http::request::Parts;
use http::Version;

/// The longest `:path` (path and query) accepted. Envoy bounds the URI only through
/// `max_request_headers_kb`; hyper's own 414 (64 KiB) can never fire behind a 60 KiB head
/// budget. 8 KiB is the request-line limit of nginx (`large_client_header_buffers`) and Apache
/// (`LimitRequestLine`), so applications already live within it.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Why a request head is refused before routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadRejection {
    #[error("the request URI is {0} bytes, over the limit of {MAX_URI_BYTES}")]
    UriTooLong(usize),
    #[error("{count} request headers, over the limit of {limit}")]
    TooManyHeaders { count: usize, limit: usize },
    #[error("an HTTP/1.1 request without a Host header")]
    MissingHost,
    #[error("more than one Host header")]
    MultipleHosts,
}

impl HeadRejection {
    pub fn status(self) -> u16 {
        match self {
            HeadRejection::UriTooLong(_) => 414,
            HeadRejection::TooManyHeaders { .. } => 431,
            HeadRejection::MissingHost | HeadRejection::MultipleHosts => 400,
        }
    }

    /// `%RESPONSE_CODE_DETAILS%`; Envoy's wording where Envoy has the same check.
    pub fn details(self, version: Version) -> &'static str {
        match self {
            HeadRejection::UriTooLong(_) => "uri_too_long",
            HeadRejection::TooManyHeaders { .. } if version == Version::HTTP_2 => {
                "http2.too_many_headers"
            }
            HeadRejection::TooManyHeaders { .. } => "http1.too_many_headers",
            HeadRejection::MissingHost => "missing_host_header",
            HeadRejection::MultipleHosts => "duplicate_host_header",
        }
    }
}

/// Checks a request head against the limits; `max_headers` is the HCM's
/// `common_http_protocol_options.max_headers_count`.
pub fn check(parts: &Parts, max_headers: usize) -> Result<(), HeadRejection> {
    let uri_len = parts.uri.path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return Err(HeadRejection::UriTooLong(uri_len));
    }
    // `len` counts every value, so repeated names count each time, as on the wire.
    let count = parts.headers.len();
    if count > max_headers {
        return Err(HeadRejection::TooManyHeaders {
            count,
            limit: max_headers,
        });
    }
    if parts.version < Version::HTTP_2 {
        let hosts = parts.headers.get_all(HOST).iter().count();
        if hosts > 1 {
            return Err(HeadRejection::MultipleHosts);
        }
        // An absolute-form target carries the authority itself (RFC 9112 §3.2.2).
        if hosts == 0 && parts.version == Version::HTTP_11 && parts.uri.authority().is_none() {
            return Err(HeadRejection::MissingHost);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(version: Version, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().version(version).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn ordinary_requests_pass() {
        let p = parts(Version::HTTP_11, "/a?b=c", &[("host", "x")]);
        assert_eq!(check(&p, 100), Ok(()));
        let p = parts(Version::HTTP_2, "http://x/a", &[]);
        assert_eq!(check(&p, 100), Ok(()));
        let p = parts(Version::HTTP_10, "/", &[]);
        assert_eq!(check(&p, 100), Ok(()), "HTTP/1.0 needs no Host");
    }

    #[test]
    fn long_uris_get_414_at_the_limit_plus_one() {
        let at = format!("/{}", "a".repeat(MAX_URI_BYTES - 1));
        assert_eq!(
            check(&parts(Version::HTTP_11, &at, &[("host", "x")]), 100),
            Ok(())
        );
        let over = format!("{at}b");
        let err = check(&parts(Version::HTTP_2, &over, &[]), 100).unwrap_err();
        assert_eq!(err, HeadRejection::UriTooLong(MAX_URI_BYTES + 1));
        assert_eq!(err.status(), 414);
    }

    #[test]
    fn header_count_counts_repeated_names() {
        let many: Vec<(String, String)> = (0..6).map(|i| ("x-a".into(), i.to_string())).collect();
        let refs: Vec<(&str, &str)> = many.iter().map(|(k, v)| (&**k, &**v)).collect();
        let p = parts(Version::HTTP_2, "/", &refs);
        assert_eq!(check(&p, 6), Ok(()));
        let err = check(&p, 5).unwrap_err();
        assert_eq!(err, HeadRejection::TooManyHeaders { count: 6, limit: 5 });
        assert_eq!(
            (err.status(), err.details(Version::HTTP_2)),
            (431, "http2.too_many_headers")
        );
    }

    #[test]
    fn host_rules_of_rfc_9112() {
        let p = parts(Version::HTTP_11, "/", &[]);
        assert_eq!(check(&p, 100), Err(HeadRejection::MissingHost));
        let p = parts(Version::HTTP_11, "http://x/", &[]);
        assert_eq!(
            check(&p, 100),
            Ok(()),
            "absolute form carries the authority"
        );
        let p = parts(Version::HTTP_11, "/", &[("host", "a"), ("host", "b")]);
        assert_eq!(check(&p, 100), Err(HeadRejection::MultipleHosts));
        let p = parts(Version::HTTP_10, "/", &[("host", "a"), ("host", "a")]);
        assert_eq!(check(&p, 100), Err(HeadRejection::MultipleHosts));
    }
}

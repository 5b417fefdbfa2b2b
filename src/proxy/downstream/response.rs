//! Writing a response head for the HTTP/1.1 fast path, with hyper's server rules (which are
//! what clients saw before this path existed): a length from the body or its
//! `Content-Length`, chunked when unknown, no body for HEAD, 204 and 304, a `date` header,
//! and `connection: close` when the connection ends after this response.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRAILER, TRANSFER_ENCODING};
use http::{HeaderName, HeaderValue, StatusCode};

use super::request::RequestFacts;
use crate::proxy::headers::header_tokens;
use crate::proxy::http1_wire::{content_length, write_header_line};

/// What the body is known to hold before it is read (hyper's `BodyLength`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodySize {
    /// Already at its end.
    Empty,
    Exact(u64),
    Unknown,
}

/// How the body goes on the wire.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyEncoding {
    /// Exactly this many bytes (0: nothing is written, whatever the body holds).
    Length(u64),
    /// Chunks; trailers named here are sent (those the response's `trailer` header lists,
    /// when the client said `TE: trailers`).
    Chunked(Vec<HeaderName>),
}

/// Writes the status line and headers of `parts` to `out` and says how to write the body.
/// `keep_alive` comes in as the request allows and goes out false if the response closes
/// the connection.
pub fn write_head(
    out: &mut BytesMut,
    parts: &mut http::response::Parts,
    request: &RequestFacts,
    size: BodySize,
    keep_alive: &mut bool,
) -> BodyEncoding {
    let status = parts.status;
    if !*keep_alive {
        let close =
            header_tokens(&parts.headers, &CONNECTION).any(|t| t.eq_ignore_ascii_case("close"));
        if !close {
            parts
                .headers
                .append(CONNECTION, HeaderValue::from_static("close"));
        }
    }
    if status == StatusCode::OK {
        out.put_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.put_slice(b"HTTP/1.1 ");
        out.put_slice(status.as_str().as_bytes());
        out.put_u8(b' ');
        out.put_slice(status.canonical_reason().unwrap_or("<none>").as_bytes());
        out.put_slice(b"\r\n");
    }
    let can_chunk = !request.head && !no_body_status(status);
    let mut encoding = None;
    let mut wrote_date = false;
    let mut trailers = Vec::new();
    for (name, value) in &parts.headers {
        match *name {
            CONTENT_LENGTH => match size {
                _ if encoding.is_some() => continue,
                BodySize::Exact(n) => encoding = Some(BodyEncoding::Length(n)),
                BodySize::Unknown => {
                    let Some(n) = content_length(&parts.headers) else {
                        continue;
                    };
                    encoding = Some(BodyEncoding::Length(n));
                }
                // No body, yet a length: kept only for HEAD (the length a GET would have).
                BodySize::Empty if request.head => encoding = Some(BodyEncoding::Length(0)),
                BodySize::Empty => continue,
            },
            TRANSFER_ENCODING if !can_chunk => continue,
            TRANSFER_ENCODING if encoding.is_none() => {
                encoding = Some(BodyEncoding::Chunked(Vec::new()));
            }
            TRAILER if !can_chunk => continue,
            TRAILER => trailers.extend(
                value
                    .to_str()
                    .into_iter()
                    .flat_map(|v| v.split(','))
                    .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok()),
            ),
            CONNECTION => {
                *keep_alive &= !value
                    .to_str()
                    .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
            }
            DATE => wrote_date = true,
            _ => {}
        }
        write_header_line(out, name, value);
    }
    if matches!(encoding, Some(BodyEncoding::Chunked(_)))
        && !header_tokens(&parts.headers, &TRANSFER_ENCODING)
            .last()
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        out.put_slice(b"transfer-encoding: chunked\r\n");
    }
    let encoding = match encoding {
        Some(e) => e,
        None => match size {
            BodySize::Unknown if can_chunk => {
                out.put_slice(b"transfer-encoding: chunked\r\n");
                BodyEncoding::Chunked(Vec::new())
            }
            BodySize::Unknown => BodyEncoding::Length(0),
            BodySize::Empty | BodySize::Exact(0) => {
                if !request.head && !no_body_status(status) {
                    out.put_slice(b"content-length: 0\r\n");
                }
                BodyEncoding::Length(0)
            }
            BodySize::Exact(n) => {
                if no_body_status(status) {
                    BodyEncoding::Length(0)
                } else {
                    // (`BytesMut` formats in place; nothing is allocated.)
                    let _ = write!(out, "content-length: {n}\r\n");
                    BodyEncoding::Length(n)
                }
            }
        },
    };
    if !wrote_date {
        out.put_slice(b"date: ");
        with_date(|date| out.put_slice(date.as_bytes()));
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
    if request.head || no_body_status(status) {
        return BodyEncoding::Length(0);
    }
    match encoding {
        BodyEncoding::Chunked(_) if request.te_trailers => BodyEncoding::Chunked(trailers),
        BodyEncoding::Chunked(_) => BodyEncoding::Chunked(Vec::new()),
        length => length,
    }
}

/// 1xx, 204 and 304 responses carry no body.
fn no_body_status(status: StatusCode) -> bool {
    status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

/// The IMF-fixdate of now, formatted once a second per thread.
fn with_date<R>(f: impl FnOnce(&HeaderValue) -> R) -> R {
    thread_local! {
        static CACHED: RefCell<(u64, HeaderValue)> =
            const { RefCell::new((u64::MAX, HeaderValue::from_static(""))) };
    }
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHED.with_borrow_mut(|(at, value)| {
        if *at != second {
            *at = second;
            *value = HeaderValue::try_from(httpdate::fmt_http_date(now))
                .expect("an HTTP date is a valid header value");
        }
        f(value)
    })
}

/// The `date` header for a response that has none (HTTP/2): the cached value, shared.
pub fn date_value() -> HeaderValue {
    with_date(HeaderValue::clone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(head: bool, te_trailers: bool) -> RequestFacts {
        RequestFacts {
            keep_alive: true,
            head,
            te_trailers,
        }
    }

    fn head_of(
        status: u16,
        headers: &[(&str, &str)],
        request: RequestFacts,
        size: BodySize,
    ) -> (String, BodyEncoding, bool) {
        let mut b = http::Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut parts = b.body(()).unwrap().into_parts().0;
        let mut out = BytesMut::new();
        let mut keep_alive = request.keep_alive;
        let encoding = write_head(&mut out, &mut parts, &request, size, &mut keep_alive);
        let text = String::from_utf8(out.to_vec()).unwrap();
        // The date changes; check it is there, then leave it out.
        let date_line = text
            .lines()
            .find(|l| l.starts_with("date: "))
            .map(str::to_string);
        let text = match date_line {
            Some(line) => {
                assert!(line.ends_with(" GMT"), "{line}");
                text.replace(&format!("{line}\r\n"), "")
            }
            None => text,
        };
        (text, encoding, keep_alive)
    }

    #[test]
    fn lengths_as_hyper_writes_them() {
        let (text, enc, ka) = head_of(
            200,
            &[("content-length", "2"), ("server", "envoy")],
            facts(false, false),
            BodySize::Exact(2),
        );
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nserver: envoy\r\n\r\n"
        );
        assert_eq!(enc, BodyEncoding::Length(2));
        assert!(ka);

        let (text, enc, _) = head_of(404, &[], facts(false, false), BodySize::Empty);
        assert_eq!(text, "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(enc, BodyEncoding::Length(0));

        let (text, enc, _) = head_of(503, &[], facts(false, false), BodySize::Exact(19));
        assert_eq!(
            text,
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 19\r\n\r\n"
        );
        assert_eq!(enc, BodyEncoding::Length(19));

        let (text, enc, _) = head_of(
            200,
            &[("content-length", "7")],
            facts(false, false),
            BodySize::Unknown,
        );
        assert_eq!(text, "HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n");
        assert_eq!(enc, BodyEncoding::Length(7));
    }

    #[test]
    fn unknown_lengths_are_chunked_and_trailers_need_te_and_a_trailer_header() {
        let (text, enc, _) = head_of(200, &[], facts(false, false), BodySize::Unknown);
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        assert_eq!(enc, BodyEncoding::Chunked(vec![]));

        let (_, enc, _) = head_of(
            200,
            &[("trailer", "grpc-status")],
            facts(false, true),
            BodySize::Unknown,
        );
        assert_eq!(
            enc,
            BodyEncoding::Chunked(vec![HeaderName::from_static("grpc-status")])
        );
        let (_, enc, _) = head_of(
            200,
            &[("trailer", "grpc-status")],
            facts(false, false),
            BodySize::Unknown,
        );
        assert_eq!(enc, BodyEncoding::Chunked(vec![]));
    }

    #[test]
    fn head_204_and_304_have_no_body() {
        let (text, enc, _) = head_of(
            200,
            &[("content-length", "9")],
            facts(true, false),
            BodySize::Empty,
        );
        assert_eq!(text, "HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n");
        assert_eq!(enc, BodyEncoding::Length(0));
        let (text, enc, _) = head_of(204, &[], facts(false, false), BodySize::Empty);
        assert_eq!(text, "HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(enc, BodyEncoding::Length(0));
        let (text, _, _) = head_of(304, &[], facts(false, false), BodySize::Unknown);
        assert_eq!(text, "HTTP/1.1 304 Not Modified\r\n\r\n");
    }

    #[test]
    fn closing_responses_say_so() {
        let mut request = facts(false, false);
        request.keep_alive = false;
        let (text, _, ka) = head_of(200, &[], request, BodySize::Empty);
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
        );
        assert!(!ka);
        let (_, _, ka) = head_of(
            400,
            &[("connection", "close")],
            facts(false, false),
            BodySize::Empty,
        );
        assert!(!ka, "the response closes the connection");
    }
}

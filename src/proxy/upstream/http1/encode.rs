//! Writing a request: its head, and how its body is framed on the wire (hyper's client rules,
//! which is what meshsim sent before this client was its own).

use bytes::{BufMut, BytesMut};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method};

use crate::proxy::headers::header_tokens;
use crate::proxy::http1_wire::{content_length, write_header_line};

/// How the request body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// Exactly this many bytes (`Content-Length`); 0 for no body.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Decides the framing of a request body and makes the headers say so: a body known to be
/// empty is sent as nothing; a `Content-Length` already there is kept; a body of known size
/// gets one; an unknown size goes chunked, except for GET, HEAD and CONNECT, which (as in
/// hyper's client) send no body at all.
pub fn body_framing(
    method: &Method,
    headers: &mut HeaderMap,
    end_of_stream: bool,
    exact_size: Option<u64>,
) -> BodyFraming {
    if end_of_stream {
        headers.remove(TRANSFER_ENCODING);
        return BodyFraming::Length(0);
    }
    if headers.contains_key(TRANSFER_ENCODING) {
        headers.remove(CONTENT_LENGTH);
        let chunked_last = header_tokens(headers, &TRANSFER_ENCODING)
            .last()
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
        if !chunked_last {
            headers.append(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        }
        return BodyFraming::Chunked;
    }
    if let Some(length) = content_length(headers) {
        return BodyFraming::Length(length);
    }
    match exact_size {
        Some(n) => {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
            BodyFraming::Length(n)
        }
        None if matches!(*method, Method::GET | Method::HEAD | Method::CONNECT) => {
            BodyFraming::Length(0)
        }
        None => {
            headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
            BodyFraming::Chunked
        }
    }
}

/// Appends `METHOD target HTTP/1.1`, the headers in map order, and the blank line.
pub fn write_head(dst: &mut BytesMut, method: &Method, target: &str, headers: &HeaderMap) {
    let size: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    dst.reserve(method.as_str().len() + target.len() + 13 + size + 2);
    dst.put_slice(method.as_str().as_bytes());
    dst.put_u8(b' ');
    dst.put_slice(target.as_bytes());
    dst.put_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        write_header_line(dst, name, value);
    }
    dst.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::test_support::header_map;

    #[test]
    fn framing_follows_hyper_client_rules() {
        let mut h = header_map(&[("transfer-encoding", "chunked")]);
        assert_eq!(
            body_framing(&Method::POST, &mut h, true, Some(0)),
            BodyFraming::Length(0)
        );
        assert!(
            !h.contains_key(TRANSFER_ENCODING),
            "an empty body is not chunked"
        );

        let mut h = header_map(&[("content-length", "10")]);
        assert_eq!(
            body_framing(&Method::POST, &mut h, false, None),
            BodyFraming::Length(10)
        );

        let mut h = header_map(&[]);
        assert_eq!(
            body_framing(&Method::PUT, &mut h, false, Some(7)),
            BodyFraming::Length(7)
        );
        assert_eq!(h[CONTENT_LENGTH], "7");

        let mut h = header_map(&[]);
        assert_eq!(
            body_framing(&Method::POST, &mut h, false, None),
            BodyFraming::Chunked
        );
        assert_eq!(h[TRANSFER_ENCODING], "chunked");

        let mut h = header_map(&[]);
        assert_eq!(
            body_framing(&Method::GET, &mut h, false, None),
            BodyFraming::Length(0)
        );
        assert!(h.is_empty());

        let mut h = header_map(&[("transfer-encoding", "gzip"), ("content-length", "3")]);
        assert_eq!(
            body_framing(&Method::POST, &mut h, false, None),
            BodyFraming::Chunked
        );
        let te: Vec<_> = h.get_all(TRANSFER_ENCODING).iter().collect();
        assert_eq!(te, ["gzip", "chunked"]);
        assert!(!h.contains_key(CONTENT_LENGTH));
    }

    #[test]
    fn the_head_is_written_as_on_the_wire() {
        let mut dst = BytesMut::new();
        write_head(
            &mut dst,
            &Method::GET,
            "/a?b=1",
            &header_map(&[("host", "x"), ("accept", "*/*"), ("accept", "text/plain")]),
        );
        assert_eq!(
            &dst[..],
            b"GET /a?b=1 HTTP/1.1\r\nhost: x\r\naccept: */*\r\naccept: text/plain\r\n\r\n"
        );
    }
}

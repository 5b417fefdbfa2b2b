//! Parsing a request head for the HTTP/1.1 fast path, and deciding whether the fast path can
//! serve it at all.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, TE};
use http::{HeaderMap, HeaderValue, Method, Request, Uri, Version};

use crate::proxy::body::{self, Body};
use crate::proxy::headers::header_tokens;
use crate::proxy::http1_wire::{self, HeaderSpan, HeaderSpans};

/// The most headers the fast path parses; a request with more goes to hyper (which answers
/// 431 past the listener's limit).
const MAX_HEADERS: usize = 100;

/// What the front of the read buffer holds.
// Returned once per request and taken apart at once: boxing the request would cost an
// allocation per request for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Head {
    /// A request the fast path serves (its head is gone from the buffer).
    Request(Request<Body>, RequestFacts),
    /// Part of a head: more bytes are needed.
    Partial,
    /// A request the fast path does not serve, left in the buffer for hyper: one with a body,
    /// an upgrade, `Expect`, `CONNECT`, HTTP/1.0, or a head it cannot parse (hyper answers
    /// that with its 400 and counts the protocol error).
    HandOver,
}

/// What the response needs to know about the request.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts {
    /// Whether the connection may carry another request (no `Connection: close`).
    pub keep_alive: bool,
    /// `HEAD`: the response has no body.
    pub head: bool,
    /// `TE: trailers`: the client accepts trailers on a chunked response.
    pub te_trailers: bool,
}

/// Parses the request at the front of `buf`, taking at most `max_headers` headers in at most
/// `max_head_bytes`, into the `recycled` header map if there is one (see
/// [`http1_wire::header_map`]).
pub fn parse(
    buf: &mut BytesMut,
    max_headers: usize,
    max_head_bytes: usize,
    recycled: &mut Option<HeaderMap>,
) -> Head {
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let limit = max_headers.min(MAX_HEADERS);
    let parsed = httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut request,
        buf,
        &mut storage[..limit],
    );
    let len = match parsed {
        // Too long, however fast it arrived: hyper answers 431.
        Ok(httparse::Status::Complete(len)) if len > max_head_bytes => return Head::HandOver,
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(_) => return Head::HandOver,
    };
    if request.version != Some(1) {
        return Head::HandOver;
    }
    let Ok(method) = Method::from_bytes(request.method.unwrap_or("").as_bytes()) else {
        return Head::HandOver;
    };
    if method == Method::CONNECT {
        return Head::HandOver;
    }
    let mut content_length_seen = false;
    for h in request.headers.iter() {
        let name = h.name.as_bytes();
        let served = if name.eq_ignore_ascii_case(b"content-length") {
            // No body (a second one, even "0", is the smuggling checker's to refuse).
            let zero = h.value.trim_ascii() == b"0" && !content_length_seen;
            content_length_seen = true;
            zero
        } else {
            !(name.eq_ignore_ascii_case(b"transfer-encoding")
                || name.eq_ignore_ascii_case(b"expect")
                || name.eq_ignore_ascii_case(b"upgrade"))
        };
        if !served {
            return Head::HandOver;
        }
    }
    // Where each piece is, so the head can be frozen and sliced instead of copied.
    let path = request.path.unwrap_or("").as_bytes();
    let path = (http1_wire::offset_in(buf, path), path.len());
    let mut spans = HeaderSpans::new();
    http1_wire::note_spans(&mut spans, buf, request.headers);
    let head = buf.split_to(len).freeze();
    let headers = http1_wire::header_map(recycled, spans.len());
    match build(&head, method, path, &spans, headers) {
        Some(built) => built,
        None => {
            // Something `http` refuses (a malformed target): give the bytes back for hyper.
            let mut whole = BytesMut::from(&head[..]);
            whole.extend_from_slice(buf);
            *buf = whole;
            Head::HandOver
        }
    }
}

fn build(
    head: &Bytes,
    method: Method,
    (path, path_len): (usize, usize),
    spans: &[HeaderSpan],
    mut headers: HeaderMap,
) -> Option<Head> {
    let uri = Uri::from_maybe_shared(head.slice(path..path + path_len)).ok()?;
    // Noted while the names go by, so that the map is searched only for headers present.
    let (mut connection, mut te) = (false, false);
    for span in spans {
        let name = http1_wire::header_name(span.name(head)).ok()?;
        connection |= name == CONNECTION;
        te |= name == TE;
        let value = HeaderValue::from_maybe_shared(span.value(head)).ok()?;
        headers.append(name, value);
    }
    let mut keep_alive = true;
    if connection {
        for token in header_tokens(&headers, &CONNECTION) {
            if token.eq_ignore_ascii_case("upgrade") {
                return None;
            }
            keep_alive &= !token.eq_ignore_ascii_case("close");
        }
    }
    let facts = RequestFacts {
        keep_alive,
        head: method == Method::HEAD,
        te_trailers: te && header_tokens(&headers, &TE).any(|t| t.eq_ignore_ascii_case("trailers")),
    };
    let mut request = Request::new(body::empty());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Some(Head::Request(request, facts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(raw: &str) -> (Head, BytesMut) {
        let mut buf = BytesMut::from(raw);
        let head = parse(&mut buf, 100, 64 * 1024, &mut None);
        (head, buf)
    }

    #[test]
    fn a_plain_request_is_parsed_and_taken_off_the_buffer() {
        let (head, rest) = parse_str(
            "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Multi: 1\r\nx-multi: 2\r\nConnection: keep-alive\r\n\r\nGET /next",
        );
        let Head::Request(req, facts) = head else {
            panic!("served by the fast path")
        };
        assert_eq!(req.method(), Method::GET);
        assert_eq!(req.uri(), "/a?b=1");
        assert_eq!(req.version(), Version::HTTP_11);
        assert_eq!(req.headers()["host"], "x");
        let multi: Vec<_> = req.headers().get_all("x-multi").iter().collect();
        assert_eq!(multi, ["1", "2"]);
        assert!(facts.keep_alive && !facts.head && !facts.te_trailers);
        assert!(http_body::Body::is_end_stream(req.body()));
        assert_eq!(&rest[..], b"GET /next");
    }

    #[test]
    fn connection_close_head_and_te_trailers_are_noted() {
        let (head, _) = parse_str(
            "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\nTE: gzip, trailers\r\nContent-Length: 0\r\n\r\n",
        );
        let Head::Request(_, facts) = head else {
            panic!("served by the fast path")
        };
        assert!(!facts.keep_alive && facts.head && facts.te_trailers);
    }

    #[test]
    fn a_partial_head_waits_for_more() {
        let (head, rest) = parse_str("GET / HTTP/1.1\r\nHost: x\r\n");
        assert!(matches!(head, Head::Partial));
        assert_eq!(rest.len(), 25);
    }

    #[test]
    fn anything_unusual_is_left_for_hyper_untouched() {
        for raw in [
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
            "PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
            "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n\r\n",
            "CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET / HTTP/1.0\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
            "GET http://[::1 HTTP/1.1\r\nHost: x\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ] {
            let (head, rest) = parse_str(raw);
            assert!(matches!(head, Head::HandOver), "{raw:?} is hyper's");
            assert_eq!(&rest[..], raw.as_bytes(), "{raw:?} stays whole");
        }
    }

    #[test]
    fn more_headers_than_allowed_go_to_hyper() {
        let mut raw = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
        for i in 0..5 {
            raw.push_str(&format!("x-{i}: v\r\n"));
        }
        raw.push_str("\r\n");
        let mut buf = BytesMut::from(raw.as_str());
        assert!(matches!(
            parse(&mut buf, 3, 64 * 1024, &mut None),
            Head::HandOver
        ));
        let mut recycled = Some(HeaderMap::new());
        assert!(matches!(
            parse(&mut buf, 100, 64 * 1024, &mut recycled),
            Head::Request(..)
        ));
        assert!(recycled.is_none(), "the recycled map was used");
    }

    #[test]
    fn a_head_longer_than_allowed_goes_to_hyper_even_when_complete() {
        let raw = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nx-big: {}\r\n\r\n",
            "x".repeat(2000)
        );
        let mut buf = BytesMut::from(raw.as_str());
        assert!(matches!(
            parse(&mut buf, 100, 1024, &mut None),
            Head::HandOver
        ));
        assert_eq!(buf.len(), raw.len(), "left for hyper, which answers 431");
        assert!(matches!(
            parse(&mut buf, 100, 4096, &mut None),
            Head::Request(..)
        ));
    }
}

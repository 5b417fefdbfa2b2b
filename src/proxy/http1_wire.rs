//! HTTP/1.1 wire pieces our upstream client and our downstream server share: header lines,
//! chunked framing, and the `Content-Length` a message declares.

use bytes::{BufMut, BytesMut};
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, HeaderName, HeaderValue};

/// Room for the headers the proxy adds to a message it has parsed (`x-forwarded-proto`,
/// `x-envoy-expected-rq-timeout-ms`, `server`, `x-envoy-upstream-service-time`, ...): a map
/// sized to the parsed headers alone grows, rehashing, on the first one added.
pub const ADDED_HEADERS: usize = 8;

/// The header map for a message just parsed, with `parsed` headers: the `recycled` map of an
/// earlier message on the same connection (cleared, its allocation kept) when there is one.
/// Two maps travel with each proxied request (the request's, the response's); recycled, steady
/// traffic allocates none, where each fresh map cost two allocations past glibc's per-thread
/// cache.
///
/// A recycled map is grown only if the parsed headers alone would not fit: it has already
/// carried a message with the proxy's additions. (Grown to fit `ADDED_HEADERS` more as well,
/// the map an HTTP/2 request arrives in, sized by h2 for that request's own headers and
/// recycled for its upstream response, was reallocated on every h2c request, outside glibc's
/// per-thread cache.)
pub fn header_map(recycled: &mut Option<HeaderMap>, parsed: usize) -> HeaderMap {
    match recycled.take() {
        Some(mut map) => {
            map.clear();
            map.reserve(parsed);
            map
        }
        None => HeaderMap::with_capacity(parsed + ADDED_HEADERS),
    }
}

/// Keeps `map`'s allocation for the next message (its values are dropped now).
pub fn recycle(recycled: &mut Option<HeaderMap>, mut map: HeaderMap) {
    map.clear();
    *recycled = Some(map);
}

/// `name: value` and CRLF.
pub fn write_header_line(dst: &mut BytesMut, name: &HeaderName, value: &HeaderValue) {
    dst.put_slice(name.as_str().as_bytes());
    dst.put_slice(b": ");
    dst.put_slice(value.as_bytes());
    dst.put_slice(b"\r\n");
}

/// The `Content-Length` the headers agree on (several equal values count as one).
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    let mut found = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for part in value.to_str().ok()?.split(',') {
            let n: u64 = part.trim().parse().ok()?;
            if found.is_some_and(|f| f != n) {
                return None;
            }
            found = Some(n);
        }
    }
    found
}

/// One chunk of a chunked body: size line, data, CRLF.
pub fn write_chunk(dst: &mut BytesMut, data: &[u8]) {
    if data.is_empty() {
        // A zero-size chunk would end the body.
        return;
    }
    dst.reserve(data.len() + 20);
    dst.put_slice(format!("{:X}\r\n", data.len()).as_bytes());
    dst.put_slice(data);
    dst.put_slice(b"\r\n");
}

/// The last chunk, with trailers if any.
pub fn write_last_chunk(dst: &mut BytesMut, trailers: Option<&HeaderMap>) {
    dst.put_slice(b"0\r\n");
    for (name, value) in trailers.into_iter().flatten() {
        write_header_line(dst, name, value);
    }
    dst.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::test_support::header_map;

    #[test]
    fn a_recycled_map_is_reused_as_it_is_when_the_parsed_headers_fit() {
        let mut recycled = Some(HeaderMap::with_capacity(12));
        let capacity = recycled.as_ref().unwrap().capacity();
        let map = super::header_map(&mut recycled, 10);
        assert!(recycled.is_none(), "the recycled map was taken");
        assert!(map.is_empty());
        assert_eq!(
            map.capacity(),
            capacity,
            "not grown for additions it may never need"
        );

        // Too small for the parsed headers themselves: grown to fit them.
        let mut recycled = Some(HeaderMap::with_capacity(4));
        assert!(super::header_map(&mut recycled, 20).capacity() >= 20);
        // None to recycle: a fresh map with room for the proxy's additions too.
        assert!(super::header_map(&mut None, 5).capacity() >= 5 + ADDED_HEADERS);
    }

    #[test]
    fn content_length_accepts_repeats_of_one_value_only() {
        assert_eq!(
            content_length(&header_map(&[("content-length", "5")])),
            Some(5)
        );
        assert_eq!(
            content_length(&header_map(&[("content-length", "5, 5")])),
            Some(5)
        );
        assert_eq!(
            content_length(&header_map(&[
                ("content-length", "5"),
                ("content-length", "6")
            ])),
            None
        );
        assert_eq!(
            content_length(&header_map(&[("content-length", "x")])),
            None
        );
    }

    #[test]
    fn chunks_are_framed_as_on_the_wire() {
        let mut dst = BytesMut::new();
        write_chunk(&mut dst, b"hello world, 26 bytes long");
        write_chunk(&mut dst, b"");
        write_last_chunk(&mut dst, Some(&header_map(&[("grpc-status", "0")])));
        assert_eq!(
            &dst[..],
            b"1A\r\nhello world, 26 bytes long\r\n0\r\ngrpc-status: 0\r\n\r\n"
        );
    }
}

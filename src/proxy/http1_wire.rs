//! HTTP/1.1 wire pieces our upstream client and our downstream server share: header lines,
//! chunked framing, and the `Content-Length` a message declares.

use std::cell::RefCell;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{InvalidHeaderName, CONTENT_LENGTH};
use http::{HeaderMap, HeaderName, HeaderValue};
use smallvec::SmallVec;

/// Bytes read from a connection at a time (hyper's initial read buffer size).
pub const READ_SIZE: usize = 8 * 1024;

/// Makes room in a connection's read buffer for the next read.
pub fn make_read_room(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < READ_SIZE / 2 {
        buf.reserve(READ_SIZE);
    }
}

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

/// Where a header's name and value lie in a parsed head, so that the head can be frozen and
/// its values sliced from it instead of copied.
#[derive(Debug, Clone, Copy)]
pub struct HeaderSpan {
    pub name: usize,
    pub name_len: usize,
    pub value: usize,
    pub value_len: usize,
}

impl HeaderSpan {
    pub fn name<'h>(&self, head: &'h Bytes) -> &'h [u8] {
        &head[self.name..self.name + self.name_len]
    }

    /// The value, sharing the head's bytes.
    pub fn value(&self, head: &Bytes) -> Bytes {
        head.slice(self.value..self.value + self.value_len)
    }
}

/// The header places of one head, on the stack for the usual few (a request from a browser
/// has about a dozen headers, a load generator's two or three, a response half a dozen): a
/// `Vec` here was an allocation per message.
pub type HeaderSpans = SmallVec<[HeaderSpan; 16]>;

/// Notes where each of `headers`, parsed from `buf`, lies in it. Filled in place: a `SmallVec`
/// returned by value is half a kilobyte copied.
pub fn note_spans(spans: &mut HeaderSpans, buf: &[u8], headers: &[httparse::Header<'_>]) {
    spans.extend(headers.iter().map(|h| HeaderSpan {
        name: offset_in(buf, h.name.as_bytes()),
        name_len: h.name.len(),
        value: offset_in(buf, h.value),
        value_len: h.value.len(),
    }));
}

/// Where `part`, a slice httparse returned from `buf`, starts in it.
pub fn offset_in(buf: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - buf.as_ptr() as usize
}

/// `name: value` and CRLF.
pub fn write_header_line(dst: &mut BytesMut, name: &HeaderName, value: &HeaderValue) {
    dst.put_slice(name.as_str().as_bytes());
    dst.put_slice(b": ");
    dst.put_slice(value.as_bytes());
    dst.put_slice(b"\r\n");
}

/// The `Content-Length` the headers agree on (several equal values count as one). Each value
/// is `1*DIGIT` (RFC 9110 §8.6): a sign, a space inside or an empty list member makes the
/// length invalid, as a number parser's looser rules would not.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    let mut found = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for part in value.as_bytes().split(|&b| b == b',') {
            let n = decimal(part.trim_ascii())?;
            if found.is_some_and(|f| f != n) {
                return None;
            }
            found = Some(n);
        }
    }
    found
}

/// A non-empty run of ASCII digits as a number, `None` for anything else or on overflow.
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// The `HeaderName` for a name as an HTTP/1 peer spelled it. The same few names arrive on every
/// message of a connection, and `HeaderName::from_bytes` lower-cases and looks up each one
/// anew (about a hundred instructions, and an allocation for a name outside the standard set).
/// So each thread keeps the names it has seen, by their exact bytes: a name seen before costs
/// one comparison and a clone (of a shared buffer, for a custom name).
pub fn header_name(raw: &[u8]) -> Result<HeaderName, InvalidHeaderName> {
    /// Names longer than this are converted every time (rare, and they would make the table
    /// bigger for every thread).
    const LONGEST: usize = 32;
    const SLOTS: usize = 32;
    struct Seen {
        len: usize,
        bytes: [u8; LONGEST],
        name: HeaderName,
    }
    thread_local! {
        static SEEN: RefCell<[Option<Seen>; SLOTS]> =
            const { RefCell::new([const { None }; SLOTS]) };
    }
    let len = raw.len();
    if len == 0 || len > LONGEST {
        return HeaderName::from_bytes(raw);
    }
    // The slot: length, first, middle and last bytes, mixed. Collisions only cost a
    // conversion (the later name takes the slot).
    let mix = (len as u32)
        ^ (u32::from(raw[0]) << 5)
        ^ (u32::from(raw[len / 2]) << 10)
        ^ (u32::from(raw[len - 1]) << 15);
    let slot = (mix.wrapping_mul(0x9E37_79B9) >> 27) as usize % SLOTS;
    SEEN.with_borrow_mut(|seen| {
        if let Some(s) = &seen[slot] {
            if s.len == len && &s.bytes[..len] == raw {
                return Ok(s.name.clone());
            }
        }
        let name = HeaderName::from_bytes(raw)?;
        let mut bytes = [0; LONGEST];
        bytes[..len].copy_from_slice(raw);
        seen[slot] = Some(Seen {
            len,
            bytes,
            name: name.clone(),
        });
        Ok(name)
    })
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
        for invalid in ["x", "+5", "-5", "5 5", "5,", "", "18446744073709551616"] {
            assert_eq!(
                content_length(&header_map(&[("content-length", invalid)])),
                None,
                "{invalid:?} is not a length"
            );
        }
        assert_eq!(
            content_length(&header_map(&[("content-length", " 18446744073709551615 ")])),
            Some(u64::MAX)
        );
    }

    #[test]
    fn header_names_are_the_same_whether_converted_or_remembered() {
        let long = "x-a-header-name-longer-than-the-table-keeps";
        for raw in [
            "Content-Length",
            "content-length",
            "X-Custom",
            "x-custom",
            "X-Custom",
            "Server",
            "Date",
            long,
            long,
        ] {
            for _ in 0..2 {
                let name = header_name(raw.as_bytes()).unwrap();
                assert_eq!(name, HeaderName::from_bytes(raw.as_bytes()).unwrap());
                assert_eq!(name.as_str(), raw.to_ascii_lowercase());
            }
        }
        // Invalid names stay errors, also when a valid name shares their slot.
        for _ in 0..2 {
            assert!(header_name(b"bad name").is_err());
            assert!(header_name(b"").is_err());
        }
    }

    #[test]
    fn names_sharing_a_slot_each_get_their_own_name() {
        // Enough distinct names of the same length that some share a slot.
        let names: Vec<String> = (0..200).map(|i| format!("x-n{i:03}")).collect();
        for _ in 0..3 {
            for raw in &names {
                assert_eq!(header_name(raw.as_bytes()).unwrap().as_str(), raw);
            }
        }
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

//! Stateless response and trailer encoding.
//!
//! No dynamic table and no Huffman: every field is a literal "without indexing" (or "never
//! indexed" when sensitive), naming a static entry when one exists. That keeps the encoder
//! independent of the peer's SETTINGS_HEADER_TABLE_SIZE and makes each field two short
//! headers plus two memcpys.

use bytes::{BufMut, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// §6.2.2 "literal without indexing": `0000xxxx`, 4-bit name index.
const WITHOUT_INDEXING: u8 = 0x00;
/// §6.2.3 "never indexed": `0001xxxx`, 4-bit name index.
const NEVER_INDEXED: u8 = 0x10;
/// §6.1 "indexed field": `1xxxxxxx`.
const INDEXED: u8 = 0x80;
/// Static index of `:status` (with value 200, but only the name is used for literals).
const STATUS_NAME_INDEX: usize = 8;
/// Octets reserved per field beyond the name and value: the name index or name length and
/// the value length need at most 5 each below 2^28. Only a capacity hint (puts still grow
/// the buffer if needed), so one reservation per field normally covers all its puts.
const FIELD_OVERHEAD: usize = 3 * 5;

/// Appends a response header block: `:status`, then every field of `headers` in iteration order.
pub fn encode_response(status: StatusCode, headers: &HeaderMap, dst: &mut BytesMut) {
    encode_status(status, dst);
    encode_trailers(headers, dst);
}

/// Appends a trailers block: every field of `headers` (no pseudo-headers).
pub fn encode_trailers(headers: &HeaderMap, dst: &mut BytesMut) {
    for (name, value) in headers {
        encode_field(name, value, dst);
    }
}

/// `:status`: a one-octet static index for the seven codes in the static table, else a
/// literal naming static entry 8.
/// Appends a dynamic table size update (RFC 7541 §6.3). The encoder itself keeps no table;
/// this acknowledges a client that shrank its own, at the start of the next block (§4.2).
pub fn encode_table_size_update(size: usize, dst: &mut BytesMut) {
    encode_integer(size, 5, 0x20, dst);
}

fn encode_status(status: StatusCode, dst: &mut BytesMut) {
    if let Some(index) = static_status_index(status) {
        dst.put_u8(INDEXED | index);
        return;
    }
    encode_integer(STATUS_NAME_INDEX, 4, WITHOUT_INDEXING, dst);
    // `StatusCode` is always three digits (100..=999).
    encode_string(status.as_str().as_bytes(), dst);
}

/// The static index of a complete `:status` field (RFC 7541 Appendix A, 8–14).
fn static_status_index(status: StatusCode) -> Option<u8> {
    match status.as_u16() {
        200 => Some(8),
        204 => Some(9),
        206 => Some(10),
        304 => Some(11),
        400 => Some(12),
        404 => Some(13),
        500 => Some(14),
        _ => None,
    }
}

/// One field as a literal without indexing, or never indexed when the value is sensitive.
fn encode_field(name: &HeaderName, value: &HeaderValue, dst: &mut BytesMut) {
    let flags = if value.is_sensitive() {
        NEVER_INDEXED
    } else {
        WITHOUT_INDEXING
    };
    dst.reserve(name.as_str().len() + value.len() + FIELD_OVERHEAD);
    match static_name_index(name) {
        Some(index) => encode_integer(index, 4, flags, dst),
        None => {
            // Name index 0: the name follows as a string literal.
            dst.put_u8(flags);
            encode_string(name.as_str().as_bytes(), dst);
        }
    }
    encode_string(value.as_bytes(), dst);
}

/// The lowest static-table index with this name (RFC 7541 Appendix A), if any. A `match` on
/// the string: no hashing, no allocation.
fn static_name_index(name: &HeaderName) -> Option<usize> {
    let index = match name.as_str() {
        "accept-charset" => 15,
        "accept-encoding" => 16,
        "accept-language" => 17,
        "accept-ranges" => 18,
        "accept" => 19,
        "access-control-allow-origin" => 20,
        "age" => 21,
        "allow" => 22,
        "authorization" => 23,
        "cache-control" => 24,
        "content-disposition" => 25,
        "content-encoding" => 26,
        "content-language" => 27,
        "content-length" => 28,
        "content-location" => 29,
        "content-range" => 30,
        "content-type" => 31,
        "cookie" => 32,
        "date" => 33,
        "etag" => 34,
        "expect" => 35,
        "expires" => 36,
        "from" => 37,
        "host" => 38,
        "if-match" => 39,
        "if-modified-since" => 40,
        "if-none-match" => 41,
        "if-range" => 42,
        "if-unmodified-since" => 43,
        "last-modified" => 44,
        "link" => 45,
        "location" => 46,
        "max-forwards" => 47,
        "proxy-authenticate" => 48,
        "proxy-authorization" => 49,
        "range" => 50,
        "referer" => 51,
        "refresh" => 52,
        "retry-after" => 53,
        "server" => 54,
        "set-cookie" => 55,
        "strict-transport-security" => 56,
        "transfer-encoding" => 57,
        "user-agent" => 58,
        "vary" => 59,
        "via" => 60,
        "www-authenticate" => 61,
        _ => return None,
    };
    Some(index)
}

/// A string literal (§5.2) with the H bit clear: 7-bit-prefix length, then the octets.
fn encode_string(s: &[u8], dst: &mut BytesMut) {
    encode_integer(s.len(), 7, 0x00, dst);
    dst.put_slice(s);
}

/// An integer with an N-bit prefix (§5.1); `flags` fills the first octet's high bits.
fn encode_integer(mut value: usize, prefix: u32, flags: u8, dst: &mut BytesMut) {
    let max_prefix = (1usize << prefix) - 1;
    if value < max_prefix {
        // Fits in the prefix, so the cast cannot truncate.
        dst.put_u8(flags | value as u8);
        return;
    }
    dst.put_u8(flags | max_prefix as u8);
    value -= max_prefix;
    while value >= 0x80 {
        // Low 7 bits with the continuation bit; the mask makes the cast lossless.
        dst.put_u8(0x80 | (value & 0x7f) as u8);
        value >>= 7;
    }
    dst.put_u8(value as u8);
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_table_size_update_to_zero_is_one_octet_the_decoder_accepts_at_a_block_start() {
        let mut dst = BytesMut::new();
        encode_table_size_update(0, &mut dst);
        encode_response(StatusCode::OK, &HeaderMap::new(), &mut dst);
        assert_eq!(&dst[..], &[0x20, 0x88]);
        let mut decoder = super::super::Decoder::new(4096);
        let mut fields = 0;
        decoder
            .decode(&dst, |f| {
                assert!(f.is_ok());
                fields += 1;
            })
            .unwrap();
        assert_eq!(fields, 1);
    }

    use super::super::table::DynamicTable;
    use super::super::{Decoder, InvalidField, Name, Pseudo};
    use super::*;

    type Got = Vec<Result<(Name, HeaderValue), InvalidField>>;

    fn decode(block: &[u8]) -> Got {
        let mut got = Vec::new();
        let r = Decoder::new(4096).decode(block, |f| {
            got.push(f.map(|(n, v)| (n.clone(), v.clone())));
        });
        assert_eq!(r, Ok(()));
        got
    }

    fn sample() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("text/html"));
        h.insert("x-custom", HeaderValue::from_static("custom value"));
        let mut secret = HeaderValue::from_static("token=abc");
        secret.set_sensitive(true);
        h.insert("set-cookie", secret);
        h.append("vary", HeaderValue::from_static("accept-encoding"));
        h.append("vary", HeaderValue::from_static("origin"));
        h.insert("x-long", HeaderValue::from_bytes(&[b'v'; 300]).unwrap());
        h
    }

    /// Walks a block checking the only forms this encoder may use: an indexed field, or a
    /// literal without indexing / never indexed with plain (non-Huffman) strings.
    fn assert_plain_forms(mut block: &[u8]) {
        fn int(block: &mut &[u8], prefix: u32) -> usize {
            let max = (1usize << prefix) - 1;
            let mut v = usize::from(block[0]) & max;
            *block = &block[1..];
            if v == max {
                let mut shift = 0;
                loop {
                    let b = block[0];
                    *block = &block[1..];
                    v += usize::from(b & 0x7f) << shift;
                    shift += 7;
                    if b & 0x80 == 0 {
                        break;
                    }
                }
            }
            v
        }
        fn string(block: &mut &[u8]) {
            assert_eq!(block[0] & 0x80, 0, "Huffman bit set");
            let len = int(block, 7);
            *block = &block[len..];
        }
        while let Some(&first) = block.first() {
            if first & 0x80 != 0 {
                int(&mut block, 7);
                continue;
            }
            assert_eq!(first & 0xe0, 0x00, "indexing or size update: {first:#04x}");
            if int(&mut block, 4) == 0 {
                string(&mut block);
            }
            string(&mut block);
        }
    }

    #[test]
    fn status_200_without_headers_is_one_octet() {
        let mut dst = BytesMut::new();
        encode_response(StatusCode::OK, &HeaderMap::new(), &mut dst);
        assert_eq!(&dst[..], &[0x88]);
    }

    #[test]
    fn static_statuses_are_indexed() {
        for (code, index) in [
            (200, 8),
            (204, 9),
            (206, 10),
            (304, 11),
            (400, 12),
            (404, 13),
            (500, 14),
        ] {
            let mut dst = BytesMut::new();
            let status = StatusCode::from_u16(code).unwrap();
            encode_response(status, &HeaderMap::new(), &mut dst);
            assert_eq!(&dst[..], &[0x80 | index], "{code}");
        }
    }

    #[test]
    fn other_statuses_are_literals() {
        let mut dst = BytesMut::new();
        encode_response(StatusCode::FOUND, &HeaderMap::new(), &mut dst);
        assert_eq!(&dst[..], b"\x08\x03302");
        let got = decode(&dst);
        let expected = (
            Name::Pseudo(Pseudo::Status),
            HeaderValue::from_static("302"),
        );
        assert_eq!(got, vec![Ok(expected)]);
    }

    #[test]
    fn exact_bytes_for_a_small_response() {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        h.insert("x-a", HeaderValue::from_static("b"));
        let mut dst = BytesMut::new();
        encode_response(StatusCode::NOT_FOUND, &h, &mut dst);
        // 0x8d: :status 404; 0x0f 0x10: name index 31 (15 + 16); 0x00: literal name.
        assert_eq!(&dst[..], b"\x8d\x0f\x10\x0atext/plain\x00\x03x-a\x01b");
    }

    #[test]
    fn sensitive_values_are_never_indexed() {
        let mut h = HeaderMap::new();
        let mut v = HeaderValue::from_static("s");
        v.set_sensitive(true);
        h.insert("date", v.clone());
        h.insert("x-s", v);
        let mut dst = BytesMut::new();
        encode_trailers(&h, &mut dst);
        // date is static index 33: 0x1f then 33 - 15 = 18.
        assert_eq!(&dst[..], b"\x1f\x12\x01s\x10\x03x-s\x01s");
        for field in decode(&dst) {
            assert!(matches!(field, Ok((_, v)) if v.is_sensitive()));
        }
    }

    #[test]
    fn response_round_trips() {
        let headers = sample();
        let mut dst = BytesMut::new();
        encode_response(StatusCode::IM_A_TEAPOT, &headers, &mut dst);
        let got = decode(&dst);

        let mut expected: Got = vec![Ok((
            Name::Pseudo(Pseudo::Status),
            HeaderValue::from_static("418"),
        ))];
        for (n, v) in &headers {
            expected.push(Ok((Name::Header(n.clone()), v.clone())));
        }
        assert_eq!(got, expected);
        // `HeaderValue`'s equality ignores sensitivity; check it separately.
        let sensitive: Vec<bool> = got
            .iter()
            .map(|f| matches!(f, Ok((_, v)) if v.is_sensitive()))
            .collect();
        let want: Vec<bool> = expected
            .iter()
            .map(|f| matches!(f, Ok((_, v)) if v.is_sensitive()))
            .collect();
        assert_eq!(sensitive, want);
        assert_eq!(want.iter().filter(|&&s| s).count(), 1);
    }

    #[test]
    fn trailers_round_trip() {
        let headers = sample();
        let mut dst = BytesMut::new();
        encode_trailers(&headers, &mut dst);
        let got = decode(&dst);
        let expected: Got = headers
            .iter()
            .map(|(n, v)| Ok((Name::Header(n.clone()), v.clone())))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn never_huffman_never_indexing() {
        let mut dst = BytesMut::new();
        encode_response(StatusCode::CREATED, &sample(), &mut dst);
        assert_plain_forms(&dst);
        let mut dst = BytesMut::new();
        encode_response(StatusCode::OK, &sample(), &mut dst);
        assert_plain_forms(&dst);
        // The decoder's table stays empty: nothing asked for indexing.
        let mut d = Decoder::new(4096);
        assert_eq!(d.decode(&dst, |_| {}), Ok(()));
        assert_eq!(d.table_size(), 0);
    }

    #[test]
    fn appends_to_existing_buffer() {
        let mut dst = BytesMut::from(&b"xy"[..]);
        encode_response(StatusCode::OK, &HeaderMap::new(), &mut dst);
        assert_eq!(&dst[..], b"xy\x88");
    }

    #[test]
    fn static_name_index_is_the_lowest_matching_entry() {
        let table = DynamicTable::new(0);
        let mut checked = 0;
        for index in 15..=61 {
            let entry = table.lookup(index).and_then(|e| e.field.ok());
            let Some((Name::Header(name), _)) = entry else {
                panic!("static entry {index} is not a regular header");
            };
            let lowest = (1..=index).find(|&i| {
                table
                    .lookup(i)
                    .and_then(|e| e.field.ok())
                    .is_some_and(|(n, _)| n.as_str() == name.as_str())
            });
            assert_eq!(static_name_index(name), lowest, "{name}");
            checked += 1;
        }
        assert_eq!(checked, 47);
        assert_eq!(static_name_index(&HeaderName::from_static("x-foo")), None);
    }

    #[test]
    fn integer_encoding_matches_rfc_c1() {
        // C.1.1: 10 with a 5-bit prefix; C.1.2: 1337 with a 5-bit prefix; then the first
        // multi-octet name index with flags kept in the high bits.
        let mut dst = BytesMut::new();
        encode_integer(10, 5, 0, &mut dst);
        assert_eq!(&dst[..], &[0x0a]);
        let mut dst = BytesMut::new();
        encode_integer(1337, 5, 0, &mut dst);
        assert_eq!(&dst[..], &[0x1f, 0x9a, 0x0a]);
        let mut dst = BytesMut::new();
        encode_integer(15, 4, 0x10, &mut dst);
        assert_eq!(&dst[..], &[0x1f, 0x00]);
    }
}

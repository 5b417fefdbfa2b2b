//! Header block decoding (RFC 7541 §3, §5, §6).

use std::borrow::Cow;

use bytes::Bytes;
use http::HeaderValue;

use super::table::{DynamicTable, Field};
use super::{huffman, DecodeError, InvalidField, Name};

/// Largest integer accepted (RFC 7541 §5.1 leaves the limit to the implementation). Far above
/// any sane length or index, and small enough that no arithmetic on it can overflow.
const MAX_INTEGER: u64 = 1 << 28;

/// How a literal field interacts with the dynamic table (RFC 7541 §6.2).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Indexing {
    /// §6.2.1: the field is added to the dynamic table.
    Incremental,
    /// §6.2.2: not added.
    Without,
    /// §6.2.3: not added, and intermediaries must not index it either; marked sensitive.
    Never,
}

/// Request header block decoder: one per connection, keeping its dynamic table.
pub struct Decoder {
    table: DynamicTable,
    /// The SETTINGS_HEADER_TABLE_SIZE this side advertised: the cap on size updates.
    limit: usize,
    /// Set by the first error: the dynamic table may be out of step with the peer from then
    /// on, so every later block fails too.
    failed: Option<DecodeError>,
}

impl Decoder {
    /// `max_table_size`: the SETTINGS_HEADER_TABLE_SIZE this side advertised (the proxy uses
    /// 4096, the protocol default); the peer's size updates may not exceed it.
    pub fn new(max_table_size: usize) -> Decoder {
        Decoder {
            table: DynamicTable::new(max_table_size),
            limit: max_table_size,
            failed: None,
        }
    }

    /// Decodes one complete header block (a HEADERS payload plus its CONTINUATIONs, joined),
    /// calling `field` once per field, in order. Fields that fail validation arrive as
    /// `Err(InvalidField)`; decoding (and the dynamic table) carries on regardless, so the table
    /// stays in step with the peer's encoder. Any `DecodeError` leaves the decoder unusable
    /// (the caller closes the connection).
    pub fn decode(
        &mut self,
        block: &[u8],
        mut field: impl FnMut(Result<(&Name, &HeaderValue), InvalidField>),
    ) -> Result<(), DecodeError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let result = self.decode_block(block, &mut field);
        if let Err(err) = &result {
            self.failed = Some(err.clone());
        }
        result
    }

    /// Current dynamic table size in RFC 7541 §4.1 octets (entry = name len + value len + 32).
    /// For tests and stats.
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// Decodes every representation in `block`; size updates only before the first field.
    fn decode_block(
        &mut self,
        block: &[u8],
        emit: &mut impl FnMut(Result<(&Name, &HeaderValue), InvalidField>),
    ) -> Result<(), DecodeError> {
        let mut src = Reader { buf: block };
        let mut seen_field = false;
        while let Some(first) = src.peek() {
            if first & 0xe0 == 0x20 {
                if seen_field {
                    return Err(DecodeError::SizeUpdateNotAtStart);
                }
                self.size_update(&mut src)?;
            } else {
                seen_field = true;
                self.field(first, &mut src, emit)?;
            }
        }
        Ok(())
    }

    /// Dynamic table size update (§6.3): `001xxxxx`, 5-bit prefix.
    fn size_update(&mut self, src: &mut Reader<'_>) -> Result<(), DecodeError> {
        let size = src.integer(5)?;
        if size > self.limit {
            return Err(DecodeError::SizeUpdateTooLarge(size));
        }
        self.table.set_max_size(size);
        Ok(())
    }

    /// Dispatches on the first octet of a field representation (§6.1, §6.2).
    fn field(
        &mut self,
        first: u8,
        src: &mut Reader<'_>,
        emit: &mut impl FnMut(Result<(&Name, &HeaderValue), InvalidField>),
    ) -> Result<(), DecodeError> {
        match first {
            0x80..=0xff => self.indexed(src, emit),
            0x40..=0x7f => self.literal(src, 6, Indexing::Incremental, emit),
            0x10..=0x1f => self.literal(src, 4, Indexing::Never, emit),
            _ => self.literal(src, 4, Indexing::Without, emit),
        }
    }

    /// Indexed field (§6.1): `1xxxxxxx`. Borrows the stored field; no parse, no allocation.
    fn indexed(
        &mut self,
        src: &mut Reader<'_>,
        emit: &mut impl FnMut(Result<(&Name, &HeaderValue), InvalidField>),
    ) -> Result<(), DecodeError> {
        let index = src.integer(7)?;
        let entry = self
            .table
            .lookup(index)
            .ok_or(DecodeError::InvalidIndex(index))?;
        emit(entry.field);
        Ok(())
    }

    /// Literal field (§6.2), with the name indexed (non-zero prefix) or literal (zero).
    fn literal(
        &mut self,
        src: &mut Reader<'_>,
        prefix: u32,
        indexing: Indexing,
        emit: &mut impl FnMut(Result<(&Name, &HeaderValue), InvalidField>),
    ) -> Result<(), DecodeError> {
        let (name, name_len) = self.literal_name(src, prefix)?;
        let raw_value = src.string()?;
        let value_len = raw_value.len();
        // Skip value parsing (and its allocation) when the name already made the field invalid.
        let field: Field =
            name.and_then(|n| parse_value(raw_value, indexing == Indexing::Never).map(|v| (n, v)));
        emit(field.as_ref().map(|(n, v)| (n, v)).map_err(|e| *e));
        if indexing == Indexing::Incremental {
            // Inserted even when invalid, with its RFC size, to stay in step with the peer.
            self.table.insert(field, name_len, value_len);
        }
        Ok(())
    }

    /// The name of a literal field and its length in octets as sent.
    fn literal_name(
        &self,
        src: &mut Reader<'_>,
        prefix: u32,
    ) -> Result<(Result<Name, InvalidField>, usize), DecodeError> {
        let index = src.integer(prefix)?;
        if index == 0 {
            let raw = src.string()?;
            return Ok((Name::parse(&raw), raw.len()));
        }
        let entry = self
            .table
            .lookup(index)
            .ok_or(DecodeError::InvalidIndex(index))?;
        // Cloning a `HeaderName` never copies the name: standard names are an enum and
        // custom ones share their `Bytes`.
        let name = entry.field.map(|(n, _)| n.clone());
        Ok((name, entry.name_len))
    }
}

/// Validates a field value, taking ownership of a Huffman-decoded buffer without copying.
fn parse_value(raw: Cow<'_, [u8]>, sensitive: bool) -> Result<HeaderValue, InvalidField> {
    let bytes = match raw {
        Cow::Owned(v) => Bytes::from(v),
        Cow::Borrowed(s) => Bytes::copy_from_slice(s),
    };
    let mut value = HeaderValue::from_maybe_shared(bytes).map_err(|_| InvalidField)?;
    value.set_sensitive(sensitive);
    Ok(value)
}

/// A cursor over a header block; every read is bounds-checked and fails with `Truncated`.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// The next octet, not consumed.
    fn peek(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    /// Consumes one octet.
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.buf.split_first().ok_or(DecodeError::Truncated)?;
        self.buf = rest;
        Ok(b)
    }

    /// Consumes `len` octets.
    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.buf.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(head)
    }

    /// An integer with an N-bit prefix (§5.1), N in 1..=7. The prefix's high bits (the
    /// representation's flags) are ignored.
    fn integer(&mut self, prefix: u32) -> Result<usize, DecodeError> {
        let max_prefix = (1u8 << prefix) - 1;
        let first = self.byte()? & max_prefix;
        if first < max_prefix {
            return Ok(usize::from(first));
        }
        let mut value = u64::from(max_prefix);
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            value += u64::from(b & 0x7f) << shift;
            if value > MAX_INTEGER {
                return Err(DecodeError::IntegerOverflow);
            }
            if b & 0x80 == 0 {
                return usize::try_from(value).map_err(|_| DecodeError::IntegerOverflow);
            }
            shift += 7;
            // Also stops endless zero continuation octets (0x80 0x80 ...), which never
            // raise the value but would otherwise shift past 64 bits.
            if shift > 28 {
                return Err(DecodeError::IntegerOverflow);
            }
        }
    }

    /// A string literal (§5.2): H bit, 7-bit-prefix length, then the octets.
    fn string(&mut self) -> Result<Cow<'a, [u8]>, DecodeError> {
        let huffman = self.peek().ok_or(DecodeError::Truncated)? & 0x80 != 0;
        let len = self.integer(7)?;
        let raw = self.take(len)?;
        if huffman {
            huffman::decode(raw).map(Cow::Owned)
        } else {
            Ok(Cow::Borrowed(raw))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::http2_wire::hpack::test_hex as hex;

    type Got = Vec<Result<(String, Vec<u8>), InvalidField>>;

    fn decode(d: &mut Decoder, block: &[u8]) -> Result<Got, DecodeError> {
        let mut got = Vec::new();
        d.decode(block, |f| {
            got.push(f.map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec())))
        })?;
        Ok(got)
    }

    fn ok(fields: &[(&str, &str)]) -> Result<Got, DecodeError> {
        let f = fields
            .iter()
            .map(|(n, v)| Ok(((*n).to_owned(), v.as_bytes().to_vec())));
        Ok(f.collect())
    }

    /// §5.1 integer encoding, independent of the encoder module, for building test input.
    fn int(mut value: usize, prefix: u32, flags: u8) -> Vec<u8> {
        let max = (1usize << prefix) - 1;
        if value < max {
            return vec![flags | value as u8];
        }
        let mut out = vec![flags | max as u8];
        value -= max;
        while value >= 0x80 {
            out.push(0x80 | (value & 0x7f) as u8);
            value >>= 7;
        }
        out.push(value as u8);
        out
    }

    // --- RFC 7541 Appendix C.2: single representations ---

    #[test]
    fn c2_1_literal_with_indexing() {
        let mut d = Decoder::new(4096);
        let block = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
        assert_eq!(
            decode(&mut d, &block),
            ok(&[("custom-key", "custom-header")])
        );
        assert_eq!(d.table_size(), 55);
        assert_eq!(
            decode(&mut d, &[0xbe]),
            ok(&[("custom-key", "custom-header")])
        );
    }

    #[test]
    fn c2_2_literal_without_indexing() {
        let mut d = Decoder::new(4096);
        let block = hex("040c 2f73 616d 706c 652f 7061 7468");
        assert_eq!(decode(&mut d, &block), ok(&[(":path", "/sample/path")]));
        assert_eq!(d.table_size(), 0);
    }

    #[test]
    fn c2_3_literal_never_indexed_is_sensitive() {
        let mut d = Decoder::new(4096);
        let block = hex("1008 7061 7373 776f 7264 0673 6563 7265 74");
        let mut seen = Vec::new();
        let r = d.decode(&block, |f| {
            seen.push(f.map(|(n, v)| (n.as_str().to_owned(), v.clone())));
        });
        assert_eq!(r, Ok(()));
        let value = http::HeaderValue::from_static("secret");
        assert_eq!(seen, vec![Ok(("password".to_owned(), value))]);
        assert!(matches!(&seen[0], Ok((_, v)) if v.is_sensitive()));
        assert_eq!(d.table_size(), 0);
    }

    #[test]
    fn c2_4_indexed() {
        let mut d = Decoder::new(4096);
        let mut names = Vec::new();
        let r = d.decode(&[0x82], |f| names.push(f.map(|(n, _)| n.clone())));
        assert_eq!(r, Ok(()));
        assert_eq!(names, vec![Ok(Name::Pseudo(super::super::Pseudo::Method))]);
        assert_eq!(decode(&mut d, &[0x82]), ok(&[(":method", "GET")]));
        assert_eq!(d.table_size(), 0);
    }

    // --- C.3 / C.4: request sequences, without and with Huffman ---

    fn check_requests(blocks: [&str; 3]) {
        let mut d = Decoder::new(4096);
        let first = [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
        ];
        assert_eq!(decode(&mut d, &hex(blocks[0])), ok(&first));
        assert_eq!(d.table_size(), 57);

        let mut second = first.to_vec();
        second.push(("cache-control", "no-cache"));
        assert_eq!(decode(&mut d, &hex(blocks[1])), ok(&second));
        assert_eq!(d.table_size(), 110);

        let third = [
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            (":authority", "www.example.com"),
            ("custom-key", "custom-value"),
        ];
        assert_eq!(decode(&mut d, &hex(blocks[2])), ok(&third));
        assert_eq!(d.table_size(), 164);
    }

    #[test]
    fn c3_requests_without_huffman() {
        check_requests([
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "8286 84be 5808 6e6f 2d63 6163 6865",
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ]);
    }

    #[test]
    fn c4_requests_with_huffman() {
        check_requests([
            "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
            "8286 84be 5886 a8eb 1064 9cbf",
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ]);
    }

    // --- C.5 / C.6: response sequences with eviction (256-octet table) ---

    fn check_responses(blocks: [&str; 3]) {
        const DATE1: &str = "Mon, 21 Oct 2013 20:13:21 GMT";
        const DATE2: &str = "Mon, 21 Oct 2013 20:13:22 GMT";
        const LOCATION: &str = "https://www.example.com";
        const COOKIE: &str = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
        let mut d = Decoder::new(256);
        let first = [
            (":status", "302"),
            ("cache-control", "private"),
            ("date", DATE1),
            ("location", LOCATION),
        ];
        assert_eq!(decode(&mut d, &hex(blocks[0])), ok(&first));
        assert_eq!(d.table_size(), 222);

        // ":status: 307" evicts ":status: 302"; the rest is indexed.
        let mut second = first;
        second[0] = (":status", "307");
        assert_eq!(decode(&mut d, &hex(blocks[1])), ok(&second));
        assert_eq!(d.table_size(), 222);

        let third = [
            (":status", "200"),
            ("cache-control", "private"),
            ("date", DATE2),
            ("location", LOCATION),
            ("content-encoding", "gzip"),
            ("set-cookie", COOKIE),
        ];
        assert_eq!(decode(&mut d, &hex(blocks[2])), ok(&third));
        assert_eq!(d.table_size(), 215);
        // After the evictions the table holds exactly three entries, newest first.
        assert_eq!(decode(&mut d, &[0xbe]), ok(&[("set-cookie", COOKIE)]));
        assert_eq!(decode(&mut d, &[0xc0]), ok(&[("date", DATE2)]));
        assert_eq!(decode(&mut d, &[0xc1]), Err(DecodeError::InvalidIndex(65)));
    }

    #[test]
    fn c5_responses_without_huffman() {
        check_responses([
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 \
             2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 \
             6c65 2e63 6f6d",
            "4803 3330 37c1 c0bf",
            "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d \
             54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 \
             5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e \
             3d31",
        ]);
    }

    #[test]
    fn c6_responses_with_huffman() {
        check_responses([
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 \
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            "4883 640e ffc1 c0bf",
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab \
             77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f \
             9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ]);
    }

    // --- Connection errors ---

    #[test]
    fn index_zero() {
        assert_eq!(
            decode(&mut Decoder::new(4096), &[0x80]),
            Err(DecodeError::InvalidIndex(0))
        );
    }

    #[test]
    fn index_past_the_table() {
        let mut d = Decoder::new(4096);
        assert_eq!(decode(&mut d, &[0xbe]), Err(DecodeError::InvalidIndex(62)));
        // A literal's name reference is checked the same way.
        let mut d = Decoder::new(4096);
        let block = [0x7e, 0x01, b'x'];
        assert_eq!(decode(&mut d, &block), Err(DecodeError::InvalidIndex(62)));
        // One entry makes 62 valid and 63 not.
        let mut d = Decoder::new(4096);
        assert!(decode(&mut d, &[0x40, 0x01, b'a', 0x01, b'b', 0xbe]).is_ok());
        assert_eq!(decode(&mut d, &[0xbf]), Err(DecodeError::InvalidIndex(63)));
    }

    #[test]
    fn size_update_up_to_the_limit() {
        let mut d = Decoder::new(4096);
        assert_eq!(decode(&mut d, &int(4096, 5, 0x20)), ok(&[]));
        // Several updates before the first field are fine; the last one sets the size.
        let mut block = int(0, 5, 0x20);
        block.extend(int(100, 5, 0x20));
        block.extend([0x40, 0x01, b'a', 0x01, b'b']);
        assert_eq!(decode(&mut d, &block), ok(&[("a", "b")]));
        assert_eq!(d.table_size(), 34);
        // Shrinking to 0 evicts everything.
        assert_eq!(decode(&mut d, &int(0, 5, 0x20)), ok(&[]));
        assert_eq!(d.table_size(), 0);
    }

    #[test]
    fn size_update_above_the_limit() {
        let mut d = Decoder::new(4096);
        let block = int(4097, 5, 0x20);
        assert_eq!(
            decode(&mut d, &block),
            Err(DecodeError::SizeUpdateTooLarge(4097))
        );
    }

    #[test]
    fn size_update_after_a_field() {
        let mut d = Decoder::new(4096);
        assert_eq!(
            decode(&mut d, &[0x82, 0x20]),
            Err(DecodeError::SizeUpdateNotAtStart)
        );
    }

    #[test]
    fn huffman_errors() {
        // :path (name index 4, without indexing) with a Huffman value.
        let cases: [&[u8]; 4] = [
            &[0x04, 0x84, 0xff, 0xff, 0xff, 0xff], // EOS
            &[0x04, 0x81, 0xff],                   // 8 bits of padding
            &[0x04, 0x82, 0x07, 0xff],             // '0' then 11 bits of padding
            &[0x04, 0x81, 0x00],                   // '0' then padding "000"
        ];
        for block in cases {
            let r = decode(&mut Decoder::new(4096), block);
            assert_eq!(r, Err(DecodeError::InvalidHuffman), "{block:02x?}");
        }
    }

    #[test]
    fn integer_overflow() {
        let mut block = vec![0xff];
        block.extend([0xff; 10]);
        let r = decode(&mut Decoder::new(4096), &block);
        assert_eq!(r, Err(DecodeError::IntegerOverflow));
        // Zero-valued continuation octets cannot run on forever.
        let r = decode(
            &mut Decoder::new(4096),
            &[0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00],
        );
        assert_eq!(r, Err(DecodeError::IntegerOverflow));
        // A string length of 2^28 + 1.
        let mut block = vec![0x04];
        block.extend(int((1 << 28) + 1, 7, 0));
        let r = decode(&mut Decoder::new(4096), &block);
        assert_eq!(r, Err(DecodeError::IntegerOverflow));
    }

    #[test]
    fn integer_at_the_cap_is_accepted() {
        // 2^28 itself decodes (and is then an invalid index, not an overflow).
        let r = decode(&mut Decoder::new(4096), &int(1 << 28, 7, 0x80));
        assert_eq!(r, Err(DecodeError::InvalidIndex(1 << 28)));
        let r = decode(&mut Decoder::new(4096), &int(300, 7, 0x80));
        assert_eq!(r, Err(DecodeError::InvalidIndex(300)));
    }

    #[test]
    fn truncated() {
        let cases: [&[u8]; 6] = [
            &[0xff],                         // integer continuation missing
            &[0xff, 0x80],                   // integer continuation cut short
            &[0x04],                         // value missing
            &[0x04, 0x05, b'a', b'b'],       // value shorter than its length
            &[0x00, 0x03, b'a'],             // literal name cut short
            &[0x00, 0x01, b'a', 0x85, 0xff], // Huffman value cut short
        ];
        for block in cases {
            let r = decode(&mut Decoder::new(4096), block);
            assert_eq!(r, Err(DecodeError::Truncated), "{block:02x?}");
        }
    }

    #[test]
    fn decoder_stays_failed() {
        let mut d = Decoder::new(4096);
        assert_eq!(decode(&mut d, &[0x80]), Err(DecodeError::InvalidIndex(0)));
        assert_eq!(decode(&mut d, &[0x82]), Err(DecodeError::InvalidIndex(0)));
    }

    // --- Invalid fields: stream errors, decoding carries on ---

    #[test]
    fn uppercase_name_is_invalid_but_indexed() {
        let mut d = Decoder::new(4096);
        let block = [0x40, 0x03, b'F', b'o', b'o', 0x03, b'b', b'a', b'r', 0x82];
        let got = decode(&mut d, &block);
        let expected = vec![
            Err(InvalidField),
            Ok((":method".to_owned(), b"GET".to_vec())),
        ];
        assert_eq!(got, Ok(expected));
        assert_eq!(d.table_size(), 3 + 3 + 32);
        // Referencing the invalid entry, as a field or as a name, is invalid too...
        assert_eq!(decode(&mut d, &[0xbe]), Ok(vec![Err(InvalidField)]));
        assert_eq!(
            decode(&mut d, &[0x7e, 0x01, b'x']),
            Ok(vec![Err(InvalidField)])
        );
        // ...and the new entry is still counted with the old name's length.
        assert_eq!(d.table_size(), 38 + 3 + 1 + 32);
        assert_eq!(decode(&mut d, &[0xbf]), Ok(vec![Err(InvalidField)]));
    }

    #[test]
    fn unknown_pseudo_header() {
        let block = [0x00, 0x04, b':', b'f', b'o', b'o', 0x01, b'x', 0x84];
        let got = decode(&mut Decoder::new(4096), &block);
        assert_eq!(
            got,
            Ok(vec![
                Err(InvalidField),
                Ok((":path".to_owned(), b"/".to_vec()))
            ])
        );
    }

    #[test]
    fn control_bytes_in_value() {
        for bad in [&b"a\r\nb"[..], b"\0", b"\x7f", b"a\x01"] {
            let mut block = vec![0x00, 0x01, b'a'];
            block.extend(int(bad.len(), 7, 0));
            block.extend(bad);
            let got = decode(&mut Decoder::new(4096), &block);
            assert_eq!(got, Ok(vec![Err(InvalidField)]), "{bad:?}");
        }
        // HTAB and obs-text are allowed.
        let block = [0x00, 0x01, b'a', 0x03, b'\t', 0xff, b'b'];
        let got = decode(&mut Decoder::new(4096), &block);
        assert_eq!(got, Ok(vec![Ok(("a".to_owned(), b"\t\xffb".to_vec()))]));
    }

    #[test]
    fn empty_name_is_invalid() {
        let got = decode(&mut Decoder::new(4096), &[0x00, 0x00, 0x00]);
        assert_eq!(got, Ok(vec![Err(InvalidField)]));
    }

    #[test]
    fn huffman_coded_literal_name() {
        // C.4.3's "custom-key: custom-value", but without indexing.
        let block = hex("0088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf");
        let mut d = Decoder::new(4096);
        assert_eq!(
            decode(&mut d, &block),
            ok(&[("custom-key", "custom-value")])
        );
        assert_eq!(d.table_size(), 0);
    }

    #[test]
    fn oversized_entry_is_emitted_but_not_stored() {
        let mut d = Decoder::new(40);
        let block = [
            0x40, 0x01, b'a', 0x01, b'b', 0x40, 0x01, b'c', 0x08, b'x', b'x', b'x', b'x', b'x',
            b'x', b'x', b'x',
        ];
        assert_eq!(decode(&mut d, &block), ok(&[("a", "b"), ("c", "xxxxxxxx")]));
        assert_eq!(d.table_size(), 0);
        assert_eq!(decode(&mut d, &[0xbe]), Err(DecodeError::InvalidIndex(62)));
    }
}

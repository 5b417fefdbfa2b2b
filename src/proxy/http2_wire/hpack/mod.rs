//! HPACK (RFC 7541) header compression for the proxy's own HTTP/2 server.
//!
//! The two directions are deliberately asymmetric:
//!
//! - [`Decoder`] decodes request header blocks from a hostile peer. It implements every
//!   representation of RFC 7541 §6, Huffman-coded strings, and the dynamic table, because the
//!   peer's encoder decides what it sends. Every length, index and code is checked, work is
//!   bounded by the block length, and errors are values, never panics.
//! - [`encode_response`] / [`encode_trailers`] are stateless: they never use the dynamic table
//!   (so the peer's SETTINGS_HEADER_TABLE_SIZE never matters and no size update is ever needed)
//!   and never Huffman-code (a plain literal is a memcpy; CPU matters more than bytes here).
//!   Only static-table names are referenced.
//!
//! Field validation follows RFC 9113 §8.2.1: a field that is not valid HTTP/2 is reported as
//! [`InvalidField`] (a stream error for the caller) while decoding carries on, so the dynamic
//! table stays in step with the peer; a [`DecodeError`] is a connection error
//! (COMPRESSION_ERROR).

mod decoder;
mod encoder;
mod huffman;
mod table;

use std::fmt;

pub use decoder::Decoder;
pub use encoder::{encode_response, encode_table_size_update, encode_trailers};

/// A pseudo-header field name (RFC 9113 §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pseudo {
    /// `:method`
    Method,
    /// `:scheme`
    Scheme,
    /// `:authority`
    Authority,
    /// `:path`
    Path,
    /// `:protocol` (RFC 8441 extended CONNECT)
    Protocol,
    /// `:status`
    Status,
}

impl Pseudo {
    /// The pseudo-header name as sent, including the leading colon.
    fn as_str(self) -> &'static str {
        match self {
            Pseudo::Method => ":method",
            Pseudo::Scheme => ":scheme",
            Pseudo::Authority => ":authority",
            Pseudo::Path => ":path",
            Pseudo::Protocol => ":protocol",
            Pseudo::Status => ":status",
        }
    }

    /// Parses a name that starts with ':'; any name not listed in RFC 9113 / RFC 8441 is
    /// `None` (and the caller reports the field as invalid).
    fn from_bytes(name: &[u8]) -> Option<Pseudo> {
        match name {
            b":method" => Some(Pseudo::Method),
            b":scheme" => Some(Pseudo::Scheme),
            b":authority" => Some(Pseudo::Authority),
            b":path" => Some(Pseudo::Path),
            b":protocol" => Some(Pseudo::Protocol),
            b":status" => Some(Pseudo::Status),
            _ => None,
        }
    }
}

/// A decoded field's name: a pseudo-header or a regular (lowercase, valid) header name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Name {
    /// A pseudo-header such as `:method`.
    Pseudo(Pseudo),
    /// A regular header name; always lowercase because uppercase names are rejected.
    Header(http::HeaderName),
}

impl Name {
    /// The name as sent, e.g. ":method" or "user-agent".
    pub fn as_str(&self) -> &str {
        match self {
            Name::Pseudo(p) => p.as_str(),
            Name::Header(h) => h.as_str(),
        }
    }

    /// Parses a name received on the wire, applying RFC 9113 §8.2.1 / §8.3 validity rules.
    fn parse(raw: &[u8]) -> Result<Name, InvalidField> {
        if raw.first() == Some(&b':') {
            return Pseudo::from_bytes(raw)
                .map(Name::Pseudo)
                .ok_or(InvalidField);
        }
        // `HeaderName::from_bytes` would silently lowercase, but HTTP/2 makes an uppercase
        // name a malformed request (RFC 9113 §8.2.1), so refuse it first. It also rejects
        // the empty name and non-token bytes.
        if raw.is_empty() || raw.iter().any(u8::is_ascii_uppercase) {
            return Err(InvalidField);
        }
        http::HeaderName::from_bytes(raw)
            .map(Name::Header)
            .map_err(|_| InvalidField)
    }
}

/// A field that is not valid HTTP/2 (RFC 9113 §8.2.1): uppercase or otherwise invalid name
/// bytes, an unknown pseudo-header, or a value with bytes `http::HeaderValue` refuses
/// (NUL, CR, LF, other controls except HTAB, DEL). Per RFC 9113 such a request is malformed:
/// a stream error for the caller, not a connection error — so decoding continues past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidField;

/// What makes a header block undecodable: a connection error (COMPRESSION_ERROR) for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Indexed field or name reference of 0, or beyond the static + dynamic table.
    InvalidIndex(usize),
    /// An integer that overflows (its value is capped at 2^28; anything larger is an error).
    IntegerOverflow,
    /// A string or integer running past the end of the block.
    Truncated,
    /// Invalid Huffman: the EOS symbol, padding longer than 7 bits, or padding that is not the
    /// EOS prefix (all ones).
    InvalidHuffman,
    /// A dynamic table size update above the limit the decoder was created with.
    SizeUpdateTooLarge(usize),
    /// A dynamic table size update after the first field of a block (RFC 7541 §4.2).
    SizeUpdateNotAtStart,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::InvalidIndex(i) => write!(f, "hpack: invalid table index {i}"),
            DecodeError::IntegerOverflow => f.write_str("hpack: integer overflow"),
            DecodeError::Truncated => f.write_str("hpack: truncated header block"),
            DecodeError::InvalidHuffman => f.write_str("hpack: invalid huffman string"),
            DecodeError::SizeUpdateTooLarge(n) => {
                write!(f, "hpack: dynamic table size update {n} above the limit")
            }
            DecodeError::SizeUpdateNotAtStart => {
                f.write_str("hpack: dynamic table size update after a field")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Bytes from a hex dump (whitespace ignored), as RFC 7541's examples print them.
#[cfg(test)]
pub(crate) fn test_hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_pseudo_names() {
        assert_eq!(Name::parse(b":method"), Ok(Name::Pseudo(Pseudo::Method)));
        assert_eq!(
            Name::parse(b":protocol"),
            Ok(Name::Pseudo(Pseudo::Protocol))
        );
        assert_eq!(Name::parse(b":foo"), Err(InvalidField));
        assert_eq!(Name::parse(b":"), Err(InvalidField));
        assert_eq!(Name::parse(b":Method"), Err(InvalidField));
    }

    #[test]
    fn parse_regular_names() {
        let n = Name::parse(b"x-custom").map(|n| n.as_str().to_owned());
        assert_eq!(n, Ok("x-custom".to_owned()));
        assert_eq!(Name::parse(b""), Err(InvalidField));
        assert_eq!(Name::parse(b"X-Custom"), Err(InvalidField));
        assert_eq!(Name::parse(b"bad name"), Err(InvalidField));
        assert_eq!(Name::parse(b"bad\0"), Err(InvalidField));
        assert_eq!(Name::parse(b"caf\xc3\xa9"), Err(InvalidField));
    }

    #[test]
    fn pseudo_round_trips_through_as_str() {
        use Pseudo::*;
        for p in [Method, Scheme, Authority, Path, Protocol, Status] {
            assert_eq!(Pseudo::from_bytes(p.as_str().as_bytes()), Some(p));
        }
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            DecodeError::InvalidIndex(70).to_string(),
            "hpack: invalid table index 70"
        );
        assert!(!DecodeError::SizeUpdateNotAtStart.to_string().is_empty());
    }
}

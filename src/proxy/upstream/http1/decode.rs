//! Reading a response: its head (with httparse, into `http` types without copying header
//! values), how its body is delimited, and a chunked-body decoder.

use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

use crate::proxy::headers::{header_tokens, value_tokens};
use crate::proxy::http1_wire::{self, content_length, HeaderSpans};

/// At most this many response headers (hyper's client default).
const MAX_HEADERS: usize = 100;
/// The longest response head accepted (Envoy's `max_response_headers_kb` default, 60 KiB).
pub const MAX_HEAD_BYTES: usize = 60 * 1024;
/// The longest chunk-size line, extensions included.
const MAX_CHUNK_LINE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed response head: {0}")]
    Head(httparse::Error),
    #[error("response head larger than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    #[error("invalid response header: {0}")]
    Header(String),
    #[error("invalid content-length")]
    ContentLength,
    #[error("malformed chunked body: {0}")]
    Chunk(&'static str),
}

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// Exactly this many bytes (0: no body: HEAD, 204, 304, or `Content-Length: 0`).
    Length(u64),
    Chunked,
    /// Until the upstream closes the connection.
    UntilClose,
    /// `101 Switching Protocols`: the connection now carries the upgraded protocol.
    Upgrade,
}

/// A parsed final response head.
pub struct ResponseHead {
    pub parts: http::response::Parts,
    pub framing: ResponseFraming,
    /// Whether the connection may carry another request after this response.
    pub keep_alive: bool,
}

/// Parses a final response head from the front of `buf`, removing it (and any interim 1xx
/// responses before it), into the `recycled` header map if there is one (see
/// [`http1_wire::header_map`]). `None`: more bytes are needed.
pub fn parse_response(
    buf: &mut BytesMut,
    method: &Method,
    recycled: &mut Option<HeaderMap>,
) -> Result<Option<ResponseHead>, DecodeError> {
    loop {
        let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            buf,
            &mut storage,
        );
        let len = match parsed {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
                return Err(DecodeError::HeadTooLarge)
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(DecodeError::Head(e)),
        };
        let code = response.code.unwrap_or(0);
        if (100..200).contains(&code) && code != 101 {
            // An interim response (100 Continue, 103 Early Hints): not forwarded.
            buf.advance(len);
            continue;
        }
        let status = StatusCode::from_u16(code)
            .map_err(|_| DecodeError::Header(format!("status code {code}")))?;
        let version = if response.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        // Header values share the head's bytes instead of being copied: remember where each
        // one is, then freeze the head and slice it.
        let mut spans = HeaderSpans::new();
        http1_wire::note_spans(&mut spans, buf, response.headers);
        let head = buf.split_to(len).freeze();
        let mut headers = http1_wire::header_map(recycled, spans.len());
        let mut seen = Seen::default();
        for span in &spans {
            let name = http1_wire::header_name(span.name(&head))
                .map_err(|e| DecodeError::Header(e.to_string()))?;
            let value = HeaderValue::from_maybe_shared(span.value(&head))
                .map_err(|e| DecodeError::Header(e.to_string()))?;
            if seen.note(&name, &value, status) {
                headers.append(name, value);
            }
        }
        let framing = response_framing(method, status, &headers, &seen)?;
        let keep_alive = framing != ResponseFraming::UntilClose
            && framing != ResponseFraming::Upgrade
            && seen.keeps_alive(version);
        let mut parts = http::Response::new(()).into_parts().0;
        parts.status = status;
        parts.version = version;
        parts.headers = headers;
        return Ok(Some(ResponseHead {
            parts,
            framing,
            keep_alive,
        }));
    }
}

/// What the framing and connection headers of a response head said, noted as the headers go
/// by: the map is then searched only for headers that are there.
#[derive(Default)]
struct Seen {
    transfer_encoding: bool,
    content_length: bool,
    /// `Connection` tokens.
    close: bool,
    keep_alive: bool,
}

impl Seen {
    /// Notes one header; false when it is not to be kept. A `Connection` header naming only
    /// `close` or `keep-alive` has said all it has to say to this hop: it is dropped here rather
    /// than put in the map for the proxy to strip again. One that nominates other headers is
    /// kept for the hop-by-hop stripping to read, and so is any on a `101`, whose headers go
    /// to the upgraded tunnel's other end.
    fn note(&mut self, name: &HeaderName, value: &HeaderValue, status: StatusCode) -> bool {
        if *name == TRANSFER_ENCODING {
            self.transfer_encoding = true;
        } else if *name == CONTENT_LENGTH {
            self.content_length = true;
        } else if *name == CONNECTION {
            let mut only_persistence = true;
            for token in value_tokens(value) {
                if token.eq_ignore_ascii_case("close") {
                    self.close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    self.keep_alive = true;
                } else {
                    only_persistence = false;
                }
            }
            return !only_persistence || status == StatusCode::SWITCHING_PROTOCOLS;
        }
        true
    }

    /// Whether the connection persists by its version and `Connection` tokens: HTTP/1.0 only
    /// when asked to, HTTP/1.1 unless told to close.
    fn keeps_alive(&self, version: Version) -> bool {
        if version == Version::HTTP_10 {
            self.keep_alive
        } else {
            !self.close
        }
    }
}

/// RFC 9112 §6.3: no body for HEAD, 204 and 304; chunked when it is the last transfer coding
/// (which overrides any `Content-Length`); until close for any other transfer coding or when
/// no length is given.
fn response_framing(
    method: &Method,
    status: StatusCode,
    headers: &HeaderMap,
    seen: &Seen,
) -> Result<ResponseFraming, DecodeError> {
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Ok(ResponseFraming::Upgrade);
    }
    if *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(ResponseFraming::Length(0));
    }
    if seen.transfer_encoding {
        let chunked = header_tokens(headers, &TRANSFER_ENCODING)
            .last()
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
        return Ok(if chunked {
            ResponseFraming::Chunked
        } else {
            ResponseFraming::UntilClose
        });
    }
    if seen.content_length {
        return content_length(headers)
            .map(ResponseFraming::Length)
            .ok_or(DecodeError::ContentLength);
    }
    Ok(ResponseFraming::UntilClose)
}

/// Where a chunked body's decoding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkedState {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines up to a blank line.
    Trailers,
    Done,
}

/// What one decoding step produced.
#[derive(Debug, PartialEq)]
pub enum Chunk {
    Data(Bytes),
    /// The body ended (with trailers, if the upstream sent any).
    End(Option<HeaderMap>),
    /// More bytes are needed.
    NeedMore,
}

impl ChunkedState {
    /// Decodes from the front of `buf`, consuming what it uses.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Chunk, DecodeError> {
        loop {
            match *self {
                ChunkedState::Size => {
                    let Some(line) = take_line(buf, MAX_CHUNK_LINE)? else {
                        return Ok(Chunk::NeedMore);
                    };
                    let digits = line[..].split(|&b| b == b';').next().unwrap_or(&[]);
                    let digits = std::str::from_utf8(digits)
                        .map_err(|_| DecodeError::Chunk("chunk size is not hex"))?
                        .trim_matches([' ', '\t']);
                    if digits.is_empty() || digits.len() > 16 {
                        return Err(DecodeError::Chunk("chunk size is not hex"));
                    }
                    let size = u64::from_str_radix(digits, 16)
                        .map_err(|_| DecodeError::Chunk("chunk size is not hex"))?;
                    *self = if size == 0 {
                        ChunkedState::Trailers
                    } else {
                        ChunkedState::Data(size)
                    };
                }
                ChunkedState::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Chunk::NeedMore);
                    }
                    let n = (buf.len() as u64).min(left) as usize;
                    let data = buf.split_to(n).freeze();
                    *self = match left - n as u64 {
                        0 => ChunkedState::DataEnd,
                        rest => ChunkedState::Data(rest),
                    };
                    return Ok(Chunk::Data(data));
                }
                ChunkedState::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Chunk::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(DecodeError::Chunk("chunk data not followed by CRLF"));
                    }
                    buf.advance(2);
                    *self = ChunkedState::Size;
                }
                ChunkedState::Trailers => {
                    let end = if buf.starts_with(b"\r\n") {
                        Some(2)
                    } else {
                        buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
                    };
                    let Some(end) = end else {
                        if buf.len() > MAX_HEAD_BYTES {
                            return Err(DecodeError::Chunk("trailers too large"));
                        }
                        return Ok(Chunk::NeedMore);
                    };
                    let block = buf.split_to(end);
                    *self = ChunkedState::Done;
                    return Ok(Chunk::End(parse_trailers(&block)?));
                }
                ChunkedState::Done => return Ok(Chunk::End(None)),
            }
        }
    }
}

/// Takes one CRLF-terminated line (without its CRLF) off the front of `buf`.
fn take_line(buf: &mut BytesMut, limit: usize) -> Result<Option<BytesMut>, DecodeError> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(end) => {
            let line = buf.split_to(end);
            buf.advance(2);
            Ok(Some(line))
        }
        None if buf.len() > limit => Err(DecodeError::Chunk("chunk size line too long")),
        None => Ok(None),
    }
}

fn parse_trailers(block: &[u8]) -> Result<Option<HeaderMap>, DecodeError> {
    if block == b"\r\n" {
        return Ok(None);
    }
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let parsed = match httparse::parse_headers(block, &mut storage) {
        Ok(httparse::Status::Complete((_, parsed))) => parsed,
        _ => return Err(DecodeError::Chunk("malformed trailers")),
    };
    let mut trailers = HeaderMap::with_capacity(parsed.len());
    for h in parsed {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|e| DecodeError::Header(e.to_string()))?;
        let value =
            HeaderValue::from_bytes(h.value).map_err(|e| DecodeError::Header(e.to_string()))?;
        trailers.append(name, value);
    }
    Ok(Some(trailers))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &str, method: Method) -> (ResponseHead, BytesMut) {
        let mut buf = BytesMut::from(bytes);
        let head = parse_response(&mut buf, &method, &mut None)
            .unwrap()
            .expect("complete");
        (head, buf)
    }

    #[test]
    fn parses_the_head_and_leaves_the_body() {
        let (head, rest) = parse(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhello",
            Method::GET,
        );
        assert_eq!(head.parts.status, 200);
        assert_eq!(head.parts.version, Version::HTTP_11);
        let xa: Vec<_> = head.parts.headers.get_all("x-a").iter().collect();
        assert_eq!(xa, ["1", "2"]);
        assert_eq!(head.framing, ResponseFraming::Length(5));
        assert!(head.keep_alive);
        assert_eq!(&rest[..], b"hello");
    }

    #[test]
    fn a_partial_head_needs_more_and_interim_responses_are_skipped() {
        let mut buf = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Le");
        assert!(parse_response(&mut buf, &Method::GET, &mut None)
            .unwrap()
            .is_none());
        let (head, rest) = parse(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
            Method::POST,
        );
        assert_eq!(head.parts.status, 201);
        assert!(head.parts.headers.get("link").is_none());
        assert!(rest.is_empty());
    }

    #[test]
    fn framing_per_rfc_9112() {
        let framing = |raw: &str, method: Method| parse(raw, method).0.framing;
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", Method::HEAD),
            ResponseFraming::Length(0)
        );
        assert_eq!(
            framing("HTTP/1.1 204 No Content\r\n\r\n", Method::GET),
            ResponseFraming::Length(0)
        );
        assert_eq!(
            framing("HTTP/1.1 304 Not Modified\r\n\r\n", Method::GET),
            ResponseFraming::Length(0)
        );
        assert_eq!(
            framing(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n",
                Method::GET
            ),
            ResponseFraming::Chunked
        );
        assert_eq!(
            framing(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                Method::GET
            ),
            ResponseFraming::UntilClose
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\n\r\n", Method::GET),
            ResponseFraming::UntilClose
        );
        assert_eq!(
            framing(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
                Method::GET
            ),
            ResponseFraming::Upgrade
        );
        let mut buf = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n");
        assert!(matches!(
            parse_response(&mut buf, &Method::GET, &mut None),
            Err(DecodeError::ContentLength)
        ));
    }

    #[test]
    fn keep_alive_by_version_and_connection_header() {
        let alive = |raw: &str| parse(raw, Method::GET).0.keep_alive;
        assert!(!alive(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!alive("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(alive(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!alive("HTTP/1.1 200 OK\r\n\r\n"), "a body until close");
        assert!(!alive(
            "HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\nConnection: x, CLOSE\r\nContent-Length: 0\r\n\r\n"
        ));
    }

    #[test]
    fn a_connection_header_is_kept_only_when_it_says_more_than_keep_alive_or_close() {
        let connection = |raw: &str| {
            let (head, _) = parse(raw, Method::GET);
            let values: Vec<String> = head
                .parts
                .headers
                .get_all(CONNECTION)
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect();
            values
        };
        assert!(connection(
            "HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n"
        )
        .is_empty());
        assert!(connection("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").is_empty());
        // A nomination is for the hop-by-hop stripping to act on.
        assert_eq!(
            connection("HTTP/1.1 200 OK\r\nConnection: close, x-secret\r\nx-secret: 1\r\n\r\n"),
            ["close, x-secret"]
        );
        // A 101's headers go to the tunnel's other end as they are.
        assert_eq!(
            connection("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
            ["Upgrade"]
        );
        assert_eq!(
            connection("HTTP/1.1 101 Switching Protocols\r\nConnection: keep-alive\r\nUpgrade: websocket\r\n\r\n"),
            ["keep-alive"]
        );
    }

    #[test]
    fn malformed_and_oversized_heads_are_errors() {
        let mut buf = BytesMut::from("HTTP/1.1 abc OK\r\n\r\n");
        assert!(parse_response(&mut buf, &Method::GET, &mut None).is_err());
        let mut buf = BytesMut::from("HTTP/1.1 200 OK\r\n");
        buf.extend_from_slice(&vec![b'a'; MAX_HEAD_BYTES + 1]);
        assert!(matches!(
            parse_response(&mut buf, &Method::GET, &mut None),
            Err(DecodeError::HeadTooLarge)
        ));
    }

    #[test]
    fn chunked_bodies_decode_across_reads_with_extensions_and_trailers() {
        let wire = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\ngrpc-status: 0\r\n\r\n";
        // Fed one byte at a time, as the slowest network would.
        let mut state = ChunkedState::Size;
        let mut buf = BytesMut::new();
        let mut data = Vec::new();
        let mut trailers = None;
        for &b in wire.iter() {
            buf.extend_from_slice(&[b]);
            loop {
                match state.decode(&mut buf).unwrap() {
                    Chunk::Data(d) => data.extend_from_slice(&d),
                    Chunk::End(t) => {
                        trailers = t;
                        break;
                    }
                    Chunk::NeedMore => break,
                }
            }
        }
        assert_eq!(data, b"hello world");
        assert_eq!(state, ChunkedState::Done);
        assert_eq!(trailers.unwrap()["grpc-status"], "0");
        assert!(buf.is_empty());

        let mut state = ChunkedState::Size;
        let mut buf = BytesMut::from("0\r\n\r\nrest");
        assert_eq!(state.decode(&mut buf).unwrap(), Chunk::End(None));
        assert_eq!(&buf[..], b"rest");
    }

    #[test]
    fn bad_chunks_are_errors() {
        for wire in ["zz\r\n", "5\r\nhelloXX", "\r\n"] {
            let mut state = ChunkedState::Size;
            let mut buf = BytesMut::from(wire);
            let mut result = state.decode(&mut buf);
            while let Ok(Chunk::Data(_)) = result {
                result = state.decode(&mut buf);
            }
            assert!(result.is_err(), "{wire:?} must fail");
        }
    }
}

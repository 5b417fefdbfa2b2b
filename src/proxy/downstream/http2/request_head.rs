//! A request's head, or its trailers, from a decoded header block, checked as RFC 9113 §8
//! requires: pseudo-headers first, each once, the ones the method needs; no connection-specific
//! header; `te` only as "trailers". A block that breaks a rule is a malformed request (a stream
//! error); one whose list is over the listener's budget is answered 431.

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, COOKIE, TE, TRANSFER_ENCODING, UPGRADE};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};

use crate::proxy::http2_wire::hpack::{self, Name, Pseudo};

pub(super) enum Decoded {
    Request(RequestHead),
    Trailers(HeaderMap),
    Malformed,
    /// The decoded header list is over the budget.
    TooLarge,
}

pub(super) struct RequestHead {
    method: Method,
    uri: Uri,
    pub headers: HeaderMap,
    /// `content-length`, checked: digits only, every value the same (kept once).
    pub content_length: Option<u64>,
}

impl RequestHead {
    pub fn into_request<B>(self, body: B) -> Request<B> {
        let mut request = Request::new(body);
        *request.method_mut() = self.method;
        *request.uri_mut() = self.uri;
        *request.version_mut() = Version::HTTP_2;
        *request.headers_mut() = self.headers;
        request
    }
}

/// The pseudo-headers of a request block, as received.
#[derive(Default)]
struct Pseudos {
    method: Option<HeaderValue>,
    scheme: Option<HeaderValue>,
    authority: Option<HeaderValue>,
    path: Option<HeaderValue>,
}

/// Decodes `block` (the whole block is always decoded, so the HPACK table stays in step with
/// the client's). `max_list` is the header budget in RFC 9113 §6.5.2 octets (name + value + 32
/// per field). The headers go into `headers`, an empty map (whose allocation may be reused).
pub(super) fn decode(
    decoder: &mut hpack::Decoder,
    block: &[u8],
    max_list: usize,
    trailers: bool,
    mut headers: HeaderMap,
) -> Result<Decoded, hpack::DecodeError> {
    debug_assert!(headers.is_empty(), "a recycled map comes cleared");
    let mut size = 0usize;
    let mut malformed = false;
    let mut regular_seen = false;
    let mut pseudos = Pseudos::default();
    let mut cookies = 0usize;
    decoder.decode(block, |field| {
        let Ok((name, value)) = field else {
            malformed = true;
            return;
        };
        size += name.as_str().len() + value.len() + 32;
        if malformed || size > max_list {
            return;
        }
        match name {
            Name::Pseudo(pseudo) => {
                if regular_seen || trailers {
                    malformed = true;
                    return;
                }
                let slot = match pseudo {
                    Pseudo::Method => &mut pseudos.method,
                    Pseudo::Scheme => &mut pseudos.scheme,
                    Pseudo::Authority => &mut pseudos.authority,
                    Pseudo::Path => &mut pseudos.path,
                    // No extended CONNECT (RFC 8441) is offered, and `:status` is a response's.
                    Pseudo::Protocol | Pseudo::Status => {
                        malformed = true;
                        return;
                    }
                };
                if slot.is_some() {
                    malformed = true;
                    return;
                }
                *slot = Some(value.clone());
            }
            Name::Header(header) => {
                regular_seen = true;
                if is_connection_specific(header) || (header == TE && value != "trailers") {
                    malformed = true;
                    return;
                }
                if *header == COOKIE {
                    cookies += 1;
                }
                headers.append(header.clone(), value.clone());
            }
        }
    })?;
    if size > max_list {
        return Ok(Decoded::TooLarge);
    }
    if malformed {
        return Ok(Decoded::Malformed);
    }
    if trailers {
        return Ok(Decoded::Trailers(headers));
    }
    let Ok(content_length) = content_length(&mut headers) else {
        return Ok(Decoded::Malformed);
    };
    if cookies > 1 {
        join_cookies(&mut headers);
    }
    Ok(match request_line(pseudos) {
        Some((method, uri)) => Decoded::Request(RequestHead {
            method,
            uri,
            headers,
            content_length,
        }),
        None => Decoded::Malformed,
    })
}

/// The request's `content-length`: absent, or one number however many times it is repeated
/// (then kept once). Anything else — a sign, a list of different numbers, garbage — is
/// malformed: passed to an HTTP/1 upstream it would frame the body differently from how the
/// DATA frames did (request smuggling, H2.CL).
fn content_length(headers: &mut HeaderMap) -> Result<Option<u64>, ()> {
    let mut found: Option<u64> = None;
    let mut count = 0;
    for value in headers.get_all(CONTENT_LENGTH) {
        count += 1;
        let bytes = value.as_bytes();
        if bytes.is_empty() || bytes.len() > 19 || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(());
        }
        let n = std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(())?;
        if found.is_some_and(|f| f != n) {
            return Err(());
        }
        found = Some(n);
    }
    if count > 1 {
        if let Some(n) = found {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
        }
    }
    Ok(found)
}

/// Joins a request's `cookie` fields into one, separated by "; " (RFC 9113 §8.2.3). HTTP/2
/// clients send each cookie as a field of its own, which compresses better; an HTTP/1.1
/// upstream expects one `Cookie` header and many read only the first. Envoy's codec joins them
/// the same way, whatever the upstream's protocol.
fn join_cookies(headers: &mut HeaderMap) {
    let mut joined = Vec::new();
    for value in headers.get_all(COOKIE) {
        if !joined.is_empty() {
            joined.extend_from_slice(b"; ");
        }
        joined.extend_from_slice(value.as_bytes());
    }
    // Each part was a valid value, and so is "; ": this cannot fail.
    if let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(joined)) {
        headers.insert(COOKIE, value);
    }
}

/// Headers that belong to one HTTP/1 connection and make an HTTP/2 message malformed
/// (RFC 9113 §8.2.2): a smuggling vector when a request is turned back into HTTP/1.
fn is_connection_specific(name: &HeaderName) -> bool {
    name == CONNECTION
        || name == TRANSFER_ENCODING
        || name == UPGRADE
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// The method and URI from the pseudo-headers (RFC 9113 §8.3.1): CONNECT has only
/// `:authority`; every other method `:scheme` and a non-empty `:path`.
fn request_line(p: Pseudos) -> Option<(Method, Uri)> {
    let method = Method::from_bytes(p.method?.as_bytes()).ok()?;
    let mut parts = http::uri::Parts::default();
    // The URI's parts own the decoded values instead of copies: a copy was a new vector's bytes,
    // which the first clone of the URI (the HCM makes two) moved into an allocation of its own.
    if let Some(authority) = p.authority {
        parts.authority = Some(Authority::from_maybe_shared(Bytes::from_owner(authority)).ok()?);
    }
    if method == Method::CONNECT {
        if p.scheme.is_some() || p.path.is_some() {
            return None;
        }
        parts.authority.as_ref()?;
    } else {
        let scheme = match p.scheme?.as_bytes() {
            b"http" => Scheme::HTTP,
            b"https" => Scheme::HTTPS,
            other => Scheme::try_from(other).ok()?,
        };
        // A URI cannot hold a scheme without an authority: without `:authority` (the client
        // sent `host` instead) the checked scheme is dropped, as the h2 crate does.
        if parts.authority.is_some() {
            parts.scheme = Some(scheme);
        }
        let path = p.path?;
        if path.is_empty() {
            return None;
        }
        let path = PathAndQuery::from_maybe_shared(Bytes::from_owner(path)).ok()?;
        parts.path_and_query = Some(path);
    }
    Some((method, Uri::from_parts(parts).ok()?))
}

//! The two gRPC details a unary call needs: framing the request message, and reading the
//! call's status from the response.

use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderMap;

use crate::traffic::report::Outcome;

/// gRPC's `INTERNAL`: what gRPC clients report for a 200 that carries no (or a garbled)
/// `grpc-status`.
const INTERNAL: u32 = 13;

/// The length-prefixed message: a zero compression flag, the length (big endian), the bytes.
/// An empty message is the request type's default value in protobuf.
pub fn frame(message: &[u8]) -> Bytes {
    let mut framed = BytesMut::with_capacity(5 + message.len());
    framed.put_u8(0);
    framed.put_u32(message.len() as u32);
    framed.put_slice(message);
    framed.freeze()
}

/// A non-200 answer is an HTTP status as is; a 200 is OK (`Status(200)`) when `grpc-status`
/// is 0, else `Grpc(code)`. The status comes in the trailers, or in the headers of a
/// trailers-only response.
pub fn outcome(status: u16, headers: &HeaderMap, trailers: Option<&HeaderMap>) -> Outcome {
    if status != 200 {
        return Outcome::Status(status);
    }
    let code = trailers
        .and_then(|t| t.get("grpc-status"))
        .or_else(|| headers.get("grpc-status"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u32>().ok());
    match code {
        Some(0) => Outcome::Status(200),
        Some(code) => Outcome::Grpc(code),
        None => Outcome::Grpc(INTERNAL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (http::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn frames_carry_a_flag_and_a_big_endian_length() {
        assert_eq!(&frame(b"")[..], &[0, 0, 0, 0, 0]);
        assert_eq!(
            &frame(b"\x0a\x02ab")[..],
            &[0, 0, 0, 0, 4, 0x0a, 2, b'a', b'b']
        );
    }

    #[test]
    fn status_comes_from_trailers_then_headers() {
        let none = HeaderMap::new();
        assert_eq!(
            outcome(200, &none, Some(&map(&[("grpc-status", "0")]))),
            Outcome::Status(200)
        );
        assert_eq!(
            outcome(200, &none, Some(&map(&[("grpc-status", "14")]))),
            Outcome::Grpc(14)
        );
        assert_eq!(
            outcome(200, &map(&[("grpc-status", "12")]), None),
            Outcome::Grpc(12)
        );
        assert_eq!(
            outcome(503, &map(&[("grpc-status", "0")]), None),
            Outcome::Status(503)
        );
        assert_eq!(outcome(200, &none, None), Outcome::Grpc(13));
    }
}

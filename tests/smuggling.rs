//! Request smuggling and malformed HTTP/1.1: a corpus of raw byte vectors, each sent on its
//! own connection to a proxy in front of an upstream that records every request head. Whatever
//! the proxy does with a vector, the upstream must never see the request hidden inside it
//! (always `GET /smuggled`), never more than one request per vector, and never a request whose
//! framing is ambiguous (two Content-Lengths, or Content-Length with Transfer-Encoding).

mod support;

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use support::hostile::{count_proxy_panics, proxy_panics, read_until_closed, Recorder};
use support::*;

/// The request every vector tries to slip past the proxy.
const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: smuggle.test\r\n\r\n";

/// Headers the upstream must never see (`x-nominated` is named in a vector's `Connection`).
/// `transfer-encoding` may appear, but only as the proxy's own framing of the upstream hop.
const HOP_BY_HOP: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "x-nominated",
];

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Refused with this status before anything reaches the upstream, then closed.
    Rejected(u16),
    /// At most the first request reaches the upstream (a body error can only be found after
    /// its head was forwarded), and the connection is closed so nothing after it is parsed.
    ClosedAfterFirst,
    /// Unusual but unambiguous: forwarded exactly once, as a single request.
    ServedOnce,
}

struct Vector {
    name: &'static str,
    bytes: Vec<u8>,
    expect: Expect,
}

fn v(name: &'static str, bytes: impl Into<Vec<u8>>, expect: Expect) -> Vector {
    Vector {
        name,
        bytes: bytes.into(),
        expect,
    }
}

/// A POST whose head is `headers` (CRLF-terminated lines) and whose body is `body`.
fn post(headers: &str, body: &str) -> Vec<u8> {
    format!("POST / HTTP/1.1\r\nHost: smuggle.test\r\n{headers}\r\n{body}").into_bytes()
}

/// `SMUGGLED` as one chunk of a chunked body.
fn smuggled_chunk() -> String {
    format!("{:x}\r\n{SMUGGLED}\r\n0\r\n\r\n", SMUGGLED.len())
}

fn corpus() -> Vec<Vector> {
    use Expect::*;
    let s = SMUGGLED;
    let cl_all =
        |extra: &str, body: &str| post(&format!("Content-Length: {}\r\n{extra}", body.len()), body);
    let terminated = format!("0\r\n\r\n{s}");
    let many_headers: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    vec![
        // CL.TE and TE.CL: the two framings disagree about where the body ends.
        // Both lengths given: refused before any parsing (400 and closed), as Envoy does.
        v("cl_te", cl_all("Transfer-Encoding: chunked\r\n", &terminated), Rejected(400)),
        v(
            "te_cl",
            post("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", &smuggled_chunk()),
            Rejected(400),
        ),
        v(
            "te_tab_cl",
            cl_all("Transfer-Encoding:\tchunked\r\n", &terminated),
            Rejected(400),
        ),
        v(
            "te_identity_then_chunked_cl",
            cl_all("Transfer-Encoding: identity, chunked\r\n", &terminated),
            Rejected(400),
        ),
        // Transfer-Encoding whose final coding is not exactly `chunked`.
        v("te_chunked_identity", cl_all("Transfer-Encoding: chunked, identity\r\n", &terminated), Rejected(400)),
        v("te_xchunked", cl_all("Transfer-Encoding: xchunked\r\n", &terminated), Rejected(400)),
        v("te_chunkedx", cl_all("Transfer-Encoding: chunkedx\r\n", &terminated), Rejected(400)),
        v("te_quoted", cl_all("Transfer-Encoding: \"chunked\"\r\n", &terminated), Rejected(400)),
        v(
            "te_two_lines_last_identity",
            cl_all("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", &terminated),
            Rejected(400),
        ),
        v("te_space_before_colon", cl_all("Transfer-Encoding : chunked\r\n", &terminated), Rejected(400)),
        v("te_vertical_tab", cl_all("Transfer-Encoding:\x0bchunked\r\n", &terminated), Rejected(400)),
        v("te_form_feed", cl_all("Transfer-Encoding:\x0cchunked\r\n", &terminated), Rejected(400)),
        v("te_obs_fold", cl_all("Transfer-Encoding:\r\n chunked\r\n", &terminated), Rejected(400)),
        v(
            "te_in_http10",
            format!("POST / HTTP/1.0\r\nHost: smuggle.test\r\nTransfer-Encoding: chunked\r\n\r\n{terminated}"),
            Rejected(400),
        ),
        // Content-Length games.
        v("cl_conflicting_duplicates", post("Content-Length: 5\r\nContent-Length: 40\r\n", &format!("hello{s}")), Rejected(400)),
        v("cl_conflicting_list", post("Content-Length: 5, 40\r\n", &format!("hello{s}")), Rejected(400)),
        v("cl_negative", post("Content-Length: -5\r\n", s), Rejected(400)),
        v("cl_plus_sign", post("Content-Length: +5\r\n", s), Rejected(400)),
        v("cl_hex", post("Content-Length: 0x5\r\n", s), Rejected(400)),
        v("cl_overflow", post("Content-Length: 184467440737095516160\r\n", s), Rejected(400)),
        v("cl_inner_space", post("Content-Length: 4 4\r\n", s), Rejected(400)),
        v("cl_empty", post("Content-Length: \r\n", s), Rejected(400)),
        v("cl_space_before_colon", post("Content-Length : 5\r\n", s), Rejected(400)),
        // Duplicates, even of one value, are refused as Envoy refuses them.
        v("cl_identical_duplicates", post("Content-Length: 5\r\nContent-Length: 5\r\n", "hello"), Rejected(400)),
        // Chunked bodies that cannot be decoded: found only after the head went upstream.
        v("chunk_size_overflow", post("Transfer-Encoding: chunked\r\n", &format!("FFFFFFFFFFFFFFFFF\r\nx\r\n0\r\n\r\n{s}")), ClosedAfterFirst),
        v("chunk_size_negative", post("Transfer-Encoding: chunked\r\n", &format!("-1\r\nx\r\n0\r\n\r\n{s}")), ClosedAfterFirst),
        v("chunk_size_plus", post("Transfer-Encoding: chunked\r\n", &format!("+5\r\nhello\r\n0\r\n\r\n{s}")), ClosedAfterFirst),
        v("chunk_size_missing", post("Transfer-Encoding: chunked\r\n", &format!("\r\nhello\r\n0\r\n\r\n{s}")), ClosedAfterFirst),
        v("chunk_data_overrun", post("Transfer-Encoding: chunked\r\n", &format!("3\r\nhello\r\n0\r\n\r\n{s}")), ClosedAfterFirst),
        v("chunk_ext_bare_lf", post("Transfer-Encoding: chunked\r\n", &format!("5;a\nb\r\nhello\r\n0\r\n\r\n{s}")), ClosedAfterFirst),
        // Line endings and control bytes.
        v("obs_fold_continuation", "GET / HTTP/1.1\r\nHost: smuggle.test\r\nX-A: a\r\n b\r\n\r\n", Rejected(400)),
        v("bare_cr_in_value", post("X-A: a\rContent-Length: 40\r\n", s), Rejected(400)),
        v("nul_in_value", "GET / HTTP/1.1\r\nHost: smuggle.test\r\nX-A: a\0b\r\n\r\n", Rejected(400)),
        v("nul_in_name", "GET / HTTP/1.1\r\nHost: smuggle.test\r\nX\0A: b\r\n\r\n", Rejected(400)),
        v("ctrl_in_value", "GET / HTTP/1.1\r\nHost: smuggle.test\r\nX-A: a\x01b\r\n\r\n", Rejected(400)),
        v("del_in_name", "GET / HTTP/1.1\r\nHost: smuggle.test\r\nX\x7fA: b\r\n\r\n", Rejected(400)),
        v("ctrl_in_uri", "GET /a\x01b HTTP/1.1\r\nHost: smuggle.test\r\n\r\n", Rejected(400)),
        v("space_in_uri", "GET /a b HTTP/1.1\r\nHost: smuggle.test\r\n\r\n", Rejected(400)),
        // Bare LF is a line ending to hyper (RFC 9112 §2.2 lets a recipient accept it); the
        // proxy re-serialises with CRLF, so both hops agree on where every line ends.
        v("bare_lf_line_endings", "GET /lf HTTP/1.1\nHost: smuggle.test\n\n", ServedOnce),
        v(
            "bare_lf_before_cl",
            format!("POST / HTTP/1.1\r\nHost: smuggle.test\r\nX-A: a\nContent-Length: {}\r\n\r\n{s}", s.len()),
            ServedOnce,
        ),
        // A body that looks like a request stays a body.
        v(
            "get_with_request_shaped_body",
            format!("GET / HTTP/1.1\r\nHost: smuggle.test\r\nContent-Length: {}\r\n\r\n{s}", s.len()),
            ServedOnce,
        ),
        v(
            "te_name_with_underscore",
            format!("POST / HTTP/1.1\r\nHost: smuggle.test\r\nContent-Length: {}\r\nTransfer_Encoding: chunked\r\n\r\n{s}", s.len()),
            ServedOnce,
        ),
        // Hop-by-hop headers belong to the client's connection and never reach the upstream.
        v(
            "hop_by_hop_headers",
            "GET /hop HTTP/1.1\r\nHost: smuggle.test\r\nConnection: keep-alive, X-Nominated\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers, deflate\r\nUpgrade: h2c\r\nX-Nominated: secret\r\n\r\n",
            ServedOnce,
        ),
        // Limits.
        v(
            "oversized_header",
            format!("GET / HTTP/1.1\r\nHost: smuggle.test\r\nX-Big: {}\r\n\r\n", "a".repeat(70 * 1024)),
            Rejected(431),
        ),
        v(
            "too_many_headers",
            format!("GET / HTTP/1.1\r\nHost: smuggle.test\r\n{many_headers}\r\n"),
            Rejected(431),
        ),
        v(
            "uri_too_long",
            format!("GET /{} HTTP/1.1\r\nHost: smuggle.test\r\n\r\n", "u".repeat(9 * 1024)),
            Rejected(414),
        ),
        // Request lines.
        v("request_line_garbage", "GARBAGE\r\n\r\n", Rejected(400)),
        v("http09", "GET /\r\n\r\n", Rejected(400)),
        v("http12", "GET / HTTP/1.2\r\nHost: smuggle.test\r\n\r\n", Rejected(400)),
        v("http2_version_over_h1", "GET / HTTP/2.0\r\nHost: smuggle.test\r\n\r\n", Rejected(400)),
        v("missing_host", "GET / HTTP/1.1\r\n\r\n", Rejected(400)),
        v("duplicate_host", "GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n", Rejected(400)),
        // Absolute form: the authority comes from the target, the upstream gets origin form.
        v("absolute_form", "GET http://other.test/abs HTTP/1.1\r\nHost: smuggle.test\r\n\r\n", ServedOnce),
        v("absolute_form_without_host", "GET http://other.test/abs HTTP/1.1\r\n\r\n", ServedOnce),
        v("absolute_form_empty_path", "GET http://other.test HTTP/1.1\r\nHost: smuggle.test\r\n\r\n", ServedOnce),
    ]
}

/// The status codes of the responses in `bytes`, in order (responses carry Content-Length).
fn statuses(bytes: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(bytes);
    let mut rest: &str = &text;
    let mut codes = Vec::new();
    while let Some(at) = rest.find("HTTP/1.") {
        rest = &rest[at..];
        let Some(code) = rest.get(9..12).and_then(|c| c.parse().ok()) else {
            break;
        };
        codes.push(code);
        let Some(end) = rest.find("\r\n\r\n") else {
            break;
        };
        let head = rest[..end].to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        rest = rest.get(end + 4 + len..).unwrap_or("");
    }
    codes
}

#[tokio::test]
async fn no_vector_smuggles_a_request_past_the_proxy() {
    count_proxy_panics();
    let rec = Recorder::start().await;
    let proxy = proxy_to(&[rec.addr], "", "").await;
    let vectors = corpus();
    assert!(
        vectors.len() >= 30,
        "the corpus has {} vectors",
        vectors.len()
    );

    let mut failures = Vec::new();
    for vector in &vectors {
        let before = rec.count();
        let mut s = TcpStream::connect(proxy.first_listener()).await.unwrap();
        // The proxy may close while a large vector is still being written; that is an answer.
        let _ = s.write_all(&vector.bytes).await;
        let mut got = Vec::new();
        // A closing proxy answers at once; a kept-alive connection is given 1 s of silence to
        // show that nothing more (a second, smuggled response) is coming.
        let closed = read_until_closed(&mut s, &mut got, Duration::from_secs(1)).await;
        let codes = statuses(&got);
        let seen = rec.seen()[before..].to_vec();
        eprintln!(
            "{:32} responses {codes:?}, closed {closed}, upstream saw {:?}",
            vector.name,
            seen.iter().map(|r| &r.path).collect::<Vec<_>>()
        );
        let mut fail = |why: String| failures.push(format!("{}: {why}", vector.name));

        if seen.iter().any(|r| r.path.contains("smuggled")) {
            fail(format!("the upstream saw the smuggled request: {seen:?}"));
        }
        if seen.len() > 1 {
            fail(format!(
                "the upstream saw {} requests: {seen:?}",
                seen.len()
            ));
        }
        for r in &seen {
            let hop = r
                .headers
                .iter()
                .find(|(k, v)| HOP_BY_HOP.contains(&k.as_str()) || (k == "te" && v != "trailers"));
            if let Some(h) = hop {
                fail(format!("hop-by-hop header forwarded: {h:?}"));
            }
            let cl = r
                .headers
                .iter()
                .filter(|(k, _)| k == "content-length")
                .count();
            let te = r.headers.iter().any(|(k, _)| k == "transfer-encoding");
            if cl > 1 || (cl == 1 && te) {
                fail(format!("ambiguous framing forwarded: {:?}", r.headers));
            }
        }
        match vector.expect {
            Expect::Rejected(code) => {
                if codes.first() != Some(&code) {
                    fail(format!("expected {code}, got {codes:?}"));
                }
                if !closed {
                    fail("the connection stayed open after a rejection".into());
                }
                if !seen.is_empty() {
                    fail(format!("a rejected request reached the upstream: {seen:?}"));
                }
            }
            Expect::ClosedAfterFirst => {
                if !closed {
                    fail(format!("the connection stayed open (responses {codes:?})"));
                }
                if codes.len() > 1 {
                    fail(format!("more than one response: {codes:?}"));
                }
            }
            Expect::ServedOnce => {
                if codes != [200] || seen.len() != 1 {
                    fail(format!(
                        "expected one 200 and one upstream request, got {codes:?} and {seen:?}"
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vectors failed:\n{}",
        failures.len(),
        vectors.len(),
        failures.join("\n")
    );

    // Still serving, nothing panicked, and malformed input was counted as such.
    let r = get(&http1(), &proxy.url("/after")).await;
    assert_eq!(r.status(), 200);
    assert!(
        proxy
            .counter("http.ingress_http.downstream_cx_protocol_error")
            .await
            > 0
    );
    assert_eq!(proxy_panics(), 0, "the proxy panicked");
    proxy.stop().await;
}

#[test]
fn statuses_reads_each_response_in_a_stream() {
    let two = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(statuses(two), [200, 400]);
    assert_eq!(statuses(b""), Vec::<u16>::new());
}

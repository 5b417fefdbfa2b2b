//! The downstream HTTP/1.1 fast path, with a raw client that writes exact bytes: pipelined
//! requests, the hand-over to hyper in the middle of a connection, `Connection: close`, HEAD,
//! a stalled second head, and the drain signal reaching idle and busy connections alike.

mod support;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::*;

/// One response as it came off the wire: the head, lower-cased, and the body.
struct Raw {
    head: String,
    body: Vec<u8>,
}

impl Raw {
    fn status(&self) -> &str {
        &self.head[9..12]
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("an echo body")
    }
}

/// Reads one response (by length, chunks, or none for HEAD) from `s`; `buf` keeps what
/// follows it.
async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>, head_request: bool) -> Raw {
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        fill(s, buf).await;
    };
    let head = String::from_utf8(buf.drain(..end).collect())
        .unwrap()
        .to_ascii_lowercase();
    let mut raw = Raw {
        head,
        body: Vec::new(),
    };
    if head_request {
        return raw;
    }
    if let Some(n) = raw.header("content-length") {
        let n: usize = n.trim().parse().unwrap();
        while buf.len() < n {
            fill(s, buf).await;
        }
        raw.body = buf.drain(..n).collect();
    } else if raw.header("transfer-encoding") == Some("chunked") {
        loop {
            let line_end = loop {
                if let Some(p) = buf.windows(2).position(|w| w == b"\r\n") {
                    break p;
                }
                fill(s, buf).await;
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&buf[..line_end]).unwrap(), 16).unwrap();
            while buf.len() < line_end + 2 + size + 2 {
                fill(s, buf).await;
            }
            raw.body
                .extend_from_slice(&buf[line_end + 2..line_end + 2 + size]);
            buf.drain(..line_end + 2 + size + 2);
            if size == 0 {
                break;
            }
        }
    }
    raw
}

async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
        .await
        .expect("a response within 5 s")
        .unwrap();
    assert!(
        n > 0,
        "connection closed mid-response: {:?}",
        String::from_utf8_lossy(buf)
    );
    buf.extend_from_slice(&chunk[..n]);
}

/// Whether the proxy closes `s` within `within` (reading and discarding anything first).
async fn closes_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut chunk = [0u8; 1024];
    let deadline = tokio::time::sleep(within);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            read = s.read(&mut chunk) => match read {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            },
            () = &mut deadline => return false,
        }
    }
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_and_a_body_hands_over_to_hyper() {
    let up = Upstream::start("up").await;
    let proxy = proxy_to(&[up.addr], "", "").await;
    let mut s = TcpStream::connect(proxy.first_listener()).await.unwrap();
    // Two fast-path GETs, then a POST with a body (hyper's), then a GET after it: one write.
    s.write_all(
        b"GET /one HTTP/1.1\r\nHost: a.test\r\n\r\n\
          GET /two?x=1 HTTP/1.1\r\nHost: a.test\r\nX-Twice: 1\r\nx-twice: 2\r\n\r\n\
          POST /three HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello\
          GET /four HTTP/1.1\r\nHost: a.test\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let r = read_response(&mut s, &mut buf, false).await;
        assert_eq!(r.status(), "200", "{}", r.head);
        assert_eq!(r.header("server"), Some("envoy"));
        assert!(r.header("date").is_some(), "{}", r.head);
        seen.push(r.json());
    }
    let paths: Vec<&str> = seen.iter().map(|j| j["uri"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/one", "/two?x=1", "/three", "/four"]);
    // (The echo keeps the last of repeated headers.)
    assert_eq!(
        seen[1]["headers"]["x-twice"], "2",
        "repeated headers arrive"
    );
    assert_eq!(seen[2]["method"], "POST");
    assert_eq!(seen[2]["body"], "hello");
    assert_eq!(
        proxy.counter("http.ingress_http.downstream_cx_total").await,
        1,
        "one connection carried all four"
    );
    assert_eq!(
        proxy.counter("http.ingress_http.downstream_rq_2xx").await,
        4
    );
    proxy.stop().await;
}

#[tokio::test]
async fn connection_close_head_and_http10_are_answered_as_hyper_answered_them() {
    let up = Upstream::start("up").await;
    let proxy = proxy_to(&[up.addr], "", "").await;

    let mut s = TcpStream::connect(proxy.first_listener()).await.unwrap();
    s.write_all(b"HEAD /h HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, true).await;
    assert_eq!(r.status(), "200");
    assert!(
        r.header("content-length").is_some(),
        "HEAD keeps the length: {}",
        r.head
    );
    s.write_all(b"GET /c HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let r = read_response(&mut s, &mut buf, false).await;
    assert_eq!(r.status(), "200");
    assert_eq!(r.header("connection"), Some("close"), "{}", r.head);
    assert!(buf.is_empty(), "nothing after the last response");
    assert!(closes_within(&mut s, Duration::from_secs(2)).await);

    // HTTP/1.0 is hyper's: it answers in kind and closes.
    let mut s = TcpStream::connect(proxy.first_listener()).await.unwrap();
    s.write_all(b"GET /old HTTP/1.0\r\nHost: a.test\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, false).await;
    assert!(r.head.starts_with("http/1.0 200"), "{}", r.head);
    assert!(closes_within(&mut s, Duration::from_secs(2)).await);
    proxy.stop().await;
}

#[tokio::test]
async fn a_later_head_that_stalls_is_closed_after_request_headers_timeout() {
    let up = Upstream::start("up").await;
    let proxy = proxy_to(&[up.addr], "", "          request_headers_timeout: 0.5s\n").await;
    let mut s = TcpStream::connect(proxy.first_listener()).await.unwrap();
    s.write_all(b"GET /first HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .await
        .unwrap();
    let r = read_response(&mut s, &mut Vec::new(), false).await;
    assert_eq!(r.status(), "200");
    // Idle between requests is not a stalled head: still open after the timeout.
    tokio::time::sleep(Duration::from_millis(700)).await;
    s.write_all(b"GET /second HTTP/1.1\r\nHost: a.")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(closes_within(&mut s, Duration::from_secs(3)).await);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "closed after {waited:?}, before the timeout"
    );
    assert_eq!(
        proxy
            .counter("http.ingress_http.downstream_rq_header_timeout")
            .await,
        1
    );
    proxy.stop().await;
}

#[tokio::test]
async fn draining_closes_idle_connections_on_both_paths() {
    let up = Upstream::start("up").await;
    let proxy = proxy_to(&[up.addr], "", "").await;
    // One connection left on the fast path, one handed to hyper by a request with a body.
    let mut fast = TcpStream::connect(proxy.first_listener()).await.unwrap();
    fast.write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .await
        .unwrap();
    read_response(&mut fast, &mut Vec::new(), false).await;
    let mut handed = TcpStream::connect(proxy.first_listener()).await.unwrap();
    handed
        .write_all(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1\r\n\r\nx")
        .await
        .unwrap();
    read_response(&mut handed, &mut Vec::new(), false).await;

    let (status, _) = proxy.admin_post("/drain_listeners").await;
    assert_eq!(status, 200);
    assert!(
        closes_within(&mut fast, Duration::from_secs(2)).await,
        "an idle fast-path connection closes on drain"
    );
    assert!(
        closes_within(&mut handed, Duration::from_secs(2)).await,
        "an idle hyper connection closes on drain"
    );
    proxy.stop().await;
}

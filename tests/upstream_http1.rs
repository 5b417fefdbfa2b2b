//! Upstream HTTP/1.1 against a raw-socket upstream that writes exact bytes: every way a
//! response body can be delimited, interim responses, request body framing, which pooled
//! connection a request takes, connections the upstream closes, and answers that come before
//! the request body has ended.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full, StreamBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use support::*;

/// What the raw upstream does after reading one request.
enum Reply {
    /// Write these bytes and wait for the next request on the connection.
    Answer(&'static str),
    /// Write these bytes, then close the connection.
    AnswerAndClose(&'static str),
    /// Write these bytes, then close the connection a little later (while it sits idle in the
    /// proxy's pool).
    AnswerThenCloseIdle(&'static str),
    /// Close without answering.
    Close,
    /// Answer as soon as the head is in, without reading the body; then close.
    AnswerBeforeBody(&'static str),
    /// Wait, then write these bytes (and wait for the next request).
    AnswerAfter(Duration, &'static str),
}

/// A request as the upstream saw it.
#[derive(Debug, Clone)]
struct Seen {
    connection: u64,
    head: String,
    body: Vec<u8>,
}

struct RawUpstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicU64>,
}

impl RawUpstream {
    /// `script(n, head)` answers request number `n` (0-based, over all connections).
    async fn start(script: fn(usize, &str) -> Reply) -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicU64::new(0));
        let (log, count) = (seen.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let connection = count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, connection, log.clone(), script));
            }
        });
        RawUpstream {
            addr,
            seen,
            connections,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve(
    mut s: TcpStream,
    connection: u64,
    log: Arc<Mutex<Vec<Seen>>>,
    script: fn(usize, &str) -> Reply,
) {
    let mut buf = Vec::new();
    loop {
        let Some(head) = read_head(&mut s, &mut buf).await else {
            return;
        };
        let n = {
            let mut log = log.lock().unwrap();
            log.push(Seen {
                connection,
                head: head.clone(),
                body: Vec::new(),
            });
            log.len() - 1
        };
        let reply = script(n, &head);
        if let Reply::AnswerBeforeBody(bytes) = reply {
            let _ = s.write_all(bytes.as_bytes()).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            return;
        }
        let body = read_body(&mut s, &mut buf, &head).await;
        log.lock().unwrap()[n].body = body;
        match reply {
            Reply::Answer(bytes) => s.write_all(bytes.as_bytes()).await.unwrap(),
            Reply::AnswerAfter(pause, bytes) => {
                tokio::time::sleep(pause).await;
                s.write_all(bytes.as_bytes()).await.unwrap();
            }
            Reply::AnswerAndClose(bytes) => {
                s.write_all(bytes.as_bytes()).await.unwrap();
                return;
            }
            Reply::AnswerThenCloseIdle(bytes) => {
                s.write_all(bytes.as_bytes()).await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
                return;
            }
            Reply::Close | Reply::AnswerBeforeBody(_) => return,
        }
    }
}

async fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<u8> = buf.drain(..end + 4).collect();
            return Some(String::from_utf8(head).unwrap());
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The request body as sent on the wire (chunked bodies with their framing).
async fn read_body(s: &mut TcpStream, buf: &mut Vec<u8>, head: &str) -> Vec<u8> {
    let lower = head.to_ascii_lowercase();
    let done = |buf: &Vec<u8>| -> Option<usize> {
        if lower.contains("transfer-encoding: chunked") {
            buf.windows(5)
                .position(|w| w == b"0\r\n\r\n")
                .map(|i| i + 5)
        } else {
            let len = lower
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.trim().parse().unwrap());
            (buf.len() >= len).then_some(len)
        }
    };
    loop {
        if let Some(end) = done(buf) {
            return buf.drain(..end).collect();
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return std::mem::take(buf),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

const OK_HELLO: &str = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

#[tokio::test]
async fn response_bodies_are_read_in_every_framing() {
    let up = RawUpstream::start(|_, head| {
        let path = head.split(' ').nth(1).unwrap_or("");
        if head.starts_with("HEAD ") {
            return Reply::Answer("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
        }
        match path {
            "/length" => Reply::Answer(OK_HELLO),
            "/chunked" => Reply::Answer(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
            ),
            "/continue" => Reply::Answer(
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            ),
            "/nothing" => Reply::Answer("HTTP/1.1 204 No Content\r\n\r\n"),
            // No length: the body runs until the upstream closes the connection.
            "/close" => Reply::AnswerAndClose("HTTP/1.1 200 OK\r\n\r\nhello"),
            _ => Reply::Answer("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
        }
    })
    .await;
    let proxy = proxy_to(&[up.addr], "", "").await;
    let client = http1();
    for (path, status, body) in [
        ("/length", 200, "hello"),
        ("/chunked", 200, "hello"),
        ("/continue", 200, "hello"),
        ("/nothing", 204, ""),
        ("/close", 200, "hello"),
        ("/length", 200, "hello"),
    ] {
        let r = get(&client, &proxy.url(path)).await;
        assert_eq!(r.status(), status, "{path}");
        assert_eq!(body_string(r).await, body, "{path}");
    }
    let head = client
        .request(
            Request::head(proxy.url("/length"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(head.headers()["content-length"], "5");
    assert_eq!(body_string(head).await, "");

    // Everything up to /close shared one connection; /close ended it, so the rest took a new one.
    let connections: Vec<u64> = up.seen().iter().map(|s| s.connection).collect();
    assert_eq!(connections, [0, 0, 0, 0, 0, 1, 1]);
    assert_eq!(proxy.counter("cluster.up.upstream_cx_total").await, 2);
    assert_eq!(proxy.counter("cluster.up.upstream_cx_active").await, 1);
    proxy.stop().await;
}

#[tokio::test]
async fn a_connection_the_upstream_closed_while_idle_is_not_used() {
    let up = RawUpstream::start(|_, _| Reply::AnswerThenCloseIdle(OK_HELLO)).await;
    let proxy = proxy_to(&[up.addr], "", "").await;
    let client = http1();
    for _ in 0..3 {
        let r = get(&client, &proxy.url("/")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(body_string(r).await, "hello");
        // The upstream closes its side after 50 ms.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(up.connections.load(Ordering::SeqCst), 3);
    assert_eq!(proxy.counter("cluster.up.upstream_rq_200").await, 3);
    assert!(
        eventually(Duration::from_secs(2), || async {
            proxy.counter("cluster.up.upstream_cx_active").await == 0
        })
        .await,
        "the closed connections were dropped"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn a_request_the_upstream_closes_on_unanswered_gets_envoys_503() {
    // Request 1 arrives on the pooled connection as the upstream closes it (a keep-alive race
    // no pool can see coming). As in Envoy, it is not sent again unless a retry policy asks
    // (`retry_on: reset`): 503, "connection termination".
    let up = RawUpstream::start(|n, _| match n {
        1 => Reply::Close,
        _ => Reply::Answer(OK_HELLO),
    })
    .await;
    let proxy = proxy_to(&[up.addr], "", "").await;
    let client = http1();
    let r = get(&client, &proxy.url("/a")).await;
    assert_eq!(body_string(r).await, "hello");
    let r = get(&client, &proxy.url("/b")).await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        body_string(r).await,
        "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
    );
    let r = get(&client, &proxy.url("/c")).await;
    assert_eq!(
        body_string(r).await,
        "hello",
        "the next request opens a new connection"
    );
    let connections: Vec<u64> = up.seen().iter().map(|s| s.connection).collect();
    assert_eq!(connections, [0, 0, 1]);
    proxy.stop().await;
}

#[tokio::test]
async fn the_most_recently_used_connection_is_taken_first() {
    // Four requests at once open four connections; after them, requests one at a time all
    // take the same one (Envoy's order), so the others stay idle and the upstream's keep-alive
    // timeout can close them. Taken in turn, every connection would be kept busy forever.
    let up = RawUpstream::start(|n, _| match n {
        0..4 => Reply::AnswerAfter(Duration::from_millis(300), OK_HELLO),
        _ => Reply::Answer(OK_HELLO),
    })
    .await;
    let proxy = proxy_to(&[up.addr], "", "").await;
    let client = http1();
    let burst: Vec<_> = (0..4)
        .map(|i| {
            let (client, url) = (client.clone(), proxy.url(&format!("/burst{i}")));
            tokio::spawn(async move { body_string(get(&client, &url).await).await })
        })
        .collect();
    for b in burst {
        assert_eq!(b.await.unwrap(), "hello");
    }
    for i in 0..6 {
        let r = get(&client, &proxy.url(&format!("/one{i}"))).await;
        assert_eq!(body_string(r).await, "hello");
    }
    let seen = up.seen();
    let burst: std::collections::BTreeSet<u64> = seen[..4].iter().map(|s| s.connection).collect();
    assert_eq!(burst.len(), 4, "the burst opened four connections");
    let after: std::collections::BTreeSet<u64> = seen[4..].iter().map(|s| s.connection).collect();
    assert_eq!(
        after.len(),
        1,
        "one connection served every later request: {after:?}"
    );
    assert_eq!(proxy.counter("cluster.up.upstream_cx_total").await, 4);
    proxy.stop().await;
}

#[tokio::test]
async fn request_bodies_are_framed_as_received() {
    let up = RawUpstream::start(|_, _| Reply::Answer(OK_HELLO)).await;
    let proxy = proxy_to(&[up.addr], "", "").await;
    let client = http1();
    let fixed = Request::post(proxy.url("/fixed"))
        .body(Full::new(Bytes::from_static(b"0123456789")))
        .unwrap();
    assert_eq!(client.request(fixed).await.unwrap().status(), 200);

    // A body of unknown length (chunked from the client) goes upstream chunked.
    let mut s = TcpStream::connect(proxy.first_listener()).await.unwrap();
    s.write_all(
        b"PUT /streamed HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.write_all(b"2\r\nef\r\n0\r\n\r\n").await.unwrap();
    let mut answer = vec![0u8; 1024];
    let n = s.read(&mut answer).await.unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));

    let seen = up.seen();
    let fixed = &seen[0];
    assert!(
        fixed.head.contains("content-length: 10\r\n"),
        "{}",
        fixed.head
    );
    assert_eq!(fixed.body, b"0123456789");
    let streamed = &seen[1];
    assert!(
        streamed.head.contains("transfer-encoding: chunked\r\n"),
        "{}",
        streamed.head
    );
    let body = String::from_utf8(streamed.body.clone()).unwrap();
    assert!(body.ends_with("0\r\n\r\n"), "{body:?}");
    let unframed: String = body
        .split("\r\n")
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s)
        .collect();
    assert_eq!(unframed, "abcdef");
    proxy.stop().await;
}

#[tokio::test]
async fn an_answer_before_the_request_body_ends_reaches_the_client() {
    let up = RawUpstream::start(|n, _| match n {
        0 => Reply::AnswerBeforeBody(
            "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo big!",
        ),
        _ => Reply::Answer(OK_HELLO),
    })
    .await;
    let proxy = proxy_to(&[up.addr], "", "").await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<http_body::Frame<Bytes>, std::io::Error>>(1);
    tx.send(Ok(http_body::Frame::data(Bytes::from_static(
        b"first part",
    ))))
    .await
    .unwrap();
    let body = StreamBody::new(tokio_stream_from(rx)).boxed();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::combinators::BoxBody<Bytes, std::io::Error>>();
    let upload = Request::post(proxy.url("/upload"))
        .header("content-length", "1000000")
        .body(body)
        .unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), client.request(upload))
        .await
        .expect("the answer came before the body ended")
        .unwrap();
    assert_eq!(r.status(), 413);
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&bytes[..], b"too big!");
    drop(tx);

    // That connection was left mid-request, so it is not reused.
    let r = get(&http1(), &proxy.url("/next")).await;
    assert_eq!(body_string(r).await, "hello");
    assert_eq!(up.connections.load(Ordering::SeqCst), 2);
    proxy.stop().await;
}

/// A stream of the receiver's items (tokio's receiver is not a `Stream` itself).
fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

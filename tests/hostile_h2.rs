//! HTTP/2 abuse at the frame level, with a hand-written client over h2c prior knowledge:
//! Rapid Reset (CVE-2023-44487), resets of requests already sent upstream, prompt upstream
//! cancellation, CONTINUATION floods, the stream limit, and header limits.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use support::hostile::{count_proxy_panics, h2, proxy_panics, Recorder};
use support::*;

/// The proxy's `max_concurrent_streams` (see `hardening::H2_MAX_CONCURRENT_STREAMS`).
const MAX_CONCURRENT_STREAMS: usize = 100;

/// Opens an h2c connection and completes the SETTINGS exchange; returns the split socket and
/// a channel of every frame the proxy sends afterwards (closed at EOF).
async fn connect(
    addr: std::net::SocketAddr,
) -> (OwnedWriteHalf, mpsc::UnboundedReceiver<h2::Frame>) {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let mut hello = h2::PREFACE.to_vec();
    hello.extend(h2::frame(h2::SETTINGS, 0, 0, &[]));
    wr.write_all(&hello).await.unwrap();
    // Wait for the server's SETTINGS and acknowledge them, so its limits are in force.
    let mut buf = Vec::new();
    let mut early = Vec::new();
    'settings: loop {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), rd.read(&mut chunk))
            .await
            .expect("server SETTINGS in time")
            .unwrap();
        assert!(n > 0, "closed before SETTINGS");
        buf.extend_from_slice(&chunk[..n]);
        for f in h2::parse(&mut buf) {
            let is_settings = f.kind == h2::SETTINGS && f.flags & h2::ACK == 0;
            early.push(f);
            if is_settings {
                break 'settings;
            }
        }
    }
    wr.write_all(&h2::frame(h2::SETTINGS, h2::ACK, 0, &[]))
        .await
        .unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    for f in early {
        let _ = tx.send(f);
    }
    tokio::spawn(read_frames(rd, buf, tx));
    (wr, rx)
}

async fn read_frames(
    mut rd: OwnedReadHalf,
    mut buf: Vec<u8>,
    tx: mpsc::UnboundedSender<h2::Frame>,
) {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        for f in h2::parse(&mut buf) {
            if tx.send(f).is_err() {
                return;
            }
        }
    }
}

/// Collects frames until the proxy closes the connection (true) or `limit` passes (false).
async fn until_closed(
    rx: &mut mpsc::UnboundedReceiver<h2::Frame>,
    limit: Duration,
) -> (bool, Vec<h2::Frame>) {
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => return (true, frames),
            Err(_) => return (false, frames),
        }
    }
}

fn goaway(frames: &[h2::Frame]) -> Option<u32> {
    frames
        .iter()
        .find(|f| f.kind == h2::GOAWAY)
        .and_then(h2::Frame::error_code)
}

async fn settle_gauges(proxy: &Proxy) {
    assert!(
        eventually(Duration::from_secs(10), || async {
            proxy
                .counter("http.ingress_http.downstream_rq_active")
                .await
                == 0
                && proxy.counter("cluster.up.upstream_rq_active").await == 0
        })
        .await,
        "active request gauges return to zero"
    );
}

async fn probe(proxy: &Proxy) {
    let r = get(&h2c(), &proxy.url("/probe")).await;
    assert_eq!(r.status(), 200, "the proxy still serves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_costs_at_most_max_concurrent_streams_upstream_requests() {
    count_proxy_panics();
    let rec = Recorder::start().await;
    let proxy = proxy_to(&[rec.addr], "", "").await;
    let (mut wr, mut rx) = connect(proxy.first_listener()).await;

    let mut sent = 0u32;
    'flood: for batch in 0..100u32 {
        let mut bytes = Vec::new();
        for i in 0..100u32 {
            let id = 1 + 2 * (batch * 100 + i);
            bytes.extend(h2::frame(
                h2::HEADERS,
                h2::END_HEADERS | h2::END_STREAM,
                id,
                &h2::get(&format!("/rr/{id}")),
            ));
            bytes.extend(h2::rst(id, h2::CANCEL));
        }
        if wr.write_all(&bytes).await.is_err() {
            break 'flood;
        }
        sent += 100;
    }
    let (was_closed, frames) = until_closed(&mut rx, Duration::from_secs(15)).await;
    assert!(
        was_closed,
        "the connection is closed (GOAWAY {:?}) after {sent} HEADERS+RST_STREAM pairs",
        goaway(&frames)
    );
    // Requests already on their way upstream may still land: let them, then count.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let upstream = rec.count();
    eprintln!(
        "rapid reset: {sent} pairs written, GOAWAY {:?}, {upstream} upstream requests",
        goaway(&frames)
    );
    assert!(
        upstream <= MAX_CONCURRENT_STREAMS,
        "{upstream} upstream requests for {sent} reset streams"
    );
    settle_gauges(&proxy).await;
    probe(&proxy).await;
    assert_eq!(proxy_panics(), 0);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resetting_most_streams_after_they_reach_the_upstream_closes_the_connection() {
    count_proxy_panics();
    let rec = Recorder::start().await;
    let proxy = proxy_to(&[rec.addr], "", "").await;
    let (mut wr, mut rx) = connect(proxy.first_listener()).await;

    // Batches of 50 held requests, each reset 100 ms later (well within Envoy's 1 s premature
    // lifetime), until the proxy gives up on the connection: Envoy's rule closes it at the
    // 250th premature reset, so within 5 batches; 20 is the test's own bound.
    let mut next = 1u32;
    let mut batches = 0;
    let mut was_closed = false;
    for _ in 0..20 {
        let ids: Vec<u32> = (0..50).map(|i| next + 2 * i).collect();
        next += 100;
        let mut heads = Vec::new();
        for id in &ids {
            heads.extend(h2::frame(
                h2::HEADERS,
                h2::END_HEADERS | h2::END_STREAM,
                *id,
                &h2::get(&format!("/hold/{id}")),
            ));
        }
        if wr.write_all(&heads).await.is_err() {
            was_closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let resets: Vec<u8> = ids.iter().flat_map(|id| h2::rst(*id, h2::CANCEL)).collect();
        if wr.write_all(&resets).await.is_err() {
            was_closed = true;
            break;
        }
        batches += 1;
        let (closed, _) = until_closed(&mut rx, Duration::from_millis(200)).await;
        if closed {
            was_closed = true;
            break;
        }
    }
    if !was_closed {
        was_closed = until_closed(&mut rx, Duration::from_secs(5)).await.0;
    }
    eprintln!(
        "premature resets: closed {was_closed} after {batches} batches, {} upstream requests",
        rec.count()
    );
    assert!(was_closed, "still open after {batches} batches of resets");
    assert!(batches <= 6, "closed only after {batches} batches");
    assert!(
        eventually(Duration::from_secs(5), || async {
            proxy
                .counter("http.ingress_http.downstream_rq_too_many_premature_resets")
                .await
                == 1
        })
        .await
    );
    settle_gauges(&proxy).await;
    // The requests that reached the upstream were cancelled there, not left running.
    let tx_reset = proxy.counter("cluster.up.upstream_rq_tx_reset").await;
    assert!(tx_reset >= 1, "upstream_rq_tx_reset = {tx_reset}");
    assert!(
        proxy
            .counter("http.ingress_http.downstream_rq_rx_reset")
            .await
            >= 250
    );
    probe(&proxy).await;
    assert_eq!(proxy_panics(), 0);
    proxy.stop().await;
}

/// An upstream on a raw socket that reports when a request head arrived and when the proxy
/// closed the connection.
async fn watching_upstream() -> (
    std::net::SocketAddr,
    mpsc::UnboundedReceiver<(&'static str, Instant)>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut held = tokio::task::JoinSet::new();
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            held.spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = tx.send(("head", Instant::now()));
                loop {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
                let _ = tx.send(("closed", Instant::now()));
            });
        }
    });
    (addr, rx, task)
}

async fn next_event(
    rx: &mut mpsc::UnboundedReceiver<(&'static str, Instant)>,
) -> (&'static str, Instant) {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("upstream event in time")
        .expect("upstream running")
}

#[tokio::test]
async fn a_reset_stream_cancels_its_upstream_request_at_once() {
    count_proxy_panics();
    let (addr, mut events, upstream) = watching_upstream().await;
    let proxy = proxy_to(&[addr], "", "").await;
    let (mut wr, _rx) = connect(proxy.first_listener()).await;
    wr.write_all(&h2::frame(
        h2::HEADERS,
        h2::END_HEADERS | h2::END_STREAM,
        1,
        &h2::get("/hold"),
    ))
    .await
    .unwrap();
    assert_eq!(next_event(&mut events).await.0, "head");
    let reset_at = Instant::now();
    wr.write_all(&h2::rst(1, h2::CANCEL)).await.unwrap();
    let (what, at) = next_event(&mut events).await;
    assert_eq!(what, "closed");
    let took = at.duration_since(reset_at);
    assert!(
        took < Duration::from_secs(2),
        "upstream closed after {took:?}"
    );

    assert!(
        eventually(Duration::from_secs(5), || async {
            proxy.counter("cluster.up.upstream_rq_tx_reset").await == 1
        })
        .await,
        "upstream_rq_tx_reset counts the cancelled request"
    );
    assert_eq!(
        proxy
            .counter("http.ingress_http.downstream_rq_rx_reset")
            .await,
        1
    );
    settle_gauges(&proxy).await;
    assert_eq!(proxy_panics(), 0);
    proxy.stop().await;
    upstream.abort();
}

#[tokio::test]
async fn an_http1_client_going_away_cancels_its_upstream_request() {
    count_proxy_panics();
    let (addr, mut events, upstream) = watching_upstream().await;
    let proxy = proxy_to(&[addr], "", "").await;
    let mut client = TcpStream::connect(proxy.first_listener()).await.unwrap();
    client
        .write_all(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(next_event(&mut events).await.0, "head");
    let gone_at = Instant::now();
    drop(client);
    let (what, at) = next_event(&mut events).await;
    assert_eq!(what, "closed");
    let took = at.duration_since(gone_at);
    assert!(
        took < Duration::from_secs(2),
        "upstream closed after {took:?}"
    );
    settle_gauges(&proxy).await;
    assert_eq!(proxy_panics(), 0);
    proxy.stop().await;
    upstream.abort();
}

#[tokio::test]
async fn a_continuation_flood_is_cut_off() {
    count_proxy_panics();
    let rec = Recorder::start().await;
    let proxy = proxy_to(&[rec.addr], "", "").await;
    let (mut wr, mut rx) = connect(proxy.first_listener()).await;
    wr.write_all(&h2::frame(h2::HEADERS, 0, 1, &h2::get("/flood")))
        .await
        .unwrap();
    // Endless CONTINUATION frames without END_HEADERS; 100 000 of them (≈ 10 MB) is the
    // test's bound, far past any sane header block.
    let piece = h2::frame(
        h2::CONTINUATION,
        0,
        1,
        &h2::block(&[("x-flood", &"a".repeat(80))]),
    );
    let batch: Vec<u8> = piece
        .iter()
        .copied()
        .cycle()
        .take(piece.len() * 100)
        .collect();
    let mut frames_sent = 0;
    let writer = async {
        for _ in 0..1_000 {
            if wr.write_all(&batch).await.is_err() {
                break;
            }
            frames_sent += 100;
        }
    };
    let (closed, frames) = tokio::select! {
        r = until_closed(&mut rx, Duration::from_secs(20)) => r,
        () = writer => until_closed(&mut rx, Duration::from_secs(10)).await,
    };
    eprintln!(
        "CONTINUATION flood: {frames_sent} frames written, closed {closed}, GOAWAY {:?}",
        goaway(&frames)
    );
    assert!(
        closed,
        "connection still open after {frames_sent} CONTINUATION frames"
    );
    if let Some(code) = goaway(&frames) {
        // ENHANCE_YOUR_CALM (too many continuations) or COMPRESSION_ERROR/PROTOCOL_ERROR.
        assert_ne!(code, 0, "a flood is not a graceful close");
    }
    assert_eq!(
        rec.count(),
        0,
        "the endless header block never became a request"
    );
    probe(&proxy).await;
    assert_eq!(proxy_panics(), 0);
    proxy.stop().await;
}

#[tokio::test]
async fn streams_beyond_max_concurrent_streams_are_refused() {
    count_proxy_panics();
    let rec = Recorder::start().await;
    let proxy = proxy_to(&[rec.addr], "", "").await;
    let (mut wr, mut rx) = connect(proxy.first_listener()).await;
    let mut heads = Vec::new();
    for i in 0..MAX_CONCURRENT_STREAMS as u32 {
        let id = 1 + 2 * i;
        heads.extend(h2::frame(
            h2::HEADERS,
            h2::END_HEADERS | h2::END_STREAM,
            id,
            &h2::get(&format!("/hold/{id}")),
        ));
    }
    wr.write_all(&heads).await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            rec.count() == MAX_CONCURRENT_STREAMS
        })
        .await,
        "all {MAX_CONCURRENT_STREAMS} held requests reach the upstream ({} did)",
        rec.count()
    );
    let extra = 1 + 2 * MAX_CONCURRENT_STREAMS as u32;
    wr.write_all(&h2::frame(
        h2::HEADERS,
        h2::END_HEADERS | h2::END_STREAM,
        extra,
        &h2::get("/hold/one-too-many"),
    ))
    .await
    .unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(f) = rx.recv().await {
            if f.stream == extra && f.kind == h2::RST_STREAM {
                return f.error_code();
            }
        }
        None
    })
    .await
    .expect("an answer for the extra stream");
    assert_eq!(refused, Some(h2::REFUSED_STREAM));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        rec.count(),
        MAX_CONCURRENT_STREAMS,
        "the refused stream went nowhere"
    );
    drop(wr);
    settle_gauges(&proxy).await;
    assert_eq!(proxy_panics(), 0);
    proxy.stop().await;
}

#[tokio::test]
async fn header_limits_hold_on_http2() {
    count_proxy_panics();
    let rec = Recorder::start().await;
    let proxy = proxy_to(&[rec.addr], "", "").await;

    // 101 headers: max_headers_count (100) → 431 from the HCM, before any routing.
    let mut req = Request::get(proxy.url("/many"));
    for i in 0..101 {
        req = req.header(format!("x-h{i}"), "v");
    }
    let r = h2c()
        .request(req.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    assert_eq!(r.status(), 431);

    // A URI past the limit → 414.
    let long = format!("/{}", "u".repeat(9 * 1024));
    let r = get(&h2c(), &proxy.url(&long)).await;
    assert_eq!(r.status(), 414);

    // A header list over max_request_headers_kb (60 KiB): h2 answers 431 or resets the stream.
    let (mut wr, mut rx) = connect(proxy.first_listener()).await;
    let big = "b".repeat(1024);
    let mut headers = vec![
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/big"),
        (":authority", "hostile.test"),
    ];
    let names: Vec<String> = (0..70).map(|i| format!("x-big-{i}")).collect();
    for n in &names {
        headers.push((n.as_str(), big.as_str()));
    }
    let block = h2::block(&headers);
    let (first, rest) = block.split_at(16_000);
    let mut bytes = h2::frame(h2::HEADERS, h2::END_STREAM, 1, first);
    let chunks: Vec<&[u8]> = rest.chunks(16_000).collect();
    for (i, c) in chunks.iter().enumerate() {
        let flags = if i + 1 == chunks.len() {
            h2::END_HEADERS
        } else {
            0
        };
        bytes.extend(h2::frame(h2::CONTINUATION, flags, 1, c));
    }
    wr.write_all(&bytes).await.unwrap();
    let answered = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(f) = rx.recv().await {
            if f.stream == 1 && (f.kind == h2::HEADERS || f.kind == h2::RST_STREAM) {
                return Some(f.kind);
            }
            if f.kind == h2::GOAWAY {
                return Some(f.kind);
            }
        }
        None
    })
    .await
    .expect("the oversized request is answered");
    eprintln!("oversized header list answered with frame type {answered:?}");
    assert!(answered.is_some(), "closed without an answer");
    assert_eq!(
        rec.count(),
        0,
        "no oversized or over-count request reached the upstream"
    );
    assert_eq!(proxy_panics(), 0);
    proxy.stop().await;
}

/// A connection the proxy closes for the client's framing error counts as
/// `downstream_cx_protocol_error`, as in Envoy; clients that close cleanly do not.
#[tokio::test]
async fn a_framing_error_is_counted_as_a_protocol_error() {
    let rec = Recorder::start().await;
    let proxy = proxy_to(&[rec.addr], "", "").await;
    probe(&proxy).await;
    let (mut wr, mut rx) = connect(proxy.first_listener()).await;
    // SETTINGS whose payload is not a multiple of 6 bytes, a connection error (RFC 9113 §6.5).
    wr.write_all(&h2::frame(h2::SETTINGS, 0, 0, &[0, 0, 0, 0, 0]))
        .await
        .unwrap();
    let (closed, frames) = until_closed(&mut rx, Duration::from_secs(5)).await;
    assert!(closed, "connection still open after a malformed SETTINGS");
    let code = goaway(&frames);
    assert!(
        code.is_some_and(|c| c != 0),
        "GOAWAY with an error code, got {code:?}"
    );
    assert!(
        eventually(Duration::from_secs(2), || async {
            proxy
                .counter("http.ingress_http.downstream_cx_protocol_error")
                .await
                == 1
        })
        .await,
        "downstream_cx_protocol_error counts the framing error once (the probe's clean connection not at all)"
    );
    proxy.stop().await;
}

/// Waits for the proxy's answer on `stream`: the HEADERS frame's flags, or a RST_STREAM's code.
async fn answer_on(rx: &mut mpsc::UnboundedReceiver<h2::Frame>, stream: u32) -> h2::Frame {
    tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(f) = rx.recv().await {
            if f.stream == stream && (f.kind == h2::HEADERS || f.kind == h2::RST_STREAM) {
                return f;
            }
        }
        panic!("connection closed before stream {stream} was answered");
    })
    .await
    .expect("an answer in time")
}

/// RFC 9113 §8.1.1 and §8.2: a request whose `content-length` its DATA frames contradict, or
/// with a header name in capitals, is malformed: its stream is reset with PROTOCOL_ERROR,
/// nothing reaches the upstream (passed on as HTTP/1 it would be request smuggling), and the
/// connection serves on.
#[tokio::test]
async fn malformed_requests_are_reset_and_the_connection_serves_on() {
    count_proxy_panics();
    let rec = Recorder::start().await;
    let proxy = proxy_to(&[rec.addr], "", "").await;
    let (mut wr, mut rx) = connect(proxy.first_listener()).await;
    let post = |path: &str, extra: &[(&str, &str)]| {
        let mut headers = vec![
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "hostile.test"),
        ];
        headers.extend_from_slice(extra);
        h2::block(&headers)
    };
    // A body announced, and the stream ended at once.
    let cl = post("/cl", &[("content-length", "50")]);
    wr.write_all(&h2::frame(
        h2::HEADERS,
        h2::END_HEADERS | h2::END_STREAM,
        1,
        &cl,
    ))
    .await
    .unwrap();
    // Two different lengths.
    let two = post("/two", &[("content-length", "5"), ("content-length", "6")]);
    wr.write_all(&h2::frame(h2::HEADERS, h2::END_HEADERS, 3, &two))
        .await
        .unwrap();
    // More DATA than announced.
    let short = post("/short", &[("content-length", "2")]);
    wr.write_all(&h2::frame(h2::HEADERS, h2::END_HEADERS, 5, &short))
        .await
        .unwrap();
    wr.write_all(&h2::frame(h2::DATA, h2::END_STREAM, 5, b"abcdef"))
        .await
        .unwrap();
    // A header name in capitals.
    let upper = post("/upper", &[("X-Upper", "1")]);
    wr.write_all(&h2::frame(
        h2::HEADERS,
        h2::END_HEADERS | h2::END_STREAM,
        7,
        &upper,
    ))
    .await
    .unwrap();
    for stream in [1, 3, 5, 7] {
        let f = answer_on(&mut rx, stream).await;
        assert_eq!(
            (f.kind, f.error_code()),
            (h2::RST_STREAM, Some(0x1)),
            "stream {stream}: RST_STREAM(PROTOCOL_ERROR)"
        );
    }
    // The same connection still serves a well-formed request.
    wr.write_all(&h2::frame(
        h2::HEADERS,
        h2::END_HEADERS | h2::END_STREAM,
        9,
        &h2::get("/fine"),
    ))
    .await
    .unwrap();
    let f = answer_on(&mut rx, 9).await;
    assert_eq!(f.kind, h2::HEADERS, "stream 9 answered");
    assert_eq!(f.payload.first(), Some(&0x88), ":status 200");
    let seen: Vec<String> = rec.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(seen, ["/fine"], "no malformed request reached the upstream");
    assert_eq!(proxy_panics(), 0);
    proxy.stop().await;
}

/// A client that sends GOAWAY gets its open streams answered, then the connection closed.
#[tokio::test]
async fn a_client_goaway_closes_the_connection_once_its_streams_are_answered() {
    let rec = Recorder::start().await;
    let proxy = proxy_to(&[rec.addr], "", "").await;
    let (mut wr, mut rx) = connect(proxy.first_listener()).await;
    let mut bytes = h2::frame(
        h2::HEADERS,
        h2::END_HEADERS | h2::END_STREAM,
        1,
        &h2::get("/last"),
    );
    let mut goaway = 1u32.to_be_bytes().to_vec();
    goaway.extend(0u32.to_be_bytes());
    bytes.extend(h2::frame(h2::GOAWAY, 0, 0, &goaway));
    wr.write_all(&bytes).await.unwrap();
    let (closed, frames) = until_closed(&mut rx, Duration::from_secs(5)).await;
    assert!(closed, "connection still open after the client's GOAWAY");
    assert!(
        frames
            .iter()
            .any(|f| f.stream == 1 && f.kind == h2::HEADERS),
        "stream 1 answered before the close"
    );
    proxy.stop().await;
}

/// A client that shrinks its HPACK table (SETTINGS_HEADER_TABLE_SIZE 0) gets the change
/// acknowledged at the start of the next header block (RFC 7541 §4.2), as nghttp2 insists.
#[tokio::test]
async fn a_shrunk_hpack_table_is_acknowledged_in_the_next_block() {
    let rec = Recorder::start().await;
    let proxy = proxy_to(&[rec.addr], "", "").await;
    let (mut wr, mut rx) = connect(proxy.first_listener()).await;
    let mut bytes = h2::frame(h2::SETTINGS, 0, 0, &[0, 1, 0, 0, 0, 0]);
    bytes.extend(h2::frame(
        h2::HEADERS,
        h2::END_HEADERS | h2::END_STREAM,
        1,
        &h2::get("/a"),
    ));
    bytes.extend(h2::frame(
        h2::HEADERS,
        h2::END_HEADERS | h2::END_STREAM,
        3,
        &h2::get("/b"),
    ));
    wr.write_all(&bytes).await.unwrap();
    let first = answer_on(&mut rx, 1).await;
    assert_eq!(
        &first.payload[..2],
        &[0x20, 0x88],
        "size update to 0, then :status 200"
    );
    let second = answer_on(&mut rx, 3).await;
    assert_eq!(second.payload.first(), Some(&0x88), "once only");
    proxy.stop().await;
}

/// DATA frames with nothing in them cost the proxy work and the client nothing: past 1 024 on
/// a connection it is closed with ENHANCE_YOUR_CALM (h2's limit, RUSTSEC-2026-0258).
#[tokio::test]
async fn an_empty_data_flood_is_cut_off() {
    count_proxy_panics();
    let rec = Recorder::start().await;
    let proxy = proxy_to(&[rec.addr], "", "").await;
    let (mut wr, mut rx) = connect(proxy.first_listener()).await;
    let post = h2::block(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/empty"),
        (":authority", "hostile.test"),
    ]);
    let mut bytes = h2::frame(h2::HEADERS, h2::END_HEADERS, 1, &post);
    for _ in 0..2_000 {
        bytes.extend(h2::frame(h2::DATA, 0, 1, &[]));
    }
    let _ = wr.write_all(&bytes).await;
    let (closed, frames) = until_closed(&mut rx, Duration::from_secs(5)).await;
    assert!(closed, "still open after 2 000 empty DATA frames");
    assert_eq!(goaway(&frames), Some(0xb), "GOAWAY(ENHANCE_YOUR_CALM)");
    assert_eq!(proxy_panics(), 0);
    probe(&proxy).await;
    proxy.stop().await;
}

/// Requests made to be refused (MadeYouReset, CVE-2025-8671): each malformed one costs the
/// proxy a RST_STREAM; past 1 024 such stream errors the connection is closed.
#[tokio::test]
async fn provoked_stream_errors_are_capped() {
    count_proxy_panics();
    let rec = Recorder::start().await;
    let proxy = proxy_to(&[rec.addr], "", "").await;
    let (mut wr, mut rx) = connect(proxy.first_listener()).await;
    let malformed = h2::block(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/bad"),
        (":authority", "hostile.test"),
        ("Upper-Case", "1"),
    ]);
    let mut bytes = Vec::new();
    for i in 0..1_200u32 {
        let id = 1 + 2 * i;
        bytes.extend(h2::frame(
            h2::HEADERS,
            h2::END_HEADERS | h2::END_STREAM,
            id,
            &malformed,
        ));
    }
    let _ = wr.write_all(&bytes).await;
    let (closed, frames) = until_closed(&mut rx, Duration::from_secs(5)).await;
    let resets = frames.iter().filter(|f| f.kind == h2::RST_STREAM).count();
    assert!(closed, "still open after {resets} stream errors");
    assert_eq!(goaway(&frames), Some(0xb), "GOAWAY(ENHANCE_YOUR_CALM)");
    assert!(
        (1_000..=1_030).contains(&resets),
        "{resets} RST_STREAMs before the GOAWAY"
    );
    assert_eq!(rec.count(), 0, "no malformed request reached the upstream");
    assert_eq!(proxy_panics(), 0);
    probe(&proxy).await;
    proxy.stop().await;
}

/// A client that reads everything but never gives window back: the answer's DATA stops at the
/// initial 64 KiB window, and once it has waited `stream_idle_timeout` the stream is reset
/// (Envoy: "the amount of time that Envoy will wait for the peer to open enough window"),
/// counted in `downstream_rq_idle_timeout`; the upstream request is let go and the connection
/// stays open.
#[tokio::test]
async fn a_stream_the_client_gives_no_window_is_reset_after_the_stream_idle_timeout() {
    let (upstream, task) = endless_upstream().await;
    let proxy = proxy_to(&[upstream], "", "          stream_idle_timeout: 1s\n").await;
    let (mut wr, mut rx) = connect(proxy.first_listener()).await;
    wr.write_all(&h2::frame(
        h2::HEADERS,
        h2::END_HEADERS | h2::END_STREAM,
        1,
        &h2::get("/big"),
    ))
    .await
    .unwrap();
    let started = Instant::now();
    let mut data = 0usize;
    let reset = loop {
        let f = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a reset within 10 s")
            .expect("the connection stays open");
        match f.kind {
            h2::DATA if f.stream == 1 => data += f.payload.len(),
            h2::RST_STREAM if f.stream == 1 => break f,
            h2::GOAWAY => panic!("the connection was closed: {f:?}"),
            _ => {}
        }
    };
    assert_eq!(reset.error_code(), Some(h2::CANCEL));
    assert_eq!(data, 65_535, "DATA up to the initial stream window");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        proxy
            .counter("http.ingress_http.downstream_rq_idle_timeout")
            .await,
        1
    );
    assert!(
        eventually(Duration::from_secs(3), || async {
            proxy.stat("cluster.up.upstream_rq_active").await.as_deref() == Some("0")
        })
        .await,
        "the upstream request is let go"
    );
    drop(wr);
    proxy.stop().await;
    task.abort();
}

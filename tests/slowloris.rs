//! Slowloris: hundreds of connections that trickle a request head a byte at a time, or send
//! nothing at all, must neither starve other clients nor stay open past
//! `request_headers_timeout`.

mod support;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::hostile::{count_proxy_panics, proxy_panics, Recorder};
use support::*;

const SLOW_CONNECTIONS: usize = 500;
const HEADERS_TIMEOUT: Duration = Duration::from_secs(1);

/// Holds one slow connection: trickles `head` one byte every 100 ms (or sends nothing) and
/// returns how long after `opened` (just before connecting) the proxy closed it, or None if it
/// was still open at `give_up`.
async fn hold(
    mut s: TcpStream,
    opened: Instant,
    trickle: bool,
    give_up: Duration,
) -> Option<Duration> {
    let head = format!(
        "GET /slow HTTP/1.1\r\nHost: slow.test\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(400)
    );
    let (mut r, mut w) = s.split();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut buf = [0u8; 1024];
    let mut at = 0;
    let give_up = tokio::time::sleep(give_up);
    tokio::pin!(give_up);
    loop {
        tokio::select! {
            read = r.read(&mut buf) => match read {
                Ok(0) | Err(_) => return Some(opened.elapsed()),
                Ok(_) => {}
            },
            _ = tick.tick(), if trickle => {
                // The head is long enough never to complete within the test.
                if w.write_all(&head.as_bytes()[at..at + 1]).await.is_err() {
                    return Some(opened.elapsed());
                }
                at = (at + 1).min(head.len() - 5);
            }
            () = &mut give_up => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_do_not_starve_others_and_are_closed_after_the_timeout() {
    count_proxy_panics();
    let rec = Recorder::start().await;
    let proxy = proxy_to(&[rec.addr], "", "          request_headers_timeout: 1s\n").await;

    let mut slow = tokio::task::JoinSet::new();
    for i in 0..SLOW_CONNECTIONS {
        let opened = Instant::now();
        let s = TcpStream::connect(proxy.first_listener()).await.unwrap();
        // Half trickle a head, half never send a byte (still in protocol detection).
        slow.spawn(hold(s, opened, i % 2 == 0, Duration::from_secs(15)));
    }

    // While all of them are held open, a fresh client is served promptly.
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(5), get(&http1(), &proxy.url("/probe")))
        .await
        .expect("the probe is answered");
    assert_eq!(r.status(), 200);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "probe took {took:?}");

    let mut closed_after = Vec::new();
    while let Some(result) = slow.join_next().await {
        closed_after.push(result.unwrap());
    }
    let still_open = closed_after.iter().filter(|c| c.is_none()).count();
    assert_eq!(
        still_open, 0,
        "{still_open} slow connections outlived the timeout"
    );
    let earliest = closed_after.iter().flatten().min().unwrap();
    let latest = closed_after.iter().flatten().max().unwrap();
    eprintln!("probe answered in {took:?}; slow connections closed after {earliest:?}..{latest:?}");
    // Not closed before the timeout (minus scheduling slack): the timeout, not something else,
    // closed them.
    assert!(
        *earliest >= HEADERS_TIMEOUT - Duration::from_millis(200),
        "a connection was closed after only {earliest:?}"
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            proxy
                .counter("http.ingress_http.downstream_rq_header_timeout")
                .await
                >= SLOW_CONNECTIONS as u64
        })
        .await
    );
    assert_eq!(
        proxy
            .counter("http.ingress_http.downstream_cx_active")
            .await,
        0,
        "every slow connection is gone"
    );
    assert_eq!(rec.count(), 1, "only the probe reached the upstream");

    let r = get(&http1(), &proxy.url("/after")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(proxy_panics(), 0);
    proxy.stop().await;
}

#[tokio::test]
async fn a_kept_alive_connection_must_send_its_next_head_in_time_too() {
    let rec = Recorder::start().await;
    let proxy = proxy_to(&[rec.addr], "", "          request_headers_timeout: 1s\n").await;
    let mut s = TcpStream::connect(proxy.first_listener()).await.unwrap();
    s.write_all(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
    // Then half a head, and nothing more: hyper's per-head timer closes the connection.
    s.write_all(b"GET /two HTTP/1.1\r\nHo").await.unwrap();
    let opened = Instant::now();
    let mut rest = Vec::new();
    let closed =
        support::hostile::read_until_closed(&mut s, &mut rest, Duration::from_secs(10)).await;
    assert!(closed, "still open");
    assert!(opened.elapsed() < Duration::from_secs(8));
    assert_eq!(rec.count(), 1);
    proxy.stop().await;
}

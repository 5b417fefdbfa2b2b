//! The connection manager's and route's timeouts (issue 5 §1) against upstreams and clients
//! that stall on purpose: `stream_idle_timeout` and the route's `idle_timeout` (408 `stream
//! timeout`, flag SI), `request_timeout` (408 `request timeout`), the route timeout's 504 and
//! `x-envoy-upstream-rq-timeout-alt-response`. Timings are checked with wide margins.

mod support;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use support::*;

async fn proxy(route_extra: &str, upstream: std::net::SocketAddr, hcm_extra: &str) -> Proxy {
    let routes = format!(
        "              - match: {{prefix: \"/\"}}\n                route:\n                  cluster: up\n{route_extra}"
    );
    Proxy::start(v3_config(
        &routes,
        &static_cluster("up", &[upstream], ""),
        hcm_extra,
    ))
    .await
}

/// Sends `raw` on a fresh connection and reads the answer until the proxy closes or 3 s pass.
async fn raw_exchange(addr: std::net::SocketAddr, raw: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    if String::from_utf8_lossy(&out).contains("timeout") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn stream_idle_timeout_answers_408_when_nothing_moves() {
    let (silent, hold) = silent_upstream().await;
    let p = proxy(
        "                  timeout: 0s\n",
        silent,
        "          stream_idle_timeout: 0.3s\n",
    )
    .await;
    let started = Instant::now();
    let r = get(&http1(), &p.url("/")).await;
    let took = started.elapsed();
    assert_eq!(r.status(), 408);
    assert_eq!(body_string(r).await, "stream timeout");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(
        p.counter("http.ingress_http.downstream_rq_idle_timeout")
            .await,
        1
    );
    assert!(
        eventually(Duration::from_secs(2), || async {
            p.stat("cluster.up.upstream_rq_active").await.as_deref() == Some("0")
        })
        .await,
        "the upstream request is accounted for"
    );
    p.stop().await;
    hold.abort();
}

#[tokio::test]
async fn a_routes_idle_timeout_overrides_the_managers() {
    let (silent, hold) = silent_upstream().await;
    let p = proxy(
        "                  timeout: 0s\n                  idle_timeout: 0.2s\n",
        silent,
        "          stream_idle_timeout: 30s\n",
    )
    .await;
    let started = Instant::now();
    assert_eq!(get(&http1(), &p.url("/")).await.status(), 408);
    assert!(started.elapsed() < Duration::from_secs(3));
    p.stop().await;
    hold.abort();
}

#[tokio::test]
async fn a_request_body_that_stalls_or_crawls_gets_408() {
    let up = Upstream::start("up").await;
    // The body stalls after 2 of 10 bytes: the stream goes idle.
    let p = proxy("", up.addr, "          stream_idle_timeout: 0.3s\n").await;
    let answer = raw_exchange(
        p.first_listener(),
        b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nab",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("stream timeout"), "{answer}");
    p.stop().await;

    // The whole request must arrive within request_timeout, however steadily it trickles.
    let p = proxy(
        "",
        up.addr,
        "          request_timeout: 0.4s\n          stream_idle_timeout: 30s\n",
    )
    .await;
    let mut s = tokio::net::TcpStream::connect(p.first_listener())
        .await
        .unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let _ = s.write_all(b"x").await;
        let mut buf = [0u8; 1024];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&answer).contains("request timeout") {
                break;
            }
        }
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request timeout"), "{answer}");
    assert_eq!(
        p.counter("http.ingress_http.downstream_rq_timeout").await,
        1
    );
    p.stop().await;
}

#[tokio::test]
async fn the_route_timeout_and_its_alternative_answer() {
    let (silent, hold) = silent_upstream().await;
    let p = proxy("                  timeout: 0.3s\n", silent, "").await;
    let client = http1();
    let r = get(&client, &p.url("/")).await;
    assert_eq!(r.status(), 504);
    assert_eq!(body_string(r).await, "upstream request timeout");
    let r = get_with(
        &client,
        &p.url("/"),
        &[
            ("x-envoy-internal", "true"),
            ("x-envoy-upstream-rq-timeout-ms", "100"),
            ("x-envoy-upstream-rq-timeout-alt-response", "1"),
        ],
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(p.counter("cluster.up.upstream_rq_timeout").await, 2);
    p.stop().await;
    hold.abort();
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_idle_timeout() {
    let up = Upstream::start("up").await;
    let p = proxy(
        "",
        up.addr,
        "          common_http_protocol_options: {idle_timeout: 0.3s}\n",
    )
    .await;
    let mut s = tokio::net::TcpStream::connect(p.first_listener())
        .await
        .unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 8192];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Nothing more: after the idle timeout the proxy closes the connection.
    let started = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "still open after 3 s");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        p.counter("http.ingress_http.downstream_cx_idle_timeout")
            .await,
        1
    );
    p.stop().await;
}

/// A client that sends its request and then reads nothing: once the proxy's writes to it
/// have waited `stream_idle_timeout`, the connection is closed (Envoy resets such a stream),
/// counted in `downstream_rq_idle_timeout`, and the upstream request is let go.
#[tokio::test]
async fn a_client_that_stops_reading_is_closed_after_the_stream_idle_timeout() {
    let (upstream, task) = endless_upstream().await;
    let p = proxy(
        "                  timeout: 0s\n",
        upstream,
        "          stream_idle_timeout: 1s\n",
    )
    .await;
    let mut client = tokio::net::TcpStream::connect(p.first_listener())
        .await
        .unwrap();
    client
        .write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(
        eventually(Duration::from_secs(10), || async {
            p.counter("http.ingress_http.downstream_rq_idle_timeout")
                .await
                == 1
        })
        .await,
        "the stalled connection was not timed out"
    );
    // The writes only wait once the socket buffers are full, so at least the timeout passed.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert!(
        eventually(Duration::from_secs(3), || async {
            p.stat("http.ingress_http.downstream_cx_active")
                .await
                .as_deref()
                == Some("0")
                && p.stat("cluster.up.upstream_rq_active").await.as_deref() == Some("0")
        })
        .await,
        "the connection and its upstream request are let go"
    );
    drop(client);
    p.stop().await;
    task.abort();
}

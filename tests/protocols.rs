//! HTTP/1.1 and h2c on one port, HTTP/2 upstreams, gRPC trailers through two proxies, WebSocket
//! upgrades and streamed bodies.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use support::*;

const ROUTE_ALL: &str =
    "              - match: {prefix: \"/\"}\n                route: {cluster: up}\n";

const HTTP2_OPTIONS: &str = "    typed_extension_protocol_options:\n      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n        \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n        explicit_http_config: {http2_protocol_options: {}}\n";

#[tokio::test]
async fn one_port_serves_http1_and_h2c() {
    let up = Upstream::start("up").await;
    let proxy = proxy_to(&[up.addr], "", "").await;

    let r = get(&http1(), &proxy.url("/one")).await;
    assert_eq!(r.version(), http::Version::HTTP_11);
    assert_eq!(body_json(r).await["version"], "HTTP/1.1");

    let r = get(&h2c(), &proxy.url("/two")).await;
    assert_eq!(r.version(), http::Version::HTTP_2);
    assert_eq!(r.headers()["server"], "envoy");
    let echo = body_json(r).await;
    // Upstream stays HTTP/1.1 unless the cluster asks for HTTP/2, as in Envoy.
    assert_eq!(echo["version"], "HTTP/1.1");
    assert_eq!(echo["headers"]["host"], proxy.first_listener().to_string());

    assert!(
        eventually(Duration::from_secs(2), || async {
            proxy
                .stat("http.ingress_http.downstream_rq_completed")
                .await
                .as_deref()
                == Some("2")
        })
        .await
    );
    assert_eq!(
        proxy
            .counter("http.ingress_http.downstream_rq_http1_total")
            .await,
        1
    );
    assert_eq!(
        proxy
            .counter("http.ingress_http.downstream_rq_http2_total")
            .await,
        1
    );
    assert_eq!(
        proxy
            .counter("http.ingress_http.downstream_cx_http2_total")
            .await,
        1
    );
    proxy.stop().await;
}

#[tokio::test]
async fn grpc_unary_passes_two_proxies_with_trailers() {
    let up = Upstream::start("grpc-backend").await;
    // Inner proxy (a sidecar) speaks HTTP/2 to the backend.
    let inner = proxy_to(&[up.addr], HTTP2_OPTIONS, "").await;
    // Outer proxy speaks HTTP/2 to the sidecar, using the legacy v2-style cluster option.
    let outer = Proxy::start(v3_config(
        ROUTE_ALL,
        &static_cluster(
            "up",
            &[inner.first_listener()],
            "    http2_protocol_options: {}\n",
        ),
        "",
    ))
    .await;

    let req = Request::post(outer.url("/grpc/gateway.AliveService/GetStatus"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(b"\x00\x00\x00\x00\x00")))
        .unwrap();
    let r = h2c().request(req).await.expect("grpc call");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/grpc");
    let collected = r.into_body().collect().await.unwrap();
    let trailers = collected
        .trailers()
        .cloned()
        .expect("trailers survive both hops");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["grpc-message"], "ok");
    assert_eq!(collected.to_bytes().as_ref(), b"\x00\x00\x00\x00\x02hi");

    assert!(
        eventually(Duration::from_secs(2), || async {
            inner
                .stat("cluster.up.upstream_cx_http2_total")
                .await
                .as_deref()
                == Some("1")
        })
        .await
    );
    assert_eq!(outer.counter("cluster.up.upstream_cx_http2_total").await, 1);
    outer.stop().await;
    inner.stop().await;
}

#[tokio::test]
async fn request_and_response_bodies_stream_through() {
    let up = Upstream::start("up").await;
    let proxy = proxy_to(&[up.addr], "", "").await;
    // 3 MiB up and its echo down: on HTTP/2 past the proxy's 1 MiB windows one way and the
    // client's 64 KiB ones the other, so both sides' WINDOW_UPDATEs are needed.
    let payload = "x".repeat(3 * 1024 * 1024);
    for (protocol, client) in [("HTTP/1.1", http1()), ("HTTP/2", h2c_small_windows())] {
        let req = Request::post(proxy.url("/upload"))
            .body(Full::new(Bytes::from(payload.clone())))
            .unwrap();
        let echo = body_json(client.request(req).await.unwrap()).await;
        assert_eq!(
            echo["body"].as_str().unwrap().len(),
            payload.len(),
            "{protocol}"
        );
        assert_eq!(echo["method"], "POST", "{protocol}");
    }
    proxy.stop().await;
}

#[tokio::test]
async fn websocket_upgrade_is_passed_through_when_configured() {
    let up = Upstream::start("ws").await;
    let proxy = proxy_to(
        &[up.addr],
        "",
        "          upgrade_configs: [{upgrade_type: websocket}]\n",
    )
    .await;
    let mut stream = tokio::net::TcpStream::connect(proxy.first_listener())
        .await
        .unwrap();
    stream
        .write_all(
            b"GET /chat HTTP/1.1\r\nHost: example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    stream.write_all(b"ping through the tunnel").await.unwrap();
    let mut echoed = vec![0u8; 23];
    tokio::time::timeout(Duration::from_secs(3), stream.read_exact(&mut echoed))
        .await
        .expect("echo in time")
        .unwrap();
    assert_eq!(&echoed, b"ping through the tunnel");
    proxy.stop().await;
}

#[tokio::test]
async fn websocket_upgrade_is_refused_without_upgrade_configs() {
    let up = Upstream::start("ws").await;
    let proxy = proxy_to(&[up.addr], "", "").await;
    let r = get_with(
        &http1(),
        &proxy.url("/chat"),
        &[("connection", "upgrade"), ("upgrade", "websocket")],
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(up.count(), 0);
    proxy.stop().await;
}

#[tokio::test]
async fn http2_upstreams_carry_the_client_authority() {
    let up = Upstream::start("api").await;
    // The inner proxy only knows the virtual host `api.internal`: a request whose `:authority`
    // were the outer proxy's idea of the upstream (an IP:port) would get 404 there.
    let inner_yaml = v3_config(ROUTE_ALL, &static_cluster("up", &[up.addr], ""), "")
        .replace("domains: [\"*\"]", "domains: [\"api.internal\"]");
    let inner = Proxy::start(inner_yaml).await;
    let outer = proxy_to(&[inner.first_listener()], HTTP2_OPTIONS, "").await;
    let r = get_with(&http1(), &outer.url("/x"), &[("host", "api.internal")]).await;
    assert_eq!(r.status(), 200);
    let echo = body_json(r).await;
    assert_eq!(echo["upstream"], "api");
    assert_eq!(echo["headers"]["host"], "api.internal");
    outer.stop().await;
    inner.stop().await;
}

#[tokio::test]
async fn http1_pool_reuses_connections_under_concurrency() {
    let up = Upstream::start("up").await;
    let proxy = proxy_to(&[up.addr], "", "").await;
    let client = http1();
    for _round in 0..5 {
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (client, url) = (client.clone(), proxy.url(&format!("/p{i}")));
            tasks.push(tokio::spawn(async move {
                let r = client.get(url.parse().unwrap()).await.unwrap();
                assert_eq!(r.status(), 200);
                body_string(r).await
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    assert_eq!(up.count(), 40);
    assert!(
        eventually(Duration::from_secs(2), || async {
            proxy.counter("cluster.up.upstream_rq_completed").await == 40
        })
        .await
    );
    let opened = proxy.counter("cluster.up.upstream_cx_total").await;
    assert!(
        (1..=8).contains(&opened),
        "40 requests, at most 8 at a time, opened {opened} connections"
    );
    assert_eq!(
        proxy.counter("cluster.up.upstream_cx_active").await,
        opened,
        "idle connections stay open"
    );
    proxy.stop().await;
}

/// Holds `n` requests open at once (each head sent, its one body byte held back until the
/// upstream has seen every head), then lets them all finish.
/// A request whose one-byte body is not sent yet, so the upstream (the echo, which reads the
/// body before answering) holds it until the byte is written on the returned stream.
async fn held_request(proxy: &Proxy) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(proxy.first_listener())
        .await
        .unwrap();
    s.write_all(b"POST /held HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n")
        .await
        .unwrap();
    s
}

async fn burst_of_held_requests(proxy: &Proxy, up: &Upstream, n: usize) {
    let seen_before = up.count();
    let mut clients = Vec::new();
    for _ in 0..n {
        clients.push(held_request(proxy).await);
    }
    assert!(
        eventually(Duration::from_secs(10), || async {
            up.count() == seen_before + n as u64
        })
        .await,
        "the upstream saw {} of {n} request heads",
        up.count() - seen_before
    );
    let mut answers = Vec::new();
    for mut s in clients {
        answers.push(tokio::spawn(async move {
            s.write_all(b"x").await.unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut byte).await.unwrap();
                head.push(byte[0]);
            }
            String::from_utf8(head).unwrap()
        }));
    }
    for answer in answers {
        let head = tokio::time::timeout(Duration::from_secs(10), answer)
            .await
            .expect("an answer within 10 s")
            .unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    }
}

#[tokio::test]
async fn http1_pool_keeps_every_idle_connection_after_a_wide_burst() {
    // As in Envoy, idle upstream connections stay open until they close (or `max_connections`
    // stops new ones): a burst wider than any fixed idle cap must not close and reopen them.
    const WIDE: usize = 140;
    let up = Upstream::start("up").await;
    let proxy = proxy_to(&[up.addr], "", "").await;
    burst_of_held_requests(&proxy, &up, WIDE).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            proxy.counter("cluster.up.upstream_rq_completed").await == WIDE as u64
        })
        .await
    );
    assert_eq!(
        proxy.counter("cluster.up.upstream_cx_total").await,
        WIDE as u64
    );
    assert_eq!(
        proxy.counter("cluster.up.upstream_cx_active").await,
        WIDE as u64,
        "every idle connection stays open"
    );
    burst_of_held_requests(&proxy, &up, WIDE).await;
    assert_eq!(
        proxy.counter("cluster.up.upstream_cx_total").await,
        WIDE as u64,
        "the second burst reuses the first burst's connections"
    );
    proxy.stop().await;
}

/// The cluster's `HttpProtocolOptions` with `max_requests_per_connection: max`, on `protocol`
/// (`http_protocol_options` or `http2_protocol_options`).
fn requests_per_connection(protocol: &str, max: u32) -> String {
    format!(
        "    typed_extension_protocol_options:\n      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n        \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n        common_http_protocol_options: {{max_requests_per_connection: {max}}}\n        explicit_http_config: {{{protocol}: {{}}}}\n"
    )
}

#[tokio::test]
async fn max_requests_per_connection_retires_upstream_connections() {
    // (protocol, stat kind, max_requests_per_connection, connections six requests open);
    // 0 means no limit, as in Envoy.
    for (protocol, kind, max, opened) in [
        ("http_protocol_options", "http1", 2, 3),
        ("http2_protocol_options", "http2", 2, 3),
        ("http_protocol_options", "http1", 0, 1),
    ] {
        let up = Upstream::start("up").await;
        let proxy = proxy_to(&[up.addr], &requests_per_connection(protocol, max), "").await;
        let client = http1();
        for i in 0..6 {
            let r = get(&client, &proxy.url(&format!("/r{i}"))).await;
            assert_eq!(r.status(), 200);
            body_string(r).await;
        }
        assert_eq!(up.count(), 6);
        assert_eq!(
            proxy.counter("cluster.up.upstream_cx_total").await,
            opened,
            "{kind}, at most {max} requests per connection"
        );
        assert_eq!(
            proxy
                .counter(&format!("cluster.up.upstream_cx_{kind}_total"))
                .await,
            opened
        );
        let retired = if max == 0 { 0 } else { opened };
        assert_eq!(
            proxy.counter("cluster.up.upstream_cx_max_requests").await,
            retired,
            "{kind}, max {max}"
        );
        proxy.stop().await;
    }
}

/// The cluster's `HttpProtocolOptions` with `common_http_protocol_options.idle_timeout`.
fn idle_timeout_options(protocol: &str, timeout: &str) -> String {
    format!(
        "    typed_extension_protocol_options:\n      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n        \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n        common_http_protocol_options: {{idle_timeout: {timeout}}}\n        explicit_http_config: {{{protocol}: {{}}}}\n"
    )
}

#[tokio::test]
async fn upstream_connections_close_after_the_clusters_idle_timeout() {
    const TIMEOUT: Duration = Duration::from_millis(400);
    for (protocol, kind) in [
        ("http_protocol_options", "http1"),
        ("http2_protocol_options", "http2"),
    ] {
        let up = Upstream::start("up").await;
        let proxy = proxy_to(&[up.addr], &idle_timeout_options(protocol, "0.4s"), "").await;
        // A request still sending its body keeps its connection busy past the timeout.
        let mut s = held_request(&proxy).await;
        assert!(eventually(Duration::from_secs(5), || async { up.count() == 1 }).await);
        tokio::time::sleep(TIMEOUT * 2).await;
        assert_eq!(
            proxy.counter("cluster.up.upstream_cx_idle_timeout").await,
            0,
            "{kind}: a connection with a request on it is not idle"
        );
        assert_eq!(proxy.counter("cluster.up.upstream_cx_active").await, 1);
        s.write_all(b"x").await.unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200", "{kind}");
        let answered = std::time::Instant::now();

        // Idle from the end of that response: closed after the timeout, not before.
        assert!(
            eventually(Duration::from_secs(5), || async {
                proxy.counter("cluster.up.upstream_cx_idle_timeout").await == 1
                    && proxy.counter("cluster.up.upstream_cx_active").await == 0
            })
            .await,
            "{kind}: the idle connection was closed and counted"
        );
        assert!(
            answered.elapsed() >= TIMEOUT - Duration::from_millis(50),
            "{kind}: closed {:?} after its last response, before the 0.4 s timeout",
            answered.elapsed()
        );
        // The next request opens a new connection.
        let r = get(&http1(), &proxy.url("/again")).await;
        assert_eq!(r.status(), 200);
        body_string(r).await;
        assert_eq!(
            proxy.counter("cluster.up.upstream_cx_total").await,
            2,
            "{kind}"
        );
        proxy.stop().await;
    }
}

#[tokio::test]
async fn malformed_requests_count_as_protocol_errors_and_clean_closes_do_not() {
    let up = Upstream::start("up").await;
    let proxy = proxy_to(&[up.addr], "", "").await;
    {
        let mut s = tokio::net::TcpStream::connect(proxy.first_listener())
            .await
            .unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
    }
    {
        let mut s = tokio::net::TcpStream::connect(proxy.first_listener())
            .await
            .unwrap();
        s.write_all(b"NOT\x01HTTP AT ALL\r\n\r\n").await.unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
    }
    assert!(
        eventually(Duration::from_secs(2), || async {
            proxy
                .counter("http.ingress_http.downstream_cx_destroy")
                .await
                == 2
        })
        .await
    );
    assert_eq!(
        proxy
            .counter("http.ingress_http.downstream_cx_protocol_error")
            .await,
        1
    );
    assert_eq!(
        proxy
            .counter("http.ingress_http.downstream_cx_active")
            .await,
        0
    );
    proxy.stop().await;
}

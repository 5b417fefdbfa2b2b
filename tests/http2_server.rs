//! The proxy's own HTTP/2 server with a real HTTP/2 client: many small request bodies on one
//! connection, each one's window given back. Large bodies both ways under small windows, and
//! trailers through two of these servers: `protocols.rs`.

mod support;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use support::*;

/// An h2c client with Nagle's algorithm off, as curl, Go and browsers have it: hyper's
/// connector leaves it on, so its DATA frame waits for the ACK of its HEADERS, which the
/// receiving kernel delays by 40 ms (any server; nothing goes back until the body is in).
fn h2c_nodelay() -> TestClient {
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(connector)
}

#[tokio::test]
async fn many_small_request_bodies_on_one_connection_keep_their_window() {
    let up = Upstream::start("up").await;
    let proxy = proxy_to(&[up.addr], "", "").await;
    let client = h2c_nodelay();
    // 1 500 KiB in all, past the 1 MiB connection window: only window given back as each
    // body is read lets the later ones through.
    let chunk = "y".repeat(1024);
    for i in 0..1500 {
        let req = Request::post(proxy.url(&format!("/small/{i}")))
            .body(Full::new(Bytes::from(chunk.clone())))
            .unwrap();
        let response = tokio::time::timeout(std::time::Duration::from_secs(5), client.request(req))
            .await
            .unwrap_or_else(|_| panic!("request {i} stalled"))
            .unwrap();
        assert_eq!(response.status(), 200);
        let echo = body_json(response).await;
        assert_eq!(echo["body"].as_str().unwrap().len(), 1024);
    }
    assert_eq!(
        proxy
            .counter("http.ingress_http.downstream_cx_http2_total")
            .await,
        1,
        "one connection carried them all"
    );
    proxy.stop().await;
}

/// HTTP/2 clients send each cookie as a field of its own; an HTTP/1.1 upstream gets them
/// joined into one `Cookie` header with "; " (RFC 9113 §8.2.3), as Envoy's codec does. The
/// echo upstream keeps one value per header name, so a second, unjoined field would show as
/// `b=2` alone.
#[tokio::test]
async fn cookie_fields_reach_an_http1_upstream_as_one_header() {
    let up = Upstream::start("up").await;
    let proxy = proxy_to(&[up.addr], "", "").await;
    let client = h2c_nodelay();
    let req = Request::get(proxy.url("/cookies"))
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .header("cookie", "c=3")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client.request(req).await.unwrap();
    assert_eq!(response.status(), 200);
    let echo = body_json(response).await;
    assert_eq!(echo["version"], "HTTP/1.1");
    assert_eq!(echo["headers"]["cookie"], "a=1; b=2; c=3");

    // One cookie field is passed as it came.
    let req = Request::get(proxy.url("/cookie"))
        .header("cookie", "only=1; other=2")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let echo = body_json(client.request(req).await.unwrap()).await;
    assert_eq!(echo["headers"]["cookie"], "only=1; other=2");
    proxy.stop().await;
}

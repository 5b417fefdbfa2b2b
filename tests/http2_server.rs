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

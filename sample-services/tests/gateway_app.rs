//! Kind `gateway` over real sockets: REST to gRPC end to end, header forwarding into
//! gRPC metadata, 502s, and lazy (re)connection to an upstream that comes and goes.

mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::{args, closed_port, get, request, start, start_on};
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sample_services::Kind;
use serde_json::json;
use tokio::net::TcpListener;

fn gateway_to(upstream: &str) -> sample_services::ServiceArgs {
    let mut a = args(Kind::Gateway, "gw-pod");
    a.upstream = Some(upstream.parse().unwrap());
    a
}

#[tokio::test]
async fn rest_to_grpc_end_to_end() {
    let backend = start(args(Kind::Grpc, "grpc-pod")).await;
    let gateway = start(gateway_to(&backend.url(""))).await;

    let r = get(gateway.addr, "/alive").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, r#"{"status":true}"#);
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("x-served-by"), "gw-pod");

    let r = get(gateway.addr, "/user").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        r#"{"users":[{"name":"Alice","age":20},{"name":"Bob","age":24}]}"#
    );

    assert_eq!(
        get(gateway.addr, "/nope").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        request(gateway.addr, Method::POST, "/alive", &[], "")
            .await
            .status,
        StatusCode::METHOD_NOT_ALLOWED
    );

    let stats = get(gateway.addr, "/meshsim/stats").await.json();
    assert_eq!(
        stats,
        json!({"hostname": "gw-pod", "service_name": "gateway", "requests_total": 4,
               "by_path": {"/alive": 2, "/user": 1, "/nope": 1},
               "by_status": {"200": 2, "404": 1, "405": 1}})
    );
    let backend_stats = get(backend.addr, "/meshsim/stats").await.json();
    assert_eq!(
        backend_stats["by_path"],
        json!({"/gateway.AliveService/GetStatus": 1, "/gateway.UserService/GetUsersByGroup": 1})
    );
    gateway.stop().await;
    backend.stop().await;
}

#[tokio::test]
async fn upstream_down_is_a_502_naming_it() {
    let dead = closed_port().await;
    let upstream = format!("http://{dead}");
    let gateway = start(gateway_to(&upstream)).await;
    for path in ["/alive", "/user"] {
        let r = get(gateway.addr, path).await;
        assert_eq!(r.status, StatusCode::BAD_GATEWAY);
        assert_eq!(r.header("content-type"), "application/json");
        let error = r.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(&upstream), "{error}");
        assert!(error.contains("Unavailable"), "{error}");
    }
    gateway.stop().await;
}

#[tokio::test]
async fn connects_lazily_and_reconnects_to_a_restarted_upstream() {
    // The gateway starts first, as it may before its sidecar.
    let port_holder = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = port_holder.local_addr().unwrap();
    drop(port_holder);
    let gateway = start(gateway_to(&format!("http://{addr}"))).await;
    assert_eq!(
        get(gateway.addr, "/alive").await.status,
        StatusCode::BAD_GATEWAY
    );

    let backend = start_on(
        args(Kind::Grpc, "grpc-1"),
        TcpListener::bind(addr).await.unwrap(),
    )
    .await;
    assert_eq!(get(gateway.addr, "/alive").await.status, StatusCode::OK);
    backend.stop().await;

    // The cached connection died with that backend; a new one serves the next call.
    let backend = start_on(
        args(Kind::Grpc, "grpc-2"),
        TcpListener::bind(addr).await.unwrap(),
    )
    .await;
    let r = get(gateway.addr, "/user").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        get(backend.addr, "/meshsim/stats").await.json()["hostname"],
        "grpc-2"
    );
    gateway.stop().await;
    backend.stop().await;
}

/// A minimal gRPC server that records the request headers of each call and answers
/// GetStatus with `status: true`, framed by hand.
async fn recording_grpc_server() -> (std::net::SocketAddr, Arc<Mutex<Vec<HeaderMap>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let record = record.clone();
            let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                record.lock().unwrap().push(req.headers().clone());
                async move {
                    let mut trailers = HeaderMap::new();
                    trailers.insert("grpc-status", "0".parse().unwrap());
                    let body = Full::new(Bytes::from_static(&[0, 0, 0, 0, 2, 0x08, 0x01]))
                        .with_trailers(async move { Some(Ok(trailers)) });
                    let response = Response::builder()
                        .header("content-type", "application/grpc")
                        .body(body)
                        .unwrap();
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn tracing_headers_become_grpc_metadata() {
    let (upstream, seen) = recording_grpc_server().await;
    let gateway = start(gateway_to(&format!("http://{upstream}"))).await;
    let r = request(
        gateway.addr,
        Method::GET,
        "/alive",
        &[
            ("x-request-id", "req-42"),
            ("x-b3-traceid", "463ac35c9f6413ad"),
            ("x-b3-spanid", "a2fb4a1d1a96d312"),
            ("x-b3-sampled", "1"),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("x-unrelated", "no"),
        ],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, r#"{"status":true}"#);

    let headers = seen.lock().unwrap()[0].clone();
    assert_eq!(headers["x-request-id"], "req-42");
    assert_eq!(headers["x-b3-traceid"], "463ac35c9f6413ad");
    assert_eq!(headers["x-b3-spanid"], "a2fb4a1d1a96d312");
    assert_eq!(headers["x-b3-sampled"], "1");
    assert_eq!(
        headers["traceparent"],
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );
    assert!(headers.get("x-unrelated").is_none());
    assert_eq!(headers["content-type"], "application/grpc");
    assert!(headers.contains_key("grpc-timeout"));
    gateway.stop().await;
}

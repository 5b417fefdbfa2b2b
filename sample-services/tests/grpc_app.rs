//! Kind `grpc` over real sockets: both services through a tonic client, the wire bytes
//! through a bare HTTP/2 client, and the counters over HTTP/1.1 on the same port.

mod common;

use bytes::Bytes;
use common::{args, get, start};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sample_services::grpc_client::GatewayClient;
use sample_services::proto::{GetStatusRequest, GetUsersByGroupRequest, User};
use sample_services::{Dialer, Kind};
use serde_json::json;
use tokio::net::TcpStream;

#[tokio::test]
async fn tonic_client_calls_both_services() {
    let app = start(args(Kind::Grpc, "grpc-pod")).await;
    let client = GatewayClient::new(app.url("").parse().unwrap(), Dialer::default());

    let status = client
        .get_status(tonic::Request::new(GetStatusRequest {}))
        .await
        .unwrap();
    assert!(status.get_ref().status);
    assert_eq!(
        status
            .metadata()
            .get("x-served-by")
            .unwrap()
            .to_str()
            .unwrap(),
        "grpc-pod"
    );

    let users = client
        .get_users_by_group(tonic::Request::new(GetUsersByGroupRequest {
            group: "admins".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        users.users,
        vec![
            User {
                name: "Alice".into(),
                age: 20
            },
            User {
                name: "Bob".into(),
                age: 24
            },
        ]
    );
    app.stop().await;
}

/// Independent of the crate's client: hand-framed gRPC over a bare h2c connection.
async fn raw_grpc_call(
    addr: std::net::SocketAddr,
    path: &str,
    message: &[u8],
) -> (StatusCode, http::HeaderMap, Bytes, http::HeaderMap) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    // Length-prefixed message: compression flag 0, big-endian u32 length, bytes.
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(message);
    let request = Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from(frame)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.unwrap();
    let trailers = collected.trailers().cloned().unwrap_or_default();
    (parts.status, parts.headers, collected.to_bytes(), trailers)
}

#[tokio::test]
async fn wire_format_of_get_status() {
    let app = start(args(Kind::Grpc, "grpc-wire")).await;
    let (status, headers, body, trailers) =
        raw_grpc_call(app.addr, "/gateway.AliveService/GetStatus", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/grpc");
    assert_eq!(headers["x-served-by"], "grpc-wire");
    // One uncompressed message of 2 bytes: field 1 (varint) = true.
    assert_eq!(&body[..], &[0, 0, 0, 0, 2, 0x08, 0x01]);
    assert_eq!(trailers["grpc-status"], "0");
    app.stop().await;
}

#[tokio::test]
async fn unknown_method_is_unimplemented() {
    let app = start(args(Kind::Grpc, "grpc-unimpl")).await;
    let (status, headers, _, trailers) =
        raw_grpc_call(app.addr, "/gateway.AliveService/Nope", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let grpc_status = headers
        .get("grpc-status")
        .or_else(|| trailers.get("grpc-status"));
    assert_eq!(grpc_status.unwrap(), "12");
    app.stop().await;
}

#[tokio::test]
async fn counters_over_http1_on_the_same_port() {
    let app = start(args(Kind::Grpc, "grpc-stats")).await;
    let client = GatewayClient::new(app.url("").parse().unwrap(), Dialer::default());
    for _ in 0..3 {
        client
            .get_status(tonic::Request::new(GetStatusRequest {}))
            .await
            .unwrap();
    }
    client
        .get_users_by_group(tonic::Request::new(GetUsersByGroupRequest::default()))
        .await
        .unwrap();

    let stats = get(app.addr, "/meshsim/stats").await;
    assert_eq!(stats.status, StatusCode::OK);
    assert_eq!(stats.header("x-served-by"), "grpc-stats");
    assert_eq!(
        stats.json(),
        json!({
            "hostname": "grpc-stats",
            "service_name": "grpc",
            "requests_total": 4,
            "by_path": {
                "/gateway.AliveService/GetStatus": 3,
                "/gateway.UserService/GetUsersByGroup": 1,
            },
            "by_status": {"200": 4},
        })
    );
    // A plain HTTP request elsewhere is answered (and counted) as not found.
    assert_eq!(get(app.addr, "/").await.status, StatusCode::NOT_FOUND);
    app.stop().await;
}

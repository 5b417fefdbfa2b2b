//! Local-runtime mode (`--pod-ip`): every pod is a process on its own loopback address.

mod common;

use std::net::IpAddr;

use common::{args, get, start_on};
use http::StatusCode;
use sample_services::{bind, Kind};
use tokio::net::TcpListener;

const POD_IP: &str = "127.0.0.2";

fn pod_ip() -> IpAddr {
    POD_IP.parse().unwrap()
}

#[tokio::test]
async fn localhost_listen_address_binds_the_pod_ip() {
    let mut a = args(Kind::Http, "pod-local");
    a.listen = Some("127.0.0.1:0".parse().unwrap());
    a.pod_ip = Some(pod_ip());
    let listener = bind(&a).await.unwrap();
    assert_eq!(listener.local_addr().unwrap().ip(), pod_ip());

    let app = start_on(a, listener).await;
    let r = get(app.addr, "/service/1").await;
    assert_eq!(r.status, StatusCode::OK);
    // The pod IP is also the reported address.
    assert_eq!(
        r.body,
        "Hello from behind Envoy (service 1)! hostname: pod-local resolvedhostname: 127.0.0.2\n"
    );
    app.stop().await;
}

#[tokio::test]
async fn wildcard_listen_address_binds_the_pod_ip() {
    let mut a = args(Kind::Grpc, "pod-wild");
    a.listen = Some("0.0.0.0:0".parse().unwrap());
    a.pod_ip = Some(pod_ip());
    let listener = bind(&a).await.unwrap();
    assert_eq!(listener.local_addr().unwrap().ip(), pod_ip());
}

#[tokio::test]
async fn bind_failure_names_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut a = args(Kind::Http, "pod-busy");
    a.listen = Some(taken.local_addr().unwrap());
    let error = bind(&a).await.unwrap_err().to_string();
    assert!(
        error.contains(&taken.local_addr().unwrap().to_string()),
        "{error}"
    );
}

#[tokio::test]
async fn gateway_dials_localhost_upstream_at_the_pod_ip() {
    // The "sidecar" (here the gRPC backend itself) listens on the pod IP only.
    let backend = start_on(
        args(Kind::Grpc, "grpc-pod"),
        TcpListener::bind((pod_ip(), 0)).await.unwrap(),
    )
    .await;
    let mut a = args(Kind::Gateway, "gw-pod");
    a.upstream = Some(
        format!("http://localhost:{}", backend.addr.port())
            .parse()
            .unwrap(),
    );
    a.pod_ip = Some(pod_ip());
    let gateway = start_on(a, TcpListener::bind((pod_ip(), 0)).await.unwrap()).await;

    let r = get(gateway.addr, "/alive").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, r#"{"status":true}"#);
    gateway.stop().await;
    backend.stop().await;
}

#[tokio::test]
async fn trace_next_hop_on_localhost_is_dialled_at_the_pod_ip() {
    let mut second = args(Kind::Http, "pod-2");
    second.service_name = Some("2".into());
    let second = start_on(second, TcpListener::bind((pod_ip(), 0)).await.unwrap()).await;

    let mut first = args(Kind::Http, "pod-1");
    first.pod_ip = Some(pod_ip());
    first.next_hop = Some(
        format!("http://127.0.0.1:{}/trace/2", second.addr.port())
            .parse()
            .unwrap(),
    );
    let first = start_on(first, TcpListener::bind((pod_ip(), 0)).await.unwrap()).await;

    let r = get(first.addr, "/trace/1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let stats = get(second.addr, "/meshsim/stats").await.json();
    assert_eq!(stats["by_path"]["/trace/2"], 1);
    first.stop().await;
    second.stop().await;
}

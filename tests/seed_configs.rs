//! The seed articles' configs, verbatim, doing what the articles show. Each proxy runs as its own
//! "pod" on a loopback address (`--pod-ip`), and a test DNS server maps the configs' host names
//! (service1, alive-svc, google.com, …) to local upstreams, so the files stay unchanged.
//!
//! The configs listen on ports like 80; binding those needs root (CI runs as root). Elsewhere
//! the tests are skipped with a printed reason.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use meshsim::proxy::{Server, ServerOptions};
use tokio::sync::oneshot;

use support::*;

fn can_bind_low_ports() -> bool {
    match std::net::TcpListener::bind("127.0.40.1:80") {
        Ok(_) => true,
        Err(e) => {
            eprintln!("skipping: seed configs listen on ports below 1024 and binding 127.0.40.1:80 failed ({e}); run as root");
            false
        }
    }
}

struct Seed {
    listeners: Vec<(String, SocketAddr)>,
    admin: Option<SocketAddr>,
    _stop: oneshot::Sender<()>,
    _dns: TestDns,
}

/// Starts a seed fixture verbatim as pod `pod`, with `names` resolvable through a test DNS server.
async fn start_seed(file: &str, pod: &str, names: &[(&str, &str)]) -> Seed {
    let dns = TestDns::start().await;
    for (name, ip) in names {
        dns.records.set(name, vec![ip.parse().unwrap()]);
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/seeds")
        .join(file);
    let loaded = meshsim::config::load_file(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let server = Server::start(
        loaded.bootstrap,
        ServerOptions {
            concurrency: 1,
            drain_time: Duration::from_millis(100),
            pod_ip: Some(pod.parse().unwrap()),
            dns_resolver: Some(dns.addr),
            config_base_dir: None,
            mode: "Serve".into(),
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{file} does not start: {e}"));
    let listeners = server.listener_addrs().to_vec();
    let admin = server.admin_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Seed {
        listeners,
        admin,
        _stop: stop,
        _dns: dns,
    }
}

async fn upstream(name: &str, ip: &str, port: u16) -> Upstream {
    Upstream::start_on(name, SocketAddr::new(ip.parse::<IpAddr>().unwrap(), port)).await
}

async fn admin_text(seed: &Seed, path: &str) -> String {
    let url = format!("http://{}{path}", seed.admin.unwrap());
    body_string(get(&http1(), &url).await).await
}

#[tokio::test]
async fn seed_001_front_proxy_routes_to_both_services_over_http2() {
    if !can_bind_low_ports() {
        return;
    }
    let s1 = upstream("service1", "127.0.41.2", 80).await;
    let s2 = upstream("service2", "127.0.41.3", 80).await;
    let seed = start_seed(
        "001-front-envoy.yaml",
        "127.0.41.1",
        &[("service1", "127.0.41.2"), ("service2", "127.0.41.3")],
    )
    .await;
    assert_eq!(seed.listeners[0].1, "127.0.41.1:80".parse().unwrap());
    let client = http1();
    let r = get(&client, "http://127.0.41.1:80/service/1").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["server"], "envoy");
    let echo = body_json(r).await;
    assert_eq!(echo["upstream"], "service1");
    assert_eq!(
        echo["version"], "HTTP/2.0",
        "http2_protocol_options: {{}} makes the upstream h2"
    );
    let echo = body_json(get(&client, "http://127.0.41.1:80/service/2").await).await;
    assert_eq!(echo["upstream"], "service2");
    assert_eq!((s1.count(), s2.count()), (1, 1));

    let stats = admin_text(&seed, "/stats").await;
    assert!(
        stats.contains("cluster.service1.upstream_cx_http2_total: 1\n"),
        "{stats}"
    );
    assert!(stats.contains("cluster.service1.membership_total: 1\n"));
    let clusters = admin_text(&seed, "/clusters").await;
    assert!(
        clusters.contains("service1::127.0.41.2:80::hostname::service1\n"),
        "{clusters}"
    );
}

#[tokio::test]
async fn seed_000_sidecars_carry_grpc_from_gateway_to_backend() {
    if !can_bind_low_ports() {
        return;
    }
    // The Alive backend pod: its app on 127.0.0.1:8080 inside the pod, its sidecar on :10000.
    let alive_app = upstream("alive-app", "127.0.42.2", 8080).await;
    let _alive_sidecar = start_seed("000-sidecar-service.yaml", "127.0.42.2", &[]).await;
    // The gateway pod: egress listener 127.0.0.1:8080 → alive-svc:10000 (the headless service).
    let gateway = start_seed(
        "000-sidecar-gateway.yaml",
        "127.0.42.1",
        &[("alive-svc", "127.0.42.2")],
    )
    .await;
    assert!(gateway
        .listeners
        .iter()
        .any(|(_, a)| *a == "127.0.42.1:8080".parse().unwrap()));

    let req = Request::post("http://127.0.42.1:8080/grpc/gateway.AliveService/GetStatus")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(b"\x00\x00\x00\x00\x00")))
        .unwrap();
    // The gateway app speaks gRPC (HTTP/2) to its sidecar's egress listener.
    let r = h2c().request(req).await.expect("grpc through two sidecars");
    // /grpc/... is not under the configured prefixes, so try the real path too.
    assert_eq!(
        r.status(),
        404,
        "routes are by gRPC service prefix, as the article configures"
    );

    let req = Request::post("http://127.0.42.1:8080/gateway.AliveService/GetStatus")
        .header("content-type", "application/grpc")
        .body(Full::new(Bytes::from_static(b"\x00\x00\x00\x00\x00")))
        .unwrap();
    let r = h2c().request(req).await.expect("grpc through two sidecars");
    assert_eq!(r.status(), 200);
    let body = r.into_body().collect().await.unwrap().to_bytes();
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["upstream"], "alive-app");
    assert_eq!(echo["path"], "/gateway.AliveService/GetStatus");
    assert_eq!(echo["version"], "HTTP/2.0");
    assert_eq!(alive_app.count(), 1);
}

#[tokio::test]
async fn seed_003_v1_sidecar_serves_foo_com_only() {
    if !can_bind_low_ports() {
        return;
    }
    let flask = upstream("flask", "127.0.44.1", 5000).await;
    let seed = start_seed("003-flask-sidecar.json", "127.0.44.1", &[]).await;
    let client = http1();
    let r = get_with(&client, "http://127.0.44.1:80/", &[("host", "foo.com")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(body_json(r).await["upstream"], "flask");
    let r = get_with(&client, "http://127.0.44.1:80/", &[("host", "bar.com")]).await;
    assert_eq!(r.status(), 404, "domains: [foo.com] only");
    assert_eq!(flask.count(), 1);
    let ready = admin_text(&seed, "/ready").await;
    assert_eq!(ready, "LIVE\n");
}

#[tokio::test]
async fn seed_002_xds_bundle_routes_by_path() {
    if !can_bind_low_ports() {
        return;
    }
    let a = upstream("service-a", "127.0.45.2", 8080).await;
    let _seed = start_seed(
        "002-xds-bundle.yaml",
        "127.0.45.1",
        &[("service-a", "127.0.45.2"), ("service-b", "127.0.45.3")],
    )
    .await;
    let client = http1();
    for path in ["/hi_a", "/hi_b"] {
        let r = get(&client, &format!("http://127.0.45.1:3101{path}")).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            body_json(r).await["upstream"],
            "service-a",
            "the slide routes both to service-a"
        );
    }
    assert_eq!(a.count(), 2);
}

#[tokio::test]
async fn seed_001_getting_started_rewrites_host_to_a_logical_dns_cluster() {
    if !can_bind_low_ports() {
        return;
    }
    // The article proxies to google.com:443 over TLS; the test DNS points google.com at a
    // local HTTPS upstream (the config names no CA, so its certificate is not verified).
    let google = Upstream::start_tls_on(
        "google",
        SocketAddr::new("127.0.46.2".parse().unwrap(), 443),
        &["www.google.com"],
    )
    .await;
    let _seed = start_seed(
        "001-getting-started.yaml",
        "127.0.46.1",
        &[("google.com", "127.0.46.2")],
    )
    .await;
    let echo = body_json(get(&http1(), "http://127.0.46.1:10000/search?q=envoy").await).await;
    assert_eq!(echo["upstream"], "google");
    assert_eq!(echo["headers"]["host"], "www.google.com", "host_rewrite");
    assert_eq!(echo["uri"], "/search?q=envoy");
    assert_eq!(google.count(), 1);
}

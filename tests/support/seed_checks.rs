//! What each shipped scenario must answer, as its seed article shows it: the same checks run
//! against the Docker and the local runtime.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use super::mesh::{get, get_https, hostname_of, wait_for, Mesh};

/// Envoy's front-proxy sandbox: its curl checks, balancing over service1's two replicas, and
/// the /trace chain through service1's sidecar to service2.
pub fn front_proxy(mesh: &Mesh) {
    let front = mesh.port("front-envoy", 8080);
    let mut hostnames = BTreeSet::new();
    for _ in 0..20 {
        let (status, body) = get(front, "/service/1", None).unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(
            body.starts_with("Hello from behind Envoy (service 1)! hostname: "),
            "{body}"
        );
        assert!(body.contains(" resolvedhostname: "), "{body}");
        hostnames.insert(hostname_of(&body).unwrap());
    }
    assert_eq!(
        hostnames.len(),
        2,
        "both service1 replicas answer: {hostnames:?}"
    );
    let (status, body) = get(front, "/service/2", None).unwrap();
    assert_eq!(status, 200);
    assert!(
        body.starts_with("Hello from behind Envoy (service 2)!"),
        "{body}"
    );

    // /trace/1: service1 calls service2 through its sidecar's egress listener.
    let (status, body) = get(front, "/trace/1", None).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with("Hello from behind Envoy (service 1)!"),
        "{body}"
    );
    let (_, stats) = get(mesh.port("service2", 8080), "/meshsim/stats", None).unwrap();
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(
        stats["by_path"]["/trace/2"], 1,
        "service2 saw the traced call: {stats}"
    );

    // What the apps say they served reconciles with what was sent (readiness probes and the
    // admin's own pages are not counted): 20 × /service/1 and 1 × /trace/1 over both replicas.
    let served: u64 = [1, 2]
        .iter()
        .map(|r| {
            let (_, stats) =
                get(mesh.port_of("service1", *r, 8080), "/meshsim/stats", None).unwrap();
            let stats: Value = serde_json::from_str(&stats).unwrap();
            stats["requests_total"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(served, 21);

    // The admin port answers as Envoy's does.
    let admin = mesh.port("front-envoy", 8001);
    let (status, text) = get(admin, "/stats", None).unwrap();
    assert_eq!(status, 200);
    assert!(
        text.contains("cluster.service1.upstream_rq_200: 21"),
        "{text}"
    );
    let (_, ready) = get(admin, "/ready", None).unwrap();
    assert_eq!(ready, "LIVE\n");

    // `meshsim logs` shows the front proxy's access log (Envoy's default format, on stdout).
    let logged = wait_for(Duration::from_secs(5), || {
        let out = mesh.command().args(["logs", "front-envoy"]).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .any(|l| {
                l.starts_with("front-envoy#1/proxy | [")
                    && l.contains("\"GET /service/2 HTTP/1.1\" 200 -")
            })
            .then_some(())
    });
    assert!(
        logged.is_some(),
        "the access log line for /service/2 never showed in `meshsim logs`"
    );
    // The sandbox's HTTPS check, `curl https://localhost:8443/service/1 -k` (last: the counts
    // above are for the plain requests).
    let (status, body) = get_https(mesh.port("front-envoy", 8443), "/service/1").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with("Hello from behind Envoy (service 1)!"),
        "{body}"
    );
}

/// Seed 001's v2 front proxy: the article's two curls, through the published port 80.
pub fn front_proxy_v2(mesh: &Mesh) {
    let front = mesh.port("front-envoy", 80);
    for n in [1, 2] {
        let (status, body) = get(front, &format!("/service/{n}"), None).unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(
            body.starts_with(&format!(
                "Hello from behind Envoy (service {n})! hostname: "
            )),
            "{body}"
        );
    }
}

/// Seed 001's getting-started proxy: its HTTPS upstream (the sample app standing in for
/// google.com) answers through the proxy, which spoke TLS to it with the configured SNI and
/// the rewritten host; the cluster's ssl stats show the handshake.
pub fn getting_started(mesh: &Mesh) {
    let proxy = mesh.port("envoy", 10000);
    let (status, body) = get(proxy, "/", None).unwrap();
    assert_eq!((status, body.as_str()), (200, "Hello, World!"));
    let (status, body) = get(proxy, "/echo", None).unwrap();
    assert_eq!(status, 200, "{body}");
    let echo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["headers"]["host"], "www.google.com", "{echo}");
    assert_eq!(echo["tls"]["sni"], "www.google.com", "{echo}");
    assert_eq!(echo["tls"]["alpn"], "http/1.1", "{echo}");
    let (_, stats) = get(mesh.port("envoy", 9901), "/stats?filter=ssl", None).unwrap();
    assert!(
        stats.contains("cluster.service_google.ssl.handshake: 1"),
        "{stats}"
    );
    assert!(
        stats.contains("cluster.service_google.ssl.connection_error: 0"),
        "{stats}"
    );
}

/// Seed 000: the gateway's two curls, and /user balanced over both User pods.
pub fn sidecar_grpc(mesh: &Mesh) {
    let gateway = mesh.port("gateway", 10000);
    let (status, body) = get(gateway, "/alive", None).unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"status":true}"#));
    for _ in 0..10 {
        let (status, body) = get(gateway, "/user", None).unwrap();
        assert_eq!(
            (status, body.as_str()),
            (
                200,
                r#"{"users":[{"name":"Alice","age":20},{"name":"Bob","age":24}]}"#
            )
        );
    }
    for replica in [1, 2] {
        let (_, stats) = get(
            mesh.port_of("user-svc", replica, 8080),
            "/meshsim/stats",
            None,
        )
        .unwrap();
        let stats: Value = serde_json::from_str(&stats).unwrap();
        let served = stats["requests_total"].as_u64().unwrap();
        assert!(
            served >= 2,
            "user-svc#{replica} served {served} of 10: {stats}"
        );
    }
}

/// Seed 003: `Host: foo.com` reaches the four replicas; any other host is a 404.
pub fn edge_envoy(mesh: &Mesh) {
    let edge = mesh.port("edge-envoy", 80);
    let (status, body) = get(edge, "/", Some("foo.com")).unwrap();
    assert_eq!((status, body.as_str()), (200, "Hello, World!"));
    let mut names = BTreeSet::new();
    for _ in 0..24 {
        let (status, body) = get(edge, "/healthy_check", Some("foo.com")).unwrap();
        assert_eq!(status, 200);
        assert!(body.starts_with("I am fine! <service_name: "), "{body}");
        names.insert(body);
    }
    assert_eq!(names.len(), 4, "all four replicas answer: {names:?}");
    let (status, _) = get(edge, "/", Some("bar.com")).unwrap();
    assert_eq!(status, 404);
}

/// Polls the front proxy until `/service/1` has been answered by exactly `expected` hostnames
/// in a row of answers (used after a replica is killed or added).
pub fn service1_hostnames(front: std::net::SocketAddr, expected: usize) -> BTreeSet<String> {
    wait_for(Duration::from_secs(20), || {
        let mut seen = BTreeSet::new();
        for _ in 0..12 {
            let (status, body) = get(front, "/service/1", None).ok()?;
            if status != 200 {
                return None;
            }
            seen.insert(hostname_of(&body)?);
        }
        (seen.len() == expected).then_some(seen)
    })
    .unwrap_or_else(|| panic!("service1 never settled on {expected} replicas"))
}

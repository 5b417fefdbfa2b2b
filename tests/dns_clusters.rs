//! STRICT_DNS and LOGICAL_DNS clusters against meshsim's embedded DNS server: every A record is
//! a host, replicas appear and vanish on re-resolution without a restart, load balancing spreads
//! requests over them.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use support::*;

fn dns_cluster(name: &str, kind: &str, host: &str, port: u16, lb: &str) -> String {
    format!(
        "  - name: {name}\n    connect_timeout: 0.5s\n    type: {kind}\n    lb_policy: {lb}\n    dns_refresh_rate: 0.2s\n    dns_lookup_family: V4_ONLY\n    load_assignment:\n      cluster_name: {name}\n      endpoints:\n      - lb_endpoints:\n        - endpoint: {{address: {{socket_address: {{address: {host}, port_value: {port}}}}}}}\n"
    )
}

const ROUTE: &str =
    "              - match: {prefix: \"/\"}\n                route: {cluster: service1}\n";

/// Replicas share one port on different loopback addresses, as containers share a port on
/// different IPs behind one DNS alias.
async fn replicas(ips: &[&str], port: u16) -> Vec<Upstream> {
    let mut out = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        let addr = SocketAddr::new(ip.parse().unwrap(), port);
        out.push(Upstream::start_on(&format!("replica{i}"), addr).await);
    }
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn strict_dns_sees_every_replica_and_follows_scaling() {
    let dns = TestDns::start().await;
    let port = free_port();
    let reps = replicas(&["127.0.10.1", "127.0.10.2", "127.0.10.3"], port).await;
    let ip = |i: usize| -> IpAddr { reps[i].addr.ip() };
    dns.records.set("service1", vec![ip(0), ip(1)]);

    let proxy = Proxy::builder(v3_config(
        ROUTE,
        &dns_cluster("service1", "STRICT_DNS", "service1", port, "ROUND_ROBIN"),
        "",
    ))
    .dns(dns.addr)
    .start()
    .await;
    let client = http1();

    // Warm start: the first resolution finished before the listener opened.
    assert_eq!(proxy.counter("cluster.service1.membership_total").await, 2);
    for _ in 0..10 {
        assert_eq!(get(&client, &proxy.url("/")).await.status(), 200);
    }
    assert_eq!(
        (reps[0].count(), reps[1].count()),
        (5, 5),
        "round robin splits evenly"
    );

    // Scale up: a third A record appears; no restart.
    dns.records.set("service1", vec![ip(0), ip(1), ip(2)]);
    assert!(
        eventually(Duration::from_secs(3), || async {
            proxy
                .stat("cluster.service1.membership_total")
                .await
                .as_deref()
                == Some("3")
        })
        .await
    );
    for _ in 0..9 {
        get(&client, &proxy.url("/")).await;
    }
    assert!(
        reps[2].count() >= 2,
        "new replica receives traffic: {}",
        reps[2].count()
    );

    // Scale down to one.
    dns.records.set("service1", vec![ip(2)]);
    assert!(
        eventually(Duration::from_secs(3), || async {
            proxy
                .stat("cluster.service1.membership_total")
                .await
                .as_deref()
                == Some("1")
        })
        .await
    );
    let before = reps[2].count();
    for _ in 0..5 {
        assert_eq!(get(&client, &proxy.url("/")).await.status(), 200);
    }
    assert_eq!(reps[2].count(), before + 5);
    assert!(proxy.counter("cluster.service1.membership_change").await >= 3);
    assert!(proxy.counter("cluster.service1.update_success").await >= 3);

    let (_, clusters) = proxy.admin_get("/clusters").await;
    assert!(clusters.contains(&format!("service1::{}:{port}::hostname::service1", ip(2))));

    // The name disappears entirely: Envoy keeps the last good hosts on a failed resolution.
    dns.records.remove("service1");
    assert!(
        eventually(Duration::from_secs(3), || async {
            proxy.counter("cluster.service1.update_failure").await >= 1
        })
        .await
    );
    assert_eq!(proxy.counter("cluster.service1.membership_total").await, 1);
    proxy.stop().await;
}

#[tokio::test]
async fn logical_dns_uses_only_the_first_address() {
    let dns = TestDns::start().await;
    let port = free_port();
    let reps = replicas(&["127.0.11.1", "127.0.11.2"], port).await;
    dns.records
        .set("service1", vec![reps[0].addr.ip(), reps[1].addr.ip()]);
    let proxy = Proxy::builder(v3_config(
        ROUTE,
        &dns_cluster("service1", "LOGICAL_DNS", "service1", port, "ROUND_ROBIN"),
        "",
    ))
    .dns(dns.addr)
    .start()
    .await;
    for _ in 0..4 {
        get(&http1(), &proxy.url("/")).await;
    }
    assert_eq!(reps[0].count() + reps[1].count(), 4);
    assert!(reps[0].count() == 4 || reps[1].count() == 4);
    assert_eq!(proxy.counter("cluster.service1.membership_total").await, 1);
    proxy.stop().await;
}

#[tokio::test]
async fn least_request_prefers_the_idle_replica_and_ring_hash_is_sticky() {
    let dns = TestDns::start().await;
    let port = free_port();
    let reps = replicas(&["127.0.12.1", "127.0.12.2", "127.0.12.3"], port).await;
    dns.records
        .set("svc", reps.iter().map(|r| r.addr.ip()).collect());
    let routes = "              - match: {prefix: \"/lr\"}\n                route: {cluster: lr}\n              - match: {prefix: \"/hash\"}\n                route:\n                  cluster: hash\n                  hash_policy: [{header: {header_name: x-user}}]\n";
    let clusters = [
        dns_cluster("lr", "STRICT_DNS", "svc", port, "LEAST_REQUEST"),
        dns_cluster("hash", "STRICT_DNS", "svc", port, "RING_HASH"),
    ]
    .concat();
    let proxy = Proxy::builder(v3_config(routes, &clusters, ""))
        .dns(dns.addr)
        .start()
        .await;
    let client = http1();

    for _ in 0..30 {
        assert_eq!(get(&client, &proxy.url("/lr")).await.status(), 200);
    }
    let lr_total: u64 = reps.iter().map(|r| r.count()).sum();
    assert_eq!(lr_total, 30);

    let before: Vec<u64> = reps.iter().map(|r| r.count()).collect();
    for _ in 0..20 {
        get_with(&client, &proxy.url("/hash"), &[("x-user", "alice")]).await;
    }
    let gained: Vec<u64> = reps
        .iter()
        .zip(&before)
        .map(|(r, b)| r.count() - b)
        .collect();
    assert_eq!(
        gained.iter().filter(|g| **g > 0).count(),
        1,
        "one user, one host: {gained:?}"
    );
    assert_eq!(gained.iter().sum::<u64>(), 20);
    proxy.stop().await;
}

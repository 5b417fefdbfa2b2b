//! Routing and the HTTP connection manager, end to end: real upstreams, the real proxy, real
//! HTTP/1.1 clients. Every numbered behaviour of issue 2 §2–3 that is observable on the wire.

mod support;

use std::time::Duration;

use support::*;

fn route(prefix: &str, action: &str) -> String {
    format!("              - match: {{prefix: \"{prefix}\"}}\n                {action}\n")
}

#[tokio::test]
async fn routes_by_prefix_in_order_with_envoy_headers() {
    let s1 = Upstream::start("service1").await;
    let s2 = Upstream::start("service2").await;
    let routes = [
        route("/service/1", "route: {cluster: service1}"),
        route("/service/2", "route: {cluster: service2}"),
    ]
    .concat();
    let clusters = [
        static_cluster("service1", &[s1.addr], ""),
        static_cluster("service2", &[s2.addr], ""),
    ]
    .concat();
    let proxy = Proxy::start(v3_config(&routes, &clusters, "")).await;
    let client = http1();

    let r = get_with(
        &client,
        &proxy.url("/service/1/x?q=1"),
        &[
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "secret"),
            ("te", "gzip"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["server"], "envoy");
    assert_eq!(r.headers()["x-upstream"], "service1");
    let service_time: u64 = r.headers()["x-envoy-upstream-service-time"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(service_time < 5000);
    assert!(
        !r.headers().contains_key("keep-alive"),
        "hop-by-hop response header stripped"
    );
    let echo = body_json(r).await;
    assert_eq!(echo["upstream"], "service1");
    assert_eq!(echo["uri"], "/service/1/x?q=1");
    let headers = &echo["headers"];
    let request_id = headers["x-request-id"]
        .as_str()
        .expect("x-request-id added");
    assert_eq!(
        uuid::Uuid::parse_str(request_id).unwrap().get_version_num(),
        4
    );
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-envoy-expected-rq-timeout-ms"], "15000");
    assert!(
        headers.get("x-hop").is_none(),
        "Connection-named header stripped"
    );
    assert!(
        headers.get("te").is_none(),
        "te other than trailers stripped"
    );
    assert_eq!(headers["host"], proxy.first_listener().to_string());

    let r = get_with(
        &client,
        &proxy.url("/service/2"),
        &[("x-request-id", "abc")],
    )
    .await;
    let echo = body_json(r).await;
    assert_eq!(echo["upstream"], "service2");
    assert_eq!(
        echo["headers"]["x-request-id"], "abc",
        "an existing request id is propagated"
    );

    assert_eq!(s1.count(), 1);
    assert_eq!(s2.count(), 1);
    proxy.stop().await;
}

#[tokio::test]
async fn local_replies_carry_envoy_codes_bodies_and_stats() {
    let up = Upstream::start("up").await;
    // A port that refuses connections: bind, learn it, drop it.
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let routes = [
        route("/nc", "route: {cluster: ghost}"),
        route("/uf", "route: {cluster: dead}"),
        route("/uh", "route: {cluster: empty}"),
        route(
            "/direct",
            "direct_response: {status: 418, body: {inline_string: \"short and stout\"}}",
        ),
        route(
            "/old",
            "redirect: {path_redirect: \"/new\", response_code: FOUND}",
        ),
        route("/ok", "route: {cluster: up}"),
    ]
    .concat();
    let clusters = [
        static_cluster("dead", &[refused], ""),
        static_cluster("empty", &[], ""),
        static_cluster("up", &[up.addr], ""),
        // `ghost` is referenced only through cluster_header below, so the config stays valid.
    ]
    .concat();
    let routes = routes.replace(
        "route: {cluster: ghost}",
        "route: {cluster_header: x-cluster}",
    );
    let proxy = Proxy::start(v3_config(&routes, &clusters, "")).await;
    let client = http1();

    let r = get(&client, &proxy.url("/nowhere")).await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["server"], "envoy");
    assert_eq!(body_string(r).await, "");

    let r = get_with(&client, &proxy.url("/nc"), &[("x-cluster", "ghost")]).await;
    assert_eq!(r.status(), 503);

    let r = get(&client, &proxy.url("/uf")).await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        body_string(r).await,
        "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
    );

    let r = get(&client, &proxy.url("/uh")).await;
    assert_eq!(r.status(), 503);
    assert_eq!(body_string(r).await, "no healthy upstream");

    let r = get(&client, &proxy.url("/direct")).await;
    assert_eq!(r.status(), 418);
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(body_string(r).await, "short and stout");

    let r = get(&client, &proxy.url("/old?x=1")).await;
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        location,
        format!("http://{}/new?x=1", proxy.first_listener())
    );

    let r = get(&client, &proxy.url("/ok")).await;
    assert_eq!(r.status(), 200);

    // Exact counters after exactly these seven requests.
    assert!(
        eventually(Duration::from_secs(2), || async {
            proxy
                .counter("http.ingress_http.downstream_rq_completed")
                .await
                == 7
        })
        .await
    );
    assert_eq!(
        proxy.counter("http.ingress_http.downstream_rq_total").await,
        7
    );
    assert_eq!(proxy.counter("http.ingress_http.no_route").await, 1);
    assert_eq!(proxy.counter("http.ingress_http.no_cluster").await, 1);
    assert_eq!(
        proxy.counter("http.ingress_http.rq_direct_response").await,
        1
    );
    assert_eq!(proxy.counter("http.ingress_http.rq_redirect").await, 1);
    assert_eq!(
        proxy.counter("http.ingress_http.downstream_rq_5xx").await,
        3
    );
    assert_eq!(
        proxy.counter("http.ingress_http.downstream_rq_4xx").await,
        2
    );
    assert_eq!(
        proxy.counter("http.ingress_http.downstream_rq_3xx").await,
        1
    );
    assert_eq!(
        proxy.counter("http.ingress_http.downstream_rq_2xx").await,
        1
    );
    assert_eq!(
        proxy.counter("cluster.dead.upstream_cx_connect_fail").await,
        1
    );
    assert_eq!(proxy.counter("cluster.dead.upstream_rq_503").await, 1);
    assert_eq!(
        proxy
            .counter("cluster.empty.upstream_cx_none_healthy")
            .await,
        1
    );
    assert_eq!(proxy.counter("cluster.up.upstream_rq_200").await, 1);
    assert_eq!(proxy.counter("cluster.up.upstream_rq_2xx").await, 1);
    assert_eq!(proxy.counter("cluster.up.upstream_rq_total").await, 1);
    proxy.stop().await;
}

#[tokio::test]
async fn rewrites_headers_and_matchers() {
    let up = Upstream::start("up").await;
    let canary = Upstream::start("canary").await;
    let routes = r#"              - match:
                  prefix: "/api"
                  headers:
                  - name: x-canary
                    string_match: {exact: "yes"}
                route: {cluster: canary}
              - match: {prefix: "/api/", query_parameters: [{name: debug}]}
                route: {cluster: up, prefix_rewrite: "/debug/"}
              - match: {prefix: "/api/"}
                route: {cluster: up, prefix_rewrite: "/v2/", host_rewrite_literal: backend.internal}
                request_headers_to_add:
                - header: {key: x-route, value: api}
                response_headers_to_add:
                - header: {key: x-served-by, value: meshsim}
                response_headers_to_remove: [x-upstream]
              - match: {safe_regex: {regex: "/items/[0-9]+"}}
                route:
                  cluster: up
                  regex_rewrite: {pattern: {regex: "^/items/([0-9]+)$"}, substitution: "/item?id=\\1"}
"#;
    let clusters = [
        static_cluster("up", &[up.addr], ""),
        static_cluster("canary", &[canary.addr], ""),
    ]
    .concat();
    let proxy = Proxy::start(v3_config(routes, &clusters, "")).await;
    let client = http1();

    let echo =
        body_json(get_with(&client, &proxy.url("/api/users"), &[("x-canary", "yes")]).await).await;
    assert_eq!(echo["upstream"], "canary");

    let r = get(&client, &proxy.url("/api/users?page=2")).await;
    assert_eq!(r.headers()["x-served-by"], "meshsim");
    assert!(!r.headers().contains_key("x-upstream"));
    let echo = body_json(r).await;
    assert_eq!(echo["uri"], "/v2/users?page=2");
    assert_eq!(echo["headers"]["host"], "backend.internal");
    assert_eq!(
        echo["headers"]["x-envoy-original-path"],
        "/api/users?page=2"
    );
    assert_eq!(echo["headers"]["x-route"], "api");

    let echo = body_json(get(&client, &proxy.url("/api/x?debug")).await).await;
    assert_eq!(echo["uri"], "/debug/x?debug");

    let echo = body_json(get(&client, &proxy.url("/items/42")).await).await;
    assert_eq!(echo["uri"], "/item?id=42");
    assert_eq!(get(&client, &proxy.url("/items/x")).await.status(), 404);
    proxy.stop().await;
}

#[tokio::test]
async fn virtual_hosts_are_chosen_by_authority() {
    let foo = Upstream::start("foo").await;
    let other = Upstream::start("other").await;
    let yaml = v3_config(
        &route("/", "route: {cluster: other}"),
        &[
            static_cluster("foo", &[foo.addr], ""),
            static_cluster("other", &[other.addr], ""),
        ]
        .concat(),
        "",
    )
    .replace(
        "            virtual_hosts:\n",
        "            virtual_hosts:\n            - name: foo\n              domains: [\"foo.com\", \"*.foo.com\"]\n              routes:\n              - match: {prefix: \"/\"}\n                route: {cluster: foo}\n",
    );
    let proxy = Proxy::start(yaml).await;
    let client = http1();
    for (host, expected) in [
        ("foo.com", "foo"),
        ("api.foo.com", "foo"),
        ("bar.com", "other"),
    ] {
        let echo = body_json(get_with(&client, &proxy.url("/"), &[("host", host)]).await).await;
        assert_eq!(echo["upstream"], expected, "Host: {host}");
    }
    proxy.stop().await;
}

#[tokio::test]
async fn weighted_clusters_split_traffic() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let routes = r#"              - match: {prefix: "/"}
                route:
                  weighted_clusters:
                    clusters:
                    - {name: a, weight: 80}
                    - {name: b, weight: 20}
"#;
    let clusters = [
        static_cluster("a", &[a.addr], ""),
        static_cluster("b", &[b.addr], ""),
    ]
    .concat();
    let proxy = Proxy::start(v3_config(routes, &clusters, "")).await;
    let client = http1();
    for _ in 0..1000 {
        assert_eq!(get(&client, &proxy.url("/")).await.status(), 200);
    }
    assert_eq!(a.count() + b.count(), 1000);
    // 80/20 over 1000 draws: the 99.99% interval is about ±5 points.
    assert!((700..=900).contains(&a.count()), "a got {}", a.count());
    proxy.stop().await;
}

#[tokio::test]
async fn use_remote_address_appends_xff_and_marks_internal() {
    let up = Upstream::start("up").await;
    let yaml = v3_config(
        &route("/", "route: {cluster: up}"),
        &static_cluster("up", &[up.addr], ""),
        "          use_remote_address: true\n",
    );
    let proxy = Proxy::start(yaml).await;
    let echo = body_json(
        get_with(
            &http1(),
            &proxy.url("/"),
            &[("x-forwarded-for", "203.0.113.7")],
        )
        .await,
    )
    .await;
    assert_eq!(echo["headers"]["x-forwarded-for"], "203.0.113.7,127.0.0.1");
    assert_eq!(echo["headers"]["x-envoy-internal"], "true");
    assert!(
        eventually(Duration::from_secs(2), || async {
            proxy
                .stat("cluster.up.internal.upstream_rq_200")
                .await
                .as_deref()
                == Some("1")
        })
        .await
    );
    proxy.stop().await;
}

#[tokio::test]
async fn route_timeout_gives_504_with_envoy_body() {
    let (addr, hold) = silent_upstream().await;
    let proxy = Proxy::start(v3_config(
        &route("/", "route: {cluster: slow, timeout: 0.2s}"),
        &static_cluster("slow", &[addr], ""),
        "",
    ))
    .await;
    let r = get(&http1(), &proxy.url("/")).await;
    assert_eq!(r.status(), 504);
    assert_eq!(body_string(r).await, "upstream request timeout");
    assert!(
        eventually(Duration::from_secs(2), || async {
            proxy
                .stat("cluster.slow.upstream_rq_timeout")
                .await
                .as_deref()
                == Some("1")
        })
        .await
    );
    proxy.stop().await;
    hold.abort();
}

#[tokio::test]
async fn a_client_leaving_before_the_response_balances_every_gauge() {
    let (addr, hold) = silent_upstream().await;
    let proxy = Proxy::start(v3_config(
        &route("/", "route: {cluster: slow}"),
        &static_cluster("slow", &[addr], ""),
        "",
    ))
    .await;
    for _ in 0..3 {
        use tokio::io::AsyncWriteExt;
        let mut s = tokio::net::TcpStream::connect(proxy.first_listener())
            .await
            .unwrap();
        s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert!(
            eventually(Duration::from_secs(2), || async {
                proxy.counter("cluster.slow.upstream_rq_active").await >= 1
            })
            .await
        );
        drop(s);
    }
    assert!(
        eventually(Duration::from_secs(3), || async {
            proxy
                .counter("http.ingress_http.downstream_rq_active")
                .await
                == 0
                && proxy.counter("cluster.slow.upstream_rq_active").await == 0
        })
        .await,
        "gauges leaked after cancelled requests"
    );
    assert_eq!(
        proxy
            .counter("http.ingress_http.downstream_rq_rx_reset")
            .await,
        3
    );
    assert_eq!(proxy.counter("cluster.slow.upstream_rq_tx_reset").await, 3);
    let (_, clusters) = proxy.admin_get("/clusters").await;
    assert!(
        clusters.contains(&format!("slow::{addr}::rq_active::0\n")),
        "{clusters}"
    );
    proxy.stop().await;
    hold.abort();
}

#[tokio::test]
async fn hop_by_hop_rules_cannot_be_turned_against_the_proxy() {
    let up = Upstream::start("up").await;
    let proxy = Proxy::start(v3_config(
        &route("/", "route: {cluster: up}"),
        &static_cluster("up", &[up.addr], ""),
        "          use_remote_address: true\n",
    ))
    .await;
    let client = http1();
    let echo = body_json(
        get_with(
            &client,
            &proxy.url("/"),
            &[
                (
                    "connection",
                    "x-forwarded-for, x-request-id, x-forwarded-proto, x-custom",
                ),
                ("x-custom", "hop"),
                ("te", "trailers"),
            ],
        )
        .await,
    )
    .await;
    let h = &echo["headers"];
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert!(h["x-request-id"].is_string());
    assert_eq!(h["x-forwarded-proto"], "http");
    assert!(
        h.get("x-custom").is_none(),
        "a nominated header is hop-by-hop"
    );
    assert_eq!(h["te"], "trailers", "gRPC's te: trailers passes");

    // `curl --http2 http://…` sends an h2c upgrade; Envoy ignores it and answers over HTTP/1.1.
    let r = get_with(
        &client,
        &proxy.url("/"),
        &[
            ("connection", "Upgrade, HTTP2-Settings"),
            ("upgrade", "h2c"),
            ("http2-settings", "AAMAAABkAAQAoAAAAAIAAAAA"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    let h = body_json(r).await["headers"].clone();
    assert!(h.get("upgrade").is_none() && h.get("http2-settings").is_none());

    // Headers beyond max_request_headers_kb (60 KiB) are refused with 431, as in Envoy.
    let big = "x".repeat(70 * 1024);
    let r = get_with(&client, &proxy.url("/"), &[("x-big", &big)]).await;
    assert_eq!(r.status(), 431);
    proxy.stop().await;
}

#[tokio::test]
async fn lower_priority_endpoints_only_take_traffic_as_failover() {
    let primary = Upstream::start("primary").await;
    let backup = Upstream::start("backup").await;
    let cluster = format!(
        "  - name: c\n    type: STATIC\n    load_assignment:\n      cluster_name: c\n      endpoints:\n      - lb_endpoints:\n        - endpoint: {{address: {{socket_address: {{address: {}, port_value: {}}}}}}}\n      - priority: 1\n        lb_endpoints:\n        - endpoint: {{address: {{socket_address: {{address: {}, port_value: {}}}}}}}\n",
        primary.addr.ip(),
        primary.addr.port(),
        backup.addr.ip(),
        backup.addr.port()
    );
    let proxy = Proxy::start(v3_config(&route("/", "route: {cluster: c}"), &cluster, "")).await;
    for _ in 0..10 {
        assert_eq!(get(&http1(), &proxy.url("/")).await.status(), 200);
    }
    assert_eq!((primary.count(), backup.count()), (10, 0));
    proxy.stop().await;
}

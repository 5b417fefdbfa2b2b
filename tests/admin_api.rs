//! The admin API answers on Envoy's paths in Envoy's exact formats (issue 2 §5–6).

mod support;

use std::time::Duration;

use support::*;

/// Returns the client too: its kept-alive connection is the one open downstream connection.
async fn proxy_with_traffic(requests: u64) -> (Proxy, Upstream, TestClient) {
    let up = Upstream::start("service1").await;
    let routes =
        "              - match: {prefix: \"/\"}\n                route: {cluster: service1}\n";
    let proxy = Proxy::start(v3_config(
        routes,
        &static_cluster("service1", &[up.addr], ""),
        "",
    ))
    .await;
    let client = http1();
    for _ in 0..requests {
        assert_eq!(get(&client, &proxy.url("/service/1")).await.status(), 200);
    }
    // Completion is counted when the response body ends; let it settle.
    assert!(
        eventually(Duration::from_secs(2), || async {
            proxy.stat("cluster.service1.upstream_rq_completed").await == Some(requests.to_string())
        })
        .await
    );
    (proxy, up, client)
}

#[tokio::test]
async fn stats_text_counts_exactly_and_lists_histograms() {
    let (proxy, _up, _client) = proxy_with_traffic(7).await;
    for (name, value) in [
        ("cluster.service1.upstream_rq_total", 7),
        ("cluster.service1.upstream_rq_completed", 7),
        ("cluster.service1.upstream_rq_200", 7),
        ("cluster.service1.upstream_rq_2xx", 7),
        ("cluster.service1.external.upstream_rq_200", 7),
        ("cluster.service1.upstream_cx_total", 1),
        ("cluster.service1.upstream_cx_http1_total", 1),
        ("cluster.service1.upstream_cx_active", 1),
        ("cluster.service1.upstream_rq_active", 0),
        ("cluster.service1.membership_total", 1),
        ("cluster.service1.membership_healthy", 1),
        ("http.ingress_http.downstream_rq_total", 7),
        ("http.ingress_http.downstream_rq_2xx", 7),
        ("http.ingress_http.downstream_rq_http1_total", 7),
        ("http.ingress_http.downstream_cx_total", 1),
        ("http.ingress_http.downstream_cx_active", 1),
        ("server.live", 1),
        ("server.state", 0),
        ("server.concurrency", 1),
        ("listener_manager.workers_started", 1),
    ] {
        assert_eq!(proxy.counter(name).await, value, "{name}");
    }
    let listener_port = proxy.first_listener().port();
    assert_eq!(
        proxy
            .counter(&format!(
                "listener.127.0.0.1_{listener_port}.downstream_cx_total"
            ))
            .await,
        1
    );
    assert_eq!(
        proxy
            .counter(&format!(
                "listener.127.0.0.1_{listener_port}.http.ingress_http.downstream_rq_2xx"
            ))
            .await,
        7
    );

    // Histograms appear after a stats flush (0.1 s in these configs), in Envoy's quantile form.
    assert!(
        eventually(Duration::from_secs(2), || async {
            proxy
                .stat("cluster.service1.upstream_rq_time")
                .await
                .is_some_and(|v| {
                    v.starts_with("P0(") && v.contains(" P99.9(") && v.contains(" P100(")
                })
        })
        .await
    );

    let (status, body) = proxy
        .admin_get("/stats?filter=upstream_rq_2&usedonly")
        .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = body
        .lines()
        .map(|l| l.split(": ").next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "cluster.service1.external.upstream_rq_200",
            "cluster.service1.external.upstream_rq_2xx",
            "cluster.service1.upstream_rq_200",
            "cluster.service1.upstream_rq_2xx",
        ]
    );

    let (status, _) = proxy.admin_post("/reset_counters").await;
    assert_eq!(status, 200);
    assert_eq!(proxy.counter("cluster.service1.upstream_rq_total").await, 0);
    assert_eq!(
        proxy.counter("server.live").await,
        1,
        "gauges survive a counter reset"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn stats_json_and_prometheus_use_envoy_names_and_labels() {
    let (proxy, _up, _client) = proxy_with_traffic(3).await;
    let (_, body) = proxy.admin_get("/stats?format=json").await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let stats = json["stats"].as_array().unwrap();
    assert!(stats
        .contains(&serde_json::json!({"name": "cluster.service1.upstream_rq_total", "value": 3})));
    let histograms = stats
        .iter()
        .find_map(|s| s.get("histograms"))
        .expect("a histograms entry");
    assert_eq!(
        histograms["supported_quantiles"],
        serde_json::json!([0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100])
    );

    let (status, prom) = proxy.admin_get("/stats/prometheus").await;
    assert_eq!(status, 200);
    assert!(prom.contains("# TYPE envoy_cluster_upstream_rq_total counter\n"));
    assert!(prom.contains("envoy_cluster_upstream_rq_total{envoy_cluster_name=\"service1\"} 3\n"));
    assert!(prom.contains(
        "envoy_cluster_upstream_rq{envoy_response_code=\"200\",envoy_cluster_name=\"service1\"} 3\n"
    ));
    assert!(prom.contains(
        "envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"2\",envoy_cluster_name=\"service1\"} 3\n"
    ));
    assert!(prom.contains(
        "envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix=\"ingress_http\"} 3\n"
    ));
    assert!(prom.contains("# TYPE envoy_cluster_upstream_rq_time histogram\n"));
    let (_, same) = proxy.admin_get("/stats?format=prometheus").await;
    assert!(same.contains("envoy_cluster_upstream_rq_total{envoy_cluster_name=\"service1\"} 3\n"));
    proxy.stop().await;
}

#[tokio::test]
async fn clusters_text_and_json() {
    let (proxy, up, _client) = proxy_with_traffic(3).await;
    let (status, text) = proxy.admin_get("/clusters").await;
    assert_eq!(status, 200);
    let host = up.addr;
    let expected_lines = [
        "service1::default_priority::max_connections::1024".to_string(),
        "service1::default_priority::max_pending_requests::1024".into(),
        "service1::default_priority::max_requests::1024".into(),
        "service1::default_priority::max_retries::3".into(),
        "service1::high_priority::max_retries::3".into(),
        "service1::added_via_api::false".into(),
        format!("service1::{host}::cx_active::1"),
        format!("service1::{host}::cx_connect_fail::0"),
        format!("service1::{host}::cx_total::1"),
        format!("service1::{host}::rq_active::0"),
        format!("service1::{host}::rq_error::0"),
        format!("service1::{host}::rq_success::3"),
        format!("service1::{host}::rq_timeout::0"),
        format!("service1::{host}::rq_total::3"),
        format!("service1::{host}::health_flags::healthy"),
        format!("service1::{host}::weight::1"),
        format!("service1::{host}::canary::false"),
        format!("service1::{host}::priority::0"),
        format!("service1::{host}::success_rate::-1"),
    ];
    for line in &expected_lines {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    // Per-host counters come in Envoy's alphabetical order.
    let host_stats: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(&format!("service1::{host}::")))
        .map(|l| l.split("::").nth(2).unwrap())
        .take(8)
        .collect();
    assert_eq!(
        host_stats,
        [
            "cx_active",
            "cx_connect_fail",
            "cx_total",
            "rq_active",
            "rq_error",
            "rq_success",
            "rq_timeout",
            "rq_total"
        ]
    );

    let (_, body) = proxy.admin_get("/clusters?format=json").await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let cluster = &json["cluster_statuses"][0];
    assert_eq!(cluster["name"], "service1");
    let h = &cluster["host_statuses"][0];
    assert_eq!(h["address"]["socket_address"]["port_value"], host.port());
    let stats = h["stats"].as_array().unwrap();
    assert!(stats.contains(&serde_json::json!({"name": "rq_total", "value": "3"})));
    assert!(
        stats.contains(&serde_json::json!({"name": "rq_error"})),
        "zero values omitted as proto3 JSON does"
    );
    assert!(
        stats.contains(&serde_json::json!({"type": "GAUGE", "name": "cx_active", "value": "1"}))
    );
    proxy.stop().await;
}

#[tokio::test]
async fn server_info_ready_listeners_config_dump_and_help() {
    let up = Upstream::start("up").await;
    let routes = "              - match: {prefix: \"/\"}\n                route: {cluster: up}\n";
    let proxy = Proxy::builder(v3_config(routes, &static_cluster("up", &[up.addr], ""), ""))
        .service_cluster("front-proxy")
        .start()
        .await;

    let (status, body) = proxy.admin_get("/ready").await;
    assert_eq!((status, body.as_str()), (200, "LIVE\n"));

    let (_, body) = proxy.admin_get("/server_info").await;
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["state"], "LIVE");
    assert_eq!(
        info["command_line_options"]["service_cluster"],
        "front-proxy"
    );
    assert_eq!(info["command_line_options"]["concurrency"], 1);
    assert!(info["uptime_current_epoch"]
        .as_str()
        .unwrap()
        .ends_with('s'));
    assert!(info["version"].as_str().unwrap().contains("/1."));

    let (_, body) = proxy.admin_get("/listeners").await;
    assert_eq!(body, format!("ingress::{}\n", proxy.first_listener()));
    let (_, body) = proxy.admin_get("/listeners?format=json").await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["listener_statuses"][0]["name"], "ingress");

    let (_, body) = proxy.admin_get("/config_dump").await;
    let dump: serde_json::Value = serde_json::from_str(&body).unwrap();
    let types: Vec<&str> = dump["configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["@type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump"));
    assert!(types.contains(&"type.googleapis.com/envoy.admin.v3.ClustersConfigDump"));
    assert!(types.contains(&"type.googleapis.com/envoy.admin.v3.ListenersConfigDump"));

    let (_, help) = proxy.admin_get("/help").await;
    assert!(help.starts_with("admin commands are:\n"));
    let (status, index) = proxy.admin_get("/").await;
    assert_eq!(status, 200);
    assert!(index.contains("<a href='/stats'>"));
    let (status, _) = proxy.admin_get("/nonsense").await;
    assert_eq!(status, 404);

    // Mutations are POST-only, and a GET changes nothing.
    let (status, body) = proxy.admin_get("/healthcheck/fail").await;
    assert_eq!(
        (status, body.as_str()),
        (405, "Method GET not allowed, POST required.")
    );
    let (status, _) = proxy.admin_get("/quitquitquit").await;
    assert_eq!(status, 405);
    let (status, _) = proxy.admin_get("/ready").await;
    assert_eq!(status, 200, "a GET /quitquitquit must not stop the server");

    // A failed health check makes the server report DRAINING until /healthcheck/ok.
    let (status, _) = proxy.admin_post("/healthcheck/fail").await;
    assert_eq!(status, 200);
    let (status, body) = proxy.admin_get("/ready").await;
    assert_eq!((status, body.as_str()), (503, "DRAINING\n"));
    assert_eq!(proxy.counter("server.live").await, 0);
    proxy.admin_post("/healthcheck/ok").await;
    let (status, _) = proxy.admin_get("/ready").await;
    assert_eq!(status, 200);
    assert_eq!(proxy.counter("server.live").await, 1);

    let (status, _) = proxy
        .admin_post("/logging?paths=upstream:debug,http:info")
        .await;
    assert_eq!(status, 200);
    let (status, _) = proxy.admin_post("/logging?nosuchlogger=debug").await;
    assert_eq!(status, 400);
    let (status, body) = proxy.admin_post("/logging").await;
    assert_eq!(status, 200);
    assert!(body.starts_with("active loggers:\n"));
    let (status, _) = proxy.admin_post("/logging?level=nonsense").await;
    assert_eq!(status, 400);

    // Draining flips /ready to 503 DRAINING.
    let (status, body) = proxy.admin_post("/drain_listeners").await;
    assert_eq!((status, body.as_str()), (200, "OK\n"));
    let (status, body) = proxy.admin_get("/ready").await;
    assert_eq!((status, body.as_str()), (503, "DRAINING\n"));
    assert_eq!(proxy.counter("server.state").await, 1);
    proxy.stop().await;
}

#[tokio::test]
async fn quitquitquit_stops_the_server() {
    let proxy = Proxy::start(v3_config(
        "              - match: {prefix: \"/\"}\n                direct_response: {status: 200}\n",
        &static_cluster("unused", &[], ""),
        "",
    ))
    .await;
    let listener = proxy.first_listener();
    let (status, body) = proxy.admin_post("/quitquitquit").await;
    assert_eq!((status, body.as_str()), (200, "OK\n"));
    assert!(
        eventually(Duration::from_secs(3), || async {
            tokio::net::TcpStream::connect(listener).await.is_err()
        })
        .await,
        "listener still accepting after /quitquitquit"
    );
}

/// The router's `dynamic_stats: false`, which Envoy's benchmarking guide asks for: the
/// cluster's per-response stats (`upstream_rq_completed`, `upstream_rq_<code>` and `<Nxx>`,
/// `upstream_rq_time`) are not charged, the rest are.
#[tokio::test]
async fn router_without_dynamic_stats_charges_no_per_response_cluster_stats() {
    let up = Upstream::start("service1").await;
    let routes =
        "              - match: {prefix: \"/\"}\n                route: {cluster: service1}\n";
    let router_type =
        "\"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
    let config = v3_config(routes, &static_cluster("service1", &[up.addr], ""), "").replace(
        router_type,
        &format!("{router_type}\n              dynamic_stats: false"),
    );
    let proxy = Proxy::start(config).await;
    let client = http1();
    for _ in 0..5 {
        assert_eq!(get(&client, &proxy.url("/service/1")).await.status(), 200);
    }
    assert!(
        eventually(Duration::from_secs(2), || async {
            proxy
                .counter("http.ingress_http.downstream_rq_completed")
                .await
                == 5
        })
        .await
    );
    // Let a stats flush (0.1 s) pass, so a recorded histogram would show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(proxy.counter("cluster.service1.upstream_rq_total").await, 5);
    assert_eq!(
        proxy.counter("http.ingress_http.downstream_rq_2xx").await,
        5
    );
    for name in [
        "cluster.service1.upstream_rq_completed",
        "cluster.service1.upstream_rq_200",
        "cluster.service1.upstream_rq_2xx",
        "cluster.service1.external.upstream_rq_200",
    ] {
        let value = proxy.stat(name).await;
        assert!(
            matches!(value.as_deref(), None | Some("0")),
            "{name}: {value:?}"
        );
    }
    let time = proxy.stat("cluster.service1.upstream_rq_time").await;
    assert!(
        matches!(time.as_deref(), None | Some("No recorded values")),
        "upstream_rq_time: {time:?}"
    );
    // The host's success count is not a dynamic stat.
    let (_, clusters) = proxy.admin_get("/clusters").await;
    assert!(
        clusters.contains(&format!("service1::{}::rq_success::5", up.addr)),
        "{clusters}"
    );
    let (_, dump) = proxy.admin_get("/config_dump").await;
    assert!(dump.contains("\"dynamic_stats\": false"), "{dump}");
    proxy.stop().await;
}

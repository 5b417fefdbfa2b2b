//! The HTTP filters before the router (issue 5 §5–6): fault injection (abort, delay, headers,
//! runtime switch, max_active_faults), local rate limiting, and the health_check filter with
//! `/healthcheck/fail` and `/healthcheck/ok`. Real upstreams, the real proxy.

mod support;

use std::time::{Duration, Instant};

use support::*;

/// A v3 config whose HCM runs `filters` (YAML list items, indented under `http_filters`) before
/// the router, with one route to cluster `up` and an access log of status and flags to `log`.
fn config(filters: &str, up: std::net::SocketAddr, log: &std::path::Path) -> String {
    let access_log = format!(
        "          access_log:\n          - name: envoy.access_loggers.file\n            typed_config:\n              \"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n              path: {}\n              log_format: {{text_format_source: {{inline_string: \"%RESPONSE_CODE% %RESPONSE_FLAGS%\\n\"}}}}",
        log.display()
    );
    v3_config_with_filters(
        "              - match: {prefix: \"/\"}\n                route: {cluster: up}",
        &static_cluster("up", &[up], ""),
        &access_log,
        filters.trim_end_matches('\n'),
    )
}

fn log_path(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("meshsim-{name}-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

const FAULT: &str = r#"          - name: envoy.filters.http.fault
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
"#;

#[tokio::test]
async fn a_fault_aborts_and_delays_and_runtime_switches_it_live() {
    let up = Upstream::start("up").await;
    let log = log_path("fault");
    let filters = format!(
        "{FAULT}              abort: {{http_status: 503, percentage: {{numerator: 0, denominator: HUNDRED}}}}\n              delay: {{fixed_delay: 0.3s, percentage: {{numerator: 0}}}}\n"
    );
    let p = Proxy::start(config(&filters, up.addr, &log)).await;
    let client = http1();
    assert_eq!(
        get(&client, &p.url("/")).await.status(),
        200,
        "0 %: no fault"
    );

    // Switched on through the admin layer, as a scenario does while traffic runs.
    let (code, _) = p
        .admin_post("/runtime_modify?fault.http.abort.abort_percent=100")
        .await;
    assert_eq!(code, 200);
    let r = get(&client, &p.url("/")).await;
    assert_eq!(r.status(), 503);
    assert_eq!(body_string(r).await, "fault filter abort");
    let (_, runtime) = p.admin_get("/runtime").await;
    assert!(
        runtime.contains("fault.http.abort.abort_percent"),
        "{runtime}"
    );

    // Off again; the delay on.
    p.admin_post(
        "/runtime_modify?fault.http.abort.abort_percent=&fault.http.delay.fixed_delay_percent=100",
    )
    .await;
    let started = Instant::now();
    assert_eq!(get(&client, &p.url("/")).await.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(280),
        "{:?}",
        started.elapsed()
    );

    assert_eq!(
        p.counter("http.ingress_http.fault.aborts_injected").await,
        1
    );
    assert_eq!(
        p.counter("http.ingress_http.fault.delays_injected").await,
        1
    );
    assert_eq!(
        up.count(),
        2,
        "the aborted request never reached the upstream"
    );
    assert_eq!(file_lines(&log, 3).await, ["200 -", "503 FI", "200 DI"]);
    let (_, dump) = p.admin_get("/config_dump").await;
    assert!(
        dump.contains("envoy.extensions.filters.http.fault.v3.HTTPFault"),
        "{dump}"
    );
    p.stop().await;
    let _ = std::fs::remove_file(&log);
}

#[tokio::test]
async fn header_faults_upstream_cluster_and_max_active_faults() {
    let up = Upstream::start("up").await;
    let log = log_path("fault-headers");
    let filters = format!(
        "{FAULT}              abort: {{header_abort: {{}}, percentage: {{numerator: 100}}}}\n              delay: {{header_delay: {{}}, percentage: {{numerator: 100}}}}\n              upstream_cluster: up\n              headers: [{{name: x-chaos, string_match: {{exact: \"yes\"}}}}]\n              max_active_faults: 1\n"
    );
    let p = Proxy::start(config(&filters, up.addr, &log)).await;
    let client = http1();
    // Without the matching header: untouched, whatever the fault headers say.
    let r = get_with(
        &client,
        &p.url("/"),
        &[("x-envoy-fault-abort-request", "418")],
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = get_with(
        &client,
        &p.url("/"),
        &[("x-chaos", "yes"), ("x-envoy-fault-abort-request", "429")],
    )
    .await;
    assert_eq!(r.status(), 429);
    // One slow fault at a time: a second one while it runs passes unfaulted.
    let slow = tokio::spawn({
        let (client, url) = (client.clone(), p.url("/"));
        async move {
            get_with(
                &client,
                &url,
                &[("x-chaos", "yes"), ("x-envoy-fault-delay-request", "600")],
            )
            .await
            .status()
        }
    });
    assert!(
        eventually(Duration::from_secs(2), || async {
            p.stat("http.ingress_http.fault.active_faults")
                .await
                .as_deref()
                == Some("1")
        })
        .await
    );
    let started = Instant::now();
    let r = get_with(
        &client,
        &p.url("/"),
        &[("x-chaos", "yes"), ("x-envoy-fault-delay-request", "600")],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "not delayed"
    );
    assert_eq!(slow.await.unwrap(), 200);
    assert_eq!(
        p.counter("http.ingress_http.fault.faults_overflow").await,
        1
    );
    p.stop().await;
    let _ = std::fs::remove_file(&log);
}

#[tokio::test]
async fn the_local_rate_limit_is_a_token_bucket() {
    let up = Upstream::start("up").await;
    let log = log_path("ratelimit");
    let filters = r#"          - name: envoy.filters.http.local_ratelimit
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
              stat_prefix: http_local_rate_limiter
              token_bucket: {max_tokens: 2, tokens_per_fill: 2, fill_interval: 1s}
              filter_enabled: {default_value: {numerator: 100, denominator: HUNDRED}, runtime_key: local_rate_limit_enabled}
              filter_enforced: {default_value: {numerator: 100, denominator: HUNDRED}, runtime_key: local_rate_limit_enforced}
              response_headers_to_add: [{header: {key: x-local-rate-limit, value: "true"}}]
"#;
    let p = Proxy::start(config(filters, up.addr, &log)).await;
    let client = http1();
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..3 {
        let r = get(&client, &p.url("/")).await;
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            limited = Some(r);
        }
    }
    assert_eq!(statuses, [200, 200, 429]);
    let r = limited.unwrap();
    assert_eq!(r.headers()["x-envoy-ratelimited"], "true");
    assert_eq!(r.headers()["x-local-rate-limit"], "true");
    assert_eq!(body_string(r).await, "local_rate_limited");
    let c = |n: &str| format!("http_local_rate_limiter.http_local_rate_limit.{n}");
    assert_eq!(p.counter(&c("enabled")).await, 3);
    assert_eq!(p.counter(&c("ok")).await, 2);
    assert_eq!(p.counter(&c("rate_limited")).await, 1);
    assert_eq!(p.counter(&c("enforced")).await, 1);
    assert_eq!(file_lines(&log, 3).await[2], "429 RL");
    // The bucket refills.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get(&client, &p.url("/")).await.status(), 200);
    p.stop().await;
    let _ = std::fs::remove_file(&log);
}

#[tokio::test]
async fn the_health_check_filter_answers_and_fails_on_request() {
    let up = Upstream::start("up").await;
    let log = log_path("hc-filter");
    let filters = r#"          - name: envoy.filters.http.health_check
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck
              pass_through_mode: false
              headers: [{name: ":path", string_match: {exact: /healthz}}]
              cluster_min_healthy_percentages: {up: {value: 100}}
"#;
    let p = Proxy::start(config(filters, up.addr, &log)).await;
    let client = http1();
    assert_eq!(get(&client, &p.url("/healthz")).await.status(), 200);
    assert_eq!(up.count(), 0, "answered by the proxy");
    assert_eq!(p.admin_post("/healthcheck/fail").await.0, 200);
    let r = get(&client, &p.url("/healthz")).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["x-envoy-immediate-health-check-fail"], "true");
    assert_eq!(
        get(&client, &p.url("/other")).await.status(),
        200,
        "other paths still route"
    );
    assert_eq!(p.admin_post("/healthcheck/ok").await.0, 200);
    assert_eq!(get(&client, &p.url("/healthz")).await.status(), 200);
    assert_eq!(file_lines(&log, 4).await[1], "503 LH");
    p.stop().await;
    let _ = std::fs::remove_file(&log);
}

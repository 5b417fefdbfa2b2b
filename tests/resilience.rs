//! Retries and circuit breakers against upstreams that misbehave on purpose (issue 5 §2–3):
//! status codes, response flags, counters and timings with margins.

mod support;

use std::time::{Duration, Instant};

use support::scripted::{Answer, Scripted};
use support::*;

/// A proxy whose one route goes to cluster `up` with the given route-action YAML (indented
/// under `route:`) and cluster YAML.
async fn proxy(route_extra: &str, clusters: &str) -> Proxy {
    proxy_logging(route_extra, clusters, None).await
}

/// [`proxy`], writing `%RESPONSE_FLAGS% %UPSTREAM_REQUEST_ATTEMPT_COUNT%` per request to `log`.
async fn proxy_logging(route_extra: &str, clusters: &str, log: Option<&std::path::Path>) -> Proxy {
    let routes = format!(
        "              - match: {{prefix: \"/\"}}\n                route:\n                  cluster: up\n{route_extra}"
    );
    let hcm = match log {
        Some(path) => format!(
            "          access_log:\n          - name: envoy.access_loggers.file\n            typed_config:\n              \"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n              path: {}\n              log_format: {{text_format_source: {{inline_string: \"%RESPONSE_FLAGS% %UPSTREAM_REQUEST_ATTEMPT_COUNT%\\n\"}}}}\n",
            path.display()
        ),
        None => String::new(),
    };
    Proxy::start(v3_config(&routes, clusters, &hcm)).await
}

/// The access log's lines, once `n` are there.
async fn log_lines(path: &std::path::Path, n: usize) -> Vec<String> {
    let mut lines = Vec::new();
    eventually(Duration::from_secs(3), || {
        lines = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        let enough = lines.len() >= n;
        async move { enough }
    })
    .await;
    lines
}

fn retry(policy: &str) -> String {
    format!("                  retry_policy: {policy}\n")
}

#[tokio::test]
async fn a_retry_masks_a_failing_answer_and_is_counted_as_envoy_counts_it() {
    // 503, 503, then 200.
    let up = Scripted::start(|n| Answer::Status(if n < 2 { 503 } else { 200 })).await;
    let p = proxy(
        &retry("{retry_on: 5xx, num_retries: 2}"),
        &static_cluster("up", &[up.addr], ""),
    )
    .await;
    let r = get(&http1(), &p.url("/")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(body_string(r).await, "answer 2");
    assert_eq!(up.count(), 3);
    assert!(
        eventually(Duration::from_secs(2), || async {
            p.counter("cluster.up.upstream_rq_completed").await >= 1
        })
        .await
    );
    assert_eq!(p.counter("cluster.up.upstream_rq_retry").await, 2);
    assert_eq!(p.counter("cluster.up.upstream_rq_retry_success").await, 1);
    assert_eq!(p.counter("cluster.up.retry.upstream_rq_503").await, 2);
    assert_eq!(p.counter("cluster.up.upstream_rq_200").await, 1);
    assert_eq!(
        p.stat("cluster.up.upstream_rq_503").await,
        None,
        "retried answers are not counted as answers"
    );
    assert_eq!(p.counter("cluster.up.upstream_rq_total").await, 3);
    p.stop().await;
}

#[tokio::test]
async fn when_retries_run_out_the_last_answer_goes_back_with_urx() {
    let up = Scripted::start(|_| Answer::Status(503)).await;
    let log = std::env::temp_dir().join(format!("meshsim-urx-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let p = proxy_logging(
        &retry("{retry_on: gateway-error, num_retries: 2, retry_back_off: {base_interval: 0.01s}}"),
        &static_cluster("up", &[up.addr], ""),
        Some(&log),
    )
    .await;
    let r = get(&http1(), &p.url("/")).await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        body_string(r).await,
        "answer 2",
        "the upstream's own answer"
    );
    assert_eq!(
        log_lines(&log, 1).await,
        ["URX 3"],
        "flag URX, three attempts"
    );
    let _ = std::fs::remove_file(&log);
    assert_eq!(up.count(), 3);
    assert_eq!(
        p.counter("cluster.up.upstream_rq_retry_limit_exceeded")
            .await,
        1
    );
    assert_eq!(p.counter("cluster.up.upstream_rq_retry").await, 2);
    p.stop().await;
}

#[tokio::test]
async fn conditions_that_do_not_match_are_not_retried() {
    let up = Scripted::start(|_| Answer::Status(500)).await;
    let p = proxy(
        &retry("{retry_on: gateway-error, num_retries: 3}"),
        &static_cluster("up", &[up.addr], ""),
    )
    .await;
    assert_eq!(get(&http1(), &p.url("/")).await.status(), 500);
    assert_eq!(up.count(), 1, "500 is not a gateway error");
    p.stop().await;
}

#[tokio::test]
async fn connect_failures_retry_on_another_host() {
    let good = Scripted::start(|_| Answer::Status(200)).await;
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let p = proxy(
        &retry(
            "{retry_on: connect-failure, num_retries: 2, retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts}], host_selection_retry_max_attempts: 3}",
        ),
        &static_cluster("up", &[refused, good.addr], ""),
    )
    .await;
    let client = http1();
    for _ in 0..10 {
        assert_eq!(get(&client, &p.url("/")).await.status(), 200);
    }
    assert_eq!(good.count(), 10);
    assert!(p.counter("cluster.up.upstream_cx_connect_fail").await >= 4);
    p.stop().await;
}

#[tokio::test]
async fn a_per_try_timeout_moves_on_and_the_route_timeout_bounds_every_try() {
    // The first try hangs past the per-try timeout; the second answers at once.
    let up = Scripted::start(|n| {
        if n == 0 {
            Answer::Slow(Duration::from_secs(5))
        } else {
            Answer::Status(200)
        }
    })
    .await;
    let p = proxy(
        &retry("{retry_on: 5xx, num_retries: 1, per_try_timeout: 0.2s}"),
        &static_cluster("up", &[up.addr], ""),
    )
    .await;
    let started = Instant::now();
    assert_eq!(get(&http1(), &p.url("/")).await.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(p.counter("cluster.up.upstream_rq_per_try_timeout").await, 1);
    p.stop().await;

    // Every try hangs: the 0.5 s route timeout ends it with 504, whatever num_retries says.
    let slow = Scripted::start(|_| Answer::Slow(Duration::from_secs(5))).await;
    let p = proxy(
        &format!(
            "                  timeout: 0.5s\n{}",
            retry("{retry_on: 5xx, num_retries: 10, per_try_timeout: 0.2s}")
        ),
        &static_cluster("up", &[slow.addr], ""),
    )
    .await;
    let started = Instant::now();
    let r = get(&http1(), &p.url("/")).await;
    let took = started.elapsed();
    assert_eq!(r.status(), 504);
    assert_eq!(body_string(r).await, "upstream request timeout");
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(slow.count() >= 2 && slow.count() <= 3, "{}", slow.count());
    assert_eq!(p.counter("cluster.up.upstream_rq_timeout").await, 1);
    p.stop().await;
}

#[tokio::test]
async fn internal_requests_can_ask_for_retries_by_header() {
    let up = Scripted::start(|n| Answer::Status(if n == 0 { 502 } else { 200 })).await;
    let p = proxy("", &static_cluster("up", &[up.addr], "")).await;
    let r = get_with(
        &http1(),
        &p.url("/"),
        &[
            ("x-envoy-internal", "true"),
            ("x-envoy-retry-on", "gateway-error"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(up.count(), 2);
    // Without the header, no policy: the 502 goes back as it is.
    let r = get(&http1(), &p.url("/")).await;
    assert_eq!(
        r.status(),
        200,
        "the scripted upstream answers 200 from now on"
    );
    assert_eq!(up.count(), 3);
    p.stop().await;
}

#[tokio::test]
async fn a_reset_is_retried_on_reset() {
    let up = Scripted::start(|n| {
        if n == 0 {
            Answer::Drop
        } else {
            Answer::Status(200)
        }
    })
    .await;
    let p = proxy(
        &retry("{retry_on: reset, num_retries: 1}"),
        &static_cluster("up", &[up.addr], ""),
    )
    .await;
    assert_eq!(get(&http1(), &p.url("/")).await.status(), 200);
    assert_eq!(up.count(), 2);
    p.stop().await;
}

#[tokio::test]
async fn max_requests_overflows_with_uo_and_x_envoy_overloaded() {
    let up = Scripted::start(|_| Answer::Slow(Duration::from_millis(800))).await;
    let p = proxy(
        "",
        &static_cluster(
            "up",
            &[up.addr],
            "    circuit_breakers: {thresholds: [{max_requests: 1}]}\n",
        ),
    )
    .await;
    let client = http1();
    let url = p.url("/");
    let first = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move { get(&client, &url).await.status() }
    });
    assert!(
        eventually(Duration::from_secs(2), || async { up.count() == 1 }).await,
        "the first request reached the upstream"
    );
    let r = get(&client, &url).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["x-envoy-overloaded"], "true");
    assert_eq!(
        body_string(r).await,
        "upstream connect error or disconnect/reset before headers. reset reason: overflow"
    );
    assert_eq!(first.await.unwrap(), 200);
    assert_eq!(up.count(), 1, "the overflowing request was never sent");
    assert_eq!(
        p.counter("cluster.up.upstream_rq_pending_overflow").await,
        1
    );
    assert_eq!(
        p.stat("cluster.up.circuit_breakers.default.rq_open")
            .await
            .as_deref(),
        Some("0"),
        "closed again"
    );
    // /clusters shows the configured threshold.
    let (_, clusters) = p.admin_get("/clusters").await;
    assert!(
        clusters.contains("up::default_priority::max_requests::1"),
        "{clusters}"
    );
    p.stop().await;
}

#[tokio::test]
async fn max_connections_queues_up_to_max_pending_then_overflows() {
    let up = Scripted::start(|_| Answer::Slow(Duration::from_millis(400))).await;
    let p = proxy(
        "",
        &static_cluster(
            "up",
            &[up.addr],
            "    circuit_breakers: {thresholds: [{max_connections: 1, max_pending_requests: 1}]}\n",
        ),
    )
    .await;
    let url = p.url("/");
    let mut tasks = Vec::new();
    for i in 0..3u64 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            // Staggered so the order is known: one on the connection, one pending, one over.
            tokio::time::sleep(Duration::from_millis(100 * i)).await;
            get(&http1(), &url).await.status()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap().as_u16());
    }
    assert_eq!(statuses, [200, 200, 503]);
    assert_eq!(up.count(), 2);
    assert_eq!(
        p.counter("cluster.up.upstream_rq_pending_overflow").await,
        1
    );
    assert_eq!(
        p.counter("cluster.up.upstream_cx_total").await,
        1,
        "one connection, reused"
    );
    p.stop().await;
}

#[tokio::test]
async fn max_retries_bounds_retries_in_flight() {
    let up = Scripted::start(|_| Answer::Status(503)).await;
    let p = proxy(
        &retry("{retry_on: 5xx, num_retries: 3}"),
        &static_cluster(
            "up",
            &[up.addr],
            "    circuit_breakers: {thresholds: [{max_retries: 0}]}\n",
        ),
    )
    .await;
    assert_eq!(get(&http1(), &p.url("/")).await.status(), 503);
    assert_eq!(up.count(), 1, "no retry fits under max_retries 0");
    assert_eq!(p.counter("cluster.up.upstream_rq_retry_overflow").await, 1);
    p.stop().await;
}

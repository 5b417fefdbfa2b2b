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

fn retry(policy: &str) -> String {
    format!("                  retry_policy: {policy}\n")
}

#[tokio::test]
async fn a_retry_masks_a_failing_answer_and_is_counted_as_envoy_counts_it() {
    // 503, 503, then 200.
    let up = Scripted::start(|n, _| Answer::Status(if n < 2 { 503 } else { 200 })).await;
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
    let up = Scripted::start(|_, _| Answer::Status(503)).await;
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
        file_lines(&log, 1).await,
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
    let up = Scripted::start(|_, _| Answer::Status(500)).await;
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
    let good = Scripted::start(|_, _| Answer::Status(200)).await;
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
    let up = Scripted::start(|n, _| {
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
    let slow = Scripted::start(|_, _| Answer::Slow(Duration::from_secs(5))).await;
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
    let up = Scripted::start(|n, _| Answer::Status(if n == 0 { 502 } else { 200 })).await;
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
    let up = Scripted::start(|n, _| {
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
    let up = Scripted::start(|_, _| Answer::Slow(Duration::from_millis(800))).await;
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
    let up = Scripted::start(|_, _| Answer::Slow(Duration::from_millis(400))).await;
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
    let up = Scripted::start(|_, _| Answer::Status(503)).await;
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

/// `/clusters` text lines of `cluster`'s host at `addr` for `field` (e.g. `health_flags`).
async fn host_field(p: &Proxy, cluster: &str, addr: std::net::SocketAddr, field: &str) -> String {
    let (_, text) = p.admin_get("/clusters").await;
    let prefix = format!("{cluster}::{addr}::{field}::");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
        .unwrap_or_default()
}

#[tokio::test]
async fn consecutive_5xx_ejects_a_failing_replica_and_a_retry_masks_it_meanwhile() {
    let bad = Scripted::start(|_, _| Answer::Status(503)).await;
    let good = Scripted::start(|_, _| Answer::Status(200)).await;
    let p = proxy(
        &retry("{retry_on: 5xx, num_retries: 2}"),
        &static_cluster(
            "up",
            &[bad.addr, good.addr],
            "    outlier_detection: {consecutive_5xx: 3, interval: 0.3s, base_ejection_time: 1s, max_ejection_percent: 50}\n",
        ),
    )
    .await;
    let client = http1();
    for _ in 0..20 {
        assert_eq!(
            get(&client, &p.url("/")).await.status(),
            200,
            "the retry masks the bad replica"
        );
    }
    assert_eq!(
        bad.count(),
        3,
        "ejected after 3 consecutive 5xx; no request since"
    );
    assert_eq!(
        host_field(&p, "up", bad.addr, "health_flags").await,
        "/failed_outlier_check"
    );
    assert_eq!(
        host_field(&p, "up", good.addr, "health_flags").await,
        "healthy"
    );
    assert_eq!(
        p.counter("cluster.up.outlier_detection.ejections_enforced_consecutive_5xx")
            .await,
        1
    );
    assert_eq!(
        p.stat("cluster.up.outlier_detection.ejections_active")
            .await
            .as_deref(),
        Some("1")
    );
    let (_, json) = p.admin_get("/clusters?format=json").await;
    assert!(json.contains("\"failed_outlier_check\": true"), "{json}");
    // After base_ejection_time (and the interval that notices), it is back.
    assert!(
        eventually(Duration::from_secs(4), || async {
            host_field(&p, "up", bad.addr, "health_flags").await == "healthy"
        })
        .await,
        "the ejection ended"
    );
    assert_eq!(
        p.stat("cluster.up.outlier_detection.ejections_active")
            .await
            .as_deref(),
        Some("0")
    );
    p.stop().await;
}

#[tokio::test]
async fn max_ejection_percent_keeps_enough_hosts() {
    // Both fail; with 2 hosts and 10 % only one may be ejected (one host is always ejectable).
    let a = Scripted::start(|_, _| Answer::Status(500)).await;
    let b = Scripted::start(|_, _| Answer::Status(500)).await;
    let p = proxy(
        "",
        &static_cluster(
            "up",
            &[a.addr, b.addr],
            "    outlier_detection: {consecutive_5xx: 2, base_ejection_time: 30s}\n",
        ),
    )
    .await;
    let client = http1();
    for _ in 0..12 {
        get(&client, &p.url("/")).await;
    }
    assert_eq!(
        p.stat("cluster.up.outlier_detection.ejections_active")
            .await
            .as_deref(),
        Some("1")
    );
    assert!(
        p.counter("cluster.up.outlier_detection.ejections_overflow")
            .await
            >= 1
    );
    p.stop().await;
}

#[tokio::test]
async fn active_http_health_checks_take_a_host_out_and_bring_it_back() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let failing = Arc::new(AtomicBool::new(false));
    let flag = failing.clone();
    let a = Scripted::start(move |_, path| {
        if path == "/healthz" && flag.load(Ordering::SeqCst) {
            Answer::Status(503)
        } else {
            Answer::Status(200)
        }
    })
    .await;
    let b = Scripted::start(|_, _| Answer::Status(200)).await;
    let p = proxy(
        "",
        &static_cluster(
            "up",
            &[a.addr, b.addr],
            "    health_checks: [{timeout: 0.5s, interval: 0.1s, no_traffic_interval: 0.1s, unhealthy_threshold: 2, healthy_threshold: 2, http_health_check: {path: /healthz}}]\n",
        ),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(3), || async {
            host_field(&p, "up", a.addr, "health_flags").await == "healthy"
                && host_field(&p, "up", b.addr, "health_flags").await == "healthy"
        })
        .await,
        "the first check makes both healthy"
    );
    failing.store(true, Ordering::SeqCst);
    assert!(
        eventually(Duration::from_secs(3), || async {
            host_field(&p, "up", a.addr, "health_flags").await == "/failed_active_hc"
        })
        .await,
        "two failed checks take it out"
    );
    assert!(p.counter("cluster.up.health_check.failure").await >= 2);
    // Traffic goes to b only (50 % healthy is not below the panic threshold).
    let before = a.count();
    let client = http1();
    for _ in 0..10 {
        let r = get_with(&client, &p.url("/work"), &[]).await;
        assert_eq!(r.status(), 200);
    }
    // a still receives health checks, but none of the 10 requests.
    let (_, clusters) = p.admin_get("/clusters").await;
    let a_total: u64 = clusters
        .lines()
        .find_map(|l| l.strip_prefix(&format!("up::{}::rq_total::", a.addr)))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(a_total, 0, "no request routed to the unhealthy host");
    assert!(
        eventually(Duration::from_secs(2), || async { a.count() > before }).await,
        "health checks continue while it is out"
    );
    failing.store(false, Ordering::SeqCst);
    assert!(
        eventually(Duration::from_secs(3), || async {
            host_field(&p, "up", a.addr, "health_flags").await == "healthy"
        })
        .await,
        "two good checks bring it back"
    );
    p.stop().await;
}

#[tokio::test]
async fn tcp_health_checks_and_panic_mode() {
    // Nothing listens on either port: both fail their TCP checks. With 0 % healthy the
    // cluster is in panic: requests still go (and fail to connect), counted as panics.
    let dead = |_: ()| {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (x, y) = (dead(()), dead(()));
    let p = proxy(
        "",
        &static_cluster(
            "up",
            &[x, y],
            "    health_checks: [{timeout: 0.2s, interval: 0.1s, no_traffic_interval: 0.1s, unhealthy_threshold: 1, healthy_threshold: 1, tcp_health_check: {}}]\n",
        ),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(3), || async {
            p.counter("cluster.up.health_check.network_failure").await >= 2
        })
        .await
    );
    assert_eq!(
        host_field(&p, "up", x, "health_flags").await,
        "/failed_active_hc"
    );
    let r = get(&http1(), &p.url("/")).await;
    assert_eq!(r.status(), 503);
    assert_eq!(p.counter("cluster.up.lb_healthy_panic").await, 1);
    assert_eq!(
        p.stat("cluster.up.health_check.healthy").await.as_deref(),
        Some("0")
    );
    p.stop().await;
}

#[tokio::test]
async fn an_upstream_can_fail_its_own_health_at_once() {
    let a = Scripted::start(|_, _| Answer::Status(200)).await;
    // Upstream b answers normal traffic with x-envoy-immediate-health-check-fail.
    let b = immediate_fail_upstream().await;
    let p = proxy(
        "",
        &static_cluster(
            "up",
            &[a.addr, b],
            "    health_checks: [{timeout: 0.5s, interval: 10s, no_traffic_interval: 10s, unhealthy_threshold: 3, healthy_threshold: 1, tcp_health_check: {}}]\n",
        ),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(3), || async {
            host_field(&p, "up", b, "health_flags").await == "healthy"
        })
        .await
    );
    let client = http1();
    for _ in 0..4 {
        get(&client, &p.url("/")).await;
    }
    assert_eq!(
        host_field(&p, "up", b, "health_flags").await,
        "/failed_active_hc"
    );
    assert_eq!(
        p.counter("cluster.up.health_check.passive_failure").await,
        1
    );
    p.stop().await;
}

/// An upstream that answers 200 with `x-envoy-immediate-health-check-fail: true`.
async fn immediate_fail_upstream() -> std::net::SocketAddr {
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(
                        http::Response::builder()
                            .header("x-envoy-immediate-health-check-fail", "true")
                            .body(http_body_util::Full::new(bytes::Bytes::from_static(b"bye")))
                            .unwrap(),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_upstream_that_breaks_mid_body_breaks_the_response_and_is_flagged() {
    let up = Scripted::start(|_, _| Answer::ResetMidBody).await;
    let log = std::env::temp_dir().join(format!("meshsim-midbody-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let p = proxy_logging(
        &retry("{retry_on: reset, num_retries: 2}"),
        &static_cluster("up", &[up.addr], ""),
        Some(&log),
    )
    .await;
    let r = get(&http1(), &p.url("/")).await;
    assert_eq!(r.status(), 200, "the head had already gone out");
    let body = http_body_util::BodyExt::collect(r.into_body()).await;
    assert!(
        body.is_err(),
        "the client sees the body break, not a short success"
    );
    assert_eq!(
        up.count(),
        1,
        "a reset after the answer started is not retried"
    );
    let lines = file_lines(&log, 1).await;
    assert_eq!(lines, ["UC 1"], "flag UC (upstream connection termination)");
    p.stop().await;
    let _ = std::fs::remove_file(&log);
}

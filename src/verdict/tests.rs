//! Evaluation against hand-built run records: each check passing and failing, the failure
//! texts, window and snapshot selection, "no data", and the accounting rules.

use super::evaluate::{evaluate, Judgement};
use super::fixtures::*;
use super::record::RunRecord;
use crate::traffic::report::Outcome;

fn judge(record: &RunRecord, entry: &str) -> Judgement {
    let e = expect(&[entry]);
    assert_eq!(e.len(), 1, "one check per entry in these tests");
    evaluate(&e, record).remove(0)
}

fn detail(j: &Judgement) -> &str {
    j.detail.as_deref().unwrap_or("")
}

#[test]
fn generator_checks_pass_and_fail_with_the_measured_value() {
    let r = clean_run(500);
    let j = judge(&r, r#"{phase: steady, success_rate: ">= 99%"}"#);
    assert!(j.passed);
    assert_eq!(j.measured, "100% (1000/1000)");
    assert_eq!(j.threshold, ">= 99%");
    assert_eq!(j.window, "phase steady, 0.0s–10.0s");

    let j = judge(&r, r#"{p99: "< 4ms"}"#);
    assert!(!j.passed);
    assert!(j.measured.starts_with("5"), "{}", j.measured);
    assert!(
        j.measured.ends_with("ms (of 1000 answered)"),
        "{}",
        j.measured
    );
    assert_eq!(j.window, "whole run");
    assert!(judge(&r, r#"{p50: "< 6ms"}"#).passed);

    let j = judge(&r, r#"{window: 2s..4s, rate: ">= 100/s"}"#);
    assert!(j.passed, "{j:?}");
    assert_eq!(j.measured, "100/s (200 in 2s)");
    assert_eq!(j.window, "2.0s–4.0s");
    assert!(!judge(&r, r#"{window: 2s..4s, rate: "> 100/s"}"#).passed);
}

#[test]
fn status_counts_and_shares() {
    let mut r = clean_run(500);
    r.load = Some(load(&[(
        "steady",
        0,
        10,
        vec![(
            "/service/1",
            tally(
                &[ok(980), (Outcome::Status(503), 10), (Outcome::Timeout, 10)],
                5,
            ),
        )],
    )]));
    let j = judge(&r, r#"{status: {5xx: "< 1%"}}"#);
    assert!(!j.passed);
    assert_eq!(j.measured, "1% (10/1000)");
    assert_eq!(detail(&j), "sent 1000 = 980×200 + 10×503 + 10×timeout");
    assert!(judge(&r, r#"{status: {503: "== 10"}}"#).passed);
    assert!(judge(&r, r#"{status: {2xx: ">= 980"}}"#).passed);
    assert!(!judge(&r, r#"{status: {timeout: "== 0"}}"#).passed);
    let j = judge(&r, r#"{success_rate: ">= 99%"}"#);
    assert_eq!((j.passed, j.measured.as_str()), (false, "98% (980/1000)"));
}

#[test]
fn cancelled_requests_are_not_failures() {
    let mut r = clean_run(500);
    r.load = Some(load(&[(
        "steady",
        0,
        10,
        vec![("/service/1", tally(&[ok(990), (Outcome::Cancelled, 10)], 5))],
    )]));
    let j = judge(&r, r#"{success_rate: "== 100%"}"#);
    assert_eq!((j.passed, j.measured.as_str()), (true, "100% (990/990)"));
}

#[test]
fn missing_data_is_a_failure_that_says_why() {
    let mut r = clean_run(500);
    let j = judge(&r, r#"{route: /nope, success_rate: ">= 99%"}"#);
    assert_eq!((j.passed, j.measured.as_str()), (false, "no data"));
    assert_eq!(
        detail(&j),
        "no request named `/nope` was sent in this scope"
    );

    let j = judge(&r, r#"{phase: burst, success_rate: ">= 99%"}"#);
    assert_eq!(
        (j.passed, detail(&j)),
        (false, "the run has no phase `burst`")
    );
    assert_eq!(j.window, "phase burst");

    let j = judge(&r, r#"{window: 20s..30s, rate: "> 0/s"}"#);
    assert_eq!(
        detail(&j),
        "the schedule has 10 s; the window starts after it"
    );

    let j = judge(&r, r#"{cluster: backend/service1, split: "even ±10%"}"#);
    assert!(!j.passed);
    assert_eq!(
        detail(&j),
        "no snapshot has a proxy of service `backend` (proxies scraped: front-envoy#1)"
    );

    let j = judge(&r, r#"{cluster: front-envoy/servce1, retries: "== 0"}"#);
    assert_eq!(
        detail(&j),
        "front-envoy has no cluster `servce1` (its clusters: service1); did you mean `service1`?"
    );

    r.load = None;
    let j = judge(&r, r#"{p99: "< 1s"}"#);
    assert!(!j.passed);
    assert!(
        detail(&j).starts_with("the scenario sent no traffic"),
        "{j:?}"
    );

    let mut r = clean_run(500);
    r.load = Some(load(&[(
        "steady",
        0,
        10,
        vec![("/service/1", tally(&[(Outcome::ConnectError, 10)], 5))],
    )]));
    let j = judge(&r, r#"{p99: "< 1s"}"#);
    assert_eq!(
        detail(&j),
        "no request was answered (10 sent), so there is no latency"
    );
}

#[test]
fn endpoint_split_even_and_weighted() {
    let r = clean_run(500);
    let j = judge(&r, r#"{cluster: front-envoy/service1, split: "even ±10%"}"#);
    assert!(j.passed, "{j:?}");
    assert_eq!(j.measured, "50% / 50% (n=1000)");
    assert_eq!(detail(&j), "service1#1 50% (500) · service1#2 50% (500)");

    let mut r = clean_run(500);
    r.snapshots[2]
        .proxies
        .insert("front-envoy#1".into(), front(700, 300));
    let j = judge(&r, r#"{cluster: front-envoy/service1, split: "even ±10%"}"#);
    assert!(!j.passed);
    assert_eq!(
        detail(&j),
        "service1#1 70% (700) · service1#2 30% (300)\nservice1#1 70% is outside 45–55%\nservice1#2 30% is outside 45–55%"
    );
    assert!(judge(&r, r#"{cluster: front-envoy/service1, split: "70/30 ±3%"}"#).passed);
    let j = judge(
        &r,
        r#"{cluster: front-envoy/service1, split: "60/20/20 ±3%"}"#,
    );
    assert_eq!(
        (j.passed, j.measured.as_str()),
        (false, "2 endpoints, 3 weights")
    );
    assert!(detail(&j).starts_with(
        "the split gives 3 weights but there are 2 endpoints (service1#1, service1#2)"
    ));
}

#[test]
fn windows_use_the_snapshots_that_bracket_them() {
    let mut r = clean_run(500);
    // After 5 s everything went to the first pod.
    r.snapshots[2]
        .proxies
        .insert("front-envoy#1".into(), front(750, 250));
    let window = judge(
        &r,
        r#"{window: 5s..10s, cluster: front-envoy/service1, split: "100/0 ±1%"}"#,
    );
    assert!(window.passed, "{window:?}");
    assert_eq!(window.measured, "100% / 0% (n=500)");
    let first_half = judge(
        &r,
        r#"{window: 0s..5s, cluster: front-envoy/service1, split: "even ±1%"}"#,
    );
    assert_eq!(first_half.measured, "50% / 50% (n=500)");
    // Inside a snapshot interval: the one at-or-before the start and the one at-or-after the end.
    let inside = judge(
        &r,
        r#"{window: 6s..7s, cluster: front-envoy/service1, split: "100/0 ±1%"}"#,
    );
    assert_eq!(inside.measured, "100% / 0% (n=500)");
}

#[test]
fn a_restarted_proxy_is_named_not_counted() {
    let mut r = clean_run(500);
    r.snapshots[2]
        .proxies
        .insert("front-envoy#1".into(), front(10, 10));
    let j = judge(&r, r#"{cluster: front-envoy/service1, split: "even ±10%"}"#);
    assert_eq!((j.passed, j.measured.as_str()), (false, "no data"));
    assert_eq!(
        detail(&j),
        "front-envoy#1 restarted between 5.0s and 10.5s: service1 10.0.0.1:8000 rq_total went down from 250 to 10"
    );
}

#[test]
fn cluster_split_uses_upstream_rq_total() {
    let mut r = clean_run(500);
    let with = |a, b| {
        proxy(
            &[
                ("cluster.service1.upstream_rq_total", a),
                ("cluster.service2.upstream_rq_total", b),
            ],
            vec![],
        )
    };
    r.snapshots[0]
        .proxies
        .insert("front-envoy#1".into(), with(0, 0));
    r.snapshots[2]
        .proxies
        .insert("front-envoy#1".into(), with(790, 210));
    let j = judge(
        &r,
        r#"{route_split: front-envoy, clusters: [service1, service2], split: "80/20 ±3%"}"#,
    );
    assert!(j.passed, "{j:?}");
    assert_eq!(j.measured, "79% / 21% (n=1000)");
    let j = judge(
        &r,
        r#"{route_split: front-envoy, clusters: [service1, service2], split: "90/10 ±3%"}"#,
    );
    assert!(!j.passed);
    assert!(
        detail(&j).contains("service1 79% is outside 87–93%"),
        "{}",
        detail(&j)
    );
    let j = judge(
        &r,
        r#"{route_split: front-envoy, clusters: [service1, service3], split: "even ±3%"}"#,
    );
    assert!(detail(&j).starts_with("front-envoy has no cluster `service3`"));
}

#[test]
fn ejection_within_a_time_of_the_fault() {
    let mut r = clean_run(500);
    r.faults
        .push(fault(3.0, None, "kill service1#2", Some("service1#2")));
    let ejected = proxy(
        &[],
        vec![(
            "service1",
            vec![
                host(POD1, 250, &[]),
                host(POD2, 250, &["failed_outlier_check"]),
            ],
        )],
    );
    r.snapshots[1]
        .proxies
        .insert("front-envoy#1".into(), ejected);
    let j = judge(
        &r,
        r#"{cluster: front-envoy/service1, ejected: "service1#2", within: 5s}"#,
    );
    assert!(j.passed, "{j:?}");
    assert_eq!(j.measured, "ejected after 2s");
    assert_eq!(j.threshold, "ejected within 5s");
    assert_eq!(j.faults_active, ["kill service1#2 at 3.0s"]);
    let j = judge(
        &r,
        r#"{cluster: front-envoy/service1, ejected: "service1#2", within: 1s}"#,
    );
    assert!(!j.passed);
    assert_eq!(j.measured, "no data");
    assert_eq!(
        detail(&j),
        "no snapshot of front-envoy#1 between 3.0s and 4.0s"
    );
    let j = judge(
        &r,
        r#"{cluster: front-envoy/service1, unhealthy: "service1#2", within: 5s}"#,
    );
    assert!(
        !j.passed,
        "an outlier ejection is not an active health check failure"
    );
    assert_eq!(j.measured, "not unhealthy by 8.0s");
    assert_eq!(
        detail(&j),
        "clock from kill service1#2 at 3.0s; service1#2 last listed at 5.0s as failed_outlier_check"
    );
    let j = judge(
        &r,
        r#"{cluster: front-envoy/service1, ejected: "service1#1", within: 20s}"#,
    );
    assert_eq!(j.measured, "not ejected by 20.0s");
}

#[test]
fn active_health_check_failure_is_unhealthy() {
    let mut r = clean_run(500);
    let failing = proxy(
        &[],
        vec![(
            "service1",
            vec![
                host(POD1, 250, &["/failed_active_hc"]),
                host(POD2, 250, &[]),
            ],
        )],
    );
    r.snapshots[2]
        .proxies
        .insert("front-envoy#1".into(), failing);
    let j = judge(
        &r,
        r#"{phase: steady, cluster: front-envoy/service1, unhealthy: "service1#1", within: 11s}"#,
    );
    assert!(j.passed, "{j:?}");
    assert_eq!(j.measured, "unhealthy after 10.5s");
}

#[test]
fn retries_and_generic_stats() {
    let mut r = clean_run(500);
    r.snapshots[2].proxies.insert(
        "front-envoy#1".into(),
        front_with(
            500,
            500,
            &[
                ("cluster.service1.upstream_rq_retry", 12),
                ("cluster.service1.upstream_rq_retry_success", 11),
            ],
        ),
    );
    let j = judge(&r, r#"{cluster: front-envoy/service1, retries: "> 0"}"#);
    assert_eq!((j.passed, j.measured.as_str()), (true, "12"));
    assert_eq!(detail(&j), "upstream_rq_retry_success +11, upstream_rq_retry_overflow +0, upstream_rq_retry_limit_exceeded +0");
    assert!(!judge(&r, r#"{cluster: front-envoy/service1, retries: "== 0"}"#).passed);
    let j = judge(
        &r,
        r#"{proxy: front-envoy, stat: cluster.service1.upstream_rq_retry, value: "== 12"}"#,
    );
    assert_eq!((j.passed, j.measured.as_str()), (true, "+12"));
    let j = judge(
        &r,
        r#"{proxy: front-envoy, stat: cluster.service1.upstream_rq_rety, value: "> 0"}"#,
    );
    assert_eq!(
        detail(&j),
        "front-envoy never reported a stat `cluster.service1.upstream_rq_rety`; did you mean `cluster.service1.upstream_rq_retry`?"
    );
}

#[test]
fn faults_active_are_those_overlapping_the_window() {
    let mut r = clean_run(500);
    r.faults = vec![
        fault(1.0, Some(2.0), "delay service1 100ms", None),
        fault(6.0, Some(8.0), "pause service1#1", Some("service1#1")),
        fault(9.0, None, "kill service1#2", Some("service1#2")),
    ];
    let j = judge(&r, r#"{window: 5s..8s, success_rate: "== 0%"}"#);
    assert_eq!(j.faults_active, ["pause service1#1 6.0s–8.0s"]);
    let j = judge(&r, r#"{success_rate: "== 0%"}"#);
    assert_eq!(j.faults_active.len(), 3);
}

// --- accounting ---------------------------------------------------------------------------

fn accounting(r: &RunRecord) -> Judgement {
    judge(r, "{accounting: exact}")
}

#[test]
fn accounting_of_a_clean_run() {
    let j = accounting(&clean_run(500));
    assert!(j.passed, "{j:#?}");
    assert_eq!(j.measured, "1000 sent, all accounted for");
    assert_eq!(
        detail(&j),
        "= generator sent 1000 = 1000×200\n\
         = front-envoy#1 downstream_rq_total +1000 (= sent − 0 connect errors)\n\
         = front-envoy#1 downstream_rq_2xx +1000 = generator 2xx 1000\n\
         = front-envoy#1 upstream_rq_total +1000 = 1000 forwarded + 0 retries; downstream 1000 − 0 answered locally\n\
         = apps (service1#1, service1#2) answered 1000 = front-envoy#1 upstream 1000 (incl. 0 retries) to service1"
    );
}

#[test]
fn accounting_with_retries() {
    let mut r = clean_run(500);
    // 10 first attempts answered 503 were retried: the apps saw 1010 requests.
    let retried = front_with(
        505,
        505,
        &[
            ("cluster.service1.upstream_rq_total", 1010),
            ("cluster.service1.upstream_rq_retry", 10),
            ("http.ingress_http.downstream_rq_total", 1000),
            ("http.ingress_http.downstream_rq_2xx", 1000),
        ],
    );
    r.snapshots[2]
        .proxies
        .insert("front-envoy#1".into(), retried);
    r.snapshots[2].apps = [("service1#1", 505), ("service1#2", 505)]
        .iter()
        .map(|(p, n)| {
            (
                p.to_string(),
                super::record::AppCounters {
                    requests_total: *n,
                    ..Default::default()
                },
            )
        })
        .collect();
    let j = accounting(&r);
    assert!(j.passed, "{j:#?}");
    assert!(
        detail(&j)
            .contains("= front-envoy#1 upstream_rq_total +1010 = 1000 forwarded + 10 retries"),
        "{}",
        detail(&j)
    );
    assert!(detail(&j).ends_with("apps (service1#1, service1#2) answered 1010 = front-envoy#1 upstream 1010 (incl. 10 retries) to service1"));
}

#[test]
fn accounting_with_a_killed_pod() {
    let mut r = clean_run(500);
    r.faults
        .push(fault(7.0, None, "kill service1#2", Some("service1#2")));
    // service1#2's app was last scraped at 5 s (250); it answered more before it died, and
    // its count of those died with it. The gap opens at a snapshot at least 1 s before that reading
    // (0 s here): app and proxy readings of one snapshot are not atomic.
    r.snapshots[2].apps.remove("service1#2");
    let j = accounting(&r);
    assert!(j.passed, "{j:#?}");
    assert!(
        detail(&j).ends_with(
            "apps (service1#1, service1#2) answered 750 vs front-envoy#1 upstream 1000 (incl. 0 retries) to service1; 250 fewer: ≤ 500 sent to service1#2 gone after 0.0s"
        ),
        "{}",
        detail(&j)
    );
}

#[test]
fn accounting_fails_on_an_unexplained_difference() {
    let mut r = clean_run(500);
    r.snapshots[2].apps.insert(
        "service1#2".into(),
        super::record::AppCounters {
            requests_total: 490,
            ..Default::default()
        },
    );
    let j = accounting(&r);
    assert!(!j.passed);
    assert_eq!(j.measured, "1 of 5 lines do not reconcile");
    assert!(
        detail(&j).ends_with("≠ apps (service1#1, service1#2) answered 990 vs front-envoy#1 upstream 1000 (incl. 0 retries) to service1: 10 fewer than explained by nothing (no connect failure, overflow or vanished pod)"),
        "{}",
        detail(&j)
    );

    let mut r = clean_run(500);
    r.snapshots[2].proxies.insert(
        "front-envoy#1".into(),
        front_with(500, 500, &[("http.ingress_http.downstream_rq_total", 1003)]),
    );
    let j = accounting(&r);
    assert!(!j.passed);
    assert!(
        detail(&j).contains("≠ front-envoy#1 downstream_rq_total +1003, expected 1000–1000 (sent 1000 − 0 connect errors, less up to 0 reset/cancelled): 3 unexplained"),
        "{}",
        detail(&j)
    );

    let mut r = clean_run(500);
    if let Some(l) = r.load.as_mut() {
        l.sent = 1001;
    }
    let j = accounting(&r);
    assert!(
        detail(&j).starts_with("≠ generator sent 1001 but its outcome buckets hold 1000 by phase"),
        "{}",
        detail(&j)
    );
}

#[test]
fn accounting_allows_connect_errors_and_local_answers() {
    let mut r = clean_run(500);
    // 5 requests could not connect; 10 more got a local 503 (no healthy upstream).
    r.load = Some(load(&[(
        "steady",
        0,
        10,
        vec![(
            "/service/1",
            tally(
                &[
                    ok(1000),
                    (Outcome::Status(503), 10),
                    (Outcome::ConnectError, 5),
                ],
                5,
            ),
        )],
    )]));
    r.snapshots[2].proxies.insert(
        "front-envoy#1".into(),
        front_with(
            500,
            500,
            &[
                ("http.ingress_http.downstream_rq_total", 1010),
                ("http.ingress_http.downstream_rq_5xx", 10),
                ("cluster.service1.upstream_cx_none_healthy", 10),
            ],
        ),
    );
    let j = accounting(&r);
    assert!(j.passed, "{j:#?}");
    assert!(detail(&j).contains("downstream_rq_total +1010 (= sent − 5 connect errors)"));
    assert!(detail(&j).contains("downstream_rq_5xx +10 = generator 5xx 10"));
    assert!(detail(&j).contains("downstream 1010 − 10 answered locally (10 no_healthy_upstream)"));
}

#[test]
fn accounting_without_traffic_is_no_data() {
    let mut r = clean_run(500);
    r.load = None;
    let j = accounting(&r);
    assert_eq!((j.passed, j.measured.as_str()), (false, "no data"));
}

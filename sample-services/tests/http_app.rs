//! Kind `http` over real sockets: routes and exact texts, echo, faults, counters, /trace.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{args, get, get_h2, post, request, start};
use http::{Method, StatusCode};
use sample_services::{Kind, ServiceArgs, StatusFault};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// An http app as service `name`, hostname `host`, reporting IP 127.0.0.1 (pod IP given,
/// so the texts do not depend on this machine's /etc/hosts).
fn http_args(host: &str, name: &str) -> ServiceArgs {
    let mut a = args(Kind::Http, host);
    a.service_name = Some(name.to_owned());
    a.pod_ip = Some("127.0.0.1".parse().unwrap());
    a
}

#[tokio::test]
async fn service_route_text_and_404_rule() {
    let app = start(http_args("pod-a", "1")).await;

    let r = get(app.addr, "/service/1").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        "Hello from behind Envoy (service 1)! hostname: pod-a resolvedhostname: 127.0.0.1\n"
    );
    assert_eq!(r.header("x-served-by"), "pod-a");

    let r = get(app.addr, "/service/2").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.header("x-served-by"), "pod-a");
    assert_eq!(
        get(app.addr, "/service/").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(app.addr, "/nowhere").await.status,
        StatusCode::NOT_FOUND
    );

    let r = request(app.addr, Method::POST, "/service/1", &[], "").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    app.stop().await;
}

#[tokio::test]
async fn default_service_name_is_1() {
    let mut a = args(Kind::Http, "pod-d");
    a.pod_ip = Some("127.0.0.1".parse().unwrap());
    let app = start(a).await;
    assert_eq!(get(app.addr, "/service/1").await.status, StatusCode::OK);
    assert_eq!(
        get(app.addr, "/service/2").await.status,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn flask_routes() {
    let app = start(http_args("pod-f", "1")).await;
    let r = get(app.addr, "/").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::OK, "Hello, World!")
    );
    let r = get(app.addr, "/healthy_check").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            StatusCode::OK,
            "I am fine! <service_name: pod-f, ip: 127.0.0.1>"
        )
    );
    assert_eq!(r.header("x-served-by"), "pod-f");
    app.stop().await;
}

#[tokio::test]
async fn h2c_prior_knowledge_on_the_same_port() {
    let app = start(http_args("pod-h2", "3")).await;
    let r = get_h2(app.addr, "/service/3").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        "Hello from behind Envoy (service 3)! hostname: pod-h2 resolvedhostname: 127.0.0.1\n"
    );
    assert_eq!(r.header("x-served-by"), "pod-h2");
    let echo = get_h2(app.addr, "/echo").await.json();
    assert_eq!(echo["headers"]["host"], app.addr.to_string());
    app.stop().await;
}

#[tokio::test]
async fn echo_reports_the_request() {
    let app = start(http_args("pod-e", "7")).await;
    let r = request(
        app.addr,
        Method::PUT,
        "/echo/some/where?a=1&b=two",
        &[("x-custom", "v1"), ("x-custom", "v2")],
        "hello body",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "application/json");
    let echo = r.json();
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["path"], "/echo/some/where");
    assert_eq!(echo["query"], "a=1&b=two");
    assert_eq!(echo["headers"]["x-custom"], "v1, v2");
    assert_eq!(echo["headers"]["host"], app.addr.to_string());
    assert_eq!(echo["body"], "hello body");
    assert_eq!(echo["hostname"], "pod-e");
    assert_eq!(echo["ip"], "127.0.0.1");
    assert_eq!(echo["service_name"], "7");
    let keys: BTreeSet<&str> = echo
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    let expected = [
        "method",
        "path",
        "query",
        "headers",
        "body",
        "hostname",
        "ip",
        "service_name",
    ];
    assert_eq!(keys, BTreeSet::from(expected));
    app.stop().await;
}

#[tokio::test]
async fn status_fault_from_query_always_and_never() {
    let app = start(http_args("pod-s", "1")).await;
    for _ in 0..20 {
        let r = get(app.addr, "/service/1?status=503:100").await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.header("x-served-by"), "pod-s");
    }
    for _ in 0..20 {
        assert_eq!(
            get(app.addr, "/service/1?status=503:0").await.status,
            StatusCode::OK
        );
    }
    // Without a probability it always fires; %3A is a colon.
    assert_eq!(
        get(app.addr, "/service/1?status=500").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        get(app.addr, "/service/1?status=429%3A100").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let bad = get(app.addr, "/service/1?status=abc").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    app.stop().await;
}

#[tokio::test]
async fn status_fault_from_flags_and_query_override() {
    let mut a = http_args("pod-sf", "1");
    a.fault_status = Some(StatusFault::parse("502").unwrap());
    let app = start(a).await;
    assert_eq!(
        get(app.addr, "/service/1").await.status,
        StatusCode::BAD_GATEWAY
    );
    // The query replaces the process default for this request only.
    assert_eq!(
        get(app.addr, "/service/1?status=503:0").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(app.addr, "/healthy_check").await.status,
        StatusCode::BAD_GATEWAY
    );
    app.stop().await;
}

#[tokio::test]
async fn delay_fault_is_applied_before_the_status() {
    let mut a = http_args("pod-dl", "1");
    a.fault_delay = Some(Duration::from_millis(100));
    let app = start(a).await;

    let started = Instant::now();
    assert_eq!(get(app.addr, "/service/1").await.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(100));

    let started = Instant::now();
    let r = get(app.addr, "/service/1?delay=250ms&status=503").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() >= Duration::from_millis(250));

    assert_eq!(
        get(app.addr, "/service/1?delay=forever").await.status,
        StatusCode::BAD_REQUEST
    );
    app.stop().await;
}

#[tokio::test]
async fn counters_count_what_was_answered_and_reset() {
    let app = start(http_args("pod-c", "1")).await;
    get(app.addr, "/service/1").await;
    get(app.addr, "/service/1").await;
    get(app.addr, "/service/9").await;
    get(app.addr, "/service/1?status=503").await;
    get(app.addr, "/").await;

    let stats = get(app.addr, "/meshsim/stats").await;
    assert_eq!(stats.status, StatusCode::OK);
    assert_eq!(stats.header("x-served-by"), "pod-c");
    assert_eq!(
        stats.json(),
        json!({
            "hostname": "pod-c",
            "service_name": "1",
            "requests_total": 5,
            "by_path": {"/service/1": 3, "/service/9": 1, "/": 1},
            "by_status": {"200": 3, "404": 1, "503": 1},
        })
    );
    // Reading the stats is not counted.
    assert_eq!(
        get(app.addr, "/meshsim/stats").await.json()["requests_total"],
        5
    );
    // Faults never hit the counter endpoints.
    assert_eq!(
        get(app.addr, "/meshsim/stats?status=503").await.status,
        StatusCode::OK
    );

    assert_eq!(
        get(app.addr, "/meshsim/stats/reset").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        post(app.addr, "/meshsim/stats/reset").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(app.addr, "/meshsim/stats").await.json(),
        json!({"hostname": "pod-c", "service_name": "1", "requests_total": 0,
               "by_path": {}, "by_status": {}})
    );
    app.stop().await;
}

const FORWARDED: [(&str, &str); 10] = [
    ("x-request-id", "req-123"),
    ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
    ("x-b3-spanid", "e457b5a2e4d86bd1"),
    ("x-b3-parentspanid", "05e3ac9a4f6e3b90"),
    ("x-b3-sampled", "1"),
    ("x-b3-flags", "0"),
    ("x-ot-span-context", "ctx"),
    ("uber-trace-id", "abc:def:0:1"),
    (
        "traceparent",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ),
    ("tracestate", "congo=t61rcWkgMzE"),
];

/// A one-shot HTTP/1.1 server that returns the raw request head it received.
async fn capture_one_request() -> (String, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/capture/here?x=1", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "next hop connection closed mid-request");
            head.extend_from_slice(&buf[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await
            .unwrap();
        String::from_utf8(head).unwrap().to_ascii_lowercase()
    });
    (url, task)
}

#[tokio::test]
async fn trace_forwards_exactly_the_tracing_headers() {
    let (url, captured) = capture_one_request().await;
    let mut a = http_args("pod-t", "1");
    a.next_hop = Some(url.parse().unwrap());
    let app = start(a).await;

    let mut headers = FORWARDED.to_vec();
    headers.push(("x-not-forwarded", "secret"));
    let r = request(app.addr, Method::GET, "/trace/1", &headers, "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        "Hello from behind Envoy (service 1)! hostname: pod-t resolvedhostname: 127.0.0.1\n"
    );

    let head = captured.await.unwrap();
    let host = url.trim_start_matches("http://").split('/').next().unwrap();
    assert!(
        head.starts_with("get /capture/here?x=1 http/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains(&format!("\r\nhost: {host}\r\n")), "{head}");
    for (name, value) in FORWARDED {
        let line = format!("\r\n{name}: {}\r\n", value.to_ascii_lowercase());
        assert!(head.contains(&line), "{name} not forwarded: {head}");
    }
    assert!(!head.contains("x-not-forwarded"), "{head}");
    app.stop().await;
}

#[tokio::test]
async fn trace_chain_through_a_second_app() {
    let mut second = http_args("pod-2", "2");
    second.pod_ip = Some("127.0.0.1".parse().unwrap());
    let second = start(second).await;
    let mut first = http_args("pod-1", "1");
    first.next_hop = Some(second.url("/echo").parse().unwrap());
    let first = start(first).await;

    let r = request(first.addr, Method::GET, "/trace/1", &FORWARDED, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.header("x-served-by"), "pod-1");
    let stats = get(second.addr, "/meshsim/stats").await.json();
    assert_eq!(stats["by_path"], json!({"/echo": 1}));

    // Not its service number: 404 without calling the next hop.
    assert_eq!(
        get(first.addr, "/trace/2").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(second.addr, "/meshsim/stats").await.json()["requests_total"],
        1
    );
    first.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn trace_without_next_hop_answers_directly() {
    let app = start(http_args("pod-solo", "4")).await;
    let r = get(app.addr, "/trace/4").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        "Hello from behind Envoy (service 4)! hostname: pod-solo resolvedhostname: 127.0.0.1\n"
    );
    assert_eq!(
        get(app.addr, "/trace/5").await.status,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn failing_next_hop_is_a_502_with_a_reason() {
    // Nothing listening.
    let dead = common::closed_port().await;
    let mut a = http_args("pod-x", "1");
    a.next_hop = Some(format!("http://{dead}/trace/2").parse().unwrap());
    let app = start(a).await;
    let r = get(app.addr, "/trace/1").await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(r.body.contains(&dead.to_string()), "{}", r.body);
    assert_eq!(r.body.lines().count(), 1, "{:?}", r.body);
    app.stop().await;

    // A next hop that answers with an error status.
    let mut failing = http_args("pod-y", "2");
    failing.fault_status = Some(StatusFault::parse("503").unwrap());
    let failing = start(failing).await;
    let mut a = http_args("pod-z", "1");
    a.next_hop = Some(failing.url("/trace/2").parse().unwrap());
    let app = start(a).await;
    let r = get(app.addr, "/trace/1").await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(r.body.contains("503"), "{}", r.body);
    app.stop().await;
    failing.stop().await;
}

#[tokio::test]
async fn runtime_fault_control_sets_and_clears_without_counting_itself() {
    let app = start(http_args("pod-rf", "1")).await;
    assert_eq!(get(app.addr, "/service/1").await.status, StatusCode::OK);

    let set = post(app.addr, "/meshsim/fault?status=503:100&delay=1ms").await;
    assert_eq!(set.status, StatusCode::OK);
    assert_eq!(
        set.json(),
        json!({"status": 503, "percent": 100.0, "delay_ms": 1.0})
    );
    for _ in 0..5 {
        assert_eq!(
            get(app.addr, "/service/1").await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    // A request's own knobs still win over the process-wide ones.
    assert_eq!(
        get(app.addr, "/service/1?status=503:0").await.status,
        StatusCode::OK
    );
    // Half of the requests: some fail, some do not.
    post(app.addr, "/meshsim/fault?status=503:50").await;
    let mut statuses = BTreeSet::new();
    for _ in 0..60 {
        statuses.insert(get(app.addr, "/service/1").await.status);
    }
    assert_eq!(
        statuses,
        BTreeSet::from([StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE])
    );

    let bad = post(app.addr, "/meshsim/fault?status=42").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        get(app.addr, "/meshsim/fault").await.json()["percent"],
        json!(50.0),
        "a bad value changes nothing"
    );

    let cleared = request(app.addr, Method::DELETE, "/meshsim/fault", &[], "").await;
    assert_eq!(cleared.status, StatusCode::OK);
    assert_eq!(
        cleared.json(),
        json!({"status": null, "percent": null, "delay_ms": null})
    );
    for _ in 0..10 {
        assert_eq!(get(app.addr, "/service/1").await.status, StatusCode::OK);
    }
    assert_eq!(
        request(app.addr, Method::PUT, "/meshsim/fault", &[], "")
            .await
            .status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    // 1 + 5 + 1 + 60 + 10 app requests; the control calls are not among them.
    assert_eq!(
        get(app.addr, "/meshsim/stats").await.json()["requests_total"],
        json!(77)
    );
    app.stop().await;
}

#[tokio::test]
async fn fault_control_is_the_http_apps_only() {
    let app = start(args(Kind::Grpc, "pod-g")).await;
    assert_eq!(
        post(app.addr, "/meshsim/fault?status=503").await.status,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

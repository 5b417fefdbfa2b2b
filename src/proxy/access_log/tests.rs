//! End-to-end tests: format string → rendered line, JSON formats, logger → file.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, Method};

use super::*;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The request from Envoy's documentation example.
fn docs_example() -> StreamInfo {
    StreamInfo {
        start_time: UNIX_EPOCH + Duration::new(1_460_751_420, 310_500_000),
        protocol: Protocol::Http2,
        request_headers: headers(&[
            ("x-forwarded-for", "10.0.35.28"),
            ("user-agent", "nsq2http"),
            ("x-request-id", "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2"),
        ]),
        method: Method::POST,
        path: "/api/v1/locations".into(),
        authority: Some("locations".into()),
        response_headers: Some(headers(&[("x-envoy-upstream-service-time", "100")])),
        response_code: Some(204),
        bytes_received: 154,
        bytes_sent: 0,
        duration: Some(Duration::from_micros(226_900)),
        upstream_host: Some(addr("10.0.2.1:80")),
        ..StreamInfo::default()
    }
}

/// Every field set.
fn full() -> StreamInfo {
    StreamInfo {
        start_time: UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
        protocol: Protocol::Http11,
        request_headers: headers(&[
            ("user-agent", "curl/8.0"),
            ("x-multi", "first"),
            ("x-multi", "second"),
            ("x-empty", ""),
            ("host", "from-host-header"),
        ]),
        method: Method::PUT,
        path: "/v1/items?id=7".into(),
        authority: Some("api.example.com".into()),
        scheme: Some("https".into()),
        original_path: Some("/orig/items?id=7".into()),
        response_headers: Some(headers(&[("content-type", "application/json")])),
        response_trailers: Some(headers(&[("grpc-status", "0")])),
        response_code: Some(503),
        response_code_details: Some("upstream reset before response".into()),
        response_flags: ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED
            | ResponseFlags::UPSTREAM_CONNECTION_FAILURE,
        bytes_received: 11,
        bytes_sent: 22,
        duration: Some(Duration::from_millis(33)),
        request_duration: Some(Duration::from_millis(4)),
        response_duration: Some(Duration::from_millis(5)),
        upstream_host: Some(addr("10.1.2.3:8080")),
        upstream_cluster: Some("backend".into()),
        upstream_local_address: Some(addr("10.0.0.9:40000")),
        upstream_request_attempt_count: Some(3),
        downstream_remote_address: Some(addr("[2001:db8::1]:51000")),
        downstream_local_address: Some(addr("192.168.1.1:443")),
        route_name: Some("items-route".into()),
        requested_server_name: Some("api.example.com".into()),
    }
}

fn render(fmt: &str, info: &StreamInfo) -> String {
    Format::parse_text(fmt)
        .unwrap_or_else(|e| panic!("{fmt}: {e}"))
        .render(info)
}

#[test]
fn default_format_is_byte_exact_with_envoys_example() {
    assert_eq!(
        Format::envoy_default().render(&docs_example()),
        "[2016-04-15T20:17:00.310Z] \"POST /api/v1/locations HTTP/2\" 204 - 154 0 226 100 \
         \"10.0.35.28\" \"nsq2http\" \"cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2\" \"locations\" \
         \"10.0.2.1:80\"\n"
    );
}

#[test]
fn default_format_prefers_original_path_and_prints_dashes_when_unset() {
    let mut info = docs_example();
    info.original_path = Some("/before/rewrite".into());
    info.response_flags = ResponseFlags::NO_HEALTHY_UPSTREAM | ResponseFlags::LOCAL_RESET;
    let line = Format::envoy_default().render(&info);
    assert!(
        line.contains("\"POST /before/rewrite HTTP/2\" 204 UH,LR "),
        "{line}"
    );

    assert_eq!(
        Format::envoy_default().render(&StreamInfo::default()),
        "[1970-01-01T00:00:00.000Z] \"GET - HTTP/1.1\" 0 - 0 0 - - \"-\" \"-\" \"-\" \"-\" \"-\"\n"
    );
}

#[test]
fn text_line_ends_with_newline_only_if_the_format_does() {
    assert_eq!(render("%PROTOCOL%", &full()), "HTTP/1.1");
    assert_eq!(render("%PROTOCOL%\n", &full()), "HTTP/1.1\n");
    assert_eq!(render("", &full()), "");
    assert_eq!(render("no operators", &full()), "no operators");
}

#[test]
fn every_operator_with_values() {
    let fmt = "%START_TIME%|%START_TIME(%s.%3f)%|%REQ(:METHOD)%|%REQ(:PATH)%|%REQ(:AUTHORITY)%|\
               %REQ(HOST)%|%REQ(:SCHEME)%|%REQ(X-ENVOY-ORIGINAL-PATH)%|%REQ(User-Agent)%|\
               %RESP(content-type)%|%RESP(:STATUS)%|%TRAILER(grpc-status)%|%PROTOCOL%|\
               %RESPONSE_CODE%|%RESPONSE_CODE_DETAILS%|%RESPONSE_CODE_DETAILS(ALLOW_WHITESPACES)%|\
               %RESPONSE_FLAGS%|%RESPONSE_FLAGS_LONG%|%BYTES_RECEIVED%|%BYTES_SENT%|%DURATION%|\
               %REQUEST_DURATION%|%RESPONSE_DURATION%|%UPSTREAM_HOST%|%UPSTREAM_CLUSTER%|\
               %UPSTREAM_LOCAL_ADDRESS%|%UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%|%UPSTREAM_LOCAL_PORT%|\
               %UPSTREAM_REMOTE_ADDRESS%|%UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%|%UPSTREAM_REMOTE_PORT%|\
               %UPSTREAM_REQUEST_ATTEMPT_COUNT%|%DOWNSTREAM_REMOTE_ADDRESS%|\
               %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%|%DOWNSTREAM_REMOTE_PORT%|\
               %DOWNSTREAM_LOCAL_ADDRESS%|%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%|\
               %DOWNSTREAM_LOCAL_PORT%|%ROUTE_NAME%|%REQUESTED_SERVER_NAME%";
    let got = render(fmt, &full());
    let want = [
        "2023-11-14T22:13:20.123Z",
        "1700000000.123",
        "PUT",
        "/v1/items?id=7",
        "api.example.com",
        "api.example.com",
        "https",
        "/orig/items?id=7",
        "curl/8.0",
        "application/json",
        "503",
        "0",
        "HTTP/1.1",
        "503",
        "upstream_reset_before_response",
        "upstream reset before response",
        "UF,URX",
        "UpstreamConnectionFailure,UpstreamRetryLimitExceeded",
        "11",
        "22",
        "33",
        "4",
        "5",
        "10.1.2.3:8080",
        "backend",
        "10.0.0.9:40000",
        "10.0.0.9",
        "40000",
        "10.1.2.3:8080",
        "10.1.2.3",
        "8080",
        "3",
        "[2001:db8::1]:51000",
        "2001:db8::1",
        "51000",
        "192.168.1.1:443",
        "192.168.1.1",
        "443",
        "items-route",
        "api.example.com",
    ]
    .join("|");
    assert_eq!(got, want);
}

#[test]
fn every_operator_unset() {
    let fmt = "%REQ(:PATH)%|%REQ(:AUTHORITY)%|%REQ(:SCHEME)%|%REQ(X-ENVOY-ORIGINAL-PATH)%|\
               %REQ(user-agent)%|%RESP(content-type)%|%RESP(:status)%|%TRAILER(grpc-status)%|\
               %RESPONSE_CODE%|%RESPONSE_CODE_DETAILS%|%RESPONSE_FLAGS%|%RESPONSE_FLAGS_LONG%|\
               %BYTES_RECEIVED%|%DURATION%|%REQUEST_DURATION%|%RESPONSE_DURATION%|\
               %UPSTREAM_HOST%|%UPSTREAM_CLUSTER%|%UPSTREAM_LOCAL_ADDRESS%|%UPSTREAM_REMOTE_PORT%|\
               %UPSTREAM_REQUEST_ATTEMPT_COUNT%|%DOWNSTREAM_REMOTE_ADDRESS%|\
               %DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%|%ROUTE_NAME%|%REQUESTED_SERVER_NAME%";
    let got = render(fmt, &StreamInfo::default());
    // RESPONSE_CODE and UPSTREAM_REQUEST_ATTEMPT_COUNT print 0 when unset, as Envoy.
    assert_eq!(got, "-|-|-|-|-|-|-|-|0|-|-|-|0|-|-|-|-|-|-|-|0|-|-|-|-");
    // Empty strings count as unset for cluster, route and SNI, as Envoy.
    let info = StreamInfo {
        upstream_cluster: Some(String::new()),
        route_name: Some(String::new()),
        requested_server_name: Some(String::new()),
        ..StreamInfo::default()
    };
    assert_eq!(
        render(
            "%UPSTREAM_CLUSTER%|%ROUTE_NAME%|%REQUESTED_SERVER_NAME%",
            &info
        ),
        "-|-|-"
    );
}

#[test]
fn hostname_is_resolved_once_and_printed() {
    let got = render("%HOSTNAME%", &StreamInfo::default());
    assert!(!got.is_empty());
    let want = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| got.clone());
    assert_eq!(got, want);
}

#[test]
fn header_alternates() {
    let info = full();
    // Main present → main.
    assert_eq!(render("%REQ(user-agent?x-multi)%", &info), "curl/8.0");
    // Main absent → alternate.
    assert_eq!(render("%REQ(x-absent?USER-AGENT)%", &info), "curl/8.0");
    // Main present but empty → main wins (Envoy only falls back on absence).
    assert_eq!(render("[%REQ(x-empty?user-agent)%]", &info), "[]");
    // Both absent → '-'.
    assert_eq!(render("%REQ(x-a?x-b)%", &info), "-");
    // Pseudo header as alternate, the default format's idiom.
    let mut no_orig = info.clone();
    no_orig.original_path = None;
    assert_eq!(
        render("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", &no_orig),
        "/v1/items?id=7"
    );
    // Original path may also arrive as a header.
    no_orig
        .request_headers
        .insert("x-envoy-original-path", HeaderValue::from_static("/hdr"));
    assert_eq!(
        render("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", &no_orig),
        "/hdr"
    );
    // Repeated headers log the first value.
    assert_eq!(render("%REQ(X-MULTI)%", &info), "first");
    // RESP and TRAILER alternates.
    assert_eq!(
        render("%RESP(x-none?Content-Type)%", &info),
        "application/json"
    );
    assert_eq!(render("%TRAILER(x-none?GRPC-STATUS)%", &info), "0");
    // Authority falls back to the Host header when the field is unset.
    let mut no_auth = info.clone();
    no_auth.authority = None;
    assert_eq!(
        render("%REQ(:AUTHORITY)%|%REQ(HOST)%", &no_auth),
        "from-host-header|from-host-header"
    );
}

#[test]
fn header_truncation() {
    let info = full();
    assert_eq!(render("%REQ(USER-AGENT):4%", &info), "curl");
    assert_eq!(render("%REQ(USER-AGENT):100%", &info), "curl/8.0");
    assert_eq!(render("[%REQ(USER-AGENT):0%]", &info), "[]");
    // Truncation applies to the alternate and to pseudo headers too.
    assert_eq!(render("%REQ(x-absent?:PATH):3%", &info), "/v1");
    assert_eq!(render("%REQ(:METHOD):1%", &info), "P");
    assert_eq!(render("%RESP(content-type):11%", &info), "application");
    assert_eq!(render("%TRAILER(grpc-status):5%", &info), "0");
    // Unset stays '-' whatever the length.
    assert_eq!(render("%REQ(x-absent):0%", &info), "-");
}

#[test]
fn start_time_custom_formats() {
    let info = full(); // 2023-11-14T22:13:20.123456789Z
    assert_eq!(
        render("%START_TIME(%Y/%m/%dT%H:%M:%S%z %s)%", &info),
        "2023/11/14T22:13:20+0000 1700000000"
    );
    assert_eq!(render("%START_TIME(%s.%6f)%", &info), "1700000000.123456");
    assert_eq!(
        render("%START_TIME(%s.%9f)%", &info),
        "1700000000.123456789"
    );
    assert_eq!(render("%START_TIME(%f)%", &info), "123456789");
    assert_eq!(
        render("%START_TIME(%Y-%m-%dT%H:%M:%E3SZ)%", &info),
        "2023-11-14T22:13:20.123Z"
    );
    assert_eq!(render("%START_TIME()%", &info), "2023-11-14T22:13:20.123Z");
    assert_eq!(
        render("%START_TIME(%a, %d %b %Y %T %Z)%", &info),
        "Tue, 14 Nov 2023 22:13:20 UTC"
    );
    // Two START_TIMEs with different formats in one line.
    assert_eq!(render("%START_TIME(%H)%:%START_TIME(%M)%", &info), "22:13");
}

#[test]
fn several_flags_use_envoys_order() {
    let info = StreamInfo {
        response_flags: ResponseFlags::DNS_RESOLUTION_FAILED
            | ResponseFlags::UPSTREAM_OVERFLOW
            | ResponseFlags::NO_ROUTE_FOUND
            | ResponseFlags::DOWNSTREAM_CONNECTION_TERMINATION
            | ResponseFlags::UPSTREAM_REQUEST_TIMEOUT,
        ..StreamInfo::default()
    };
    assert_eq!(
        render("%RESPONSE_FLAGS% %RESPONSE_FLAGS_LONG%", &info),
        "UT,UO,NR,DC,DF UpstreamRequestTimeout,UpstreamOverflow,NoRouteFound,\
         DownstreamConnectionTermination,DnsResolutionFailed"
    );
}

fn json_format(v: serde_json::Value) -> Format {
    match v {
        serde_json::Value::Object(map) => Format::json(map).unwrap(),
        _ => panic!("not an object"),
    }
}

#[test]
fn json_typed_numbers_nulls_and_strings() {
    let fmt = json_format(serde_json::json!({
        "protocol": "%PROTOCOL%",
        "duration": "%DURATION%",
        "request_duration": "%REQUEST_DURATION%",
        "code": "%RESPONSE_CODE%",
        "attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
        "ua": "%REQ(USER-AGENT)%",
        "missing": "%REQ(X-NOPE)%",
        "mixed": "%DURATION%ms %REQ(X-NOPE)%",
        "const": "plain \"quoted\"",
        "num": 7,
        "float": 1.5,
        "flag": true,
        "nothing": null,
        "pct": "100%%",
        "nested": {"up": "%UPSTREAM_HOST%", "port": "%UPSTREAM_REMOTE_PORT%", "z": {"flags": "%RESPONSE_FLAGS%"}},
        "list": ["%BYTES_SENT%", "x", 1, "%ROUTE_NAME%"],
        "start": "%START_TIME(%s)%"
    }));
    assert!(fmt.is_json());
    let info = StreamInfo {
        request_headers: headers(&[("user-agent", "ua/1")]),
        duration: Some(Duration::from_millis(123)),
        response_code: Some(200),
        bytes_sent: 9,
        upstream_host: Some(addr("10.0.2.1:80")),
        start_time: UNIX_EPOCH + Duration::from_secs(42),
        ..StreamInfo::default()
    };
    let line = fmt.render(&info);
    assert_eq!(
        line,
        "{\"attempts\":0,\"code\":200,\"const\":\"plain \\\"quoted\\\"\",\"duration\":123,\
         \"flag\":true,\"float\":1.5,\"list\":[9,\"x\",1,null],\"missing\":null,\
         \"mixed\":\"123ms -\",\"nested\":{\"port\":80,\"up\":\"10.0.2.1:80\",\
         \"z\":{\"flags\":\"-\"}},\"nothing\":null,\"num\":7,\"pct\":\"100%\",\
         \"protocol\":\"HTTP/1.1\",\"request_duration\":null,\"start\":\"42\",\"ua\":\"ua/1\"}\n"
    );
    // And it is valid JSON.
    let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
    assert_eq!(v["duration"], 123);
    assert!(v["missing"].is_null());
}

#[test]
fn json_escapes_values_from_the_request() {
    let fmt =
        json_format(serde_json::json!({"ua": "%REQ(user-agent)%", "m": "ua=%REQ(user-agent)%"}));
    let info = StreamInfo {
        request_headers: headers(&[("user-agent", "evil\"\\ agent")]),
        ..StreamInfo::default()
    };
    let line = fmt.render(&info);
    let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
    assert_eq!(v["ua"], "evil\"\\ agent");
    assert_eq!(v["m"], "ua=evil\"\\ agent");
    assert_eq!(json_format(serde_json::json!({})).render(&info), "{}\n");
}

#[test]
fn json_errors_name_the_field() {
    let mut map = serde_json::Map::new();
    map.insert(
        "outer".into(),
        serde_json::json!({"inner": ["ok", "%NOPE%"]}),
    );
    let err = Format::json(map).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "json_format field outer.inner[1]: unknown access log operator %NOPE%; supported: "
        ),
        "{msg}"
    );
}

#[tokio::test]
async fn logger_writes_rendered_lines_to_a_file() {
    let dir = std::env::temp_dir().join(format!(
        "meshsim-access-log-e2e-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("access.log");
    let text = AccessLogger::new(Format::envoy_default(), Sink::file(&path).unwrap());
    let json = AccessLogger::new(
        json_format(serde_json::json!({"code": "%RESPONSE_CODE%", "path": "%REQ(:PATH)%"})),
        Sink::file(&path).unwrap(),
    );
    assert!(text.sink().same_writer(json.sink()));
    let mut want = String::new();
    for i in 0..200u16 {
        let mut info = docs_example();
        info.path = format!("/item/{i}");
        info.response_code = Some(200 + i % 5);
        let logger = if i % 2 == 0 { &text } else { &json };
        want.push_str(&logger.format().render(&info));
        logger.log(&info);
    }
    text.sink().flush().await.unwrap();
    let got = std::fs::read_to_string(&path).unwrap();
    assert_eq!(got, want);
    assert_eq!(got.lines().count(), 200);
    assert!(got
        .lines()
        .nth(1)
        .unwrap()
        .starts_with("{\"code\":201,\"path\":\"/item/1\"}"));
    std::fs::remove_dir_all(dir).unwrap();
}

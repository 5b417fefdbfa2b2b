//! Access logs written by the real proxy: Envoy's default format, custom text and JSON formats,
//! and the response flags of each outcome.

mod support;

use std::time::Duration;

use support::*;

fn log_config(path: &std::path::Path, format: &str) -> String {
    format!(
        "          access_log:\n          - name: envoy.access_loggers.file\n            typed_config:\n              \"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n              path: {}\n{format}",
        path.display()
    )
}

async fn read_lines(path: &std::path::Path, expected: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let ok = eventually(Duration::from_secs(5), || {
        lines = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        let n = lines.len();
        async move { n >= expected }
    })
    .await;
    assert!(ok, "expected {expected} lines, got {lines:?}");
    lines
}

#[tokio::test]
async fn default_format_lines_with_flags() {
    let dir = std::env::temp_dir().join(format!("meshsim-al-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("default.log");
    let _ = std::fs::remove_file(&path);
    let up = Upstream::start("up").await;
    let routes = "              - match: {prefix: \"/ok\"}\n                route: {cluster: up}\n              - match: {prefix: \"/empty\"}\n                route: {cluster: empty}\n";
    let clusters = [
        static_cluster("up", &[up.addr], ""),
        static_cluster("empty", &[], ""),
    ]
    .concat();
    let proxy = Proxy::start(v3_config(routes, &clusters, &log_config(&path, ""))).await;
    let client = http1();
    get_with(
        &client,
        &proxy.url("/ok?a=1"),
        &[("user-agent", "curl/8"), ("x-request-id", "rid-1")],
    )
    .await;
    get_with(
        &client,
        &proxy.url("/empty"),
        &[("user-agent", "curl/8"), ("x-request-id", "rid-2")],
    )
    .await;
    get_with(
        &client,
        &proxy.url("/none"),
        &[("user-agent", "curl/8"), ("x-request-id", "rid-3")],
    )
    .await;
    let lines = read_lines(&path, 3).await;
    let authority = proxy.first_listener().to_string();
    let re = regex::Regex::new(
        r#"^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "(\S+) (\S+) HTTP/1\.1" (\d+) (\S+) (\d+) (\d+) (\d+) (\S+) "-" "curl/8" "(\S+)" "(\S+)" "(\S+)"$"#,
    )
    .unwrap();
    let fields: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            let c = re
                .captures(l)
                .unwrap_or_else(|| panic!("not Envoy's default format: {l}"));
            (1..=11).map(|i| c[i].to_string()).collect()
        })
        .collect();
    // method, path, code, flags, ..., request id, authority, upstream host
    assert_eq!(&fields[0][..4], ["GET", "/ok?a=1", "200", "-"]);
    assert_eq!(
        fields[0][8..],
        ["rid-1".to_string(), authority.clone(), up.addr.to_string()]
    );
    assert_ne!(fields[0][7], "-", "x-envoy-upstream-service-time logged");
    assert_eq!(&fields[1][..4], ["GET", "/empty", "503", "UH"]);
    assert_eq!(fields[1][5], "19", "bytes sent: `no healthy upstream`");
    assert_eq!(fields[1][10], "-");
    assert_eq!(&fields[2][..4], ["GET", "/none", "404", "NR"]);
    proxy.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn custom_text_and_json_formats() {
    let dir = std::env::temp_dir().join(format!("meshsim-al2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text_path = dir.join("text.log");
    let json_path = dir.join("json.log");
    let up = Upstream::start("up").await;
    let routes = "              - name: main\n                match: {prefix: \"/\"}\n                route: {cluster: up}\n";
    let text_format = "              log_format:\n                text_format_source:\n                  inline_string: \"%ROUTE_NAME% %UPSTREAM_CLUSTER% %RESPONSE_CODE% %REQ(X-MISSING?USER-AGENT):4%\\n\"\n";
    let json_format = "              log_format:\n                json_format: {code: \"%RESPONSE_CODE%\", path: \"%REQ(:PATH)%\", flags: \"%RESPONSE_FLAGS%\"}\n";
    let hcm = format!(
        "{}{}",
        log_config(&text_path, text_format),
        log_config(&json_path, json_format).replace("          access_log:\n", "")
    );
    let proxy = Proxy::start(v3_config(
        routes,
        &static_cluster("up", &[up.addr], ""),
        &hcm,
    ))
    .await;
    get_with(&http1(), &proxy.url("/x"), &[("user-agent", "curl/8")]).await;
    let text = read_lines(&text_path, 1).await;
    assert_eq!(text, ["main up 200 curl"]);
    let json = read_lines(&json_path, 1).await;
    let v: serde_json::Value = serde_json::from_str(&json[0]).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"code": 200, "flags": "-", "path": "/x"})
    );
    proxy.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

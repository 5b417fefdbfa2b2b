//! The real binary: `meshsim validate`, `meshsim proxy --mode validate`, the `envoy` multi-call
//! personality, and a real serve → SIGTERM → drained exit.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_meshsim");

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(dir),
    )
    .unwrap()
    .map(|e| e.unwrap().path())
    .filter(|p| {
        matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("yaml" | "json")
        )
    })
    .collect();
    files.sort();
    files
}

/// The exit code, with stderr shown when it is not the expected one.
fn assert_exit(out: &std::process::Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run meshsim");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn validate_accepts_every_seed_config_but_the_v1_sds_one() {
    for file in fixtures("seeds") {
        let path = file.to_str().unwrap();
        let (code, stdout, stderr) = run(&["validate", path]);
        if path.ends_with("003-edge-sds.json") {
            assert_eq!(code, 2, "{path}: {stderr}");
            assert!(stderr.contains("v1 SDS"), "{stderr}");
            assert!(stderr.contains("STRICT_DNS"), "the fix is named: {stderr}");
        } else {
            assert_eq!(code, 0, "{path}: {stderr}");
            assert_eq!(stdout, format!("{path}: OK\n"));
        }
    }
}

#[test]
fn validate_reports_each_invalid_fixture_with_location_and_exit_2() {
    for file in fixtures("invalid") {
        let path = file.to_str().unwrap();
        let (code, _, stderr) = run(&["validate", "-q", path]);
        assert_eq!(code, 2, "{path} must be rejected");
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(stderr.contains("error: "), "{path}: {stderr}");
        assert!(
            stderr.contains(&format!("{path}:")),
            "{path}: the message names the file with line:col: {stderr}"
        );
        assert!(
            stderr.contains(" | "),
            "{name}: a source snippet is shown: {stderr}"
        );
    }
    let typo = fixtures("invalid")
        .into_iter()
        .find(|p| p.ends_with("unknown-field-typo.yaml"))
        .unwrap();
    let (_, _, stderr) = run(&["validate", typo.to_str().unwrap()]);
    assert!(
        stderr.contains("unknown field `connect_timout` in Cluster"),
        "{stderr}"
    );
    assert!(
        stderr.contains("did you mean `connect_timeout`?"),
        "{stderr}"
    );
}

#[test]
fn validate_of_a_missing_file_names_it() {
    let (code, _, stderr) = run(&["validate", "/nonexistent/envoy.yaml"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/envoy.yaml"), "{stderr}");
}

#[test]
fn envoy_personality_via_symlink_takes_envoy_flags() {
    let dir = std::env::temp_dir().join(format!("meshsim-envoy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let envoy = dir.join("envoy");
    let _ = std::fs::remove_file(&envoy);
    std::os::unix::fs::symlink(BIN, &envoy).unwrap();
    let seed = fixtures("seeds")
        .into_iter()
        .find(|p| p.ends_with("001-front-envoy.yaml"))
        .unwrap();
    let seed = seed.to_str().unwrap();

    let out = Command::new(&envoy)
        .args([
            "-c",
            seed,
            "--mode",
            "validate",
            "--service-cluster",
            "front-proxy",
            "--disable-hot-restart",
        ])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("configuration '{seed}' OK\n")
    );

    // Seed 000's Kubernetes manifest passes flag and value as one argument.
    let joined = format!("--config-path {seed}");
    let out = Command::new(&envoy)
        .args([joined.as_str(), "--mode", "validate"])
        .output()
        .unwrap();
    assert_exit(&out, 0);

    let out = Command::new(&envoy)
        .args(["--mode", "validate", "-c", "/nope.yaml"])
        .output()
        .unwrap();
    assert_exit(&out, 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn proxy_serves_then_drains_on_sigterm() {
    // A fixed loopback address of its own so it cannot clash with other tests.
    let up = support::Upstream::start_on("up", "127.0.31.2:0".parse().unwrap()).await;
    let config = format!(
        r#"
static_resources:
  listeners:
  - name: main
    address: {{socket_address: {{address: 127.0.31.1, port_value: 18080}}}}
    filter_chains:
    - filters:
      - name: envoy.http_connection_manager
        config:
          stat_prefix: ingress_http
          access_log: [{{name: envoy.file_access_log, config: {{path: /dev/stdout}}}}]
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{{match: {{prefix: "/"}}, route: {{cluster: up}}}}]
          http_filters: [{{name: envoy.router}}]
  clusters:
  - name: up
    connect_timeout: 0.25s
    type: static
    hosts: [{{socket_address: {{address: {}, port_value: {}}}}}]
admin:
  access_log_path: /dev/null
  address: {{socket_address: {{address: 127.0.31.1, port_value: 18001}}}}
"#,
        up.addr.ip(),
        up.addr.port()
    );
    let mut child = tokio::process::Command::new(BIN)
        .args([
            "proxy",
            "--config-yaml",
            &config,
            "--concurrency",
            "1",
            "--drain-time-s",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = support::http1();
    let ready = support::eventually(Duration::from_secs(10), || async {
        match client
            .get("http://127.0.31.1:18001/ready".parse().unwrap())
            .await
        {
            Ok(r) => r.status() == 200,
            Err(_) => false,
        }
    })
    .await;
    assert!(ready, "proxy never became ready");
    // Connection: close, so nothing holds the drain open and SIGTERM ends the process at once.
    let r = support::get_with(
        &client,
        "http://127.0.31.1:18080/hello",
        &[("connection", "close")],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(support::body_json(r).await["path"], "/hello");

    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("proxy exits after SIGTERM within the drain time")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    use tokio::io::AsyncReadExt;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(
        stderr.contains("deprecated"),
        "v2 forms warned about: {stderr}"
    );
    // SIGTERM came right after the request, before the 1 s periodic flush: the shutdown flush
    // must still have written the line.
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .await
        .unwrap();
    assert!(
        stdout.contains("\"GET /hello HTTP/1.1\" 200 - "),
        "access log line lost on shutdown: {stdout:?}"
    );
}

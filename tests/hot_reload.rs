//! Hot reload end to end (issue 5 §8): the real `meshsim proxy -c FILE`; the file is rewritten
//! while a request is in flight. The new routes and clusters apply without dropping it, an
//! invalid file is rejected with its errors logged and the old config kept, a listener change
//! is refused as needing a restart, and SIGHUP reloads too.

mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::mesh::meshsim_exe;
use support::scripted::{Answer, Scripted};
use support::*;

/// The proxy process, killed when dropped; its log goes to a file.
struct ProxyProcess {
    child: Child,
    log: std::path::PathBuf,
}

impl ProxyProcess {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

const LISTEN: &str = "127.0.77.1";
const PORT: u16 = 18080;
const ADMIN: u16 = 18001;

/// A config with `/slow` to cluster `slow` and `/` to `target`, over the given clusters.
fn config(target: &str, clusters: &[(&str, SocketAddr)], listen_port: u16) -> String {
    let clusters: String = clusters
        .iter()
        .map(|(name, addr)| static_cluster(name, &[*addr], ""))
        .collect();
    format!(
        r#"static_resources:
  listeners:
  - name: ingress
    address: {{socket_address: {{address: {LISTEN}, port_value: {listen_port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          route_config:
            virtual_hosts:
            - name: backend
              domains: ["*"]
              routes:
              - match: {{prefix: "/slow"}}
                route: {{cluster: slow}}
              - match: {{prefix: "/"}}
                route: {{cluster: {target}}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
{clusters}
admin:
  address: {{socket_address: {{address: {LISTEN}, port_value: {ADMIN}}}}}
"#
    )
}

async fn upstream_of(client: &TestClient, path: &str) -> Option<String> {
    let url = format!("http://{LISTEN}:{PORT}{path}");
    let r = client
        .request(
            http::Request::get(url)
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap(),
        )
        .await
        .ok()?;
    r.headers()
        .get("x-upstream")
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn a_changed_file_applies_without_dropping_requests_and_a_bad_one_is_refused() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let slow = Scripted::start(|_, _| Answer::Slow(Duration::from_millis(1500))).await;
    let dir = std::env::temp_dir().join(format!("meshsim-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("envoy.yaml");
    std::fs::write(
        &file,
        config("a", &[("a", a.addr), ("slow", slow.addr)], PORT),
    )
    .unwrap();
    let log = dir.join("proxy.log");
    let proxy = ProxyProcess {
        child: Command::new(meshsim_exe())
            .args(["proxy", "-c"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
        log,
    };
    let client = http1();
    assert!(
        eventually(Duration::from_secs(10), || async {
            upstream_of(&client, "/").await.as_deref() == Some("a")
        })
        .await,
        "the proxy came up:\n{}",
        proxy.log()
    );

    // A request in flight on the old config...
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move {
            let url = format!("http://{LISTEN}:{PORT}/slow");
            get(&client, &url).await.status()
        }
    });
    assert!(eventually(Duration::from_secs(2), || async { slow.count() == 1 }).await);
    // ...while the file changes: `/` now goes to a new cluster b; a is gone.
    let started = Instant::now();
    std::fs::write(
        &file,
        config("b", &[("b", b.addr), ("slow", slow.addr)], PORT),
    )
    .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            upstream_of(&client, "/").await.as_deref() == Some("b")
        })
        .await,
        "the new routes apply:\n{}",
        proxy.log()
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        in_flight.await.unwrap(),
        200,
        "the request in flight finished"
    );
    let admin = format!("http://{LISTEN}:{ADMIN}");
    let dump = body_string(get(&client, &format!("{admin}/config_dump")).await).await;
    assert!(
        dump.contains("\"name\": \"b\"") && !dump.contains("\"name\": \"a\""),
        "{dump}"
    );
    let stats = body_string(get(&client, &format!("{admin}/stats")).await).await;
    assert!(
        stats.contains("cluster_manager.cluster_removed: 1"),
        "{stats}"
    );
    assert!(
        stats.contains("cluster_manager.cluster_added: 3"),
        "two at start, b on reload"
    );
    assert!(proxy.log().contains("config reloaded"), "{}", proxy.log());

    // A file with an error: rejected, logged with its position, the running config stays.
    std::fs::write(
        &file,
        config("b", &[("b", b.addr), ("slow", slow.addr)], PORT)
            .replace("stat_prefix", "stat_prefx"),
    )
    .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            proxy.log().contains("config reload rejected")
        })
        .await,
        "{}",
        proxy.log()
    );
    assert!(
        proxy.log().contains("stat_prefx"),
        "the error names the field:\n{}",
        proxy.log()
    );
    assert_eq!(upstream_of(&client, "/").await.as_deref(), Some("b"));

    // A listener that moves needs a restart: refused, said so.
    std::fs::write(
        &file,
        config("a", &[("a", a.addr), ("slow", slow.addr)], PORT + 1),
    )
    .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            proxy.log().contains("needs a restart")
        })
        .await,
        "{}",
        proxy.log()
    );
    assert_eq!(upstream_of(&client, "/").await.as_deref(), Some("b"));

    // SIGHUP reloads the file as it is (now valid again, pointing at a).
    std::fs::write(
        &file,
        config("a", &[("a", a.addr), ("slow", slow.addr)], PORT),
    )
    .unwrap();
    let pid = nix::unistd::Pid::from_raw(proxy.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            upstream_of(&client, "/").await.as_deref() == Some("a")
        })
        .await,
        "{}",
        proxy.log()
    );
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}

//! Driving the real `meshsim` binary end to end: `up --detach --ephemeral-ports`, `ps --json`
//! to find the published ports, plain HTTP/1.1 to 127.0.0.1, `down` when the test ends
//! (also when it panics).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn meshsim_exe() -> &'static str {
    env!("CARGO_BIN_EXE_meshsim")
}

pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.yaml"))
}

/// A scenario brought up by the binary, removed again on drop.
pub struct Mesh {
    pub runtime: &'static str,
    pub scenario: String,
    state_dir: PathBuf,
    /// `ps --json` right after `up`.
    pub units: Vec<Value>,
}

impl Mesh {
    /// `meshsim up scenarios/NAME.yaml --runtime RUNTIME --detach --ephemeral-ports`, asserting
    /// it succeeds. Local runs keep their state in a directory of their own and never see the
    /// Docker daemon, so tests on both runtimes can run side by side.
    pub fn up(runtime: &'static str, name: &str) -> Mesh {
        let state_dir = std::env::temp_dir().join(format!(
            "meshsim-e2e-{runtime}-{name}-{}-{}",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::create_dir_all(&state_dir).unwrap();
        if runtime == "docker" {
            build_image_once();
        }
        let mut mesh = Mesh {
            runtime,
            scenario: name.to_string(),
            state_dir,
            units: Vec::new(),
        };
        let out = mesh
            .command()
            .args([
                "up",
                "--runtime",
                runtime,
                "--detach",
                "--ephemeral-ports",
                "--timeout",
                "60",
            ])
            .arg(scenario(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "meshsim up {name} ({runtime}) failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        mesh.units = mesh.ps();
        mesh
    }

    /// A `meshsim` command with this mesh's environment.
    pub fn command(&self) -> Command {
        let mut c = Command::new(meshsim_exe());
        c.env("MESHSIM_STATE_DIR", &self.state_dir);
        if self.runtime == "local" {
            c.env(
                "DOCKER_HOST",
                "unix:///nonexistent/meshsim-test-docker.sock",
            );
        }
        c
    }

    /// This mesh's units, from `ps --json`.
    pub fn ps(&self) -> Vec<Value> {
        let out = self.command().args(["ps", "--json"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        all.into_iter()
            .filter(|u| u["scenario"] == self.scenario.as_str() && u["runtime"] == self.runtime)
            .collect()
    }

    /// Where the host reaches `container_port` of `service`'s first replica.
    pub fn port(&self, service: &str, container_port: u16) -> SocketAddr {
        self.port_of(service, 1, container_port)
    }

    pub fn port_of(&self, service: &str, replica: u32, container_port: u16) -> SocketAddr {
        self.units
            .iter()
            .filter(|u| u["service"] == service && u["replica"] == replica)
            .flat_map(|u| u["published"].as_array().cloned().unwrap_or_default())
            .find(|p| p["container_port"] == container_port)
            .map(|p| {
                SocketAddr::new(
                    p["host_ip"].as_str().unwrap().parse().unwrap(),
                    p["host_port"].as_u64().unwrap() as u16,
                )
            })
            .unwrap_or_else(|| {
                panic!(
                    "{service}#{replica} publishes no port {container_port}: {:#?}",
                    self.units
                )
            })
    }

    pub fn down(&self) -> Output {
        self.command()
            .args(["down", &self.scenario])
            .output()
            .unwrap()
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        let out = self.down();
        if !out.status.success() {
            eprintln!(
                "meshsim down failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

/// Tests run in parallel: build meshsim's image once, before any of them imports it.
fn build_image_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let out = Command::new(meshsim_exe()).arg("image").output().unwrap();
        assert!(
            out.status.success(),
            "meshsim image: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// `GET path` with an optional Host header → (status, body). HTTP/1.1, one request per
/// connection, so every request is balanced afresh.
pub fn get(addr: SocketAddr, path: &str, host: Option<&str>) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let host = host.map(str::to_string).unwrap_or_else(|| addr.to_string());
    exchange(&mut stream, path, &host)
}

/// `GET path` over TLS, like `curl -k`: the server's certificate is not verified (the client
/// config is meshsim's own for an UpstreamTlsContext without a validation context).
pub fn get_https(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let config = meshsim::proxy::tls::client::client_config(&meshsim::config::model::UpstreamTls {
        common: Default::default(),
        sni: None,
    })
    .map_err(std::io::Error::other)?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name)
        .map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    exchange(&mut tls, path, &addr.to_string())
}

fn exchange(
    stream: &mut (impl Read + Write),
    path: &str,
    host: &str,
) -> std::io::Result<(u16, String)> {
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    stream.flush()?;
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => {}
        // A TLS peer that closes without close_notify, after answering.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Polls `check` until it returns Some or `within` passes.
pub fn wait_for<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `hostname: H` of a front-proxy answer.
pub fn hostname_of(body: &str) -> Option<String> {
    body.split("hostname: ")
        .nth(1)
        .map(|s| s.split_whitespace().next().unwrap_or("").to_string())
}

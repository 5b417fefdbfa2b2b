//! End to end on the local runtime: every shipped scenario comes up from the real binary as
//! local processes, answers its seed's checks through 127.0.0.1, and leaves nothing behind.

mod support;

use support::mesh::Mesh;
use support::seed_checks;

#[test]
fn front_proxy() {
    let mesh = Mesh::up("local", "front-proxy");
    seed_checks::front_proxy(&mesh);
    assert_down_leaves_nothing(mesh);
}

#[test]
fn front_proxy_v2() {
    let mesh = Mesh::up("local", "front-proxy-v2");
    seed_checks::front_proxy_v2(&mesh);
}

#[test]
fn getting_started() {
    let mesh = Mesh::up("local", "getting-started");
    seed_checks::getting_started(&mesh);
}

#[test]
fn sidecar_grpc() {
    let mesh = Mesh::up("local", "sidecar-grpc");
    seed_checks::sidecar_grpc(&mesh);
}

#[test]
fn edge_envoy() {
    let mesh = Mesh::up("local", "edge-envoy");
    seed_checks::edge_envoy(&mesh);
}

/// `down` stops every process of the run and removes its state; a second `down` has nothing
/// to do and still succeeds.
fn assert_down_leaves_nothing(mesh: Mesh) {
    let pids: Vec<u32> = mesh
        .units
        .iter()
        .map(|u| u["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 7);
    let out = mesh.down();
    assert!(out.status.success());
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting for its (reparented) reaper: not running either way.
        assert!(
            stat.is_empty() || stat.contains(") Z "),
            "pid {pid} still runs: {stat}"
        );
    }
    assert!(mesh.ps().is_empty());
    let again = mesh.down();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to remove"));
}

/// A foreground run prints, every interval, what its proxies see: per cluster the rate, the
/// success and the split over its endpoints (service1's two replicas share the traffic).
#[test]
fn a_foreground_run_reports_rates_and_the_split() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let state = std::env::temp_dir().join(format!("meshsim-report-{}", std::process::id()));
    let mut child = Command::new(support::mesh::meshsim_exe())
        .env("MESHSIM_STATE_DIR", &state)
        .env(
            "DOCKER_HOST",
            "unix:///nonexistent/meshsim-test-docker.sock",
        )
        .args([
            "up",
            "--runtime",
            "local",
            "--ephemeral-ports",
            "--stats-interval",
            "1",
        ])
        .arg(support::mesh::scenario("front-proxy"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Stops the run even if an assertion below fails.
    let mut child = StopOnDrop(child);
    let mut lines = BufReader::new(stdout).lines();
    let mut front = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        // The units table: `front-envoy#1/proxy … 127.0.0.1:PORT->8080, …`.
        if line.contains("front-envoy#1/proxy") {
            front = line
                .split_whitespace()
                .map(|part| part.trim_end_matches(','))
                .find_map(|part| part.strip_suffix("->8080"))
                .map(|addr| addr.parse::<std::net::SocketAddr>().unwrap());
        }
        if line.contains("ready in") {
            break;
        }
    }
    let front = front.expect("the table shows front-envoy's published 8080");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = None;
    while Instant::now() < deadline && seen.is_none() {
        for _ in 0..20 {
            support::mesh::get(front, "/service/1", None).unwrap();
        }
        while let Ok(line) = rx.try_recv() {
            if line.contains("front-envoy#1  service1  ")
                && line.contains("100.0% ok")
                && line.contains("(2/2 healthy)")
            {
                seen = Some(line);
            }
        }
    }
    assert!(child.stop().success());
    let _ = std::fs::remove_dir_all(state);
    let line = seen.expect("a summary line for front-envoy's service1 cluster");
    let split = line.split("split ").nth(1).unwrap();
    let shares: Vec<u32> = split
        .split_whitespace()
        .next()
        .unwrap()
        .split('/')
        .map(|s| s.trim_end_matches('%').parse().unwrap())
        .collect();
    assert_eq!(shares.len(), 2, "{line}");
    assert!(
        shares.iter().all(|s| *s >= 25),
        "both replicas take a share: {line}"
    );
}

/// A foreground `meshsim up` that gets SIGTERM when dropped, so a failing test leaves no run.
struct StopOnDrop(std::process::Child);

impl StopOnDrop {
    fn stop(&mut self) -> std::process::ExitStatus {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::SIGTERM,
        );
        self.0.wait().unwrap()
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.stop();
        }
    }
}

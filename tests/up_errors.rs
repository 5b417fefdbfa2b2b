//! `meshsim up` failure modes: each has its own exit code and message, and leaves nothing
//! running. Also Ctrl-C/SIGTERM teardown of a foreground run, and the janitor.

mod support;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::mesh::{meshsim_exe, scenario};

struct Env {
    state: PathBuf,
}

impl Env {
    fn new(name: &str) -> Env {
        let state =
            std::env::temp_dir().join(format!("meshsim-errors-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).unwrap();
        Env { state }
    }

    /// A meshsim command on the local runtime only (no Docker in sight).
    fn local(&self) -> Command {
        let mut c = Command::new(meshsim_exe());
        c.env("MESHSIM_STATE_DIR", &self.state).env(
            "DOCKER_HOST",
            "unix:///nonexistent/meshsim-test-docker.sock",
        );
        c
    }

    /// `meshsim ARGS… FILE` on the local runtime, to completion.
    fn run(&self, args: &[&str], file: &std::path::Path) -> std::process::Output {
        self.local().args(args).arg(file).output().unwrap()
    }

    fn ps_is_empty(&self) -> bool {
        let out = self.local().args(["ps", "--json"]).output().unwrap();
        let units: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        if !units.is_empty() {
            eprintln!("units: {units:#?}");
        }
        units.is_empty()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = self.local().args(["down", "--all"]).output();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

fn write_scenario(env: &Env, name: &str, text: &str) -> PathBuf {
    let path = env.state.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_taken_host_port_is_exit_6_and_nothing_is_left() {
    let env = Env::new("port");
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let file = write_scenario(
        &env,
        "taken.yaml",
        &format!("name: taken\nservices:\n  web:\n    app: {{sample: http}}\n    publish: [\"{port}:8080\"]\n"),
    );
    let out = env.run(&["up", "--runtime", "local", "--detach"], &file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains(&format!("host port {port}")) && stderr.contains("already in use"),
        "{stderr}"
    );
    assert!(env.ps_is_empty());
}

#[test]
fn an_unreachable_docker_daemon_is_exit_4_with_the_fix() {
    let env = Env::new("docker");
    let out = env.run(&["up", "--runtime", "docker"], &scenario("front-proxy"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("Cannot connect to the Docker daemon")
            && stderr.contains("--runtime local"),
        "{stderr}"
    );
}

#[test]
fn auto_falls_back_to_local_and_says_so() {
    let env = Env::new("auto");
    let out = env.run(
        &["up", "--detach", "--ephemeral-ports"],
        &scenario("front-proxy"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Docker is not available"), "{stdout}");
    assert!(!env.ps_is_empty());
}

#[test]
fn a_user_image_on_the_local_runtime_is_exit_2_and_nothing_is_left() {
    let env = Env::new("image");
    let file = write_scenario(
        &env,
        "image.yaml",
        "name: image\nservices:\n  web:\n    app: {image: example/app:1, port: 80}\n",
    );
    let out = env.run(&["up", "--runtime", "local", "--detach"], &file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("use --runtime docker"), "{stderr}");
    assert!(env.ps_is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_user_image_on_docker_is_exit_5() {
    if support::docker::docker_or_skip().await.is_none() {
        return;
    }
    let file =
        std::env::temp_dir().join(format!("meshsim-missing-image-{}.yaml", std::process::id()));
    std::fs::write(
        &file,
        "name: missing-image\nservices:\n  web:\n    app: {image: meshsim-test/never-built:1, port: 80}\n",
    )
    .unwrap();
    let out = Command::new(meshsim_exe())
        .args(["up", "--runtime", "docker", "--detach"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("meshsim-test/never-built:1") && stderr.contains("docker build"),
        "{stderr}"
    );
    let _ = std::fs::remove_file(file);
}

/// Runs `up` in the foreground until its "ready" line; returns the child.
fn foreground_up(env: &Env) -> std::process::Child {
    let mut child = env
        .local()
        .args(["up", "--runtime", "local", "--ephemeral-ports"])
        .arg(scenario("front-proxy"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .expect("up exited before it was ready")
            .unwrap();
        if line.contains("ready in") {
            break;
        }
    }
    // Keep draining so `up` never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

/// Sends `signal` to a foreground run and checks it exits cleanly, having removed everything,
/// within 10 s.
fn signal_tears_a_foreground_run_down(name: &str, signal: nix::sys::signal::Signal) {
    let env = Env::new(name);
    let mut child = foreground_up(&env);
    assert!(!env.ps_is_empty());
    let started = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(env.ps_is_empty());
}

#[test]
fn sigterm_tears_a_foreground_run_down_within_10_s() {
    signal_tears_a_foreground_run_down("sigterm", nix::sys::signal::SIGTERM);
}

/// Closing the terminal a foreground run was started from (SIGHUP) tears it down as Ctrl-C
/// does, rather than leaving it up until the next run's janitor.
#[test]
fn sighup_tears_a_foreground_run_down_within_10_s() {
    signal_tears_a_foreground_run_down("sighup", nix::sys::signal::SIGHUP);
}

#[test]
fn the_janitor_removes_a_run_whose_owner_was_killed() {
    let env = Env::new("janitor");
    let mut child = foreground_up(&env);
    let pids: Vec<u32> = {
        let out = env.local().args(["ps", "--json"]).output().unwrap();
        serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout)
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap().parse().unwrap())
            .collect()
    };
    child.kill().unwrap(); // SIGKILL: no teardown; the pods live on
    child.wait().unwrap();
    assert!(pids
        .iter()
        .all(|p| std::path::Path::new(&format!("/proc/{p}")).exists()));

    // The next `up` starts with the janitor.
    let out = env.run(
        &["up", "--runtime", "local", "--detach", "--ephemeral-ports"],
        &scenario("front-proxy"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("janitor removed 1 abandoned run"),
        "{stdout}"
    );
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z "),
            "pid {pid} survived the janitor: {stat}"
        );
    }
}

/// A port below 1024 on the local runtime without the right to bind it: exit 6 with the fixes,
/// before anything starts. Needs root to drop to `nobody` with setpriv; skipped otherwise.
#[test]
fn a_privileged_port_without_the_right_is_exit_6_with_the_fixes() {
    if !running_as_root() || Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipping: needs root and setpriv to run meshsim as an unprivileged user");
        return;
    }
    let env = Env::new("lowport");
    // A copy `nobody` can read and run, and a state directory it owns.
    let dir = env.state.join("nobody");
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let exe = dir.join("meshsim");
    std::fs::copy(meshsim_exe(), &exe).unwrap();
    let scenarios = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    for entry in [&env.state, &dir, &dir.join("state")] {
        std::os::unix::fs::chown(entry, Some(65534), Some(65534)).unwrap();
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&exe)
        .args(["up", "--runtime", "local", "--detach"])
        .arg(scenarios.join("front-proxy-v2.yaml"))
        .env("MESHSIM_STATE_DIR", dir.join("state"))
        .env(
            "DOCKER_HOST",
            "unix:///nonexistent/meshsim-test-docker.sock",
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains("listens on port 80, below 1024"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cap_net_bind_service") && stderr.contains("--runtime docker"),
        "{stderr}"
    );
    let runs = dir.join("state/runs");
    assert!(
        !runs.exists() || std::fs::read_dir(runs).unwrap().next().is_none(),
        "nothing started"
    );
}

/// `/proc/self` belongs to the process's effective user.
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[test]
fn a_unit_that_dies_while_starting_fails_at_once_with_its_last_lines() {
    let env = Env::new("dies");
    let file = write_scenario(
        &env,
        "dies.yaml",
        "name: dies\nservices:\n  web:\n    app: {sample: http, env: {FAULT_STATUS: \"999\"}}\n",
    );
    let started = Instant::now();
    let out = env.run(&["up", "--runtime", "local", "--timeout", "60"], &file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "failed fast, not at the timeout"
    );
    assert!(
        stderr.contains("web#1/app: exited while starting"),
        "{stderr}"
    );
    assert!(stderr.contains("── last lines of web#1/app ──"), "{stderr}");
    assert!(
        stderr.contains("web#1/app | "),
        "the unit's own words: {stderr}"
    );
    assert!(env.ps_is_empty());
}

#[test]
fn ctrl_c_before_ready_removes_everything_and_exits_130() {
    let env = Env::new("interrupt");
    // The app listens elsewhere than on its port: it runs, but the mesh never becomes ready.
    let file = write_scenario(
        &env,
        "astray.yaml",
        "name: astray\nservices:\n  web:\n    app: {sample: http, args: [\"--listen\", \"0.0.0.0:9999\"]}\n",
    );
    let mut child = env
        .local()
        .args(["up", "--runtime", "local", "--timeout", "120"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = support::mesh::wait_for(Duration::from_secs(20), || {
        (!env.ps_is_empty()).then_some(())
    });
    assert!(started.is_some(), "the run never started");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(env.ps_is_empty());
}

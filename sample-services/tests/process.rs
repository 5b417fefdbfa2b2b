//! `run` as a process sees it: flags and env vars, signals, exit codes.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::StatusCode;

const BIN: &str = env!("CARGO_BIN_EXE_sample-service");

/// Start the binary and read the address it reports on stderr.
fn spawn(args: &[&str], env: &[(&str, &str)]) -> (Child, SocketAddr) {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // The tests pick their settings; none may leak in from the environment.
    for var in [
        "LISTEN",
        "MESHSIM_POD_IP",
        "MESHSIM_HOSTNAME",
        "SERVICE_NAME",
        "TRACE_NEXT_HOP",
        "GRPC_UPSTREAM",
        "FAULT_DELAY",
        "FAULT_STATUS",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    let mut child = command.spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    // Keep draining, so a later message cannot fail on a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (child, addr)
}

fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: plain kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(rc, 0);
}

fn wait_exit(child: &mut Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().expect("exited, not killed");
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("did not exit after the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn sigterm_stops_cleanly() {
    let (mut child, addr) = spawn(
        &[
            "--kind",
            "http",
            "--listen",
            "127.0.0.1:0",
            "--hostname",
            "proc-a",
        ],
        &[],
    );
    let r = common::get(addr, "/service/1").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-served-by"), "proc-a");
    signal(&child, libc::SIGTERM);
    assert_eq!(wait_exit(&mut child), 0);
}

#[tokio::test]
async fn sigint_stops_cleanly() {
    let (mut child, addr) = spawn(&["--kind", "grpc", "--listen", "127.0.0.1:0"], &[]);
    assert_eq!(
        common::get(addr, "/meshsim/stats").await.status,
        StatusCode::OK
    );
    signal(&child, libc::SIGINT);
    assert_eq!(wait_exit(&mut child), 0);
}

#[tokio::test]
async fn settings_from_env_and_flags_win() {
    let (mut child, addr) = spawn(
        &["--kind", "http", "--hostname", "from-flag"],
        &[
            ("LISTEN", "127.0.0.1:0"),
            ("MESHSIM_HOSTNAME", "from-env"),
            ("SERVICE_NAME", "5"),
            ("FAULT_STATUS", "503:100"),
        ],
    );
    let r = common::get(addr, "/service/5").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.header("x-served-by"), "from-flag");
    let r = common::get(addr, "/service/5?status=503:0").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("hostname: from-flag "), "{}", r.body);
    signal(&child, libc::SIGTERM);
    assert_eq!(wait_exit(&mut child), 0);
}

#[test]
fn bind_failure_exits_1_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = Command::new(BIN)
        .args(["--kind", "gateway", "--listen", &addr])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&addr), "{stderr}");
}

#[test]
fn bad_flag_values_are_rejected() {
    for args in [
        ["--kind", "http", "--fault-status", "7"],
        ["--kind", "http", "--fault-delay", "soon"],
        ["--kind", "gateway", "--upstream", "https://x"],
    ] {
        let output = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
    }
}

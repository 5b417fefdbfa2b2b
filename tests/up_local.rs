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

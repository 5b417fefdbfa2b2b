//! `meshsim test` end to end, from the real binary: a passing and a deliberately failing
//! scenario on the local runtime (exit codes, the table, JSON and JUnit content), invalid input
//! (exit 2, nothing started), and on Docker a target only reachable inside the network (the
//! generator runs in a container) with nothing left behind.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::docker::docker_or_skip;
use support::mesh::meshsim_exe;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/test")
        .join(name)
}

/// A scratch directory for reports and a local runtime's state.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "meshsim-test-cmd-{test}-{}-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn meshsim_test(runtime: &str, dir: &Path, args: &[&Path]) -> Output {
    let mut c = Command::new(meshsim_exe());
    c.env("MESHSIM_STATE_DIR", dir.join("state"))
        .arg("test")
        .args(["--runtime", runtime])
        .arg("--junit")
        .arg(dir.join("junit.xml"))
        .arg("--json")
        .arg(dir.join("results.json"))
        .args(args);
    if runtime == "local" {
        c.env(
            "DOCKER_HOST",
            "unix:///nonexistent/meshsim-test-docker.sock",
        );
    }
    c.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_passing_and_a_failing_scenario_on_the_local_runtime() {
    let dir = scratch("local");
    let out = meshsim_test(
        "local",
        &dir,
        &[&fixture("pass.yaml"), &fixture("fail.yaml")],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 of 2 scenarios passed"), "{all}");
    assert!(stdout.contains("fault: app app#1"), "{all}");

    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testsuite ").count(), 2, "{junit}");
    // pass: 3 expectations, none failed; fail: 3 expectations, exactly the broken phase failed.
    assert_eq!(junit.matches("<testcase ").count(), 6, "{junit}");
    assert_eq!(junit.matches("<failure ").count(), 1, "{junit}");
    let failure = junit
        .split("<failure ")
        .nth(1)
        .unwrap()
        .split("</failure>")
        .next()
        .unwrap();
    assert!(failure.contains("threshold == 100%"), "{failure}");
    assert!(failure.contains("phase broken"), "{failure}");
    assert!(
        failure.contains("app app#1"),
        "the fault active then: {failure}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let text = json.to_string();
    assert!(
        text.contains("test-pass") && text.contains("test-fail"),
        "{text}"
    );
    // Nothing of either run is left.
    let ps = Command::new(meshsim_exe())
        .env("MESHSIM_STATE_DIR", dir.join("state"))
        .env(
            "DOCKER_HOST",
            "unix:///nonexistent/meshsim-test-docker.sock",
        )
        .args(["ps", "--json"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ps.stdout).trim(), "[]", "{}", text);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn invalid_input_exits_2_before_anything_starts() {
    let dir = scratch("invalid");
    let out = meshsim_test(
        "local",
        &dir,
        &[&fixture("invalid.yaml"), &fixture("invalid-phase.yaml")],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The percent without `%`, with its place and the fix; the misspelt phase, with a
    // suggestion.
    assert!(stderr.contains("invalid.yaml:13:35"), "{all}");
    assert!(stderr.contains("a percentage needs `%`: `>= 99%`"), "{all}");
    assert!(stderr.contains("invalid-phase.yaml:13"), "{all}");
    assert!(stderr.contains("did you mean `steady`?"), "{all}");
    // Reports are written for invalid input too (CI shows why).
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains("<error"), "{junit}");
    assert!(
        !dir.join("state").join("runs").exists()
            || std::fs::read_dir(dir.join("state/runs"))
                .unwrap()
                .next()
                .is_none()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unpublished_target_is_loaded_from_a_container_on_docker() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(docker) = rt.block_on(docker_or_skip()) else {
        return;
    };
    let dir = scratch("docker");
    let out = meshsim_test("docker", &dir, &[&fixture("unpublished.yaml")]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("from a container on the run's network"),
        "{all}"
    );
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), 2, "{junit}");
    assert_eq!(junit.matches("<failure ").count(), 0, "{junit}");
    // Nothing of the run is left: containers (the generator's too) and network.
    let left = rt.block_on(support::docker::labelled(
        &docker,
        "meshsim.scenario=test-unpublished",
    ));
    assert_eq!(left, (0, 0), "(containers, networks) left");
    let _ = std::fs::remove_dir_all(&dir);
}

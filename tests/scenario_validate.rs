//! `meshsim validate` on scenario files: the shipped scenarios are valid, and every class of bad
//! scenario (one fixture each, under tests/fixtures/scenarios/invalid/) is rejected with the
//! message, position and fix its `# expect:` lines name.

use std::path::{Path, PathBuf};
use std::process::Command;

fn meshsim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_meshsim"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn shipped_scenarios_are_valid() {
    let dir = root().join("scenarios");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let out = meshsim().arg("validate").arg(&path).output().unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stdout).contains("OK (scenario"));
            checked += 1;
        }
    }
    assert_eq!(
        checked, 13,
        "the five seeds (front-proxy, front-proxy-v2, getting-started, sidecar-grpc, edge-envoy) \
         and the eight resilience tests"
    );
}

fn expectations(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_invalid_scenario_is_rejected_with_its_message() {
    let dir = root().join("tests/fixtures/scenarios/invalid");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let expected = expectations(&path);
        assert!(
            !expected.is_empty(),
            "{} has no `# expect:` line",
            path.display()
        );
        let out = meshsim()
            .current_dir(&dir)
            .arg("validate")
            .arg(path.file_name().unwrap())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", path.display());
        for want in &expected {
            assert!(
                stderr.contains(want.as_str()),
                "{}: expected `{want}` in:\n{stderr}",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 13);
}

#[test]
fn up_rejects_a_bad_scenario_with_exit_2_and_starts_nothing() {
    let state = tempdir("bad-up");
    let out = meshsim()
        .env("MESHSIM_STATE_DIR", &state)
        .args(["up", "--runtime", "local", "--detach"])
        .arg(root().join("tests/fixtures/scenarios/invalid/unknown-service.yaml"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("names no service of this scenario"));
    assert!(
        !state.join("runs").exists()
            || std::fs::read_dir(state.join("runs"))
                .unwrap()
                .next()
                .is_none()
    );
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshsim-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

//! End to end on real Docker: every shipped scenario comes up from the real binary, answers its
//! seed's checks through ports published on 127.0.0.1, and `down` leaves no container or
//! network with its labels (asserted through the Docker API). Without a daemon these tests are
//! skipped with a reason, except under CI=true, where they fail.

mod support;

use support::mesh::Mesh;
use support::seed_checks;

async fn docker_up(name: &str) -> Option<Mesh> {
    support::docker::docker_or_skip().await?;
    let name = name.to_string();
    Some(
        tokio::task::spawn_blocking(move || Mesh::up("docker", &name))
            .await
            .unwrap(),
    )
}

/// Containers and networks still labelled with `scenario`.
async fn leftovers(scenario: &str) -> (usize, usize) {
    let docker = support::docker::docker_or_skip().await.unwrap();
    support::docker::labelled(&docker, &format!("meshsim.scenario={scenario}")).await
}

async fn check_and_down(mesh: Mesh, check: fn(&Mesh)) {
    let scenario = mesh.scenario.clone();
    let mesh = tokio::task::spawn_blocking(move || {
        check(&mesh);
        mesh
    })
    .await
    .unwrap();
    let (containers, networks) = leftovers(&scenario).await;
    assert!(
        containers > 0 && networks == 1,
        "the run is labelled: {containers} containers, {networks} networks"
    );
    let out = mesh.down();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        leftovers(&scenario).await,
        (0, 0),
        "down removed everything of {scenario}"
    );
    let again = mesh.down();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to remove"));
}

#[tokio::test(flavor = "multi_thread")]
async fn front_proxy() {
    let Some(mesh) = docker_up("front-proxy").await else {
        return;
    };
    check_and_down(mesh, seed_checks::front_proxy).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn front_proxy_v2() {
    let Some(mesh) = docker_up("front-proxy-v2").await else {
        return;
    };
    check_and_down(mesh, seed_checks::front_proxy_v2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn getting_started() {
    let Some(mesh) = docker_up("getting-started").await else {
        return;
    };
    check_and_down(mesh, seed_checks::getting_started).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sidecar_grpc() {
    let Some(mesh) = docker_up("sidecar-grpc").await else {
        return;
    };
    check_and_down(mesh, seed_checks::sidecar_grpc).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn edge_envoy() {
    let Some(mesh) = docker_up("edge-envoy").await else {
        return;
    };
    check_and_down(mesh, seed_checks::edge_envoy).await;
}

//! A strict_dns cluster follows replicas that die or appear, without a restart: the front
//! proxy of the front-proxy scenario re-resolves `service1` (every 5 s, Envoy's default) and
//! balances over whatever runs. Checked on both runtimes, through the runtimes' own API.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use meshsim::runtime::docker::Which;
use meshsim::runtime::local::LocalRuntime;
use meshsim::runtime::{Plan, PortPurpose, UnitStatus};
use meshsim::supervisor::readiness;
use support::mesh::scenario;
use support::seed_checks::service1_hostnames;

fn front_proxy_plan() -> Plan {
    let loaded = meshsim::scenario::load(&scenario("front-proxy")).unwrap();
    let run = meshsim::scenario::plan::new_run_id();
    let mut plan =
        meshsim::scenario::plan::plan(&loaded.scenario, &loaded.configs, run, true).unwrap();
    for port in plan.pods.iter_mut().flat_map(|p| p.ports.iter_mut()) {
        if port.purpose == PortPurpose::Publish {
            port.host_port = None;
        }
    }
    plan
}

fn front_port(units: &[UnitStatus]) -> SocketAddr {
    units
        .iter()
        .filter(|u| u.service == "front-envoy")
        .flat_map(|u| &u.published)
        .find(|p| p.container_port == 8080)
        .map(|p| SocketAddr::new(p.host_ip, p.host_port))
        .expect("front-envoy publishes 8080")
}

async fn wait_ready(plan: &Plan, units: &[UnitStatus]) {
    let probes = readiness::probes(plan, units);
    if let Err(pending) = readiness::wait(&probes, Duration::from_secs(60), |_, _| {}).await {
        panic!("not ready: {pending:?}");
    }
}

/// The third replica: a copy of the second under a new number.
fn third_replica(plan: &Plan) -> meshsim::runtime::Pod {
    let mut pod = plan
        .pods
        .iter()
        .find(|p| p.service == "service1" && p.replica == 2)
        .unwrap()
        .clone();
    pod.replica = 3;
    pod
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn local_runtime_follows_killed_and_added_replicas() {
    let state = std::env::temp_dir().join(format!("meshsim-replicas-{}", std::process::id()));
    let runtime = LocalRuntime::new(support::mesh::meshsim_exe().into(), state.clone());
    let plan = front_proxy_plan();
    let mut run = runtime.launch(&plan).await.unwrap();
    let units = run.units();
    wait_ready(&plan, &units).await;
    let front = front_port(&units);

    let two = blocking(move || service1_hostnames(front, 2)).await;
    assert_eq!(
        two.into_iter().collect::<Vec<_>>(),
        ["service1-1", "service1-2"]
    );

    run.remove_pod("service1", 2).await;
    let one = blocking(move || service1_hostnames(front, 1)).await;
    assert_eq!(one.into_iter().collect::<Vec<_>>(), ["service1-1"]);

    run.add_pod(&third_replica(&plan)).await.unwrap();
    let again = blocking(move || service1_hostnames(front, 2)).await;
    assert_eq!(
        again.into_iter().collect::<Vec<_>>(),
        ["service1-1", "service1-3"]
    );

    run.stop().await;
    assert!(runtime.list().is_empty());
    let _ = std::fs::remove_dir_all(state);
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_runtime_follows_killed_and_added_replicas() {
    let Some(docker) = support::docker::docker_or_skip().await else {
        return;
    };
    let image = support::docker::meshsim_image(&docker).await;
    let plan = front_proxy_plan();
    let cleanup = support::docker::RunGuard::new(&plan.run_id);
    let units = docker.launch(&plan, &image).await.unwrap();
    wait_ready(&plan, &units).await;
    let front = front_port(&units);

    let two = blocking(move || service1_hostnames(front, 2)).await;
    docker
        .remove_pod(&plan.run_id, "service1", 2)
        .await
        .unwrap();
    let one = blocking(move || service1_hostnames(front, 1)).await;
    assert!(
        one.is_subset(&two),
        "the survivor is one of the two: {one:?} {two:?}"
    );

    docker
        .launch_pod(&plan, &third_replica(&plan), &image)
        .await
        .unwrap();
    let again = blocking(move || service1_hostnames(front, 2)).await;
    assert!(
        again.is_superset(&one) && !again.is_subset(&two),
        "a new replica answers: {again:?}"
    );

    let removed = docker.down(&Which::Run(plan.run_id.clone())).await.unwrap();
    assert_eq!(removed.networks, 1);
    assert!(docker.list(Some(&plan.run_id)).await.unwrap().is_empty());
    drop(cleanup);
}

//! A strict_dns cluster follows replicas that die or appear, without a restart: the front
//! proxy of the front-proxy scenario re-resolves `service1` (every 5 s, Envoy's default) and
//! balances over whatever runs. Checked on both runtimes, through the runtimes' own API.

mod support;

use meshsim::runtime::docker::Which;
use meshsim::runtime::local::LocalRuntime;
use meshsim::runtime::Plan;
use support::live::{front_port, front_proxy, wait_ready};
use support::seed_checks::service1_hostnames;

/// The third replica, built as the plan builds replicas (`meshsim up`'s scale-up does too).
fn third_replica(loaded: &meshsim::scenario::Loaded, plan: &Plan) -> meshsim::runtime::Pod {
    meshsim::scenario::plan::replica(&loaded.scenario, &loaded.configs, plan, "service1", 3)
        .unwrap()
        .expect("service1 is in the scenario")
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn local_runtime_follows_killed_and_added_replicas() {
    let state = std::env::temp_dir().join(format!("meshsim-replicas-{}", std::process::id()));
    let runtime = LocalRuntime::new(support::mesh::meshsim_exe().into(), state.clone());
    let (loaded, plan) = front_proxy(true);
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

    run.add_pod(&third_replica(&loaded, &plan)).await.unwrap();
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
    let (loaded, plan) = front_proxy(true);
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
        .launch_pod(&plan, &third_replica(&loaded, &plan), &image)
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

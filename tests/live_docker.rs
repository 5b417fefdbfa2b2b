//! The live task of `meshsim up` on Docker, driven as the terminal UI drives it: kill, scale
//! and fault toggle on the front-proxy scenario (ephemeral ports), seen through the units,
//! events, logs and targets it sends, and through the mesh itself (127.0.0.1 published ports
//! only).

mod support;

use std::time::Duration;

use meshsim::supervisor::live::{self, LiveMesh};
use meshsim::supervisor::Launched;
use meshsim::tui::feed::{Action, EventKind, MeshUpdate};
use support::docker::{docker_or_skip, meshsim_image, RunGuard};
use support::live::{front_port, front_proxy, statuses, until_statuses, wait_ready, Ui};
use support::seed_checks::service1_hostnames;

#[tokio::test(flavor = "multi_thread")]
async fn the_live_task_watches_and_changes_a_docker_mesh() {
    let Some(docker) = docker_or_skip().await else {
        return;
    };
    let image = meshsim_image(&docker).await;
    let (loaded, plan) = front_proxy(true);
    let _cleanup = RunGuard::new(&plan.run_id);
    let units = docker.launch(&plan, &image).await.unwrap();
    wait_ready(&plan, &units).await;
    let front = front_port(&units);

    let mesh = LiveMesh {
        launched: Launched::Docker {
            runtime: docker.clone(),
            run: plan.run_id.clone(),
            image,
        },
        plan: plan.clone(),
        scenario: loaded.scenario,
        configs: loaded.configs,
    };
    let (feed, live) = live::start(mesh, Duration::from_secs(1));
    let mut ui = Ui::new(feed);

    ui.wait(
        "a listing of 7 units",
        Duration::from_secs(10),
        |u| match u {
            MeshUpdate::Units(units) if units.len() == 7 => Some(()),
            _ => None,
        },
    )
    .await;
    ui.targets_until(|t| t.iter().any(|n| n == "front-envoy#1"))
        .await;
    assert_eq!(statuses(front, "/service/1", 2).await, [200, 200]);
    ui.wait("an access log line", Duration::from_secs(15), |u| match u {
        MeshUpdate::Log { unit, line } if unit == "front-envoy#1/proxy" => {
            line.contains("/service/1").then_some(())
        }
        _ => None,
    })
    .await;

    // Kill: the containers stay, exited; the front proxy drops the replica after its DNS
    // refresh (a killed container leaves the network's alias).
    let (kind, text) = ui
        .act(Action::Kill {
            pod: "service1#2".into(),
        })
        .await;
    assert_eq!(kind, EventKind::Action, "{text}");
    assert!(text.contains("killed service1#2: 2 containers"), "{text}");
    ui.event(EventKind::Unit, "service1#2/app died").await;
    let one = tokio::task::spawn_blocking(move || service1_hostnames(front, 1))
        .await
        .unwrap();
    assert_eq!(one.len(), 1);

    // Scale up: a new pod, and its sidecar's admin port a new scrape target.
    ui.scale_up_service2().await;

    // Fault toggle through the app port published on 127.0.0.1.
    let (kind, text) = ui
        .act(Action::ToggleFault {
            pod: "service2#1".into(),
        })
        .await;
    assert_eq!(kind, EventKind::Fault, "{text}");
    until_statuses(front, "/service/2", |s| s.contains(&503)).await;
    let (kind, _) = ui
        .act(Action::ToggleFault {
            pod: "service2#1".into(),
        })
        .await;
    assert_eq!(kind, EventKind::Fault);
    until_statuses(front, "/service/2", |s| s.iter().all(|c| *c == 200)).await;

    let mesh = live.stop().await.unwrap();
    mesh.launched.teardown().await.unwrap();
    assert!(docker.list(Some(&plan.run_id)).await.unwrap().is_empty());
}

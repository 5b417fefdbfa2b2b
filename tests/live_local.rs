//! The live task of `meshsim up` on the local runtime, driven as the terminal UI drives it:
//! unit listings, events, logs and scrape targets come in; kill, restart, scale and fault
//! toggle go out, and each shows in the real mesh (front-proxy scenario, ephemeral ports).

mod support;

use std::path::PathBuf;
use std::time::Duration;

use meshsim::runtime::local::LocalRuntime;
use meshsim::supervisor::live::{self, LiveMesh};
use meshsim::supervisor::Launched;
use meshsim::tui::feed::{Action, EventKind, MeshUpdate};
use support::live::{front_port, front_proxy, statuses, until_statuses, wait_ready, Ui};
use support::seed_checks::service1_hostnames;

/// Kills the run's processes and removes its state when the test ends, passed or not.
struct LocalGuard {
    state: PathBuf,
    run: String,
}

impl Drop for LocalGuard {
    fn drop(&mut self) {
        let (state, run) = (self.state.clone(), self.run.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let runtime = LocalRuntime::new(support::mesh::meshsim_exe().into(), state.clone());
            rt.block_on(runtime.kill(&run));
            let _ = std::fs::remove_dir_all(state);
        })
        .join();
    }
}

fn pod(name: &str) -> String {
    name.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_live_task_watches_and_changes_a_local_mesh() {
    let state = std::env::temp_dir().join(format!("meshsim-live-{}", std::process::id()));
    let runtime = LocalRuntime::new(support::mesh::meshsim_exe().into(), state.clone());
    let (loaded, mut plan) = front_proxy(false);
    // The front proxy's admin port on a fixed host port (found free), as a scenario's
    // `publish:` has it without --ephemeral-ports.
    let fixed_admin = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    plan.pods
        .iter_mut()
        .filter(|p| p.service == "front-envoy")
        .flat_map(|p| p.ports.iter_mut())
        .filter(|p| p.container_port == 8001)
        .for_each(|p| p.host_port = Some(fixed_admin.port()));
    let _guard = LocalGuard {
        state: state.clone(),
        run: plan.run_id.clone(),
    };
    let run = runtime.launch(&plan).await.unwrap();
    let units = run.units();
    assert!(
        units.iter().all(|u| u.started_at.is_some()),
        "local units know when they started"
    );
    wait_ready(&plan, &units).await;
    let front = front_port(&units);

    let mesh = LiveMesh {
        launched: Launched::Local(run),
        plan: plan.clone(),
        scenario: loaded.scenario,
        configs: loaded.configs,
    };
    let (feed, live) = live::start(mesh, Duration::from_secs(1));
    let mut ui = Ui::new(feed);

    // Every unit, at once.
    let all = ui
        .wait(
            "a listing of 7 units",
            Duration::from_secs(10),
            |u| match u {
                MeshUpdate::Units(units) if units.len() == 7 => Some(units.clone()),
                _ => None,
            },
        )
        .await;
    assert!(all.iter().all(|u| u.state == "running"), "{all:#?}");
    let names = ui
        .targets_until(|t| t.iter().any(|n| n == "front-envoy#1"))
        .await;
    // The sidecars have admin ports too: every proxy pod is a target.
    assert_eq!(
        names.len(),
        4,
        "front-envoy and three sidecar pods: {names:?}"
    );

    // The front proxy's access log, as the requests arrive.
    let sent = statuses(front, "/service/1", 3).await;
    assert_eq!(sent, [200, 200, 200]);
    let line = ui
        .wait("an access log line", Duration::from_secs(10), |u| match u {
            MeshUpdate::Log { unit, line } if unit == "front-envoy#1/proxy" => Some(line.clone()),
            _ => None,
        })
        .await;
    assert!(line.contains("/service/1"), "{line}");

    // Kill: the units stay, dead; the front proxy stops balancing to them after its DNS
    // refresh.
    let (kind, text) = ui
        .act(Action::Kill {
            pod: pod("service1#2"),
        })
        .await;
    assert_eq!(kind, EventKind::Action, "{text}");
    assert!(text.contains("killed service1#2: 2 processes"), "{text}");
    ui.event(EventKind::Unit, "service1#2/app died (exited)")
        .await;
    let dead = ui.unit_in_state("service1#2/sidecar", "exited").await;
    assert_eq!(dead.unit, "service1#2/sidecar");
    let one = tokio::task::spawn_blocking(move || service1_hostnames(front, 1))
        .await
        .unwrap();
    assert_eq!(one.into_iter().collect::<Vec<_>>(), ["service1-1"]);

    // Restart: the same replica number, running again, and its start-up output shows.
    let (kind, text) = ui
        .act(Action::Restart {
            pod: pod("service1#2"),
        })
        .await;
    assert_eq!(
        (kind, text.as_str()),
        (EventKind::Action, "restarted service1#2")
    );
    ui.event(EventKind::Unit, "service1#2/app restarted").await;
    ui.wait(
        "a log line of the restarted app",
        Duration::from_secs(10),
        |u| match u {
            MeshUpdate::Log { unit, .. } if unit.starts_with("service1#2/") => Some(()),
            _ => None,
        },
    )
    .await;
    let two = tokio::task::spawn_blocking(move || service1_hostnames(front, 2))
        .await
        .unwrap();
    assert_eq!(
        two.into_iter().collect::<Vec<_>>(),
        ["service1-1", "service1-2"]
    );

    // Scale up: a new replica, built like the others, and its sidecar becomes a target.
    ui.scale_up_service2().await;

    // Fault toggle: service2#1's app fails half of its requests, then recovers.
    let (kind, text) = ui
        .act(Action::ToggleFault {
            pod: pod("service2#1"),
        })
        .await;
    assert_eq!(kind, EventKind::Fault, "{text}");
    until_statuses(front, "/service/2", |s| s.contains(&503)).await;
    let (kind, text) = ui
        .act(Action::ToggleFault {
            pod: pod("service2#1"),
        })
        .await;
    assert_eq!(
        (kind, text.as_str()),
        (EventKind::Fault, "service2#1: fault cleared")
    );
    until_statuses(front, "/service/2", |s| s.iter().all(|c| *c == 200)).await;

    // What cannot be done says why.
    let (kind, text) = ui
        .act(Action::ToggleFault {
            pod: pod("front-envoy#1"),
        })
        .await;
    assert_eq!(kind, EventKind::Error);
    assert!(text.contains("fault toggle needs a sample app"), "{text}");
    let (kind, text) = ui
        .act(Action::Kill {
            pod: pod("service9#1"),
        })
        .await;
    assert_eq!(kind, EventKind::Error);
    assert!(text.contains("no pod `service9#1`"), "{text}");

    // Scale down: the highest replica goes, with its target; the last one stays.
    let down = Action::Scale {
        service: "service2".into(),
        delta: -1,
    };
    let (kind, text) = ui.act(down.clone()).await;
    assert_eq!(
        (kind, text.as_str()),
        (
            EventKind::Action,
            "scaled service2 to 1 replica (removed service2#2)"
        )
    );
    ui.event(EventKind::Unit, "service2#2/app removed").await;
    ui.targets_until(|t| !t.iter().any(|n| n == "service2#2"))
        .await;
    let (kind, text) = ui.act(down).await;
    assert_eq!(kind, EventKind::Error);
    assert!(text.contains("one replica left"), "{text}");

    // A fixed host port cannot be held by two replicas: the error says so, and the fix.
    let (kind, text) = ui
        .act(Action::Scale {
            service: "front-envoy".into(),
            delta: 1,
        })
        .await;
    assert_eq!(kind, EventKind::Error);
    assert!(
        text.contains(&format!("publishes host port {}", fixed_admin.port()))
            && text.contains("--ephemeral-ports"),
        "{text}"
    );
    // ...but a restarted pod gets it back (the old pod's forwarder let it go).
    let (kind, text) = ui
        .act(Action::Restart {
            pod: pod("front-envoy#1"),
        })
        .await;
    assert_eq!(
        (kind, text.as_str()),
        (EventKind::Action, "restarted front-envoy#1")
    );
    let ready = tokio::task::spawn_blocking(move || {
        support::mesh::wait_for(Duration::from_secs(20), || {
            let (status, body) = support::mesh::get(fixed_admin, "/ready", None).ok()?;
            (status == 200 && body.trim() == "LIVE").then_some(())
        })
    })
    .await
    .unwrap();
    assert!(
        ready.is_some(),
        "the restarted front proxy's admin answers on {fixed_admin}"
    );

    // Stopping gives the run back; teardown removes everything.
    let mesh = live.stop().await.unwrap();
    mesh.launched.teardown().await.unwrap();
    assert!(runtime.list().is_empty());
}

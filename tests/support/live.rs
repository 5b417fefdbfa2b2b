//! Driving the supervisor's live task in-process, as the terminal UI does: read its updates,
//! send it actions, watch its scrape targets.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use meshsim::runtime::{Plan, PortPurpose, UnitStatus};
use meshsim::scenario::Loaded;
use meshsim::scrape::Target;
use meshsim::supervisor::readiness;
use meshsim::tui::feed::{Action, EventKind, MeshUpdate};
use tokio::sync::{mpsc, watch};

use super::mesh::scenario;

/// The front-proxy scenario and its plan, every `publish:` port on a free host port.
pub fn front_proxy(detached: bool) -> (Loaded, Plan) {
    let loaded = meshsim::scenario::load(&scenario("front-proxy")).unwrap();
    let run = meshsim::scenario::plan::new_run_id();
    let mut plan =
        meshsim::scenario::plan::plan(&loaded.scenario, &loaded.configs, run, detached).unwrap();
    for port in plan.pods.iter_mut().flat_map(|p| p.ports.iter_mut()) {
        if port.purpose == PortPurpose::Publish {
            port.host_port = None;
        }
    }
    (loaded, plan)
}

pub async fn wait_ready(plan: &Plan, units: &[UnitStatus]) {
    let probes = readiness::probes(plan, units);
    if let Err(pending) = readiness::wait(&probes, Duration::from_secs(60), |_, _| {}).await {
        panic!("not ready: {pending:?}");
    }
}

/// Where the host reaches the front proxy's listener (8080).
pub fn front_port(units: &[UnitStatus]) -> SocketAddr {
    units
        .iter()
        .filter(|u| u.service == "front-envoy")
        .flat_map(|u| &u.published)
        .find(|p| p.container_port == 8080)
        .map(|p| SocketAddr::new(p.host_ip, p.host_port))
        .expect("front-envoy publishes 8080")
}

/// The UI's end of the live task.
pub struct Ui {
    pub updates: mpsc::Receiver<MeshUpdate>,
    pub actions: mpsc::Sender<Action>,
    pub targets: watch::Receiver<Vec<Target>>,
    /// Every event seen, for failure messages.
    pub events: Vec<String>,
    pub last_units: Vec<UnitStatus>,
}

impl Ui {
    pub fn new(feed: meshsim::tui::feed::Feed) -> Ui {
        let link = feed.mesh.expect("`up` feeds a mesh link");
        Ui {
            updates: link.updates,
            actions: link.actions,
            targets: feed.targets,
            events: Vec::new(),
            last_units: Vec::new(),
        }
    }

    /// Reads updates until `check` returns Some, for at most `within`.
    pub async fn wait<T>(
        &mut self,
        what: &str,
        within: Duration,
        mut check: impl FnMut(&MeshUpdate) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let update = match tokio::time::timeout(left, self.updates.recv()).await {
                Ok(Some(update)) => update,
                Ok(None) => panic!("the live task ended while waiting for {what}"),
                Err(_) => panic!(
                    "no {what} within {within:?}; events so far:\n  {}",
                    self.events.join("\n  ")
                ),
            };
            match &update {
                MeshUpdate::Event(e) => self.events.push(format!("{} {}", e.kind.label(), e.text)),
                MeshUpdate::Units(units) => self.last_units = units.clone(),
                MeshUpdate::Log { .. } => {}
            }
            if let Some(found) = check(&update) {
                return found;
            }
        }
    }

    /// Waits for an event of `kind` whose text contains `needle`; returns its text.
    pub async fn event(&mut self, kind: EventKind, needle: &str) -> String {
        let what = format!("{} event with {needle:?}", kind.label());
        self.wait(&what, Duration::from_secs(60), |u| match u {
            MeshUpdate::Event(e) if e.kind == kind && e.text.contains(needle) => {
                Some(e.text.clone())
            }
            _ => None,
        })
        .await
    }

    /// Sends an action and waits for its outcome: the first event of kind Action, Fault or
    /// Error after it.
    pub async fn act(&mut self, action: Action) -> (EventKind, String) {
        self.actions.send(action.clone()).await.unwrap();
        self.wait(
            &format!("the outcome of {action:?}"),
            Duration::from_secs(90),
            |u| match u {
                MeshUpdate::Event(e)
                    if matches!(
                        e.kind,
                        EventKind::Action | EventKind::Fault | EventKind::Error
                    ) =>
                {
                    Some((e.kind, e.text.clone()))
                }
                _ => None,
            },
        )
        .await
    }

    /// Scales service2 of the front-proxy scenario up by one and waits until its second pod
    /// runs and its sidecar is a scrape target.
    pub async fn scale_up_service2(&mut self) {
        let (kind, text) = self
            .act(Action::Scale {
                service: "service2".into(),
                delta: 1,
            })
            .await;
        assert_eq!(
            (kind, text.as_str()),
            (
                EventKind::Action,
                "scaled service2 to 2 replicas (started service2#2)"
            )
        );
        self.unit_in_state("service2#2/app", "running").await;
        self.targets_until(|t| t.iter().any(|n| n == "service2#2"))
            .await;
    }

    /// Waits until a listing holds a unit named `unit` in `state`.
    pub async fn unit_in_state(&mut self, unit: &str, state: &str) -> UnitStatus {
        self.wait(
            &format!("a listing with {unit} {state}"),
            Duration::from_secs(30),
            |u| match u {
                MeshUpdate::Units(units) => units
                    .iter()
                    .find(|u| u.unit == unit && u.state == state)
                    .cloned(),
                _ => None,
            },
        )
        .await
    }

    /// Waits until the scrape targets satisfy `check`; returns their names.
    pub async fn targets_until(&mut self, check: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let names: Vec<String> = self
                .targets
                .borrow_and_update()
                .iter()
                .map(|t| t.name.clone())
                .collect();
            if check(&names) {
                return names;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, self.targets.changed())
                .await
                .is_err()
            {
                panic!("the scrape targets never matched; last: {names:?}");
            }
        }
    }
}

/// The statuses of `n` requests to `path` through the front proxy (each on a new connection).
pub async fn statuses(front: SocketAddr, path: &'static str, n: usize) -> Vec<u16> {
    tokio::task::spawn_blocking(move || {
        (0..n)
            .map(|_| super::mesh::get(front, path, None).map_or(0, |(s, _)| s))
            .collect()
    })
    .await
    .unwrap()
}

/// Polls until a round of 40 requests to `path` satisfies `check`, for up to 30 s.
pub async fn until_statuses(front: SocketAddr, path: &'static str, check: impl Fn(&[u16]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = statuses(front, path, 40).await;
        if check(&got) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never matched; last round: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

//! The supervisor's side of the terminal UI while a mesh is up: a task next to the UI that
//! owns the launched run and
//! - lists its units every second (`MeshUpdate::Units`) and says what changed (`Event`s);
//! - keeps the scrape targets current, one per proxy pod with an admin port, as replicas come
//!   and go;
//! - follows every unit's output (`MeshUpdate::Log`);
//! - does what the UI asks ([`Action`]s) and reports each outcome as an event.
//!
//! It never waits for the UI (see [`outbox`]), and gives the run back when stopped, for the
//! usual teardown.

mod actions;
mod diff;
mod follow;
mod outbox;
pub mod steps;

use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::runtime::{Plan, Pod, UnitStatus};
use crate::scenario::{Configs, Scenario};
use crate::scrape::Target;
use crate::tui::feed::{Action, EventKind, Feed, MeshLink, MeshUpdate};

use super::launched::Launched;
use super::readiness;

pub use actions::ActionError;

/// How often the run's units are listed.
const LIST_EVERY: Duration = Duration::from_secs(1);
/// Updates the UI has not read yet (mostly log lines; beyond this they are dropped).
const UPDATES: usize = 1024;
/// Actions queued behind the one being done (a UI has no reason to queue more).
const ACTIONS: usize = 16;

/// A running mesh and what is needed to change it: the plan it was launched from (pods added
/// since included) and the scenario, to build new replicas the way the plan builds them.
pub struct LiveMesh {
    pub launched: Launched,
    pub plan: Plan,
    pub scenario: Scenario,
    pub configs: Configs,
}

impl LiveMesh {
    /// The pod to launch as `service#replica`: the plan's, or a new one built like it.
    fn pod_spec(&self, service: &str, replica: u32) -> Result<Pod, ActionError> {
        if let Some(pod) = self
            .plan
            .pods
            .iter()
            .find(|p| p.service == service && p.replica == replica)
        {
            return Ok(pod.clone());
        }
        let name = format!("{service}#{replica}");
        crate::scenario::plan::replica(&self.scenario, &self.configs, &self.plan, service, replica)
            .map_err(|source| ActionError::Plan {
                pod: name.clone(),
                source,
            })?
            .ok_or_else(|| ActionError::UnknownService {
                service: service.to_string(),
                known: self
                    .scenario
                    .services
                    .iter()
                    .map(|s| s.name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The plan holds every pod the run has, so a restart rebuilds the same one.
    fn remember(&mut self, pod: Pod) {
        self.forget(&pod.service, pod.replica);
        self.plan.pods.push(pod);
    }

    fn forget(&mut self, service: &str, replica: u32) {
        self.plan
            .pods
            .retain(|p| !(p.service == service && p.replica == replica));
    }
}

/// The running live task: stop it to get the run back.
pub struct LiveHandle {
    stop: oneshot::Sender<()>,
    task: JoinHandle<LiveMesh>,
}

impl LiveHandle {
    /// Stops following and acting (an action under way finishes first) and returns the mesh,
    /// for teardown. Err: the task panicked and the run must be removed by its id.
    pub async fn stop(self) -> Result<LiveMesh, tokio::task::JoinError> {
        let _ = self.stop.send(());
        self.task.await
    }
}

/// Starts the live task on `mesh`; the [`Feed`] is what the terminal UI reads (its scraper
/// reads each proxy every `scrape_interval`).
pub fn start(mesh: LiveMesh, scrape_interval: Duration) -> (Feed, LiveHandle) {
    let (updates_tx, updates_rx) = mpsc::channel(UPDATES);
    let (actions_tx, actions_rx) = mpsc::channel(ACTIONS);
    let (targets_tx, targets_rx) = watch::channel(Vec::new());
    let (stop_tx, stop_rx) = oneshot::channel();
    let task = tokio::spawn(run(mesh, updates_tx, actions_rx, targets_tx, stop_rx));
    let feed = Feed {
        targets: targets_rx,
        interval: scrape_interval,
        mesh: Some(MeshLink {
            updates: updates_rx,
            actions: actions_tx,
        }),
    };
    (
        feed,
        LiveHandle {
            stop: stop_tx,
            task,
        },
    )
}

async fn run(
    mut mesh: LiveMesh,
    updates: mpsc::Sender<MeshUpdate>,
    mut actions: mpsc::Receiver<Action>,
    targets: watch::Sender<Vec<Target>>,
    mut stop: oneshot::Receiver<()>,
) -> LiveMesh {
    let mut outbox = outbox::Outbox::new(updates);
    let mut followers = follow::Followers::new(outbox.sender());
    let mut watch = diff::UnitWatch::default();
    let mut doer = actions::Actions::default();
    let mut tick = tokio::time::interval(LIST_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            Some(action) = actions.recv() => {
                match doer.execute(&mut mesh, action).await {
                    Ok((kind, text)) => outbox.event(kind, text),
                    Err(e) => outbox.event(EventKind::Error, e.to_string()),
                }
                // Show what the action changed now, not up to a second later.
                tick.reset_immediately();
            }
            _ = tick.tick() => {
                match mesh.launched.units().await {
                    Ok(units) => {
                        let diff = watch.update(&units);
                        for text in diff.events {
                            outbox.event(EventKind::Unit, text);
                        }
                        if diff.membership_changed {
                            let now = proxy_targets(&mesh.plan, &units);
                            targets.send_if_modified(|current| {
                                let key = |t: &Target| (t.name.clone(), t.admin);
                                let changed = !current.iter().map(key).eq(now.iter().map(key));
                                *current = now;
                                changed
                            });
                        }
                        followers.sync(&mesh.launched, &units);
                        outbox.units(units);
                    }
                    Err(e) => outbox.event(
                        EventKind::Error,
                        format!("listing the run's units on {}: {e}", mesh.launched.runtime_name()),
                    ),
                }
            }
        }
        outbox.flush();
    }
    followers.stop_all();
    mesh
}

/// One scrape target per proxy pod with an admin port the host can reach, named after the pod
/// (`front-envoy#1`), as readiness finds them.
fn proxy_targets(plan: &Plan, units: &[UnitStatus]) -> Vec<Target> {
    readiness::probes(plan, units)
        .into_iter()
        .filter_map(|p| match p.kind {
            readiness::ProbeKind::Proxy { admin, .. } => Some(Target { name: p.pod, admin }),
            _ => None,
        })
        .collect()
}

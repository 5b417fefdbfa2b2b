//! A scenario test's fault steps done to the live mesh (and undone), each logged with its time
//! for the verdict. Kill, restart and scale are the terminal UI's own actions; the rest —
//! stop, pause, disconnect, proxy runtime faults, config reloads, app faults — live here.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::proxy::filters::fault;
use crate::runtime::{PortPurpose, Program, Role, UnitStatus};
use crate::traffic::faults::{FaultAction, FaultStep, Target};
use crate::verdict::record::FaultLog;

use super::super::http_probe;
use super::actions::{pod_of, replicas_of, runtime, split_pod, Actions};
use super::{ActionError, LiveMesh};

/// How long an admin or app control request may take.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(3);

/// Runs the steps of one test and remembers what must be undone.
#[derive(Default)]
pub struct FaultSteps {
    actions: Actions,
    /// Steps done and not undone, with what undoing needs (scale: the replicas before).
    active: BTreeMap<usize, Undo>,
    /// One entry a step done, in the order done.
    pub log: Vec<FaultLog>,
    /// For each active step, its entry in `log`.
    log_index: BTreeMap<usize, usize>,
}

#[derive(Debug, Clone)]
enum Undo {
    Nothing,
    Restart,
    ScaleBack(u32),
    Restore(Vec<u8>),
}

impl FaultSteps {
    /// Does step `i` at `at` (from the start of traffic) and logs it; a failure is logged too
    /// (the verdict shows it) and returned.
    pub async fn apply(
        &mut self,
        mesh: &mut LiveMesh,
        i: usize,
        step: &FaultStep,
        at: Duration,
    ) -> Result<(), ActionError> {
        let text = step.action.describe();
        let result = self.apply_inner(mesh, step).await;
        let (undo, error) = match result {
            Ok(undo) => (Some(undo), None),
            Err(e) => (None, Some(e)),
        };
        self.log_index.insert(i, self.log.len());
        self.log.push(FaultLog {
            at,
            reverted: None,
            text,
            pod: step.action.pod(),
            error: error.as_ref().map(|e| e.to_string()),
        });
        match (undo, error) {
            (Some(undo), _) => {
                self.active.insert(i, undo);
                Ok(())
            }
            (None, Some(e)) => Err(e),
            (None, None) => unreachable!("either done or failed"),
        }
    }

    /// Undoes step `i` if it is active (its `for:` elapsed, or the run ends).
    pub async fn undo(
        &mut self,
        mesh: &mut LiveMesh,
        i: usize,
        step: &FaultStep,
        at: Duration,
    ) -> Result<(), ActionError> {
        let Some(undo) = self.active.remove(&i) else {
            return Ok(());
        };
        let result = self.undo_inner(mesh, step, undo).await;
        if let Some(entry) = self.log_index.get(&i).and_then(|&n| self.log.get_mut(n)) {
            entry.reverted = Some(at);
            if let Err(e) = &result {
                let undo_error = format!("undoing it failed: {e}");
                entry.error = Some(match entry.error.take() {
                    Some(before) => format!("{before}; {undo_error}"),
                    None => undo_error,
                });
            }
        }
        result
    }

    /// The steps still active, for the end of the run.
    pub fn active(&self) -> Vec<usize> {
        self.active.keys().copied().collect()
    }

    async fn apply_inner(
        &mut self,
        mesh: &mut LiveMesh,
        step: &FaultStep,
    ) -> Result<Undo, ActionError> {
        let units = units(mesh).await?;
        let restart_after = if step.lasts.is_some() {
            Undo::Restart
        } else {
            Undo::Nothing
        };
        match &step.action {
            FaultAction::Kill(t) => {
                for pod in pods(&units, t)? {
                    self.actions.kill(mesh, &units, &pod).await?;
                }
                Ok(restart_after)
            }
            FaultAction::Restart(t) => {
                for pod in pods(&units, t)? {
                    self.actions.restart(mesh, &units, &pod).await?;
                }
                Ok(Undo::Nothing)
            }
            FaultAction::Stop(t) => {
                each_pod(mesh, &units, t, PodOp::Stop).await?;
                Ok(restart_after)
            }
            FaultAction::Pause(t) => {
                each_pod(mesh, &units, t, PodOp::Pause(true)).await?;
                Ok(Undo::Nothing)
            }
            FaultAction::Disconnect(t) => {
                each_pod(mesh, &units, t, PodOp::Connect(false)).await?;
                Ok(Undo::Nothing)
            }
            FaultAction::Scale { service, replicas } => {
                let before = replica_count(&units, service);
                let delta = *replicas as i32 - before as i32;
                if delta != 0 {
                    self.actions.scale(mesh, &units, service, delta).await?;
                }
                Ok(Undo::ScaleBack(before))
            }
            FaultAction::Proxy {
                target,
                abort_percent,
                abort_status,
                delay,
                delay_percent,
            } => {
                let mut keys = Vec::new();
                if let Some(p) = abort_percent {
                    keys.push((fault::ABORT_PERCENT, p.to_string()));
                }
                if let Some(s) = abort_status {
                    keys.push((fault::ABORT_STATUS, s.to_string()));
                }
                if let Some(d) = delay {
                    keys.push((fault::DELAY_MS, d.as_millis().to_string()));
                    keys.push((
                        fault::DELAY_PERCENT,
                        delay_percent.unwrap_or(100.0).to_string(),
                    ));
                }
                runtime_modify(&units, target, &keys).await?;
                Ok(Undo::Nothing)
            }
            FaultAction::Reload {
                service, config, ..
            } => {
                let contents = std::fs::read(config).map_err(|source| ActionError::ReadConfig {
                    path: config.clone(),
                    source,
                })?;
                let original = replace_config(mesh, &units, service, &contents).await?;
                Ok(Undo::Restore(original))
            }
            FaultAction::App {
                target,
                status,
                percent,
                delay,
            } => {
                let mut query = Vec::new();
                if let Some(s) = status {
                    query.push(format!("status={s}:{percent}"));
                }
                if let Some(d) = delay {
                    query.push(format!("delay={}ms", d.as_millis()));
                }
                app_fault(
                    &units,
                    target,
                    http::Method::POST,
                    &format!("/meshsim/fault?{}", query.join("&")),
                )
                .await?;
                Ok(Undo::Nothing)
            }
        }
    }

    async fn undo_inner(
        &mut self,
        mesh: &mut LiveMesh,
        step: &FaultStep,
        undo: Undo,
    ) -> Result<(), ActionError> {
        let units = units(mesh).await?;
        match (&step.action, undo) {
            (FaultAction::Kill(t) | FaultAction::Stop(t), Undo::Restart) => {
                for pod in pods(&units, t)? {
                    self.actions.restart(mesh, &units, &pod).await?;
                }
            }
            (FaultAction::Pause(t), _) => each_pod(mesh, &units, t, PodOp::Pause(false)).await?,
            (FaultAction::Disconnect(t), _) => {
                each_pod(mesh, &units, t, PodOp::Connect(true)).await?
            }
            (FaultAction::Scale { service, .. }, Undo::ScaleBack(before)) => {
                let now = replica_count(&units, service);
                let delta = before as i32 - now as i32;
                if delta != 0 {
                    self.actions.scale(mesh, &units, service, delta).await?;
                }
            }
            (FaultAction::Proxy { target, .. }, _) => {
                // An empty value takes the key out of the admin layer: the config's own
                // percentages apply again.
                let keys: Vec<(&str, String)> = [
                    fault::ABORT_PERCENT,
                    fault::ABORT_STATUS,
                    fault::DELAY_MS,
                    fault::DELAY_PERCENT,
                ]
                .into_iter()
                .map(|k| (k, String::new()))
                .collect();
                runtime_modify(&units, target, &keys).await?;
            }
            (FaultAction::Reload { service, .. }, Undo::Restore(original)) => {
                replace_config(mesh, &units, service, &original).await?;
            }
            (FaultAction::App { target, .. }, _) => {
                app_fault(&units, target, http::Method::DELETE, "/meshsim/fault").await?;
            }
            _ => {}
        }
        Ok(())
    }
}

async fn units(mesh: &LiveMesh) -> Result<Vec<UnitStatus>, ActionError> {
    runtime(mesh.launched.units().await, || {
        "listing the run's units".into()
    })
}

/// The pods a target names that the run has: one, or every replica of a service.
fn pods(units: &[UnitStatus], target: &Target) -> Result<Vec<String>, ActionError> {
    let mut found: Vec<String> = units
        .iter()
        .filter(|u| u.service == target.service && target.replica.is_none_or(|r| r == u.replica))
        .map(|u| pod_of(&u.unit).to_string())
        .collect();
    found.sort();
    found.dedup();
    if found.is_empty() {
        let mut known: Vec<&str> = units.iter().map(|u| pod_of(&u.unit)).collect();
        known.sort_unstable();
        known.dedup();
        return Err(ActionError::UnknownPod {
            pod: target.to_string(),
            known: known.join(", "),
        });
    }
    Ok(found)
}

/// What [`each_pod`] does to a pod, the runtime's way.
#[derive(Debug, Clone, Copy)]
enum PodOp {
    Stop,
    Pause(bool),
    Connect(bool),
}

async fn each_pod(
    mesh: &mut LiveMesh,
    units: &[UnitStatus],
    target: &Target,
    op: PodOp,
) -> Result<(), ActionError> {
    for (service, replica) in split(pods(units, target)?) {
        let launched = &mut mesh.launched;
        let (result, doing) = match op {
            PodOp::Stop => (
                launched.stop_pod(&service, replica).await.map(drop),
                "stopping",
            ),
            PodOp::Pause(on) => (
                launched.pause_pod(&service, replica, on).await.map(drop),
                if on { "pausing" } else { "unpausing" },
            ),
            PodOp::Connect(on) => (
                launched.connect_pod(&service, replica, on).await,
                if on { "reconnecting" } else { "disconnecting" },
            ),
        };
        runtime(result, || format!("{doing} {service}#{replica}"))?;
    }
    Ok(())
}

fn split(pods: Vec<String>) -> Vec<(String, u32)> {
    pods.iter().filter_map(|p| split_pod(p)).collect()
}

fn replica_count(units: &[UnitStatus], service: &str) -> u32 {
    replicas_of(units, service).len() as u32
}

/// Where a unit's port of `purpose` answers from the host.
fn published(unit: &UnitStatus, purpose: PortPurpose) -> Option<SocketAddr> {
    unit.published
        .iter()
        .find(|p| p.purpose == purpose)
        .map(|p| SocketAddr::new(p.host_ip, p.host_port))
}

/// Sets runtime keys on every running proxy of the target (`POST /runtime_modify`).
async fn runtime_modify(
    units: &[UnitStatus],
    target: &Target,
    keys: &[(&str, String)],
) -> Result<(), ActionError> {
    let query = keys
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let proxies: Vec<&UnitStatus> = units
        .iter()
        .filter(|u| u.service == target.service && target.replica.is_none_or(|r| r == u.replica))
        .filter(|u| u.role != Role::App && u.state == "running")
        .collect();
    if proxies.is_empty() {
        return Err(ActionError::NotRunning {
            pod: format!("{target} (its proxy)"),
        });
    }
    for unit in proxies {
        let addr = published(unit, PortPurpose::Admin).ok_or_else(|| ActionError::NoAppPort {
            pod: unit.unit.clone(),
        })?;
        control(
            &unit.unit,
            addr,
            http::Method::POST,
            &format!("/runtime_modify?{query}"),
        )
        .await?;
    }
    Ok(())
}

/// A sample app's `/meshsim/fault`, on every running replica of the target.
async fn app_fault(
    units: &[UnitStatus],
    target: &Target,
    method: http::Method,
    path: &str,
) -> Result<(), ActionError> {
    let apps: Vec<&UnitStatus> = units
        .iter()
        .filter(|u| u.service == target.service && target.replica.is_none_or(|r| r == u.replica))
        .filter(|u| u.role == Role::App && u.state == "running")
        .collect();
    if apps.is_empty() {
        return Err(ActionError::NotRunning {
            pod: target.to_string(),
        });
    }
    for unit in apps {
        let addr = published(unit, PortPurpose::App).ok_or_else(|| ActionError::NoAppPort {
            pod: unit.unit.clone(),
        })?;
        control(&unit.unit, addr, method.clone(), path).await?;
    }
    Ok(())
}

async fn control(
    pod: &str,
    addr: SocketAddr,
    method: http::Method,
    path: &str,
) -> Result<(), ActionError> {
    let fail = |reason: String| ActionError::FaultControl {
        pod: pod.to_string(),
        addr,
        reason,
    };
    let (status, body) = http_probe::request(addr, method, path, CONTROL_TIMEOUT)
        .await
        .map_err(|e| fail(e.to_string()))?;
    if status != 200 {
        return Err(fail(format!("{path} answered {status} {}", body.trim())));
    }
    Ok(())
}

/// Gives every replica of a proxy service `contents` as its config; returns the config it
/// had (the plan's), to restore.
async fn replace_config(
    mesh: &mut LiveMesh,
    units: &[UnitStatus],
    service: &str,
    contents: &[u8],
) -> Result<Vec<u8>, ActionError> {
    let planned = mesh
        .plan
        .pods
        .iter()
        .find(|p| p.service == service)
        .and_then(|p| {
            p.containers.iter().find_map(|c| match &c.program {
                Program::Proxy { config, .. } => Some(config.clone()),
                _ => None,
            })
        })
        .ok_or_else(|| ActionError::UnknownService {
            service: format!("{service} (with a proxy)"),
            known: mesh
                .scenario
                .services
                .iter()
                .filter(|s| s.proxy().is_some())
                .map(|s| s.name.clone())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    for (service, replica) in split(pods(
        units,
        &Target {
            service: service.to_string(),
            replica: None,
        },
    )?) {
        runtime(
            mesh.launched
                .replace_config(&service, replica, &planned.container_path, contents)
                .await,
            || format!("replacing the config of {service}#{replica}"),
        )?;
    }
    Ok(planned.contents)
}

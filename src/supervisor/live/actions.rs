//! What the UI's keys do to a running mesh: kill, restart, scale, fault toggle. Each action
//! either does what it says or fails with an [`ActionError`] that names the thing and the fix.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use crate::runtime::{PortPurpose, Program, Role, UnitStatus};
use crate::tui::feed::{Action, EventKind};

use super::super::http_probe;
use super::super::launched::RuntimeError;
use super::LiveMesh;

/// How long the fault toggle waits for an app's control endpoint.
const FAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// What the fault toggle makes an app answer: 503 on half of its requests.
const FAULT: &str = "status=503:50";

/// Why an action could not be done.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no pod `{pod}` in this run (pods are named service#replica: {known})")]
    UnknownPod { pod: String, known: String },
    #[error("no service `{service}` in this scenario (services: {known})")]
    UnknownService { service: String, known: String },
    #[error("{service} has one replica left: scaling down stops at 1 (k kills it if you mean it)")]
    LastReplica { service: String },
    #[error("{service} publishes host port {port}, which a second replica cannot hold too; rerun `meshsim up` with --ephemeral-ports to scale it")]
    FixedHostPort { service: String, port: u16 },
    #[error("fault toggle needs a sample app: {pod} {what}")]
    NotSampleApp { pod: String, what: String },
    #[error("{pod} is not running (r restarts it)")]
    NotRunning { pod: String },
    #[error("{pod}'s app has no port the host can reach, so its faults cannot be set")]
    NoAppPort { pod: String },
    #[error("setting the fault of {pod} at {addr}: {reason}")]
    FaultControl {
        pod: String,
        addr: SocketAddr,
        reason: String,
    },
    #[error("reading the new config {}: {source} (the reload step names it, relative to the scenario)", path.display())]
    ReadConfig {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("building {pod}: {source}")]
    Plan { pod: String, source: std::io::Error },
    #[error("{what}: {source}")]
    Runtime { what: String, source: RuntimeError },
}

/// The outcome of a successful action: the event's kind and text.
pub type Done = (EventKind, String);

/// The state actions share: which pods the fault toggle has made fail.
#[derive(Debug, Default)]
pub struct Actions {
    faulted: BTreeSet<String>,
}

impl Actions {
    pub async fn execute(
        &mut self,
        mesh: &mut LiveMesh,
        action: Action,
    ) -> Result<Done, ActionError> {
        let units = mesh
            .launched
            .units()
            .await
            .map_err(|source| ActionError::Runtime {
                what: "listing the run's units".into(),
                source,
            })?;
        match action {
            Action::Kill { pod } => self.kill(mesh, &units, &pod).await,
            Action::Restart { pod } => self.restart(mesh, &units, &pod).await,
            Action::Scale { service, delta } => self.scale(mesh, &units, &service, delta).await,
            Action::ToggleFault { pod } => self.toggle_fault(mesh, &units, &pod).await,
        }
    }

    pub(super) async fn kill(
        &mut self,
        mesh: &mut LiveMesh,
        units: &[UnitStatus],
        pod: &str,
    ) -> Result<Done, ActionError> {
        let (service, replica) = existing_pod(units, pod)?;
        let running = mesh
            .launched
            .kill_pod(&service, replica)
            .await
            .map_err(|source| ActionError::Runtime {
                what: format!("killing {pod}"),
                source,
            })?;
        // A killed app comes back (restart) without the fault.
        self.faulted.remove(pod);
        let (one, many) = match mesh.launched {
            super::Launched::Docker { .. } => ("container", "containers"),
            super::Launched::Local(_) => ("process", "processes"),
        };
        Ok((
            EventKind::Action,
            if running == 0 {
                format!("{pod} was not running; nothing to kill (r restarts it)")
            } else {
                format!(
                    "killed {pod}: {running} {} (its address left DNS; r restarts it)",
                    if running == 1 { one } else { many }
                )
            },
        ))
    }

    pub(super) async fn restart(
        &mut self,
        mesh: &mut LiveMesh,
        units: &[UnitStatus],
        pod: &str,
    ) -> Result<Done, ActionError> {
        let (service, replica) = existing_pod(units, pod)?;
        let spec = mesh.pod_spec(&service, replica)?;
        runtime(mesh.launched.remove_pod(&service, replica).await, || {
            format!("removing {pod}")
        })?;
        self.faulted.remove(pod);
        runtime(mesh.launched.launch_pod(&mesh.plan, &spec).await, || {
            format!("starting {pod} again (it was removed)")
        })?;
        mesh.remember(spec);
        Ok((EventKind::Action, format!("restarted {pod}")))
    }

    pub(super) async fn scale(
        &mut self,
        mesh: &mut LiveMesh,
        units: &[UnitStatus],
        service: &str,
        delta: i32,
    ) -> Result<Done, ActionError> {
        if mesh.scenario.service(service).is_none() {
            return Err(ActionError::UnknownService {
                service: service.to_string(),
                known: mesh
                    .scenario
                    .services
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let mut replicas = replicas_of(units, service);
        let mut changed = Vec::new();
        for _ in 0..delta.unsigned_abs() {
            if delta > 0 {
                let replica = replicas.last().map_or(1, |r| r + 1);
                let spec = mesh.pod_spec(service, replica)?;
                if !replicas.is_empty() {
                    if let Some(port) = spec
                        .ports
                        .iter()
                        .filter(|p| p.purpose == PortPurpose::Publish)
                        .find_map(|p| p.host_port)
                    {
                        return Err(ActionError::FixedHostPort {
                            service: service.to_string(),
                            port,
                        });
                    }
                }
                let name = spec.name();
                runtime(mesh.launched.launch_pod(&mesh.plan, &spec).await, || {
                    format!("starting {name}")
                })?;
                mesh.remember(spec);
                replicas.push(replica);
                changed.push(format!("started {name}"));
            } else {
                if replicas.len() <= 1 {
                    return Err(ActionError::LastReplica {
                        service: service.to_string(),
                    });
                }
                let replica = replicas.pop().expect("more than one replica");
                let name = format!("{service}#{replica}");
                runtime(mesh.launched.remove_pod(service, replica).await, || {
                    format!("removing {name}")
                })?;
                mesh.forget(service, replica);
                self.faulted.remove(&name);
                changed.push(format!("removed {name}"));
            }
        }
        let n = replicas.len();
        Ok((
            EventKind::Action,
            format!(
                "scaled {service} to {n} replica{} ({})",
                if n == 1 { "" } else { "s" },
                changed.join(", ")
            ),
        ))
    }

    async fn toggle_fault(
        &mut self,
        mesh: &LiveMesh,
        units: &[UnitStatus],
        pod: &str,
    ) -> Result<Done, ActionError> {
        existing_pod(units, pod)?;
        check_fault_target(mesh, pod)?;
        let app = units
            .iter()
            .find(|u| pod_of(&u.unit) == pod && u.role == Role::App)
            .ok_or_else(|| ActionError::NotSampleApp {
                pod: pod.to_string(),
                what: "is a proxy without an app".into(),
            })?;
        if app.state != "running" {
            return Err(ActionError::NotRunning {
                pod: pod.to_string(),
            });
        }
        let addr = app
            .published
            .iter()
            .find(|p| p.purpose == PortPurpose::App)
            .map(|p| SocketAddr::new(p.host_ip, p.host_port))
            .ok_or_else(|| ActionError::NoAppPort {
                pod: pod.to_string(),
            })?;
        let clear = self.faulted.contains(pod);
        let (method, path) = if clear {
            (http::Method::DELETE, "/meshsim/fault".to_string())
        } else {
            (http::Method::POST, format!("/meshsim/fault?{FAULT}"))
        };
        let fail = |reason: String| ActionError::FaultControl {
            pod: pod.to_string(),
            addr,
            reason,
        };
        let (status, body) = http_probe::request(addr, method, &path, FAULT_TIMEOUT)
            .await
            .map_err(|e| fail(e.to_string()))?;
        if status != 200 {
            return Err(fail(format!("it answered {status} {}", body.trim())));
        }
        Ok(if clear {
            self.faulted.remove(pod);
            (EventKind::Fault, format!("{pod}: fault cleared"))
        } else {
            self.faulted.insert(pod.to_string());
            (
                EventKind::Fault,
                format!("{pod}: its app answers 503 to 50 % of requests (f again clears it)"),
            )
        })
    }
}

/// Checks that the run's app of `pod` is a sample http app (the only one with a fault
/// control), before anything is sent to it.
fn check_fault_target(mesh: &LiveMesh, pod: &str) -> Result<(), ActionError> {
    let Some((service, _)) = split_pod(pod) else {
        return Ok(());
    };
    let Some(planned) = mesh.plan.pods.iter().find(|p| p.service == service) else {
        return Ok(());
    };
    let not_sample = |what: String| ActionError::NotSampleApp {
        pod: pod.to_string(),
        what,
    };
    match planned.containers.first().map(|c| (c.role, &c.program)) {
        Some((Role::App, Program::Sample { kind, .. })) if kind == "http" => Ok(()),
        Some((Role::App, Program::Sample { kind, .. })) => Err(not_sample(format!(
            "runs the {kind} sample, which has no fault control (only `sample: http` does)"
        ))),
        Some((Role::App, Program::Image { image, .. })) => {
            Err(not_sample(format!("runs image `{image}`")))
        }
        _ => Err(not_sample("is a proxy without an app".into())),
    }
}

pub(super) fn runtime<T>(
    result: Result<T, RuntimeError>,
    what: impl FnOnce() -> String,
) -> Result<T, ActionError> {
    result.map_err(|source| ActionError::Runtime {
        what: what(),
        source,
    })
}

/// The replica numbers a service has in the run (running or not), in order.
pub(super) fn replicas_of(units: &[UnitStatus], service: &str) -> Vec<u32> {
    let mut replicas: Vec<u32> = units
        .iter()
        .filter(|u| u.service == service)
        .map(|u| u.replica)
        .collect();
    replicas.sort_unstable();
    replicas.dedup();
    replicas
}

/// `service1#2` → (`service1`, 2).
pub fn split_pod(pod: &str) -> Option<(String, u32)> {
    let (service, replica) = pod.rsplit_once('#')?;
    Some((service.to_string(), replica.parse().ok()?))
}

/// `service1#2/app` → `service1#2`.
pub(super) fn pod_of(unit: &str) -> &str {
    unit.split_once('/').map_or(unit, |(pod, _)| pod)
}

/// The pod, if the run has it (running or not).
fn existing_pod(units: &[UnitStatus], pod: &str) -> Result<(String, u32), ActionError> {
    match split_pod(pod) {
        Some(found) if units.iter().any(|u| pod_of(&u.unit) == pod) => Ok(found),
        _ => {
            let known: BTreeSet<&str> = units.iter().map(|u| pod_of(&u.unit)).collect();
            Err(ActionError::UnknownPod {
                pod: pod.to_string(),
                known: known.into_iter().collect::<Vec<_>>().join(", "),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_split_at_the_last_hash() {
        assert_eq!(split_pod("service1#2"), Some(("service1".into(), 2)));
        assert_eq!(split_pod("a#b#3"), Some(("a#b".into(), 3)));
        assert_eq!(split_pod("service1"), None);
        assert_eq!(split_pod("service1#x"), None);
        assert_eq!(pod_of("front-envoy#1/proxy"), "front-envoy#1");
    }
}

//! A run this process launched, on whichever runtime: what `up` and the live task ask of it
//! (list, kill, remove and add pods, tear down), each runtime's way.

use crate::runtime::docker::{DockerError, DockerRuntime, LogsRequest, Which};
use crate::runtime::local::{LocalError, LocalRun};
use crate::runtime::{Plan, Pod, UnitStatus};

/// Why a runtime operation on a launched run failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0}")]
    Docker(#[from] DockerError),
    #[error("{0}")]
    Local(#[from] LocalError),
}

/// A run this process launched.
pub enum Launched {
    Docker {
        runtime: DockerRuntime,
        run: String,
        /// The meshsim image the run's pods use (new pods get the same).
        image: String,
    },
    Local(LocalRun),
}

impl Launched {
    /// `docker` or `local`, as `ps` says it.
    pub fn runtime_name(&self) -> &'static str {
        match self {
            Launched::Docker { .. } => "docker",
            Launched::Local(_) => "local",
        }
    }

    pub async fn units(&self) -> Result<Vec<UnitStatus>, RuntimeError> {
        match self {
            Launched::Docker { runtime, run, .. } => Ok(runtime.list(Some(run)).await?),
            Launched::Local(run) => Ok(run.units()),
        }
    }

    /// A unit that is no longer running, if any.
    pub(super) async fn exited_unit(&self) -> Option<String> {
        let units = self.units().await.ok()?;
        units
            .into_iter()
            .find(|u| matches!(u.state.as_str(), "exited" | "dead"))
            .map(|u| u.unit)
    }

    /// The last `n` output lines of the units of `pod` (`service#replica`), each prefixed by its
    /// unit.
    pub(super) async fn log_tail(&self, pod: &str, n: u32) -> Vec<String> {
        match self {
            Launched::Docker { runtime, run, .. } => {
                use futures_util::StreamExt;
                runtime
                    .logs(LogsRequest {
                        run: Some(run.clone()),
                        unit: pod.to_string(),
                        follow: false,
                        tail: Some(n),
                    })
                    .filter_map(|line| async move {
                        line.ok().map(|l| format!("{} | {}", l.unit, l.text))
                    })
                    .collect()
                    .await
            }
            Launched::Local(run) => run.log_tail(pod, n as usize),
        }
    }

    /// Kills a pod's containers or processes; they stay, exited, and its address leaves DNS.
    /// Returns how many were running.
    pub async fn kill_pod(&mut self, service: &str, replica: u32) -> Result<usize, RuntimeError> {
        match self {
            Launched::Docker { runtime, run, .. } => {
                Ok(runtime.kill_pod(run, service, replica).await?)
            }
            Launched::Local(run) => Ok(run.kill_pod(service, replica).await),
        }
    }

    /// Stops a pod (SIGTERM, then SIGKILL after a grace); it stays, exited. Returns how many
    /// containers or processes were running.
    pub async fn stop_pod(&mut self, service: &str, replica: u32) -> Result<usize, RuntimeError> {
        match self {
            Launched::Docker { runtime, run, .. } => {
                Ok(runtime.stop_pod(run, service, replica).await?)
            }
            Launched::Local(run) => Ok(run.stop_pod(service, replica).await),
        }
    }

    /// Freezes or thaws a pod (`docker pause`/`unpause`, SIGSTOP/SIGCONT).
    pub async fn pause_pod(
        &mut self,
        service: &str,
        replica: u32,
        paused: bool,
    ) -> Result<usize, RuntimeError> {
        match self {
            Launched::Docker { runtime, run, .. } => {
                Ok(runtime.pause_pod(run, service, replica, paused).await?)
            }
            Launched::Local(run) => Ok(run.pause_pod(service, replica, paused)),
        }
    }

    /// Cuts a pod off the network, or puts it back (see each runtime's `connect_pod`).
    pub async fn connect_pod(
        &mut self,
        service: &str,
        replica: u32,
        connected: bool,
    ) -> Result<(), RuntimeError> {
        match self {
            Launched::Docker { runtime, run, .. } => Ok(runtime
                .connect_pod(run, service, replica, connected)
                .await?),
            Launched::Local(run) => {
                run.connect_pod(service, replica, connected);
                Ok(())
            }
        }
    }

    /// Gives a pod's proxy a new config (at `container_path` on Docker), which it hot-reloads.
    /// Returns whether the pod has a proxy that got it.
    pub async fn replace_config(
        &mut self,
        service: &str,
        replica: u32,
        container_path: &str,
        contents: &[u8],
    ) -> Result<bool, RuntimeError> {
        match self {
            Launched::Docker { runtime, run, .. } => Ok(runtime
                .replace_proxy_file(run, service, replica, container_path, contents)
                .await?
                > 0),
            Launched::Local(run) => {
                Ok(run
                    .replace_config(service, replica, contents)
                    .map_err(|e| crate::runtime::local::LocalError::Io {
                        context: format!("replacing the config of {service}#{replica}"),
                        source: e,
                    })?)
            }
        }
    }

    /// Removes a pod, running or not; a pod already gone is not an error.
    pub async fn remove_pod(&mut self, service: &str, replica: u32) -> Result<(), RuntimeError> {
        match self {
            Launched::Docker { runtime, run, .. } => {
                Ok(runtime.remove_pod(run, service, replica).await?)
            }
            Launched::Local(run) => {
                run.remove_pod(service, replica).await;
                Ok(())
            }
        }
    }

    /// Starts one more pod in the run (a restart, or a new replica).
    pub async fn launch_pod(&mut self, plan: &Plan, pod: &Pod) -> Result<(), RuntimeError> {
        match self {
            Launched::Docker { runtime, image, .. } => {
                runtime.launch_pod(plan, pod, image).await?;
            }
            Launched::Local(run) => {
                run.add_pod(pod).await?;
            }
        }
        Ok(())
    }

    pub async fn teardown(self) -> Result<String, String> {
        match self {
            Launched::Docker { runtime, run, .. } => runtime
                .down(&Which::Run(run))
                .await
                .map(|r| {
                    format!(
                        "removed {} containers and {} network",
                        r.containers, r.networks
                    )
                })
                .map_err(|e| e.to_string()),
            Launched::Local(run) => {
                let n = run.units().len();
                run.stop().await;
                Ok(format!("stopped {n} processes"))
            }
        }
    }
}

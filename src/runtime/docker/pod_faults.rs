//! Faults done to one running pod, the way `docker stop / pause / network disconnect` do them:
//! what a scenario test's fault steps ask of the Docker runtime. Every step here has its undo
//! (unpause, reconnect), and doing a step twice, or undoing what is not done, is harmless.

use bollard::models::{EndpointSettings, NetworkConnectRequest, NetworkDisconnectRequest};
use bollard::query_parameters::StopContainerOptionsBuilder;
use futures_util::future::join_all;

use super::error::{is_not_found, status, DockerError};
use super::{spec, DockerRuntime};

/// Seconds a stopped pod gets between SIGTERM and SIGKILL.
const STOP_GRACE_S: i32 = 2;

impl DockerRuntime {
    /// Stops a pod's containers (SIGTERM, then SIGKILL after a grace); they stay, exited.
    /// Returns how many were running.
    pub async fn stop_pod(
        &self,
        run_id: &str,
        service: &str,
        replica: u32,
    ) -> Result<usize, DockerError> {
        let ids = self.pod_containers(run_id, service, replica).await?;
        let options = StopContainerOptionsBuilder::new().t(STOP_GRACE_S).build();
        let results = join_all(ids.iter().map(|id| {
            let options = options.clone();
            async move {
                match self.docker.stop_container(id, Some(options)).await {
                    Ok(()) => Ok(1),
                    // 304: already stopped; 404: gone meanwhile.
                    Err(e) if is_not_found(&e) || status(&e) == Some(304) => Ok(0),
                    Err(e) => Err(self.api_error(format!("stopping container {id}"), e)),
                }
            }
        }))
        .await;
        results.into_iter().sum()
    }

    /// Freezes (`paused: true`) or thaws a pod's containers: its address stays in DNS and its
    /// connections stay open, but nothing answers.
    pub async fn pause_pod(
        &self,
        run_id: &str,
        service: &str,
        replica: u32,
        paused: bool,
    ) -> Result<usize, DockerError> {
        let ids = self.pod_containers(run_id, service, replica).await?;
        let results = join_all(ids.iter().map(|id| async move {
            let result = if paused {
                self.docker.pause_container(id).await
            } else {
                self.docker.unpause_container(id).await
            };
            match result {
                Ok(()) => Ok(1),
                // 409: not running, or already (un)paused: nothing to do.
                Err(e) if is_not_found(&e) || status(&e) == Some(409) => Ok(0),
                Err(e) => Err(self.api_error(
                    format!(
                        "{} container {id}",
                        if paused { "pausing" } else { "unpausing" }
                    ),
                    e,
                )),
            }
        }))
        .await;
        results.into_iter().sum()
    }

    /// Cuts a pod off the run's network (`connected: false`): its address leaves DNS and
    /// packets to it go nowhere; or puts it back with its service alias. Only the container
    /// owning the pod's network namespace is attached; its sidecar follows it.
    pub async fn connect_pod(
        &self,
        run_id: &str,
        service: &str,
        replica: u32,
        connected: bool,
    ) -> Result<(), DockerError> {
        let network = spec::network_name(run_id);
        for id in self.pod_containers(run_id, service, replica).await? {
            let inspected = match self.docker.inspect_container(&id, None).await {
                Ok(c) => c,
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(self.api_error(format!("inspecting container {id}"), e)),
            };
            let mode = inspected
                .host_config
                .and_then(|h| h.network_mode)
                .unwrap_or_default();
            if mode.starts_with("container:") {
                continue;
            }
            let attached = inspected
                .network_settings
                .and_then(|n| n.networks)
                .is_some_and(|n| n.contains_key(&network));
            let result = match (connected, attached) {
                (false, true) => {
                    self.docker
                        .disconnect_network(
                            &network,
                            NetworkDisconnectRequest {
                                container: id.clone(),
                                force: Some(true),
                            },
                        )
                        .await
                }
                (true, false) => {
                    self.docker
                        .connect_network(
                            &network,
                            NetworkConnectRequest {
                                container: id.clone(),
                                endpoint_config: Some(EndpointSettings {
                                    aliases: Some(vec![service.to_string()]),
                                    ..Default::default()
                                }),
                            },
                        )
                        .await
                }
                _ => Ok(()),
            };
            result.map_err(|e| {
                self.api_error(
                    format!(
                        "{} container {id} {} network {network}",
                        if connected {
                            "connecting"
                        } else {
                            "disconnecting"
                        },
                        if connected { "to" } else { "from" }
                    ),
                    e,
                )
            })?;
        }
        Ok(())
    }

    /// Replaces a file in a pod's proxy containers (a config the proxy then hot-reloads).
    /// Returns how many containers got it.
    pub async fn replace_proxy_file(
        &self,
        run_id: &str,
        service: &str,
        replica: u32,
        container_path: &str,
        contents: &[u8],
    ) -> Result<usize, DockerError> {
        let mut n = 0;
        for id in self.pod_containers(run_id, service, replica).await? {
            let inspected = match self.docker.inspect_container(&id, None).await {
                Ok(c) => c,
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(self.api_error(format!("inspecting container {id}"), e)),
            };
            let role = inspected
                .config
                .and_then(|c| c.labels)
                .and_then(|l| l.get(crate::runtime::labels::ROLE).cloned())
                .unwrap_or_default();
            if role == crate::runtime::Role::App.as_str() {
                continue;
            }
            let tar = spec::file_tar(container_path, contents, 0o644).map_err(|e| {
                DockerError::Package {
                    path: container_path.into(),
                    reason: e.to_string(),
                }
            })?;
            self.upload(&id, &format!("{service}#{replica}"), container_path, tar)
                .await?;
            n += 1;
        }
        Ok(n)
    }
}

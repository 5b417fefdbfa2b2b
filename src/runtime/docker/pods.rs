//! Launching: a run's network and pods, created, configured, started, and read back.
//!
//! A launch either completes or leaves nothing behind: every container it created and the
//! network are removed before the error is returned. Everything that can be checked before
//! creating anything (images present, fixed host ports free) is checked first, so the common
//! failures cost no Docker work at all.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptions, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures_util::future::join_all;

use crate::runtime::{labels, unit_name, Plan, Pod, PortSpec, Program, PublishedPort, UnitStatus};

use super::error::{is_not_found, port_in_message, port_taken_message, status, DockerError};
use super::spec::{self, Netns};
use super::{image, network, DockerRuntime};

impl DockerRuntime {
    /// Creates the run's network (`meshsim-<run>`) and every pod, starts them and reads back
    /// their published ports. On any failure, removes everything this call created, then
    /// returns the error.
    pub async fn launch(&self, plan: &Plan, image: &str) -> Result<Vec<UnitStatus>, DockerError> {
        self.preflight(&plan.pods, image).await?;
        let network =
            network::create(&self.docker, &self.endpoint, plan, self.owner_for(plan)).await?;
        // Wave by wave (a pod's DNS targets run before it resolves them); within a wave pods
        // are independent: create them concurrently, but wait for every one, so that the
        // rollback below sees every container that exists (a cancelled request could still
        // create one after we looked).
        let mut waves: Vec<u32> = plan.pods.iter().map(|p| p.wave).collect();
        waves.sort_unstable();
        waves.dedup();
        let mut created = Vec::new();
        let mut units = Vec::new();
        let mut failure = None;
        for wave in waves {
            let pods = plan.pods.iter().filter(|p| p.wave == wave);
            let results = join_all(pods.map(|pod| self.start_pod(plan, pod, image))).await;
            for (ids, result) in results {
                created.extend(ids);
                match result {
                    Ok(pod_units) => units.extend(pod_units),
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                }
            }
            if failure.is_some() {
                break;
            }
        }
        if let Some(err) = failure {
            let _ = self.remove_containers(&created).await;
            let _ = network::remove(&self.docker, &self.endpoint, &network).await;
            return Err(err);
        }
        Ok(units)
    }

    /// Adds one pod to a running run (scaling up, or restarting a killed replica). On failure,
    /// removes the containers it created.
    pub async fn launch_pod(
        &self,
        plan: &Plan,
        pod: &Pod,
        image: &str,
    ) -> Result<Vec<UnitStatus>, DockerError> {
        self.preflight(std::slice::from_ref(pod), image).await?;
        let (created, result) = self.start_pod(plan, pod, image).await;
        if result.is_err() {
            let _ = self.remove_containers(&created).await;
        }
        result
    }

    /// Removes one pod, all its containers at once (a kill fault, or scaling down). A pod that
    /// is already gone is not an error.
    pub async fn remove_pod(
        &self,
        run_id: &str,
        service: &str,
        replica: u32,
    ) -> Result<(), DockerError> {
        let ids = self.pod_containers(run_id, service, replica).await?;
        self.remove_containers(&ids).await
    }

    /// Kills one pod's containers (SIGKILL) and leaves them, exited, for `ps` and the terminal
    /// UI to show; the pod's network alias goes with its running containers. Returns how many
    /// were running.
    pub async fn kill_pod(
        &self,
        run_id: &str,
        service: &str,
        replica: u32,
    ) -> Result<usize, DockerError> {
        let ids = self.pod_containers(run_id, service, replica).await?;
        let results = join_all(ids.iter().map(|id| async move {
            match self
                .docker
                .kill_container(id, None::<KillContainerOptions>)
                .await
            {
                Ok(()) => Ok(1),
                // 409: not running (already dead); 404: gone meanwhile.
                Err(e) if is_not_found(&e) || status(&e) == Some(409) => Ok(0),
                Err(e) => Err(self.api_error(format!("killing container {id}"), e)),
            }
        }))
        .await;
        results.into_iter().sum()
    }

    /// The ids of one pod's containers, in any state.
    pub(crate) async fn pod_containers(
        &self,
        run_id: &str,
        service: &str,
        replica: u32,
    ) -> Result<Vec<String>, DockerError> {
        let filters = HashMap::from([(
            "label",
            vec![
                format!("{}={run_id}", labels::RUN),
                format!("{}={service}", labels::SERVICE),
                format!("{}={replica}", labels::REPLICA),
            ],
        )]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let found = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| self.api_error(format!("listing pod {service}#{replica}"), e))?;
        Ok(found.into_iter().filter_map(|c| c.id).collect())
    }

    /// Force-removes containers concurrently (SIGKILL, then delete: teardown has no reason to
    /// wait for a graceful stop). Already gone counts as removed; the first other error is
    /// returned after every removal was attempted.
    pub(crate) async fn remove_containers(&self, ids: &[String]) -> Result<(), DockerError> {
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        let results = join_all(ids.iter().map(|id| {
            let options = options.clone();
            async move {
                match self.docker.remove_container(id, Some(options)).await {
                    Ok(()) => Ok(()),
                    Err(e) if is_not_found(&e) => Ok(()),
                    // 409 "removal already in progress": someone else is removing it.
                    Err(e) if status(&e) == Some(409) => Ok(()),
                    Err(e) => Err(self.api_error(format!("removing container {id}"), e)),
                }
            }
        }))
        .await;
        results.into_iter().collect()
    }

    /// What can be checked before creating anything: every image is present, and no fixed host
    /// port is asked for twice or already held on this host.
    async fn preflight(&self, pods: &[Pod], meshsim_image: &str) -> Result<(), DockerError> {
        // The first unit needing each image names it in the error.
        let mut images: BTreeMap<&str, String> = BTreeMap::new();
        for pod in pods {
            for c in &pod.containers {
                images
                    .entry(spec::image_of(&c.program, meshsim_image))
                    .or_insert_with(|| unit_name(&pod.service, pod.replica, c.role));
            }
        }
        let checks = join_all(images.iter().map(|(image, unit)| async move {
            match image::image_size(&self.docker, &self.endpoint, image).await? {
                Some(_) => Ok(()),
                None => Err(DockerError::ImageMissing {
                    image: image.to_string(),
                    unit: unit.clone(),
                }),
            }
        }))
        .await;
        checks.into_iter().collect::<Result<(), _>>()?;

        let mut wanted: HashMap<u16, String> = HashMap::new();
        for pod in pods {
            for port in pod.ports.iter().filter_map(|p| p.host_port) {
                if wanted.insert(port, pod.name()).is_some() {
                    return Err(DockerError::PortTaken {
                        host_port: port,
                        unit: pod.name(),
                    });
                }
                if self.local && host_port_taken(port) {
                    return Err(DockerError::PortTaken {
                        host_port: port,
                        unit: pod.name(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Creates, configures and starts one pod. Returns the ids of every container it created,
    /// whatever happened, so the caller can roll back.
    async fn start_pod(
        &self,
        plan: &Plan,
        pod: &Pod,
        image: &str,
    ) -> (Vec<String>, Result<Vec<UnitStatus>, DockerError>) {
        let mut created = Vec::new();
        let result = self.start_pod_into(plan, pod, image, &mut created).await;
        (created, result)
    }

    async fn start_pod_into(
        &self,
        plan: &Plan,
        pod: &Pod,
        image: &str,
        created: &mut Vec<String>,
    ) -> Result<Vec<UnitStatus>, DockerError> {
        let network = spec::network_name(&plan.run_id);
        for (index, container) in pod.containers.iter().enumerate() {
            let unit = unit_name(&pod.service, pod.replica, container.role);
            let netns = match created.first() {
                Some(owner_id) if index > 0 => Netns::Join {
                    container_id: owner_id,
                },
                _ => Netns::Own { network: &network },
            };
            let body = spec::create_body(plan, pod, container, image, netns, self.owner_for(plan));
            let name = spec::container_name(&plan.run_id, pod, container);
            let options = CreateContainerOptionsBuilder::new().name(&name).build();
            let id = match self.docker.create_container(Some(options), body).await {
                Ok(response) => response.id,
                Err(e) if is_not_found(&e) && e.to_string().contains("image") => {
                    return Err(DockerError::ImageMissing {
                        image: spec::image_of(&container.program, image).to_string(),
                        unit,
                    })
                }
                Err(e) => return Err(self.api_error(format!("creating container {unit}"), e)),
            };
            created.push(id.clone());
            // Copied into the stopped container: no bind mount, so a remote daemon works.
            if let Program::Proxy { config, .. } = &container.program {
                let tar = spec::config_tar(config).map_err(|e| DockerError::Package {
                    path: config.source.clone(),
                    reason: e.to_string(),
                })?;
                self.upload(&id, &unit, &config.container_path, tar).await?;
            }
            for file in &container.files {
                let mode = if file.private { 0o600 } else { 0o644 };
                let tar =
                    spec::file_tar(&file.container_path, &file.contents, mode).map_err(|e| {
                        DockerError::Package {
                            path: file.container_path.clone().into(),
                            reason: e.to_string(),
                        }
                    })?;
                self.upload(&id, &unit, &file.container_path, tar).await?;
            }
        }
        // The namespace owner first: a sidecar cannot join a namespace that does not exist yet.
        for (id, container) in created.iter().zip(&pod.containers) {
            if let Err(e) = self.docker.start_container(id, None).await {
                let unit = unit_name(&pod.service, pod.replica, container.role);
                if let Some(message) = port_taken_message(&e) {
                    let fixed: Vec<u16> = pod.ports.iter().filter_map(|p| p.host_port).collect();
                    let host_port = port_in_message(message)
                        .or_else(|| (fixed.len() == 1).then(|| fixed[0]))
                        .unwrap_or(0);
                    return Err(DockerError::PortTaken {
                        host_port,
                        unit: pod.name(),
                    });
                }
                return Err(self.api_error(format!("starting container {unit}"), e));
            }
        }
        self.pod_status(plan, pod, created).await
    }

    /// The pod's units as they run now: state per container; address and published ports are
    /// the pod's (its containers share one network namespace), so every unit carries them.
    async fn pod_status(
        &self,
        plan: &Plan,
        pod: &Pod,
        ids: &[String],
    ) -> Result<Vec<UnitStatus>, DockerError> {
        let inspected =
            join_all(ids.iter().map(|id| self.docker.inspect_container(id, None))).await;
        let mut inspected: Vec<ContainerInspectResponse> = inspected
            .into_iter()
            .zip(&pod.containers)
            .map(|(r, c)| {
                r.map_err(|e| {
                    self.api_error(
                        format!(
                            "inspecting {}",
                            unit_name(&pod.service, pod.replica, c.role)
                        ),
                        e,
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        let network = spec::network_name(&plan.run_id);
        let settings = inspected
            .first_mut()
            .and_then(|i| i.network_settings.take());
        let address = settings
            .as_ref()
            .and_then(|s| s.networks.as_ref()?.get(&network)?.ip_address.clone())
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        let bound = settings.and_then(|s| s.ports).unwrap_or_default();
        let published = published_ports(&pod.ports, &bound);
        if published.len() < pod.ports.len() {
            tracing::warn!(pod = %pod.name(), "Docker reported fewer published ports than requested");
        }
        Ok(inspected
            .iter()
            .zip(ids)
            .zip(&pod.containers)
            .map(|((inspect, id), container)| UnitStatus {
                run: plan.run_id.clone(),
                scenario: plan.scenario.clone(),
                unit: unit_name(&pod.service, pod.replica, container.role),
                service: pod.service.clone(),
                replica: pod.replica,
                role: container.role,
                state: inspect
                    .state
                    .as_ref()
                    .and_then(|s| s.status)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "unknown".into()),
                id: id.clone(),
                address,
                runtime: "docker",
                published: published.clone(),
                started_at: None,
            })
            .collect())
    }

    /// Copies a tar of one file into a container: a created one before it starts, or a running
    /// one whose proxy config a `reload` fault replaces.
    pub(crate) async fn upload(
        &self,
        id: &str,
        unit: &str,
        container_path: &str,
        tar: Vec<u8>,
    ) -> Result<(), DockerError> {
        let options = UploadToContainerOptionsBuilder::new().path("/").build();
        self.docker
            .upload_to_container(id, Some(options), bollard::body_full(tar.into()))
            .await
            .map_err(|e| self.api_error(format!("copying {container_path} into {unit}"), e))
    }
}

/// Matches the pod's port specs with Docker's bindings (`"8080/tcp" → [{127.0.0.1, "32768"}]`).
pub(crate) fn published_ports(
    specs: &[PortSpec],
    bound: &HashMap<String, Option<Vec<bollard::models::PortBinding>>>,
) -> Vec<PublishedPort> {
    specs
        .iter()
        .filter_map(|spec| {
            let bindings = bound.get(&spec::port_key(spec.container_port))?.as_ref()?;
            let binding = bindings
                .iter()
                .find(|b| b.host_ip.as_deref() == Some("127.0.0.1"))
                .or_else(|| bindings.first())?;
            Some(PublishedPort {
                host_ip: binding
                    .host_ip
                    .as_deref()
                    .and_then(|ip| ip.parse().ok())
                    .unwrap_or(IpAddr::from([127, 0, 0, 1])),
                host_port: binding.host_port.as_deref()?.parse().ok()?,
                container_port: spec.container_port,
                purpose: spec.purpose,
            })
        })
        .collect()
}

/// Is 127.0.0.1:port held on this host? Only "in use" counts: a permission error (a low port,
/// not root) says nothing about the daemon, which binds as root.
fn host_port_taken(port: u16) -> bool {
    match std::net::TcpListener::bind(("127.0.0.1", port)) {
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::AddrInUse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::PortPurpose;
    use bollard::models::PortBinding;

    #[test]
    fn published_ports_prefer_the_loopback_binding() {
        let specs = [
            PortSpec {
                container_port: 9901,
                host_port: None,
                purpose: PortPurpose::Admin,
            },
            PortSpec {
                container_port: 8080,
                host_port: Some(18080),
                purpose: PortPurpose::Publish,
            },
        ];
        let bound = HashMap::from([
            (
                "9901/tcp".to_string(),
                Some(vec![
                    PortBinding {
                        host_ip: Some("::1".into()),
                        host_port: Some("1".into()),
                    },
                    PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some("49153".into()),
                    },
                ]),
            ),
            ("8080/tcp".to_string(), None),
        ]);
        let published = published_ports(&specs, &bound);
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].host_port, 49153);
        assert_eq!(published[0].purpose, PortPurpose::Admin);
    }

    #[test]
    fn a_held_port_is_taken() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(host_port_taken(held.local_addr().unwrap().port()));
        drop(held);
    }
}

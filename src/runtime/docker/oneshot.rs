//! A one-off container on a run's network: how `meshsim test` sends traffic to a target that
//! is not published on the host (`meshsim load` in the run's image, resolving the target by
//! Docker DNS). It carries the run's labels, so `down` and the janitor remove it with the run.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, LogsOptionsBuilder,
    WaitContainerOptions,
};
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::runtime::labels;

use super::error::DockerError;
use super::{spec, DockerRuntime};

/// What a one-off container printed, and how it ended.
#[derive(Debug)]
pub struct OneShotOutput {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i64,
}

impl DockerRuntime {
    /// Runs `args` (after the meshsim binary) in a container of `image` on the run's network,
    /// and returns its output once it exits. `stop` turning true sends it SIGTERM (it is
    /// expected to finish and print, as `meshsim load` does). The container is removed after.
    pub async fn run_oneshot(
        &self,
        run_id: &str,
        scenario: &str,
        name: &str,
        image: &str,
        args: Vec<String>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<OneShotOutput, DockerError> {
        let mut l = HashMap::from([
            (labels::RUN.to_string(), run_id.to_string()),
            (labels::SCENARIO.to_string(), scenario.to_string()),
            (labels::UNIT.to_string(), format!("{name}#1/app")),
            (labels::SERVICE.to_string(), name.to_string()),
            (labels::REPLICA.to_string(), "1".to_string()),
            (labels::ROLE.to_string(), "app".to_string()),
            (labels::PORTS.to_string(), String::new()),
        ]);
        // Owned by this process, so the janitor removes it if this process dies.
        spec::owner_labels(Some(&self.owner), &mut l);
        let mut cmd = vec![super::BINARY_PATH.to_string()];
        cmd.extend(args);
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(cmd),
            labels: Some(l),
            host_config: Some(HostConfig {
                network_mode: Some(spec::network_name(run_id)),
                ..Default::default()
            }),
            ..Default::default()
        };
        let container_name = format!("meshsim-{run_id}-{name}");
        let options = CreateContainerOptionsBuilder::new()
            .name(&container_name)
            .build();
        let id = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| self.api_error(format!("creating the {name} container"), e))?
            .id;
        let result = self.run_created(&id, name, &mut stop).await;
        let _ = self.remove_containers(std::slice::from_ref(&id)).await;
        result
    }

    async fn run_created(
        &self,
        id: &str,
        name: &str,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<OneShotOutput, DockerError> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(|e| self.api_error(format!("starting the {name} container"), e))?;
        let mut wait = self.docker.wait_container(id, None::<WaitContainerOptions>);
        let mut stopped = *stop.borrow();
        let exit_code = loop {
            if stopped {
                let options = KillContainerOptionsBuilder::new().signal("SIGTERM").build();
                let _ = self.docker.kill_container(id, Some(options)).await;
                stopped = false;
            }
            tokio::select! {
                waited = wait.next() => break match waited {
                    Some(Ok(r)) => r.status_code,
                    // bollard reports a non-zero exit as an error carrying the code.
                    Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
                    Some(Err(e)) => return Err(self.api_error(format!("waiting for the {name} container"), e)),
                    None => -1,
                },
                changed = stop.changed() => {
                    if changed.is_ok() && *stop.borrow() {
                        stopped = true;
                    }
                }
            }
        };
        let options = LogsOptionsBuilder::new().stdout(true).stderr(true).build();
        let mut logs = self.docker.logs(id, Some(options));
        let (mut stdout, mut stderr) = (String::new(), String::new());
        while let Some(chunk) = logs.next().await {
            match chunk {
                Ok(bollard::container::LogOutput::StdOut { message }) => {
                    stdout.push_str(&String::from_utf8_lossy(&message))
                }
                Ok(bollard::container::LogOutput::StdErr { message }) => {
                    stderr.push_str(&String::from_utf8_lossy(&message))
                }
                Ok(_) => {}
                Err(e) => return Err(self.api_error(format!("reading the {name} output"), e)),
            }
        }
        Ok(OneShotOutput {
            stdout,
            stderr,
            exit_code,
        })
    }
}

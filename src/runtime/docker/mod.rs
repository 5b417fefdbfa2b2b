//! The Docker runtime: each pod a set of containers sharing one network namespace, on a private
//! bridge network per run, through the Docker API (bollard, negotiated down to the engine's
//! version; API 1.41 is the floor designed for).
//!
//! One job per module:
//! - `connect`: find the daemon, negotiate, ping (short timeout: `auto` falls back on it);
//! - `closure` and `image`: `meshsim image`, a binary packaged FROM scratch without a registry;
//! - `spec`: a pod as container names, labels, commands and create bodies (pure);
//! - `network` and `pods`: launch a plan or one pod, rolling back on failure; remove a pod;
//! - `inventory` and `owner`: list, `down` and the janitor, all by labels;
//! - `logs`: demultiplexed, line-split output of matching units;
//! - `error`: [`DockerError`], one variant per thing the user can act on.
//!
//! The host reaches containers only through ports published on 127.0.0.1, never through their
//! bridge addresses (which a remote daemon, Docker Desktop or a rootless engine would not route).

mod closure;
mod connect;
mod error;
mod image;
mod inventory;
mod logs;
mod network;
mod oneshot;
mod owner;
mod pod_faults;
mod pods;
mod spec;

use std::path::Path;
use std::sync::Arc;

use bollard::Docker;

use crate::runtime::Plan;

pub use error::DockerError;
pub use image::{ImageInfo, BINARY_PATH, ENVOY_PATH, REPO};
pub use inventory::{Removed, Which};
pub use logs::{selector_matches, LogLine, LogsRequest};
pub use oneshot::OneShotOutput;

use spec::Owner;

/// A connection to one Docker daemon. Cheap to clone (the client is shared).
#[derive(Clone)]
pub struct DockerRuntime {
    docker: Docker,
    /// `DOCKER_HOST` or the default socket, for error messages.
    endpoint: Arc<str>,
    /// Whether the daemon shares this machine's loopback, so host ports can be pre-checked here.
    local: bool,
    /// Recorded on non-detached runs for the janitor.
    owner: Owner,
}

impl std::fmt::Debug for DockerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerRuntime")
            .field("endpoint", &self.endpoint)
            .field("owner", &self.owner)
            .finish()
    }
}

impl DockerRuntime {
    /// Connects (`DOCKER_HOST`, else the default socket), negotiates the API version and pings,
    /// within about 3 s. Fails with [`DockerError::DaemonUnreachable`] when no daemon answers.
    pub async fn connect() -> Result<Self, DockerError> {
        Self::connect_to(&connect::endpoint()).await
    }

    /// [`DockerRuntime::connect`] to an explicit endpoint (`unix:///…`, `tcp://host:port`).
    pub async fn connect_to(endpoint: &str) -> Result<Self, DockerError> {
        let docker = connect::connect(endpoint).await?;
        Ok(DockerRuntime {
            local: connect::is_local(endpoint),
            endpoint: endpoint.into(),
            docker,
            owner: Owner::current(),
        })
    }

    /// Records `pid` instead of this process as the owner of the runs it launches (a supervisor
    /// launching for another process; tests simulating a dead owner).
    pub fn with_owner_pid(mut self, pid: u32) -> Self {
        self.owner.pid = pid;
        self
    }

    /// Where the daemon is, as the user would write `DOCKER_HOST`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The underlying client, for what this runtime does not wrap (diagnostics, tests).
    pub fn api(&self) -> &Docker {
        &self.docker
    }

    /// Packages `binary` (with its shared-library closure and ELF loader) into a FROM-scratch
    /// image tagged `meshsim:<first 12 hex of sha256(binary)>`, unless that tag exists already
    /// (`built: false`). Layout: `/usr/local/bin/meshsim`, `/usr/local/bin/envoy` (a symlink:
    /// `argv[0]` of `envoy` takes Envoy's flags), the libraries where the loader looks, `/tmp`
    /// (1777), `/etc/meshsim/`; no ENTRYPOINT, CMD `meshsim --help`.
    pub async fn ensure_image(&self, binary: &Path) -> Result<ImageInfo, DockerError> {
        image::ensure(&self.docker, &self.endpoint, binary).await
    }

    fn owner_for(&self, plan: &Plan) -> Option<&Owner> {
        (!plan.detached).then_some(&self.owner)
    }

    fn api_error(&self, context: impl Into<String>, err: bollard::errors::Error) -> DockerError {
        DockerError::api(&self.endpoint, context, err)
    }
}

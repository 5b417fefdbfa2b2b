//! Runtimes: where a scenario's pods actually run.
//!
//! The supervisor hands a runtime a [`Plan`] (what to run, already validated and resolved against
//! the scenario file) and gets back [`UnitStatus`]es (what runs, and where the host can reach
//! it). Two runtimes implement the same contract:
//! - [`docker`]: containers on one private network per run, through the Docker API (bollard);
//! - [`local`]: local processes, one loopback address per pod, with an embedded DNS server.
//!
//! Ownership lives in the runtime, not in this process (docker compose's lesson): every
//! container and network carries the `meshsim.*` labels below, local runs keep a state
//! directory, so `down`, `ps` and the start-up janitor work after a crash.

pub mod docker;
pub mod local;

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Label keys put on every container and network a run creates.
pub mod labels {
    /// The run's id (one `meshsim up`).
    pub const RUN: &str = "meshsim.run";
    /// The scenario's `name:`.
    pub const SCENARIO: &str = "meshsim.scenario";
    /// `service#replica/role`, e.g. `service1#2/sidecar`; on networks: the run id.
    pub const UNIT: &str = "meshsim.unit";
    pub const SERVICE: &str = "meshsim.service";
    pub const REPLICA: &str = "meshsim.replica";
    /// `app`, `sidecar` or `proxy`.
    pub const ROLE: &str = "meshsim.role";
    /// The pid of the `meshsim up` that owns the run; the janitor removes runs whose owner is
    /// gone. Absent on detached runs, which live until `meshsim down`.
    pub const OWNER_PID: &str = "meshsim.owner-pid";
    /// The owner's host (`/etc/hostname` of the machine running `meshsim up`), so a janitor on
    /// another machine sharing the daemon never judges a pid it cannot see.
    pub const OWNER_HOST: &str = "meshsim.owner-host";
    /// Ports to publish, as `container_port:host_port:purpose` comma-separated, so `ps` can tell
    /// a published port from an admin or app port.
    pub const PORTS: &str = "meshsim.ports";
}

/// Everything one `meshsim up` launches.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Short random id, unique per run (container and network names derive from it).
    pub run_id: String,
    /// The scenario's `name:`.
    pub scenario: String,
    /// The scenario file, absolute.
    pub scenario_path: PathBuf,
    pub pods: Vec<Pod>,
    /// A detached run outlives this process; the janitor leaves it alone.
    pub detached: bool,
}

/// One replica of one service: containers sharing a network namespace (a Kubernetes pod).
#[derive(Debug, Clone)]
pub struct Pod {
    /// The service's name, which is also its DNS alias (replicas share it).
    pub service: String,
    /// 1-based.
    pub replica: u32,
    /// `containers[0]` owns the network namespace (the app, or a standalone proxy); a sidecar
    /// follows and joins it.
    pub containers: Vec<Container>,
    /// Ports of the pod the host may reach, always on 127.0.0.1.
    pub ports: Vec<PortSpec>,
    /// Start order: a pod starts after every pod of a lower wave, because its proxy resolves
    /// their service names once at start (and, on failure, again only after the DNS refresh
    /// interval). Pods of one wave start together.
    pub wave: u32,
}

impl Pod {
    /// `service1#2`, how faults, logs and `ps` name a replica.
    pub fn name(&self) -> String {
        format!("{}#{}", self.service, self.replica)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    App,
    Sidecar,
    Proxy,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::App => "app",
            Role::Sidecar => "sidecar",
            Role::Proxy => "proxy",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "app" => Some(Role::App),
            "sidecar" => Some(Role::Sidecar),
            "proxy" => Some(Role::Proxy),
            _ => None,
        }
    }
}

/// One process of a pod.
#[derive(Debug, Clone)]
pub struct Container {
    pub role: Role,
    pub program: Program,
    /// Extra environment, in order.
    pub env: Vec<(String, String)>,
    /// Files the container needs besides its config (a TLS service's certificate and key, the
    /// run's CA), each announced by an environment variable holding its path.
    pub files: Vec<PodFile>,
}

/// A file generated for a run and handed to a container. Docker copies it to `container_path`
/// through the API (no bind mounts); the local runtime writes it under the run's state
/// directory. Either way the container's environment gets `env=<where it is>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFile {
    /// `/etc/meshsim/tls/<name>`.
    pub container_path: String,
    pub env: String,
    pub contents: Vec<u8>,
    /// Private keys are 0600, the rest 0644.
    pub private: bool,
}

/// What a container runs. Runtimes turn this into a command line: inside the meshsim image the
/// binary is `/usr/local/bin/meshsim`; locally it is the running executable, with `--pod-ip` and
/// `--dns-resolver` added.
#[derive(Debug, Clone)]
pub enum Program {
    /// `meshsim service --kind KIND ARGS...`
    Sample { kind: String, args: Vec<String> },
    /// `envoy -c CONFIG ARGS...` (the proxy, under its Envoy name).
    Proxy {
        config: ConfigFile,
        args: Vec<String>,
    },
    /// A user image, run as is (Docker runtime only).
    Image {
        image: String,
        command: Option<Vec<String>>,
    },
}

/// A proxy config, read from the scenario's directory at plan time. Docker copies it into the
/// container through the API (no bind mounts, so a remote daemon works); the local runtime
/// writes it into the run's directory (a `reload` fault replaces that copy, never the user's
/// file) and points the process at the copy, resolving relative paths from `source`'s folder.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    /// Where it was read from (absolute).
    pub source: PathBuf,
    /// Where it goes inside a container: `/etc/meshsim/<file name>`.
    pub container_path: String,
    pub contents: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortPurpose {
    /// Listed under `publish:` in the scenario.
    Publish,
    /// A proxy's admin port, for readiness and the stats scraper.
    Admin,
    /// An app's port, for readiness and its own counters.
    App,
}

impl PortPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            PortPurpose::Publish => "publish",
            PortPurpose::Admin => "admin",
            PortPurpose::App => "app",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSpec {
    pub container_port: u16,
    /// `None`: any free port (read back after start).
    pub host_port: Option<u16>,
    pub purpose: PortPurpose,
}

/// A port of a running pod, reachable from the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedPort {
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub purpose: PortPurpose,
}

/// One running (or stopped) container or process, as `ps` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitStatus {
    pub run: String,
    pub scenario: String,
    /// `service#replica/role`.
    pub unit: String,
    pub service: String,
    pub replica: u32,
    pub role: Role,
    /// `running`, `exited`, `created`, `paused`… (Docker's words).
    pub state: String,
    /// Container id or process id.
    pub id: String,
    /// The pod's address on its network (inside the run, never dialled from the host).
    pub address: Option<IpAddr>,
    /// `docker` or `local`.
    pub runtime: &'static str,
    pub published: Vec<PublishedPort>,
    /// When the container or process started (for uptime); `None` when not known.
    pub started_at: Option<std::time::SystemTime>,
}

/// `service#replica/role`.
pub fn unit_name(service: &str, replica: u32, role: Role) -> String {
    format!("{service}#{replica}/{}", role.as_str())
}

//! The local runtime: a scenario's pods as local processes, no Docker needed.
//!
//! Each pod gets its own loopback address (`127.A.B.n`, one /24 per run). The proxy and sample
//! binaries take `--pod-ip`: what a config means by 0.0.0.0 or 127.0.0.1 becomes the pod's
//! address, so a sidecar config saying `127.0.0.1:8080` reaches its own app and nobody else's,
//! as in a network namespace. An embedded DNS server answers each service name with one A record
//! per replica, and proxies resolve through it (`--dns-resolver`). `publish:` ports are TCP
//! forwarders on 127.0.0.1.

mod forward;
mod process;
pub mod state;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::dns::{DnsServer, Records};
use crate::runtime::{unit_name, Plan, Pod, PortPurpose, Program, UnitStatus};

pub use state::{state_dir, ProcessId, RunState};
use state::{PortRecord, UnitRecord};

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{unit} listens on port {port}, below 1024, and this user may not bind it ({source}).\n  fix: run as root, or `sudo setcap cap_net_bind_service=+ep {exe}`, or `sudo sysctl net.ipv4.ip_unprivileged_port_start={port}`, or use --runtime docker")]
    LowPort {
        unit: String,
        port: u16,
        exe: String,
        source: std::io::Error,
    },
    #[error("host port {host_port} (published by {unit}) is already in use on 127.0.0.1.\n  fix: stop what holds it (`ss -ltnp 'sport = :{host_port}'`), or publish another port (`HOST_PORT:{container_port}`), or use --ephemeral-ports")]
    PortTaken {
        host_port: u16,
        container_port: u16,
        unit: String,
    },
    #[error("{unit} runs image `{image}`, which the local runtime cannot run (it runs meshsim's samples and proxies only).\n  fix: use --runtime docker, or replace `image:` by a `sample:`")]
    ImageUnsupported { unit: String, image: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> LocalError {
    let context = context.into();
    move |source| LocalError::Io { context, source }
}

/// Launches runs as local processes of `exe` (the meshsim binary).
#[derive(Debug, Clone)]
pub struct LocalRuntime {
    exe: PathBuf,
    state_root: PathBuf,
}

impl LocalRuntime {
    pub fn new(exe: PathBuf, state_root: PathBuf) -> LocalRuntime {
        LocalRuntime { exe, state_root }
    }

    /// The running meshsim binary and the default state directory.
    pub fn from_env() -> std::io::Result<LocalRuntime> {
        Ok(LocalRuntime::new(std::env::current_exe()?, state_dir()))
    }

    pub fn state_root(&self) -> &Path {
        &self.state_root
    }

    /// Starts every pod of `plan`. On failure, whatever was started is stopped again.
    pub async fn launch(&self, plan: &Plan) -> Result<LocalRun, LocalError> {
        if plan.pods.len() > MAX_PODS {
            return Err(LocalError::Io {
                context: format!("planning {} pods", plan.pods.len()),
                source: std::io::Error::other(format!("a local run holds at most {MAX_PODS} pods (one /24 of loopback addresses); lower `replicas`")),
            });
        }
        let subnet = self.free_subnet();
        let run_dir = RunState::dir(&self.state_root, &plan.run_id);
        std::fs::create_dir_all(&run_dir).map_err(io(format!("creating {}", run_dir.display())))?;
        let records = Records::new();
        let dns_addr = SocketAddr::from((subnet_ip(subnet, 1), 0));
        let dns = match DnsServer::bind(dns_addr, records.clone(), 1).await {
            Ok(dns) => dns,
            Err(source) => {
                let _ = std::fs::remove_dir_all(&run_dir);
                return Err(LocalError::Io {
                    context: format!("starting the run's DNS server on {dns_addr}"),
                    source,
                });
            }
        };
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let dns_addr = dns.local_addr();
        let mut stop = shutdown_rx.clone();
        tokio::spawn(dns.run(async move {
            let _ = stop.changed().await;
        }));
        let mut run = LocalRun {
            runtime: self.clone(),
            state: Arc::new(Mutex::new(Shared {
                state: RunState {
                    run: plan.run_id.clone(),
                    scenario: plan.scenario.clone(),
                    scenario_path: plan.scenario_path.clone(),
                    supervisor: ProcessId::current(),
                    detached: plan.detached,
                    dns: dns_addr,
                    units: Vec::new(),
                },
                torn_down: false,
            })),
            subnet,
            next_host: 2,
            records,
            shutdown: shutdown_tx,
            forwarders: Default::default(),
        };
        // Every replica's address is in DNS before the first process starts, so no proxy's
        // first resolution sees a half-started mesh.
        for (i, pod) in plan.pods.iter().enumerate() {
            let mut addresses = run.records.get(&pod.service);
            addresses.push(IpAddr::V4(subnet_ip(subnet, 2 + i as u8)));
            run.records.set(&pod.service, addresses);
        }
        for pod in &plan.pods {
            if let Err(e) = run.add_pod(pod).await {
                run.stop().await;
                return Err(e);
            }
        }
        run.save();
        Ok(run)
    }

    /// A /24 inside 127.0.0.0/8 no other local run uses.
    fn free_subnet(&self) -> [u8; 2] {
        let taken: Vec<IpAddr> = RunState::all(&self.state_root)
            .iter()
            .map(|r| r.dns.ip())
            .collect();
        loop {
            let candidate = [fastrand::u8(100..=199), fastrand::u8(..)];
            if !taken.contains(&IpAddr::V4(subnet_ip(candidate, 1))) {
                return candidate;
            }
        }
    }

    /// Every local run's units.
    pub fn list(&self) -> Vec<UnitStatus> {
        RunState::all(&self.state_root)
            .iter()
            .flat_map(RunState::units_status)
            .collect()
    }

    /// Stops runs and removes their state; `which` picks them by run id or scenario name
    /// (`None`: all). Asks the owning supervisor first (it stops its pods in order), then makes
    /// sure. Returns the run ids removed.
    pub async fn down(&self, which: impl Fn(&RunState) -> bool) -> Vec<String> {
        self.remove(which, Duration::from_secs(2)).await
    }

    /// Kills one run's processes at once (SIGKILL) and removes its state.
    pub async fn kill(&self, run: &str) {
        self.remove(|r| r.run == run, Duration::ZERO).await;
    }

    /// `down` and `kill`: the units get SIGTERM and `grace` before SIGKILL.
    async fn remove(&self, which: impl Fn(&RunState) -> bool, grace: Duration) -> Vec<String> {
        let mut removed = Vec::new();
        for run in RunState::all(&self.state_root)
            .into_iter()
            .filter(|r| which(r))
        {
            if run.supervisor.pid != std::process::id() {
                process::stop_all(&[run.supervisor], Duration::from_secs(8)).await;
            }
            let pids: Vec<ProcessId> = run.units.iter().filter_map(|u| u.process).collect();
            process::stop_all(&pids, grace).await;
            let _ = std::fs::remove_dir_all(RunState::dir(&self.state_root, &run.run));
            let _ = std::fs::remove_file(supervisor_log(&self.state_root, &run.run));
            removed.push(run.run);
        }
        removed
    }

    /// Removes runs whose supervisor is gone (killed, crashed): their pods are stopped and their
    /// state deleted.
    pub async fn janitor(&self) -> Vec<String> {
        self.down(|run| !run.supervisor.is_alive()).await
    }
}

/// Pods of one local run: 127.A.B.2 to 127.A.B.254 (.1 is the DNS server).
pub const MAX_PODS: usize = 253;

/// Where a detached run's background supervisor writes its output.
pub fn supervisor_log(root: &Path, run: &str) -> PathBuf {
    root.join("supervisors").join(format!("{run}.log"))
}

fn subnet_ip(subnet: [u8; 2], host: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, subnet[0], subnet[1], host)
}

/// A run's state as this process holds it. Every change is written to disk under the same lock
/// (so an older snapshot never overwrites a newer one), and never after teardown removed it.
struct Shared {
    state: RunState,
    torn_down: bool,
}

fn persist(shared: &Mutex<Shared>, root: &Path) {
    let shared = shared.lock().expect("state lock");
    if shared.torn_down {
        return;
    }
    if let Err(e) = shared.state.save(root) {
        tracing::warn!("cannot save the run's state: {e}");
    }
}

/// A run in progress, owned by this process.
pub struct LocalRun {
    runtime: LocalRuntime,
    state: Arc<Mutex<Shared>>,
    subnet: [u8; 2],
    next_host: u8,
    records: Records,
    shutdown: watch::Sender<bool>,
    /// Per pod (`service`, `replica`): flipping it stops the pod's `publish:` forwarders.
    forwarders: std::collections::HashMap<(String, u32), watch::Sender<bool>>,
}

impl LocalRun {
    pub fn run_id(&self) -> String {
        self.state.lock().expect("state lock").state.run.clone()
    }

    pub fn dns_addr(&self) -> SocketAddr {
        self.state.lock().expect("state lock").state.dns
    }

    pub fn units(&self) -> Vec<UnitStatus> {
        self.state.lock().expect("state lock").state.units_status()
    }

    fn save(&self) {
        persist(&self.state, &self.runtime.state_root);
    }

    /// The last `n` lines of each unit of `pod` (`service#replica`), prefixed by the unit.
    pub fn log_tail(&self, pod: &str, n: usize) -> Vec<String> {
        let units: Vec<(String, PathBuf)> = self
            .state
            .lock()
            .expect("state lock")
            .state
            .units
            .iter()
            .filter(|u| crate::runtime::docker::selector_matches(pod, &u.unit))
            .map(|u| (u.unit.clone(), u.log.clone()))
            .collect();
        let mut out = Vec::new();
        for (unit, log) in units {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            for line in &lines[lines.len().saturating_sub(n)..] {
                out.push(format!("{unit} | {line}"));
            }
        }
        out
    }

    /// Starts one more pod (a new replica): its processes, its DNS record, its forwarders.
    pub async fn add_pod(&mut self, pod: &Pod) -> Result<Vec<UnitStatus>, LocalError> {
        if self.next_host == 255 {
            return Err(LocalError::Io {
                context: format!("starting {}", pod.name()),
                source: std::io::Error::other("a local run holds at most 253 pods"),
            });
        }
        let ip = subnet_ip(self.subnet, self.next_host);
        self.next_host += 1;
        let run_id = self.run_id();
        let dns = self.dns_addr();
        let run_dir = RunState::dir(&self.runtime.state_root, &run_id);
        check_low_ports(pod, ip, &self.runtime.exe)?;

        // Forwarders first: a taken host port fails the pod before anything runs. They stop
        // with the run, or when the pod is removed (so a restarted pod can publish the same
        // host port again).
        let pod_gone = watch::channel(false).0;
        let mut published = Vec::new();
        for spec in &pod.ports {
            let container_port = spec.container_port;
            if spec.purpose != PortPurpose::Publish {
                published.push(PortRecord {
                    host_ip: IpAddr::V4(ip),
                    host_port: container_port,
                    container_port,
                    purpose: spec.purpose,
                });
                continue;
            }
            let host_port = spec.host_port;
            let listener = forward::bind(host_port.unwrap_or(0)).await.map_err(|e| {
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    LocalError::LowPort {
                        unit: pod.name(),
                        port: host_port.unwrap_or(0),
                        exe: self.runtime.exe.display().to_string(),
                        source: e,
                    }
                } else if e.kind() == std::io::ErrorKind::AddrInUse {
                    LocalError::PortTaken {
                        host_port: host_port.unwrap_or(0),
                        container_port,
                        unit: pod.name(),
                    }
                } else {
                    LocalError::Io {
                        context: format!("publishing port {container_port} of {}", pod.name()),
                        source: e,
                    }
                }
            })?;
            let bound = listener
                .local_addr()
                .map_err(io("reading a forwarder's port"))?;
            published.push(PortRecord {
                host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                host_port: bound.port(),
                container_port,
                purpose: spec.purpose,
            });
            tokio::spawn(forward::run(
                listener,
                SocketAddr::from((ip, container_port)),
                self.shutdown.subscribe(),
                pod_gone.subscribe(),
            ));
        }

        for (i, container) in pod.containers.iter().enumerate() {
            let unit = unit_name(&pod.service, pod.replica, container.role);
            let log = run_dir.join(format!(
                "{}-{}-{}.log",
                pod.service,
                pod.replica,
                container.role.as_str()
            ));
            let config = match &container.program {
                Program::Proxy { config, .. } => {
                    // A copy the run owns, so a `reload` fault can replace it without touching
                    // the user's file.
                    let path = config_copy(&run_dir, &pod.service, pod.replica);
                    std::fs::create_dir_all(path.parent().expect("in the run dir"))
                        .and_then(|()| std::fs::write(&path, &config.contents))
                        .map_err(io(format!("writing {} for {unit}", path.display())))?;
                    Some(path)
                }
                _ => None,
            };
            let args = self.command(pod, &container.program, config.as_deref(), ip, dns, &unit)?;
            let mut env = container.env.clone();
            // Generated files (TLS certificates) live with the run's logs, one folder a pod.
            let files_dir = run_dir.join(format!("files-{}-{}", pod.service, pod.replica));
            for file in &container.files {
                let name = file.container_path.rsplit('/').next().unwrap_or("file");
                let path = files_dir.join(name);
                write_pod_file(&path, file)
                    .map_err(io(format!("writing {} for {unit}", path.display())))?;
                env.push((file.env.clone(), path.display().to_string()));
            }
            env.push(("MESHSIM_RUN".into(), run_id.clone()));
            env.push(("MESHSIM_UNIT".into(), unit.clone()));
            let mut child = process::spawn(&self.runtime.exe, &args, &env, &log).map_err(io(
                format!("starting {unit} ({})", self.runtime.exe.display()),
            ))?;
            let process = child.id().and_then(ProcessId::of);
            self.state
                .lock()
                .expect("state lock")
                .state
                .units
                .push(UnitRecord {
                    unit: unit.clone(),
                    service: pod.service.clone(),
                    replica: pod.replica,
                    role: container.role,
                    process,
                    address: IpAddr::V4(ip),
                    // The pod's ports belong to every unit sharing its "network", as `ps` shows
                    // them for a Docker sidecar in its app's namespace.
                    published: published.clone(),
                    log,
                    exit: None,
                    started_at: Some(std::time::SystemTime::now()),
                });
            // Reap the child and record how it ended, so `ps` and readiness can tell. When the
            // process that owns the pod's "network" (its first) dies, the pod's address leaves
            // DNS, as a dead container's does on a Docker network.
            let state = self.state.clone();
            let root = self.runtime.state_root.clone();
            let records = (i == 0).then(|| (self.records.clone(), pod.service.clone()));
            let unit_for_exit = unit.clone();
            tokio::spawn(async move {
                let code = match child.wait().await {
                    Ok(status) => status.code().unwrap_or_else(|| {
                        -std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
                    }),
                    Err(_) => -1,
                };
                if let Some((records, service)) = records {
                    let remaining = records
                        .get(&service)
                        .into_iter()
                        .filter(|a| *a != IpAddr::V4(ip))
                        .collect();
                    records.set(&service, remaining);
                }
                // By name: `remove_pod` may have shifted the list since.
                if let Some(u) = state
                    .lock()
                    .expect("state lock")
                    .state
                    .units
                    .iter_mut()
                    .find(|u| u.unit == unit_for_exit && u.exit.is_none())
                {
                    u.exit = Some(code);
                }
                persist(&state, &root);
            });
        }
        let mut addresses = self.records.get(&pod.service);
        addresses.push(IpAddr::V4(ip));
        self.records.set(&pod.service, addresses);
        // A pod with nothing published has no forwarder to stop.
        if pod_gone.receiver_count() > 0 {
            self.forwarders
                .insert((pod.service.clone(), pod.replica), pod_gone);
        }
        self.save();
        Ok(self
            .units()
            .into_iter()
            .filter(|u| u.service == pod.service && u.replica == pod.replica)
            .collect())
    }

    /// Kills one replica (a fault, or scaling down): its processes get SIGKILL and its address
    /// leaves DNS at once; it is forgotten (gone from `ps`), and its published host ports are
    /// released.
    pub async fn remove_pod(&mut self, service: &str, replica: u32) {
        self.kill_pod(service, replica).await;
        if let Some(gone) = self.forwarders.remove(&(service.to_string(), replica)) {
            let _ = gone.send(true);
            // Each forwarder drops its listener as it drops its receiver: wait for that, so a
            // restart right after can bind the same host port again.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), gone.closed()).await;
        }
        self.state
            .lock()
            .expect("state lock")
            .state
            .units
            .retain(|u| !(u.service == service && u.replica == replica));
        self.save();
    }

    /// Kills one replica's processes (SIGKILL) and takes its address out of DNS at once, but
    /// keeps its units, which `ps` and the terminal UI then show as exited, as a killed
    /// container stays on Docker. Returns how many processes were running.
    pub async fn kill_pod(&mut self, service: &str, replica: u32) -> usize {
        let (processes, address) = self.pod_processes(service, replica);
        self.set_in_dns(service, address, false);
        process::stop_all(&processes, Duration::ZERO).await;
        processes.len()
    }

    /// Stops one replica as `docker stop` does: SIGTERM, SIGKILL after a grace, its address out
    /// of DNS first. Returns how many processes were running.
    pub async fn stop_pod(&mut self, service: &str, replica: u32) -> usize {
        let (processes, address) = self.pod_processes(service, replica);
        self.set_in_dns(service, address, false);
        process::stop_all(&processes, Duration::from_secs(2)).await;
        processes.len()
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) one replica's processes, as `docker pause` does:
    /// its address stays in DNS, its connections stay open, nothing answers.
    pub fn pause_pod(&mut self, service: &str, replica: u32, paused: bool) -> usize {
        let (processes, _) = self.pod_processes(service, replica);
        let signal = if paused {
            nix::sys::signal::Signal::SIGSTOP
        } else {
            nix::sys::signal::Signal::SIGCONT
        };
        for p in &processes {
            process::signal(*p, signal);
        }
        processes.len()
    }

    /// The local runtime's `docker network disconnect`: local pods share the host's loopback,
    /// so a cut-off replica is frozen and its address leaves DNS (what its peers see of a
    /// disconnected container: no answers, no name); reconnecting thaws it and puts it back.
    pub fn connect_pod(&mut self, service: &str, replica: u32, connected: bool) -> usize {
        let (_, address) = self.pod_processes(service, replica);
        let n = self.pause_pod(service, replica, !connected);
        self.set_in_dns(service, address, connected);
        n
    }

    /// The live processes of one replica, and its address.
    fn pod_processes(&self, service: &str, replica: u32) -> (Vec<ProcessId>, Option<IpAddr>) {
        let shared = self.state.lock().expect("state lock");
        let units: Vec<&UnitRecord> = shared
            .state
            .units
            .iter()
            .filter(|u| u.service == service && u.replica == replica)
            .collect();
        (
            units
                .iter()
                .filter(|u| u.exit.is_none())
                .filter_map(|u| u.process)
                .filter(ProcessId::is_alive)
                .collect(),
            units.first().map(|u| u.address),
        )
    }

    /// Adds a replica's address to its service's DNS name, or takes it out.
    fn set_in_dns(&self, service: &str, address: Option<IpAddr>, present: bool) {
        let Some(address) = address else { return };
        let mut addresses: Vec<IpAddr> = self
            .records
            .get(service)
            .into_iter()
            .filter(|a| *a != address)
            .collect();
        if present {
            addresses.push(address);
        }
        self.records.set(service, addresses);
    }

    /// Replaces the config a replica's proxy runs on (it hot-reloads it). Returns whether the
    /// replica has a proxy.
    pub fn replace_config(
        &self,
        service: &str,
        replica: u32,
        contents: &[u8],
    ) -> std::io::Result<bool> {
        let path = config_copy(
            &RunState::dir(&self.runtime.state_root, &self.run_id()),
            service,
            replica,
        );
        if !path.exists() {
            return Ok(false);
        }
        // Write then rename: the proxy must never read half a file.
        let temp = path.with_extension("new");
        std::fs::write(&temp, contents)?;
        std::fs::rename(&temp, &path)?;
        Ok(true)
    }

    /// The file a unit's output goes to (`None`: no such unit in this run).
    pub fn log_path(&self, unit: &str) -> Option<PathBuf> {
        self.state
            .lock()
            .expect("state lock")
            .state
            .units
            .iter()
            .find(|u| u.unit == unit)
            .map(|u| u.log.clone())
    }

    /// Stops every pod (SIGTERM, then SIGKILL after a grace period), the forwarders and the DNS
    /// server, and removes the run's state.
    pub async fn stop(self) {
        self.stop_with_grace(Duration::from_secs(5)).await;
    }

    /// Like [`LocalRun::stop`], with SIGKILL at once (the second Ctrl-C).
    pub async fn kill(self) {
        self.stop_with_grace(Duration::ZERO).await;
    }

    async fn stop_with_grace(self, grace: Duration) {
        let (processes, run) = {
            let shared = self.state.lock().expect("state lock");
            (
                shared
                    .state
                    .units
                    .iter()
                    .filter_map(|u| u.process)
                    .collect::<Vec<_>>(),
                shared.state.run.clone(),
            )
        };
        process::stop_all(&processes, grace).await;
        let _ = self.shutdown.send(true);
        // Under the lock, so a process-exit task cannot write the state back afterwards.
        let mut shared = self.state.lock().expect("state lock");
        shared.torn_down = true;
        // (A detached run's supervisor log stays: its parent shows it, `down` removes it.)
        let _ = std::fs::remove_dir_all(RunState::dir(&self.runtime.state_root, &run));
    }

    /// The command line of one container as a local process.
    fn command(
        &self,
        pod: &Pod,
        program: &Program,
        config_copy: Option<&Path>,
        ip: Ipv4Addr,
        dns: SocketAddr,
        unit: &str,
    ) -> Result<Vec<String>, LocalError> {
        let pod_ip = ip.to_string();
        Ok(match program {
            Program::Sample { kind, args } => {
                let mut out: Vec<String> =
                    ["service", "--kind", kind, "--pod-ip", &pod_ip, "--hostname"]
                        .map(str::to_string)
                        .to_vec();
                out.push(format!("{}-{}", pod.service, pod.replica));
                out.extend(args.iter().cloned());
                out
            }
            Program::Proxy { config, args } => {
                let mut out: Vec<String> = vec![
                    "proxy".into(),
                    "-c".into(),
                    config_copy.unwrap_or(&config.source).display().to_string(),
                    "--pod-ip".into(),
                    pod_ip,
                    "--dns-resolver".into(),
                    dns.to_string(),
                ];
                // The copy lives in the run's directory: relative `filename:` paths still
                // resolve from the user's file, as they did before it was copied.
                if let (Some(_), Some(dir)) = (config_copy, config.source.parent()) {
                    out.push("--config-base-dir".into());
                    out.push(dir.display().to_string());
                }
                out.extend(args.iter().cloned());
                out
            }
            Program::Image { image, .. } => {
                return Err(LocalError::ImageUnsupported {
                    unit: unit.to_string(),
                    image: image.clone(),
                });
            }
        })
    }
}

/// Where a replica's proxy config is copied to (one proxy a pod).
fn config_copy(run_dir: &Path, service: &str, replica: u32) -> PathBuf {
    run_dir
        .join("configs")
        .join(format!("{service}-{replica}.yaml"))
}

/// Ports below 1024 need privileges; find out before starting anything, and say how to fix it.
fn check_low_ports(pod: &Pod, ip: Ipv4Addr, exe: &Path) -> Result<(), LocalError> {
    for container in &pod.containers {
        let unit = unit_name(&pod.service, pod.replica, container.role);
        let ports: Vec<u16> = match &container.program {
            Program::Proxy { config, .. } => {
                let text = String::from_utf8_lossy(&config.contents);
                match crate::config::load_str(
                    &config.source.display().to_string(),
                    &text,
                    Path::new("."),
                ) {
                    Ok(loaded) => loaded
                        .bootstrap
                        .listeners
                        .iter()
                        .map(|l| l.address.port)
                        .chain(loaded.bootstrap.admin.iter().map(|a| a.address.port))
                        .collect(),
                    Err(_) => Vec::new(),
                }
            }
            // Whatever the app may bind: its port is among the pod's, published or not.
            _ => pod.ports.iter().map(|p| p.container_port).collect(),
        };
        for port in ports.into_iter().filter(|p| *p != 0 && *p < 1024) {
            if let Err(source) = std::net::TcpListener::bind((ip, port)) {
                if source.kind() == std::io::ErrorKind::PermissionDenied {
                    return Err(LocalError::LowPort {
                        unit,
                        port,
                        exe: exe.display().to_string(),
                        source,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Writes a generated file (0600 for private keys).
fn write_pod_file(path: &std::path::Path, file: &crate::runtime::PodFile) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if file.private { 0o600 } else { 0o644 });
    }
    std::io::Write::write_all(&mut options.open(path)?, &file.contents)
}

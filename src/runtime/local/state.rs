//! A local run's state on disk: `<state dir>/runs/<run id>/run.json` plus one log file per
//! unit. State lives outside the process (docker compose's lesson), so `ps`, `down`, `logs` and
//! the start-up janitor work from another terminal and after a crash.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::runtime::{PortPurpose, PublishedPort, Role, UnitStatus};

/// Where local runs keep their state: `$MESHSIM_STATE_DIR`, else `$XDG_STATE_HOME/meshsim`,
/// else `~/.local/state/meshsim`.
pub fn state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MESHSIM_STATE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(dir).join("meshsim");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/state/meshsim"),
        None => std::env::temp_dir().join("meshsim-state"),
    }
}

/// A process, identified so that a recycled pid is never mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: u32,
    /// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot).
    pub start_time: u64,
}

impl ProcessId {
    pub fn of(pid: u32) -> Option<ProcessId> {
        Some(ProcessId {
            pid,
            start_time: start_time(pid)?,
        })
    }

    pub fn current() -> ProcessId {
        ProcessId::of(std::process::id()).unwrap_or(ProcessId {
            pid: std::process::id(),
            start_time: 0,
        })
    }

    pub fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start_time) && !is_zombie(self.pid)
    }
}

fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let after = &stat[stat.rfind(')')? + 2..];
    Some(after.split_whitespace().map(str::to_string).collect())
}

fn start_time(pid: u32) -> Option<u64> {
    // Fields after the name start at field 3 (state); start time is field 22.
    stat_fields(pid)?.get(22 - 3)?.parse().ok()
}

fn is_zombie(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|f| f.first().is_some_and(|s| s == "Z"))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    pub run: String,
    pub scenario: String,
    pub scenario_path: PathBuf,
    /// The process that owns the run (a foreground `meshsim up`, or a detached supervisor).
    pub supervisor: ProcessId,
    pub detached: bool,
    /// The embedded DNS server the pods' proxies use.
    pub dns: SocketAddr,
    pub units: Vec<UnitRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnitRecord {
    pub unit: String,
    pub service: String,
    pub replica: u32,
    pub role: Role,
    pub process: Option<ProcessId>,
    pub address: IpAddr,
    pub published: Vec<PortRecord>,
    pub log: PathBuf,
    /// Set once the process has exited (its exit code, or -signal).
    pub exit: Option<i32>,
    /// When the process was spawned (uptime in `ps` and the terminal UI). Absent in the state
    /// files of older versions.
    #[serde(default)]
    pub started_at: Option<std::time::SystemTime>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct PortRecord {
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub purpose: PortPurpose,
}

impl RunState {
    pub fn dir(root: &Path, run: &str) -> PathBuf {
        root.join("runs").join(run)
    }

    pub fn file(root: &Path, run: &str) -> PathBuf {
        RunState::dir(root, run).join("run.json")
    }

    /// Written to a temporary file and renamed, so a reader never sees half a file.
    pub fn save(&self, root: &Path) -> std::io::Result<()> {
        let path = RunState::file(root, &self.run);
        // Unique, so two writers never interleave in one temporary file.
        let tmp = path.with_extension(format!(
            "json.{}.{}.tmp",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(tmp, path)
    }

    /// Every local run with a readable state file.
    pub fn all(root: &Path) -> Vec<RunState> {
        let Ok(entries) = std::fs::read_dir(root.join("runs")) else {
            return Vec::new();
        };
        let mut runs: Vec<RunState> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| std::fs::read(e.path().join("run.json")).ok())
            .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
            .collect();
        runs.sort_by(|a, b| a.scenario.cmp(&b.scenario).then(a.run.cmp(&b.run)));
        runs
    }

    pub fn units_status(&self) -> Vec<UnitStatus> {
        self.units
            .iter()
            .map(|u| UnitStatus {
                run: self.run.clone(),
                scenario: self.scenario.clone(),
                unit: u.unit.clone(),
                service: u.service.clone(),
                replica: u.replica,
                role: u.role,
                state: match (u.exit, u.process) {
                    (None, Some(p)) if p.is_alive() => "running".into(),
                    _ => "exited".into(),
                },
                id: u.process.map(|p| p.pid.to_string()).unwrap_or_default(),
                address: Some(u.address),
                runtime: "local",
                published: u
                    .published
                    .iter()
                    .map(|p| PublishedPort {
                        host_ip: p.host_ip,
                        host_port: p.host_port,
                        container_port: p.container_port,
                        purpose: p.purpose,
                    })
                    .collect(),
                started_at: u.started_at,
            })
            .collect()
    }
}

//! Starting and stopping a pod's processes.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use super::state::ProcessId;

/// Starts `exe args…` with its output appended to `log`. The child gets its own process group,
/// so a Ctrl-C in the terminal reaches only the supervisor, which then stops the pods in order.
pub fn spawn(
    exe: &Path,
    args: &[String],
    env: &[(String, String)],
    log: &Path,
) -> std::io::Result<Child> {
    let out = File::options().create(true).append(true).open(log)?;
    let err = out.try_clone()?;
    let mut command = Command::new(exe);
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        // A backstop: if the supervisor unwinds without stopping its pods, they go with it.
        .kill_on_drop(true);
    command.spawn()
}

pub fn signal(process: ProcessId, signal: Signal) {
    if process.is_alive() {
        let _ = kill(Pid::from_raw(process.pid as i32), signal);
    }
}

/// SIGTERM, then SIGKILL whatever is still alive after `grace`.
pub async fn stop_all(processes: &[ProcessId], grace: Duration) {
    for p in processes {
        signal(*p, Signal::SIGTERM);
    }
    let deadline = tokio::time::Instant::now() + grace;
    while processes.iter().any(ProcessId::is_alive) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for p in processes {
        signal(*p, Signal::SIGKILL);
    }
}

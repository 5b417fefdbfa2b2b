//! Process signals: the one place that knows how a meshsim process is asked to stop.

/// Resolves on SIGINT or SIGTERM. As PID 1 in a scratch container there are no default signal
/// actions, so every long-running command must install these handlers to stop at all.
pub async fn terminate() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Resolves on SIGINT, SIGTERM or SIGHUP. For a run in the foreground of a terminal without
/// the terminal UI (`meshsim up --no-tui`, piped, `meshsim test`): closing the terminal sends
/// SIGHUP, and the run must come down with it as with Ctrl-C, not stay up until the next
/// janitor. Not for `meshsim proxy`, where SIGHUP asks for a config reload, nor for a detached
/// run's supervisor, which outlives the terminal that started it.
pub async fn terminate_or_hangup() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        return terminate().await;
    };
    tokio::select! {
        _ = terminate() => {}
        _ = hangup.recv() => detach_from_terminal(),
    }
}

/// The terminal is gone: what the teardown still prints goes to /dev/null. Printing to a hung-up
/// terminal fails (EIO), and `println!` panics on a failed write, which would end the process
/// before it removed its run.
fn detach_from_terminal() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
}

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

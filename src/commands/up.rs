//! `meshsim up SCENARIO [--runtime docker|local|auto] [--detach]`.
//!
//! A detached Docker run lives in the daemon. A detached local run needs a process to own it
//! (the pods' DNS server, the published-port forwarders): `up` starts itself again in the
//! background as that supervisor, waits until it reports ready, and returns.

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use crate::cli::UpArgs;
use crate::runtime::local::state_dir;
use crate::scenario::plan::new_run_id;
use crate::supervisor::{self, choose_runtime, Chosen, RuntimeChoice, UpError, UpOptions};

use super::exit;

pub fn run(args: UpArgs) -> ExitCode {
    let options = UpOptions {
        scenario: args.scenario.clone(),
        runtime: args.runtime,
        detach: args.detach,
        ephemeral_ports: args.ephemeral_ports,
        timeout: Duration::from_secs(args.timeout),
        stats_interval: Duration::from_secs(args.stats_interval.max(1)),
        scrape_interval: Duration::from_secs(args.scrape_interval.max(1)),
        no_tui: args.no_tui,
        supervise: args
            .supervise
            .as_ref()
            .map(|v| (v[0].clone(), PathBuf::from(&v[1]))),
    };
    let result = super::runtime().block_on(async move {
        if options.detach && options.supervise.is_none() {
            // A bad scenario is exit 2 whatever the runtime, so check it before asking Docker.
            crate::scenario::load(&options.scenario).map_err(UpError::Scenario)?;
            let chosen = choose_runtime(options.runtime)
                .await
                .map_err(UpError::Docker)?;
            if let Chosen::Local(_, why) = chosen {
                if let Some(why) = why {
                    println!("  · Docker is not available ({why}); using the local runtime");
                }
                return detach_local(&options).await;
            }
            return supervisor::up(UpOptions {
                runtime: RuntimeChoice::Docker,
                ..options
            })
            .await;
        }
        supervisor::up(options).await
    });
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Starts the background supervisor of a detached local run and waits for it to be ready.
async fn detach_local(options: &UpOptions) -> Result<(), UpError> {
    let run_id = new_run_id();
    // Fail on a bad scenario here, in the user's terminal, before anything starts.
    supervisor::prepare(options, run_id.clone())?;
    let dir = state_dir().join("supervisors");
    std::fs::create_dir_all(&dir)
        .map_err(|e| UpError::Other(format!("creating {}: {e}", dir.display())))?;
    let log = dir.join(format!("{run_id}.log"));
    let ready = dir.join(format!("{run_id}.ready"));
    let exe =
        std::env::current_exe().map_err(|e| UpError::Other(format!("locating meshsim: {e}")))?;
    let out = std::fs::File::create(&log)
        .map_err(|e| UpError::Other(format!("creating {}: {e}", log.display())))?;
    let err = out.try_clone().map_err(|e| UpError::Other(e.to_string()))?;
    let mut command = tokio::process::Command::new(exe);
    command
        .arg("up")
        .arg(&options.scenario)
        .args(["--runtime", "local", "--detach", "--timeout"])
        .arg(options.timeout.as_secs().to_string())
        .arg("--supervise")
        .arg(&run_id)
        .arg(&ready)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group: closing this terminal or pressing Ctrl-C here must not stop it.
        .process_group(0);
    if options.ephemeral_ports {
        command.arg("--ephemeral-ports");
    }
    let mut child = command
        .spawn()
        .map_err(|e| UpError::Other(format!("starting the background supervisor: {e}")))?;
    let mut interrupted = Box::pin(crate::signals::terminate());
    let outcome = loop {
        if ready.exists() {
            break Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Killed by a signal: an infrastructure failure, not one of the coded outcomes.
            break Err(status.code().unwrap_or(exit::INFRASTRUCTURE as i32));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(25)) => {}
            _ = &mut interrupted => {
                // Ctrl-C while waiting: the supervisor tears down what it started, then exits.
                if let Some(pid) = child.id() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::SIGTERM,
                    );
                }
                let _ = child.wait().await;
                let _ = std::fs::remove_file(&log);
                return Err(UpError::Interrupted);
            }
        }
    };
    // The supervisor's own account of the start: on stdout when it worked, on stderr (where a
    // script looks for errors) when it did not.
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&ready);
    match outcome {
        Ok(()) => {
            print!("{text}");
            println!(
                "detached: supervisor pid {} (log {}); `meshsim down` removes the run",
                child.id().unwrap_or(0),
                log.display()
            );
            Ok(())
        }
        Err(code) => {
            eprint!("{text}");
            let _ = std::fs::remove_file(&log);
            std::process::exit(code);
        }
    }
}

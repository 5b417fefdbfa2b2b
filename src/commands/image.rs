//! `meshsim image`: build (or find) the FROM-scratch image of this binary and print its tag.

use std::process::ExitCode;
use std::time::Instant;

use crate::runtime::docker::{DockerError, DockerRuntime};

use super::exit;

pub fn run() -> ExitCode {
    let result = super::runtime().block_on(async {
        let docker = DockerRuntime::connect().await?;
        let exe = std::env::current_exe().map_err(|e| DockerError::Package {
            path: "/proc/self/exe".into(),
            reason: e.to_string(),
        })?;
        let t = Instant::now();
        let info = docker.ensure_image(&exe).await?;
        Ok::<_, DockerError>((info, t.elapsed()))
    });
    match result {
        Ok((info, took)) => {
            eprintln!(
                "{} {} in {}",
                if info.built { "built" } else { "found" },
                info.tag,
                crate::supervisor::human(took)
            );
            println!("{}", info.tag);
            ExitCode::from(exit::OK)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(match e {
                DockerError::DaemonUnreachable { .. } => exit::DOCKER_UNREACHABLE,
                _ => exit::INFRASTRUCTURE,
            })
        }
    }
}

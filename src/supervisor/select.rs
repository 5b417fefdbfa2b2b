//! `--runtime docker|local|auto`: which runtime a run uses, and saying why.

use crate::runtime::docker::{DockerError, DockerRuntime};
use crate::runtime::local::LocalRuntime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeChoice {
    Docker,
    Local,
    /// Docker when the daemon answers, else local.
    Auto,
}

pub enum Chosen {
    Docker(DockerRuntime),
    /// With the reason when `auto` fell back.
    Local(LocalRuntime, Option<String>),
}

impl Chosen {
    pub fn describe(&self) -> String {
        match self {
            Chosen::Docker(d) => format!("runtime docker (daemon at {})", d.endpoint()),
            Chosen::Local(_, None) => "runtime local (pods are local processes)".to_string(),
            Chosen::Local(_, Some(why)) => {
                format!("runtime local: Docker is not available ({why})")
            }
        }
    }
}

pub async fn choose_runtime(choice: RuntimeChoice) -> Result<Chosen, DockerError> {
    let local = || {
        LocalRuntime::from_env().map_err(|e| DockerError::Package {
            path: "/proc/self/exe".into(),
            reason: format!("cannot locate the running binary: {e}"),
        })
    };
    match choice {
        RuntimeChoice::Docker => DockerRuntime::connect().await.map(Chosen::Docker),
        RuntimeChoice::Local => Ok(Chosen::Local(local()?, None)),
        RuntimeChoice::Auto => match DockerRuntime::connect().await {
            Ok(docker) => Ok(Chosen::Docker(docker)),
            Err(e) => Ok(Chosen::Local(local()?, Some(short_reason(&e)))),
        },
    }
}

fn short_reason(e: &DockerError) -> String {
    match e {
        DockerError::DaemonUnreachable { endpoint, reason } => format!("{endpoint}: {reason}"),
        other => other.to_string(),
    }
}

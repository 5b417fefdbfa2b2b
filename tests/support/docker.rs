//! Real-Docker test helpers: connect or skip, meshsim's image from the real binary, unique run
//! ids, and a guard that removes a run even when the test panics.

use std::path::Path;

use meshsim::runtime::docker::{DockerRuntime, Which};

/// The daemon, or None (after saying why) when there is none. In CI (`CI=true`) a missing
/// daemon fails the test instead: CI must not go green by skipping.
pub async fn docker_or_skip() -> Option<DockerRuntime> {
    match DockerRuntime::connect().await {
        Ok(runtime) => Some(runtime),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("Docker is required in CI and is not usable: {e}")
        }
        Err(e) => {
            eprintln!("skipping: {e}");
            None
        }
    }
}

/// The real `meshsim` binary of this build, packaged (once per content hash) as an image.
pub async fn meshsim_image(runtime: &DockerRuntime) -> String {
    let started = std::time::Instant::now();
    let info = runtime
        .ensure_image(Path::new(env!("CARGO_BIN_EXE_meshsim")))
        .await
        .unwrap_or_else(|e| panic!("cannot build meshsim's image: {e}"));
    eprintln!(
        "image {} (built: {}, {} MB) in {:?}",
        info.tag,
        info.built,
        info.bytes / 1_000_000,
        started.elapsed()
    );
    info.tag
}

/// A run id unique to this test and invocation, readable in `docker ps`.
pub fn run_id(test: &str) -> String {
    format!("t{:06x}-{test}", fastrand::u32(..0x0100_0000))
}

/// Removes the run when dropped, panic or not. `down` runs on a fresh thread with its own
/// runtime and connection: the test's runtime may be the thing that is unwinding.
pub struct RunGuard {
    pub run_id: String,
}

impl RunGuard {
    pub fn new(run_id: &str) -> RunGuard {
        RunGuard {
            run_id: run_id.to_string(),
        }
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let run = self.run_id.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for cleanup");
            rt.block_on(async {
                if let Ok(docker) = DockerRuntime::connect().await {
                    if let Err(e) = docker.down(&Which::Run(run.clone())).await {
                        eprintln!("cleanup of run {run} failed: {e}");
                    }
                }
            });
        })
        .join();
    }
}

/// How many containers (any state) and networks carry the label `filter` (`key=value`), asked
/// of the daemon itself rather than of meshsim.
pub async fn labelled(runtime: &DockerRuntime, filter: &str) -> (usize, usize) {
    use bollard::query_parameters::{ListContainersOptionsBuilder, ListNetworksOptionsBuilder};
    let filters = std::collections::HashMap::from([("label", vec![filter.to_string()])]);
    let containers = runtime
        .api()
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .unwrap();
    let networks = runtime
        .api()
        .list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
        .unwrap();
    (containers.len(), networks.len())
}

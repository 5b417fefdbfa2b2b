//! Where the load generator runs, and running it there: in this process against the target's
//! port published on 127.0.0.1 (or, on the local runtime, the pod's own loopback address), or —
//! when a Docker target is not published — as `meshsim load` in a one-off container on the
//! scenario's network, which resolves the service by Docker DNS.

use tokio::sync::watch;

use crate::runtime::{PortPurpose, UnitStatus};
use crate::traffic::decode::Traffic;
use crate::traffic::plan::LoadPlan;
use crate::traffic::report::LoadReport;

use crate::runtime::docker::DockerRuntime;

use super::super::Launched;

#[derive(Debug, Clone)]
pub enum Placement {
    /// In this process, to this `host:port` on loopback.
    Here(String),
    /// In a container of the run's image on its network, to `service:port`.
    Container {
        runtime: DockerRuntime,
        run: String,
        image: String,
        scenario: String,
    },
}

impl Placement {
    /// Where the traffic of `traffic` can come from in this run.
    pub fn choose(
        traffic: &Traffic,
        units: &[UnitStatus],
        launched: &Launched,
        scenario: &str,
    ) -> Placement {
        let target = units
            .iter()
            .filter(|u| u.service == traffic.target_service && u.state == "running")
            .min_by_key(|u| u.replica);
        let published = units
            .iter()
            .filter(|u| u.service == traffic.target_service)
            .flat_map(|u| &u.published)
            .find(|p| p.purpose == PortPurpose::Publish && p.container_port == traffic.target_port);
        if let Some(p) = published {
            return Placement::Here(format!("{}:{}", p.host_ip, p.host_port));
        }
        match launched {
            Launched::Docker {
                runtime,
                run,
                image,
            } => Placement::Container {
                runtime: runtime.clone(),
                run: run.clone(),
                image: image.clone(),
                scenario: scenario.to_string(),
            },
            // A local pod's own address is on loopback, where the host may send (every local
            // unit has one; the checked scenario guarantees the service).
            Launched::Local(_) => Placement::Here(match target.and_then(|u| u.address) {
                Some(ip) => format!("{ip}:{}", traffic.target_port),
                None => format!("{}:{}", traffic.target_service, traffic.target_port),
            }),
        }
    }

    pub fn describe(&self, traffic: &Traffic) -> String {
        match self {
            Placement::Here(addr) => format!(
                "from this host to {}:{} at {addr}",
                traffic.target_service, traffic.target_port
            ),
            Placement::Container { .. } => format!(
                "from a container on the run's network to {}:{}",
                traffic.target_service, traffic.target_port
            ),
        }
    }
}

/// Runs the plan where `placement` says; `stop` ends it early (what is in flight is then
/// `cancelled`).
pub async fn run(
    traffic: &Traffic,
    placement: &Placement,
    start: tokio::time::Instant,
    stop: watch::Receiver<bool>,
) -> Result<LoadReport, String> {
    let mut plan: LoadPlan = traffic.plan.clone();
    match placement {
        Placement::Here(addr) => {
            plan.target = addr.clone();
            crate::traffic::generator::run(&plan, start, stop)
                .await
                .map_err(|e| format!("the load generator failed: {e}"))
        }
        Placement::Container {
            runtime,
            run,
            image,
            scenario,
        } => {
            plan.target = format!("{}:{}", traffic.target_service, traffic.target_port);
            let json = serde_json::to_string(&plan).map_err(|e| e.to_string())?;
            let out = runtime
                .run_oneshot(
                    run,
                    scenario,
                    "meshsim-load",
                    image,
                    vec!["load".into(), "--plan-json".into(), json],
                    stop,
                )
                .await
                .map_err(|e| format!("the load generator's container: {e}"))?;
            let report = out
                .stdout
                .lines()
                .rev()
                .find(|l| l.trim_start().starts_with('{'))
                .ok_or_else(|| {
                    format!(
                        "the load generator's container printed no report (exit {}): {}",
                        out.exit_code,
                        out.stderr.lines().last().unwrap_or("")
                    )
                })?;
            serde_json::from_str(report)
                .map_err(|e| format!("the load generator's report does not parse: {e}"))
        }
    }
}

//! `meshsim down [SCENARIO|--all]`: remove runs by label (Docker) and by state (local),
//! idempotently: nothing to remove is success.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use crate::cli::DownArgs;
use crate::runtime::docker::{DockerRuntime, Which};
use crate::runtime::local::LocalRuntime;
use crate::supervisor::{all_units, human};

use super::exit;

pub fn run(args: DownArgs) -> ExitCode {
    super::runtime().block_on(async move {
        let t = Instant::now();
        let which = if args.all {
            Which::All
        } else if let Some(s) = &args.scenario {
            match scenario_name(s) {
                Ok(name) => Which::Scenario(name),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(exit::INVALID_INPUT);
                }
            }
        } else {
            let running: BTreeSet<String> =
                all_units().await.into_iter().map(|u| u.scenario).collect();
            match running.len() {
                0 => {
                    println!("nothing to remove: no meshsim runs");
                    return ExitCode::from(exit::OK);
                }
                1 => Which::Scenario(running.into_iter().next().expect("one")),
                _ => {
                    eprintln!(
                        "error: several scenarios are running ({}); name one, or use --all",
                        running.into_iter().collect::<Vec<_>>().join(", ")
                    );
                    return ExitCode::from(exit::INVALID_INPUT);
                }
            }
        };
        let mut failed = false;
        let mut removed = Vec::new();
        if let Ok(docker) = DockerRuntime::connect().await {
            match docker.down(&which).await {
                Ok(r) if r.containers + r.networks > 0 => removed.push(format!(
                    "{} containers and {} networks",
                    r.containers, r.networks
                )),
                Ok(_) => {}
                Err(e) => {
                    eprintln!("error: {e}");
                    failed = true;
                }
            }
        }
        if let Ok(local) = LocalRuntime::from_env() {
            let runs = local
                .down(|r| match &which {
                    Which::All => true,
                    Which::Scenario(name) => &r.scenario == name,
                    Which::Run(id) => &r.run == id,
                })
                .await;
            if !runs.is_empty() {
                removed.push(format!("{} local run(s)", runs.len()));
            }
        }
        if failed {
            return ExitCode::from(exit::INFRASTRUCTURE);
        }
        if removed.is_empty() {
            println!("nothing to remove");
        } else {
            println!("removed {} ({})", removed.join(" and "), human(t.elapsed()));
        }
        ExitCode::from(exit::OK)
    })
}

/// `scenarios/front-proxy.yaml` → its `name:`; anything that is not a file is taken as a name.
fn scenario_name(arg: &str) -> Result<String, String> {
    let path = Path::new(arg);
    if !path.is_file() {
        return Ok(arg.to_string());
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {arg}: {e}"))?;
    crate::config::node::parse(&text)
        .ok()
        .and_then(|root| {
            root.get("name")
                .and_then(|n| n.as_scalar().map(str::to_string))
        })
        .ok_or_else(|| format!("{arg} has no `name:`; is it a scenario file?"))
}

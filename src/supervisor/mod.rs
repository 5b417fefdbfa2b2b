//! `meshsim up`: scenario → plan → runtime → readiness → wait for Ctrl-C → teardown.
//!
//! The supervisor knows proxies only through their admin API (readiness reads `/ready` and
//! `/clusters`), so what it learns about a mesh works against real Envoy too.

pub mod http_probe;
pub mod launched;
pub mod live;
pub mod readiness;
pub mod select;
pub mod table;
pub mod test_run;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::runtime::docker::{DockerError, DockerRuntime, Which};
use crate::runtime::local::{LocalError, LocalRuntime};
use crate::runtime::{Plan, PortPurpose, UnitStatus};
use crate::scenario::{self, ScenarioError};

pub use launched::{Launched, RuntimeError};
pub use select::{choose_runtime, Chosen, RuntimeChoice};

/// How `up` was asked to run.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub scenario: PathBuf,
    pub runtime: RuntimeChoice,
    pub detach: bool,
    /// Every `publish:` port on a free host port (see `meshsim ps`), so a scenario can run
    /// twice at once, or next to whatever holds its ports.
    pub ephemeral_ports: bool,
    /// How long to wait for readiness.
    pub timeout: Duration,
    /// How often a foreground run prints what its proxies see.
    pub stats_interval: Duration,
    /// How often the terminal UI scrapes each admin API.
    pub scrape_interval: Duration,
    /// Plain summary lines even on a terminal.
    pub no_tui: bool,
    /// Set when this process is the background supervisor of a detached local run: the run id
    /// its parent chose, and a file to touch once ready.
    pub supervise: Option<(String, PathBuf)>,
}

/// Why `up` failed; each maps to its own exit code.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error("{0}")]
    Scenario(ScenarioError),
    #[error("{0}")]
    Docker(DockerError),
    #[error("{0}")]
    Local(LocalError),
    #[error("the mesh did not become ready within {timeout:?}:\n{pending}\n  see why with `meshsim logs UNIT` (the run was removed; rerun with --timeout to wait longer)")]
    NotReady { timeout: Duration, pending: String },
    #[error("interrupted before the mesh was ready; everything started was removed")]
    Interrupted,
    /// A file the scenario names could not be read.
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Other(String),
}

impl From<RuntimeError> for UpError {
    fn from(e: RuntimeError) -> UpError {
        match e {
            RuntimeError::Docker(e) => UpError::Docker(e),
            RuntimeError::Local(e) => UpError::Local(e),
        }
    }
}

impl UpError {
    pub fn exit_code(&self) -> u8 {
        use crate::commands::exit;
        match self {
            UpError::Scenario(_) | UpError::Input(_) => exit::INVALID_INPUT,
            UpError::Interrupted => exit::INTERRUPTED,
            UpError::Docker(DockerError::DaemonUnreachable { .. }) => exit::DOCKER_UNREACHABLE,
            UpError::Docker(DockerError::ImageMissing { .. }) => exit::IMAGE_MISSING,
            UpError::Docker(DockerError::PortTaken { .. })
            | UpError::Local(LocalError::PortTaken { .. })
            | UpError::Local(LocalError::LowPort { .. }) => exit::PORT_UNAVAILABLE,
            UpError::Local(LocalError::ImageUnsupported { .. }) => exit::INVALID_INPUT,
            _ => exit::INFRASTRUCTURE,
        }
    }
}

/// Prints numbered steps with their timings, the way `docker compose up` reports progress.
pub struct Steps;

impl Steps {
    pub fn done(&self, what: impl std::fmt::Display, took: Duration) {
        println!("  ✓ {what} ({})", human(took));
    }

    /// What the janitor removed at start, if anything.
    pub fn reaped(&self, runs: &[String], took: Duration) {
        if !runs.is_empty() {
            self.done(
                format!(
                    "janitor removed {} abandoned run(s): {}",
                    runs.len(),
                    runs.join(", ")
                ),
                took,
            );
        }
    }
}

pub fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Loads the scenario and builds the plan (`--ephemeral-ports` applied). Warnings go to stderr.
pub fn prepare(options: &UpOptions, run_id: String) -> Result<(scenario::Loaded, Plan), UpError> {
    let loaded = scenario::load(&options.scenario).map_err(|e| {
        let warnings = e.warnings();
        if !warnings.is_empty() {
            eprintln!("{warnings}");
        }
        UpError::Scenario(e)
    })?;
    // The detached supervisor's parent has already said this.
    if options.supervise.is_none() {
        let cwd = std::env::current_dir().unwrap_or_default();
        for report in &loaded.warnings {
            let n = report.warnings().count();
            if n > 0 {
                eprintln!(
                    "  ! {}: {n} warning{} (deprecated or ignored Envoy fields; `meshsim validate {}` shows them)",
                    std::path::Path::new(&report.file).strip_prefix(&cwd).map(|p| p.display().to_string()).unwrap_or_else(|_| report.file.clone()),
                    if n == 1 { "" } else { "s" },
                    options.scenario.display()
                );
            }
        }
    }
    let mut plan = scenario::plan::plan(&loaded.scenario, &loaded.configs, run_id, options.detach)
        .map_err(|e| UpError::Input(format!("reading a proxy config: {e}")))?;
    if options.ephemeral_ports {
        for pod in &mut plan.pods {
            for port in &mut pod.ports {
                if port.purpose == PortPurpose::Publish {
                    port.host_port = None;
                }
            }
        }
    }
    Ok((loaded, plan))
}

/// A mesh launched and ready: what `up` keeps running and `test` drives.
pub struct Started {
    pub launched: Launched,
    pub plan: Plan,
    pub loaded: scenario::Loaded,
    pub units: Vec<UnitStatus>,
    pub probes: Vec<readiness::Probe>,
    pub on_docker: bool,
}

/// Loads the scenario, launches it on the chosen runtime and waits until it is ready, printing
/// each step. Whatever fails or is interrupted (`interrupted` resolves) on the way leaves
/// nothing behind.
pub async fn start(
    options: &UpOptions,
    interrupted: &mut (impl std::future::Future<Output = ()> + Unpin),
) -> Result<Started, UpError> {
    let steps = Steps;
    let started = Instant::now();
    let run_id = options
        .supervise
        .as_ref()
        .map(|(id, _)| id.clone())
        .unwrap_or_else(scenario::plan::new_run_id);
    let (loaded, plan) = prepare(options, run_id)?;
    steps.done(
        format!(
            "scenario `{}`: {} services, {} pods ({})",
            loaded.scenario.name,
            loaded.scenario.services.len(),
            plan.pods.len(),
            options.scenario.display()
        ),
        started.elapsed(),
    );
    // From here on a Ctrl-C or SIGTERM, whenever it comes, must not leave half a run behind.
    let t = Instant::now();
    let chosen = tokio::select! {
        chosen = choose_runtime(options.runtime) => chosen.map_err(UpError::Docker)?,
        _ = &mut *interrupted => return Err(UpError::Interrupted),
    };
    steps.done(chosen.describe(), t.elapsed());
    let on_docker = matches!(chosen, Chosen::Docker(_));
    let launching = async {
        match chosen {
            Chosen::Docker(runtime) => launch_docker(&steps, runtime, &plan).await,
            Chosen::Local(runtime, _) => launch_local(&steps, runtime, &plan).await,
        }
    };
    let launched = tokio::select! {
        launched = launching => launched?,
        _ = &mut *interrupted => {
            // The launch was cut short: whatever of the run exists goes, by its id.
            kill_run(&plan.run_id, on_docker).await;
            return Err(UpError::Interrupted);
        }
    };

    let units = match launched.units().await {
        Ok(units) => units,
        Err(e) => {
            let _ = launched.teardown().await;
            return Err(e.into());
        }
    };
    let t = Instant::now();
    let probes = readiness::probes(&plan, &units);
    let tty = std::io::stdout().is_terminal();
    let ready = readiness::wait(&probes, options.timeout, |ready, total| {
        if tty {
            print!("\r  … ready {ready}/{total}");
            let _ = std::io::stdout().flush();
        }
    });
    // A unit that exits while starting will not come back: fail now, not at the timeout.
    let died = async {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if let Some(unit) = launched.exited_unit().await {
                return unit;
            }
        }
    };
    let outcome = tokio::select! {
        result = ready => result,
        unit = died => Err(vec![(unit, "exited while starting".to_string())]),
        _ = &mut *interrupted => {
            if tty {
                print!("\r\x1b[K");
            }
            println!("interrupted: stopping `{}`", plan.scenario);
            stop(launched, &steps, &plan, on_docker).await?;
            return Err(UpError::Interrupted);
        }
    };
    if tty {
        print!("\r\x1b[K");
    }
    if let Err(pending) = outcome {
        // The run is about to be removed, and its logs with it: show why first.
        for (what, _) in &pending {
            let pod = what.split_whitespace().next().unwrap_or(what);
            let lines = launched.log_tail(pod, 15).await;
            if !lines.is_empty() {
                eprintln!("── last lines of {pod} ──");
                for line in lines {
                    eprintln!("{line}");
                }
            }
        }
        let pending = pending
            .iter()
            .map(|(what, why)| format!("  - {what}: {why}"))
            .collect::<Vec<_>>()
            .join("\n");
        if let Err(e) = launched.teardown().await {
            eprintln!("warning: cleaning up after the failed start: {e}");
        }
        return Err(UpError::NotReady {
            timeout: options.timeout,
            pending,
        });
    }
    steps.done(
        format!("ready: {} checks passed", probes.len()),
        t.elapsed(),
    );
    Ok(Started {
        launched,
        plan,
        loaded,
        units,
        probes,
        on_docker,
    })
}

/// `meshsim up`, in the foreground (or as a detached run's supervisor). Returns once torn down,
/// or once ready for a detached Docker run.
pub async fn up(options: UpOptions) -> Result<(), UpError> {
    let steps = Steps;
    let began = Instant::now();
    // A plain foreground run goes with its terminal (SIGHUP); a detached one's supervisor does
    // not. Nor, yet, a run under the terminal UI: SIGHUP keeps its default action there (the
    // process ends and the next run's janitor removes what it left), as the UI does not come
    // back from a hung-up terminal to tear down.
    let under_ui =
        std::io::stdout().is_terminal() && !options.no_tui && options.supervise.is_none();
    let foreground = !options.detach && options.supervise.is_none() && !under_ui;
    let mut interrupted: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> =
        if foreground {
            Box::pin(crate::signals::terminate_or_hangup())
        } else {
            Box::pin(crate::signals::terminate())
        };
    let Started {
        launched,
        plan,
        loaded,
        units,
        probes,
        on_docker,
    } = start(&options, &mut interrupted).await?;
    println!("\n{}", table::render(&units));
    for url in table::published_urls(&units) {
        println!("  {url}");
    }
    println!(
        "\nmeshsim up: `{}` ready in {}",
        plan.scenario,
        human(began.elapsed())
    );

    if let Some((_, ready_file)) = &options.supervise {
        let _ = std::fs::write(ready_file, b"ready\n");
    } else if options.detach {
        // Docker runs live in the daemon; `meshsim down` removes them.
        println!(
            "detached: `meshsim ps` lists it, `meshsim down {}` removes it",
            plan.scenario
        );
        return Ok(());
    }
    if options.supervise.is_none() {
        println!("Ctrl-C stops and removes it\n");
    }
    if under_ui {
        // The terminal UI until `q` (confirmed) or a signal, fed by the live task (units,
        // events, logs, actions); then the same teardown.
        let mesh = live::LiveMesh {
            launched,
            plan: plan.clone(),
            scenario: loaded.scenario,
            configs: loaded.configs,
        };
        let (feed, live) = live::start(mesh, options.scrape_interval);
        if let Err(e) = crate::tui::run(feed, true).await {
            eprintln!("warning: the terminal UI failed ({e}); stopping");
        }
        let launched = match live.stop().await {
            Ok(mesh) => mesh.launched,
            Err(e) => {
                // The run went with the task: remove it by its id.
                eprintln!("warning: the live task failed ({e}); removing the run by its id");
                kill_run(&plan.run_id, on_docker).await;
                return Ok(());
            }
        };
        println!("\nstopping `{}` (Ctrl-C again to force)", plan.scenario);
        return stop(launched, &steps, &plan, on_docker).await;
    }
    // Without the UI, a foreground run reports what its proxies see, plainly (no actions can
    // change the mesh, so the targets found at readiness stay right).
    let targets: Vec<crate::scrape::Target> = probes
        .iter()
        .filter_map(|p| match &p.kind {
            readiness::ProbeKind::Proxy { admin, .. } => Some(crate::scrape::Target {
                name: p.pod.clone(),
                admin: *admin,
            }),
            _ => None,
        })
        .collect();
    let reporter = (options.supervise.is_none() && !targets.is_empty())
        .then(|| tokio::spawn(report(targets, options.stats_interval)));
    interrupted.await;
    if let Some(reporter) = reporter {
        reporter.abort();
    }
    println!("\nstopping `{}` (Ctrl-C again to force)", plan.scenario);
    stop(launched, &steps, &plan, on_docker).await
}

/// Every `interval`, one line per proxy cluster with traffic (rps, success, latency, the split
/// over its endpoints), or per stale proxy, prefixed by the time since ready.
async fn report(targets: Vec<crate::scrape::Target>, interval: Duration) {
    let mut states: Vec<crate::scrape::ProxyState> = targets
        .into_iter()
        .map(crate::scrape::ProxyState::new)
        .collect();
    let started = Instant::now();
    crate::scrape::scrape_all(&mut states).await;
    loop {
        tokio::time::sleep(interval).await;
        crate::scrape::scrape_all(&mut states).await;
        let now = Instant::now();
        let stamp = format!("+{}s", now.duration_since(started).as_secs());
        for line in crate::scrape::summary_lines(&states, now, interval) {
            println!("  {stamp:>6}  {line}");
        }
    }
}

/// Tears the run down within 10 s; a second Ctrl-C/SIGTERM kills it at once.
async fn stop(
    launched: Launched,
    steps: &Steps,
    plan: &Plan,
    on_docker: bool,
) -> Result<(), UpError> {
    let t = Instant::now();
    tokio::select! {
        result = tokio::time::timeout(Duration::from_secs(10), launched.teardown()) => match result {
            Ok(Ok(what)) => steps.done(what, t.elapsed()),
            Ok(Err(e)) => return Err(UpError::Other(format!("teardown failed: {e}"))),
            Err(_) => return Err(UpError::Other("teardown took more than 10 s; `meshsim down --all` finishes it".into())),
        },
        _ = crate::signals::terminate() => {
            kill_run(&plan.run_id, on_docker).await;
            steps.done("forced: killed", t.elapsed());
        }
    }
    Ok(())
}

/// Kills everything of a run now, by its id (the second Ctrl-C, or an interrupted launch).
async fn kill_run(run: &str, on_docker: bool) {
    if on_docker {
        if let Ok(docker) = DockerRuntime::connect().await {
            let _ = docker.down(&Which::Run(run.to_string())).await;
        }
    } else if let Ok(local) = LocalRuntime::from_env() {
        local.kill(run).await;
    }
}

async fn launch_docker(
    steps: &Steps,
    runtime: DockerRuntime,
    plan: &Plan,
) -> Result<Launched, UpError> {
    let t = Instant::now();
    let reaped = runtime.janitor().await.map_err(UpError::Docker)?;
    steps.reaped(&reaped, t.elapsed());
    let t = Instant::now();
    let exe = std::env::current_exe()
        .map_err(|e| UpError::Other(format!("locating the meshsim binary: {e}")))?;
    let image = runtime.ensure_image(&exe).await.map_err(UpError::Docker)?;
    steps.done(
        format!(
            "image {} ({})",
            image.tag,
            if image.built { "built" } else { "cached" }
        ),
        t.elapsed(),
    );
    let t = Instant::now();
    let units = runtime
        .launch(plan, &image.tag)
        .await
        .map_err(UpError::Docker)?;
    steps.done(
        format!(
            "network meshsim-{} and {} containers started",
            plan.run_id,
            units.len()
        ),
        t.elapsed(),
    );
    Ok(Launched::Docker {
        runtime,
        run: plan.run_id.clone(),
        image: image.tag,
    })
}

async fn launch_local(
    steps: &Steps,
    runtime: LocalRuntime,
    plan: &Plan,
) -> Result<Launched, UpError> {
    let t = Instant::now();
    let reaped = runtime.janitor().await;
    steps.reaped(&reaped, t.elapsed());
    let t = Instant::now();
    let run = runtime.launch(plan).await.map_err(UpError::Local)?;
    steps.done(
        format!(
            "{} processes started, DNS on {}",
            run.units().len(),
            run.dns_addr()
        ),
        t.elapsed(),
    );
    Ok(Launched::Local(run))
}

/// Every unit meshsim knows of, on both runtimes. A Docker daemon that does not answer is left
/// out silently (`ps` must work on a laptop without Docker).
pub async fn all_units() -> Vec<UnitStatus> {
    let mut units = Vec::new();
    if let Ok(docker) = DockerRuntime::connect().await {
        units.extend(docker.list(None).await.unwrap_or_default());
    }
    if let Ok(local) = LocalRuntime::from_env() {
        units.extend(local.list());
    }
    units
}

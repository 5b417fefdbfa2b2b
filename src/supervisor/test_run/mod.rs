//! `meshsim test`, one scenario: up → ready → traffic with fault steps next to it, watched →
//! expectations judged → down. Whatever happens (an expectation fails, a step fails, Ctrl-C),
//! the faults are undone and the run is removed before the result is returned.

pub mod load;
pub mod observe;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::runtime::{Plan, UnitStatus};
use crate::scenario::model::Scenario;
use crate::traffic::faults::schedule::{self, Timed};
use crate::traffic::faults::FaultStep;
use crate::verdict::record::{FaultLog, PhaseSpan, RunRecord, Snapshot};
use crate::verdict::report::ScenarioResult;

use super::live::steps::FaultSteps;
use super::live::LiveMesh;
use super::{RuntimeChoice, Started, UpError, UpOptions};

use load::Placement;
use observe::Targets;

/// How often the run is snapshotted while traffic flows (phase boundaries besides).
const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);
/// After the last request: counters settle (an app counts as it answers, a proxy as the
/// response ends).
const SETTLE: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct TestOptions {
    pub runtime: RuntimeChoice,
    /// Readiness timeout.
    pub timeout: Duration,
}

/// How one scenario's test ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ending {
    Passed,
    Failed,
    Invalid,
    Infrastructure,
    Interrupted,
}

/// Runs one scenario's test. `interrupted` resolving (Ctrl-C) stops traffic, undoes the faults,
/// judges what was recorded (marked interrupted) and removes the run.
pub async fn run(
    path: &Path,
    options: &TestOptions,
    interrupted: &mut (impl std::future::Future<Output = ()> + Unpin),
) -> (ScenarioResult, Ending) {
    let began = Instant::now();
    let mut result = ScenarioResult {
        scenario: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        file: path.display().to_string(),
        runtime: String::new(),
        duration: Duration::ZERO,
        judgements: Vec::new(),
        error: None,
        interrupted: false,
    };
    let ending = run_inner(path, options, interrupted, &mut result).await;
    result.duration = began.elapsed();
    result.interrupted = ending == Ending::Interrupted;
    (result, ending)
}

async fn run_inner(
    path: &Path,
    options: &TestOptions,
    interrupted: &mut (impl std::future::Future<Output = ()> + Unpin),
    result: &mut ScenarioResult,
) -> Ending {
    // What is tested must be there before anything starts.
    match crate::scenario::load(path) {
        Ok(loaded) => {
            result.scenario = loaded.scenario.name.clone();
            if let Some(problem) = untestable(&loaded.scenario) {
                result.error = Some(problem);
                return Ending::Invalid;
            }
        }
        Err(e) => {
            result.error = Some(e.to_string());
            return Ending::Invalid;
        }
    }
    let up = UpOptions {
        scenario: path.to_path_buf(),
        runtime: options.runtime,
        detach: false,
        // A test must not collide with a mesh already up, nor with itself in CI.
        ephemeral_ports: true,
        timeout: options.timeout,
        stats_interval: Duration::from_secs(5),
        scrape_interval: Duration::from_secs(1),
        no_tui: true,
        supervise: None,
    };
    let started = match super::start(&up, interrupted).await {
        Ok(s) => s,
        Err(e) => {
            let ending = match &e {
                UpError::Interrupted => Ending::Interrupted,
                e if e.exit_code() == crate::commands::exit::INVALID_INPUT => Ending::Invalid,
                _ => Ending::Infrastructure,
            };
            result.error = Some(e.to_string());
            return ending;
        }
    };
    result.runtime = started.launched.runtime_name().to_string();
    let Started {
        launched,
        plan,
        loaded,
        units,
        on_docker,
        ..
    } = started;
    let run_id = plan.run_id.clone();
    let mesh = LiveMesh {
        launched,
        plan,
        scenario: loaded.scenario,
        configs: loaded.configs,
    };
    let (mesh, record, error) = drive(mesh, units, interrupted).await;
    let was_interrupted = record.interrupted;
    if let Some(e) = &error {
        eprintln!("  ✗ {e}");
    }
    let expectations = mesh.scenario.expect.clone();
    result.judgements = crate::verdict::evaluate::evaluate(&expectations, &record);
    // Down, whatever happened.
    let t = Instant::now();
    match tokio::time::timeout(Duration::from_secs(15), mesh.launched.teardown()).await {
        Ok(Ok(what)) => super::Steps.done(what, t.elapsed()),
        Ok(Err(e)) => eprintln!("warning: teardown failed ({e}); `meshsim down --all` finishes it"),
        Err(_) => {
            super::kill_run(&run_id, on_docker).await;
            super::Steps.done("teardown took too long: killed", t.elapsed());
        }
    }
    if was_interrupted {
        result.error.get_or_insert_with(|| "interrupted".into());
        return Ending::Interrupted;
    }
    if let Some(e) = error {
        result.error = Some(e);
        return Ending::Infrastructure;
    }
    if result.judgements.iter().all(|j| j.passed) {
        Ending::Passed
    } else {
        Ending::Failed
    }
}

/// Why a scenario cannot be tested, if it cannot.
fn untestable(scenario: &Scenario) -> Option<String> {
    if scenario.traffic.is_none() {
        return Some(format!(
            "{}: no `traffic:` to send; `meshsim test` needs traffic and expectations (see the README's `meshsim test` section)",
            scenario.path.display()
        ));
    }
    if scenario.expect.is_empty() {
        return Some(format!(
            "{}: no `expect:`; a test without expectations cannot fail — add at least one, e.g. `expect: [{{success_rate: \">= 99%\"}}]`",
            scenario.path.display()
        ));
    }
    None
}

/// Traffic, fault steps and snapshots, side by side, from one start instant; then the faults
/// undone and the last snapshot. Returns the mesh (for teardown), what was recorded, and an
/// infrastructure error if one cut the run short.
async fn drive(
    mesh: LiveMesh,
    units: Vec<UnitStatus>,
    interrupted: &mut (impl std::future::Future<Output = ()> + Unpin),
) -> (LiveMesh, RunRecord, Option<String>) {
    let traffic = mesh
        .scenario
        .traffic
        .clone()
        .expect("checked: the scenario has traffic");
    let steps: Vec<FaultStep> = mesh.scenario.faults.clone();
    let starts = traffic.plan.phase_starts();
    let phases: Vec<PhaseSpan> = traffic
        .plan
        .phases
        .iter()
        .zip(&starts)
        .map(|(p, s)| PhaseSpan {
            name: p.name.clone(),
            start: *s,
            end: *s + p.duration,
        })
        .collect();
    let named: Vec<(String, Duration)> = phases.iter().map(|p| (p.name.clone(), p.start)).collect();
    let timeline = schedule::timeline(&steps, &named);
    let placement = Placement::choose(&traffic, &units, &mesh.launched, &mesh.scenario.name);
    super::Steps.done(
        format!(
            "traffic: {} phase(s), {:.0} s, {}",
            phases.len(),
            traffic.plan.total_duration().as_secs_f64(),
            placement.describe(&traffic)
        ),
        Duration::ZERO,
    );
    let mut record = RunRecord {
        scenario: mesh.scenario.name.clone(),
        runtime: mesh.launched.runtime_name().to_string(),
        phases: phases.clone(),
        target_proxy: mesh
            .scenario
            .service(&traffic.target_service)
            .and_then(|s| s.proxy().map(|_| format!("{}#1", s.name))),
        ..Default::default()
    };
    let mut addresses: BTreeMap<std::net::IpAddr, String> = BTreeMap::new();
    remember_addresses(&units, &mut addresses);
    let targets = Targets::of(&units, &mesh.plan, &mesh.scenario);
    record
        .snapshots
        .push(observe::snapshot(&targets, Duration::ZERO).await);

    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, done_rx) = watch::channel(false);
    let (units_tx, units_rx) = watch::channel((units, mesh.plan.clone()));
    let t0 = tokio::time::Instant::now();
    let mut boundaries: Vec<Duration> = phases.iter().flat_map(|p| [p.start, p.end]).collect();
    boundaries.sort();
    boundaries.dedup();

    let generator = async {
        let result = load::run(&traffic, &placement, t0, stop_rx).await;
        let _ = done_tx.send(true);
        result
    };
    let scenario = mesh.scenario.clone();
    let faults = run_faults(mesh, &steps, &timeline, t0, done_rx.clone(), units_tx);
    let watcher = watch_run(
        &scenario,
        &targets,
        units_rx,
        t0,
        &boundaries,
        done_rx.clone(),
    );
    let mut was_interrupted = false;
    let guarded_generator = async {
        tokio::pin!(generator);
        loop {
            tokio::select! {
                r = &mut generator => break r,
                _ = &mut *interrupted, if !was_interrupted => {
                    was_interrupted = true;
                    println!("\ninterrupted: stopping traffic, undoing faults, removing the run");
                    let _ = stop_tx.send(true);
                }
            }
        }
    };
    let (generated, (mesh, fault_log), (snapshots, seen)) =
        tokio::join!(guarded_generator, faults, watcher);
    record.interrupted = was_interrupted;
    record.faults = fault_log;
    record.snapshots.extend(snapshots);
    for units in &seen {
        remember_addresses(units, &mut addresses);
    }
    // The last word: every request has ended; counters settle, then are read once more.
    tokio::time::sleep(SETTLE).await;
    let end = t0.elapsed();
    let final_targets = match mesh.launched.units().await {
        Ok(units) => {
            remember_addresses(&units, &mut addresses);
            Targets::of(&units, &mesh.plan, &mesh.scenario)
        }
        Err(_) => targets,
    };
    record
        .snapshots
        .push(observe::snapshot(&final_targets, end).await);
    record.endpoints = observe::endpoint_names(&record.snapshots, &addresses);
    let error = match generated {
        Ok(report) => {
            print_load_summary(&report);
            record.load = Some(report);
            None
        }
        Err(e) => Some(e),
    };
    (mesh, record, error)
}

fn remember_addresses(units: &[UnitStatus], into: &mut BTreeMap<std::net::IpAddr, String>) {
    for unit in units {
        if let Some(ip) = unit.address {
            into.insert(ip, observe::pod_name(unit));
        }
    }
}

/// Walks the fault timeline from `t0`, refreshing the unit list every second for the watcher;
/// once traffic is done, undoes what the end of a run undoes. Returns the mesh and the log.
async fn run_faults(
    mut mesh: LiveMesh,
    steps: &[FaultStep],
    timeline: &[Timed],
    t0: tokio::time::Instant,
    mut done: watch::Receiver<bool>,
    units_tx: watch::Sender<(Vec<UnitStatus>, Plan)>,
) -> (LiveMesh, Vec<FaultLog>) {
    let mut runner = FaultSteps::default();
    let mut next = 0;
    let mut refresh = tokio::time::interval(SNAPSHOT_EVERY);
    loop {
        let due = timeline.get(next).map(|t| t0 + t.at);
        tokio::select! {
            _ = async { tokio::time::sleep_until(due.expect("guarded")).await }, if due.is_some() => {
                let t = timeline[next];
                next += 1;
                let step = &steps[t.step];
                let at = t0.elapsed();
                let outcome = if t.undo {
                    runner.undo(&mut mesh, t.step, step, at).await
                } else {
                    runner.apply(&mut mesh, t.step, step, at).await
                };
                let what = if t.undo { format!("undo {}", step.action.describe()) } else { step.action.describe() };
                match outcome {
                    Ok(()) => println!("  +{:>5.1}s  fault: {what}", at.as_secs_f64()),
                    Err(e) => println!("  +{:>5.1}s  fault FAILED: {what}: {e}", at.as_secs_f64()),
                }
                if let Ok(units) = mesh.launched.units().await {
                    let _ = units_tx.send((units, mesh.plan.clone()));
                }
            }
            _ = refresh.tick() => {
                // Only a change is news (a pod died or came back): the plan changes with steps
                // alone, and those send it themselves.
                if let Ok(units) = mesh.launched.units().await {
                    units_tx.send_if_modified(|(known, _)| {
                        let changed = *known != units;
                        if changed {
                            *known = units;
                        }
                        changed
                    });
                }
            }
            changed = done.changed() => {
                if changed.is_err() || *done.borrow() {
                    break;
                }
            }
        }
    }
    // The end of the run: undo what must not outlive it.
    for i in runner.active() {
        if schedule::undone_at_end(&steps[i].action) {
            let at = t0.elapsed();
            if let Err(e) = runner.undo(&mut mesh, i, &steps[i], at).await {
                println!(
                    "  +{:>5.1}s  fault FAILED: undo {}: {e}",
                    at.as_secs_f64(),
                    steps[i].action.describe()
                );
            }
        }
    }
    (mesh, runner.log)
}

/// Snapshots every second and at each phase boundary until traffic is done. Returns them, and
/// every unit list seen (for endpoint names).
async fn watch_run(
    scenario: &Scenario,
    first: &Targets,
    mut units: watch::Receiver<(Vec<UnitStatus>, Plan)>,
    t0: tokio::time::Instant,
    boundaries: &[Duration],
    mut done: watch::Receiver<bool>,
) -> (Vec<Snapshot>, Vec<Vec<UnitStatus>>) {
    let mut targets = first.clone();
    let mut snapshots = Vec::new();
    let mut seen = Vec::new();
    let mut boundary = 0;
    let mut tick = tokio::time::interval_at(t0 + SNAPSHOT_EVERY, SNAPSHOT_EVERY);
    loop {
        // Phase boundaries already passed (the first is the start, taken before).
        while boundaries
            .get(boundary)
            .is_some_and(|b| t0 + *b <= tokio::time::Instant::now())
        {
            boundary += 1;
        }
        let due = boundaries.get(boundary).map(|b| t0 + *b);
        tokio::select! {
            _ = tick.tick() => {}
            _ = async { tokio::time::sleep_until(due.expect("guarded")).await }, if due.is_some() => {
                boundary += 1;
            }
            changed = done.changed() => {
                if changed.is_err() || *done.borrow() {
                    break;
                }
                continue;
            }
        }
        if units.has_changed().unwrap_or(false) {
            let (list, plan) = units.borrow_and_update().clone();
            // Pods come and go with the fault steps; whoever is there now is read.
            targets = Targets::of(&list, &plan, scenario);
            seen.push(list);
        }
        snapshots.push(observe::snapshot(&targets, t0.elapsed()).await);
    }
    (snapshots, seen)
}

fn print_load_summary(report: &crate::traffic::report::LoadReport) {
    let mut total = crate::traffic::report::Tally::default();
    for phase in &report.phases {
        total.merge(&phase.total());
    }
    let counts = total
        .counts
        .0
        .iter()
        .map(|(o, n)| format!("{n}×{o}"))
        .collect::<Vec<_>>()
        .join(", ");
    let p99 = total
        .latency
        .quantile(0.99)
        .map(crate::supervisor::human)
        .unwrap_or_else(|| "-".into());
    println!("  ✓ traffic: {} sent ({counts}), p99 {p99}", report.sent);
}

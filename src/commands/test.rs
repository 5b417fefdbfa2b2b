//! `meshsim test SCENARIO... [--junit FILE] [--json FILE] [--runtime …]`: each scenario's
//! traffic, faults and expectations, headless; a table per scenario, reports for CI.
//!
//! Exit codes: 0 every expectation passed, 1 one failed, 2 invalid input, 3 infrastructure
//! failure (130 interrupted). Reports are written atomically, also when interrupted.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::TestArgs;
use crate::supervisor::test_run::{self, Ending, TestOptions};
use crate::verdict::report::{self, ScenarioResult};

use super::exit;

pub fn run(args: TestArgs) -> ExitCode {
    let files = match scenario_files(&args.scenarios) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::INVALID_INPUT);
        }
    };
    let options = TestOptions {
        runtime: args.runtime,
        timeout: Duration::from_secs(args.timeout),
    };
    let (results, worst) = super::runtime().block_on(async {
        let mut interrupted = Box::pin(crate::signals::terminate_or_hangup());
        let mut results: Vec<ScenarioResult> = Vec::new();
        let mut worst = Ending::Passed;
        for file in &files {
            println!("── meshsim test {} ──", file.display());
            let (result, ending) = test_run::run(file, &options, &mut interrupted).await;
            match &result.error {
                Some(e) if result.judgements.is_empty() => eprintln!("error: {e}"),
                _ => {}
            }
            if !result.judgements.is_empty() {
                println!("\n{}", report::table(&result.scenario, &result.judgements));
            }
            worst = worst.max(ending);
            results.push(result);
            // Partial reports as we go: a CI job killed later still leaves the finished ones.
            write_reports(&args, &results, false);
            if ending == Ending::Interrupted {
                break;
            }
        }
        (results, worst)
    });
    if !write_reports(&args, &results, true) {
        return ExitCode::from(exit::INFRASTRUCTURE);
    }
    summary(&results);
    ExitCode::from(match worst {
        Ending::Passed => exit::OK,
        Ending::Failed => exit::FAILURE,
        Ending::Invalid => exit::INVALID_INPUT,
        Ending::Infrastructure => exit::INFRASTRUCTURE,
        Ending::Interrupted => exit::INTERRUPTED,
    })
}

/// Files as given; a directory stands for its scenario files (`*.yaml`/`*.yml` with
/// `services:`), in name order.
fn scenario_files(given: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in given {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .filter(|p| {
                    std::fs::read_to_string(p)
                        .is_ok_and(|t| crate::scenario::looks_like_scenario(&t))
                })
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(format!(
                    "{} holds no scenario files (*.yaml with `services:`)",
                    path.display()
                ));
            }
            files.extend(found);
        } else if path.exists() {
            files.push(path.clone());
        } else {
            return Err(format!("{}: no such file or directory", path.display()));
        }
    }
    Ok(files)
}

/// Writes the reports asked for; says so on failure (and returns false) only the last time.
fn write_reports(args: &crate::cli::TestArgs, results: &[ScenarioResult], last: bool) -> bool {
    let mut ok = true;
    type Render = fn(&[ScenarioResult]) -> String;
    let outputs: [(&Option<PathBuf>, Render); 2] =
        [(&args.json, report::json), (&args.junit, report::junit)];
    for (path, render) in outputs {
        if let Some(path) = path {
            if let Err(e) = report::write_atomic(path, &render(results)) {
                if last {
                    eprintln!("error: writing {}: {e}", path.display());
                }
                ok = false;
            } else if last {
                println!("  wrote {}", path.display());
            }
        }
    }
    ok
}

fn summary(results: &[ScenarioResult]) {
    let passed = results.iter().filter(|r| r.passed()).count();
    println!(
        "\nmeshsim test: {passed} of {} scenario{} passed",
        results.len(),
        if results.len() == 1 { "" } else { "s" }
    );
    for r in results {
        let failed = r.failed();
        let state = if r.interrupted {
            "interrupted".to_string()
        } else if let Some(e) = &r.error {
            format!("error: {}", e.lines().next().unwrap_or(e))
        } else if failed > 0 {
            format!("{failed} of {} expectations failed", r.judgements.len())
        } else {
            format!("{} expectations passed", r.judgements.len())
        };
        println!(
            "  {} {:<24} {:>6.1} s  {state}",
            if r.passed() { "✓" } else { "✗" },
            r.scenario,
            r.duration.as_secs_f64()
        );
    }
}

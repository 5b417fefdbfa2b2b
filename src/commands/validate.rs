//! `meshsim validate FILE...`: every error of every file, rendered with file:line:col, a snippet
//! and a hint; exit 2 when any file is invalid.

use std::process::ExitCode;

use crate::cli::ValidateArgs;
use crate::config::{self, diagnostics::Severity, LoadError};

use super::exit;

/// A scenario and every proxy config it names; true when valid.
fn validate_scenario(file: &std::path::Path, quiet: bool) -> bool {
    match crate::scenario::load(file) {
        Ok(loaded) => {
            let warnings = crate::scenario::render_warnings(&loaded.warnings);
            if !quiet && !warnings.is_empty() {
                eprintln!("{warnings}");
            }
            println!(
                "{}: OK (scenario `{}`, {} services)",
                file.display(),
                loaded.scenario.name,
                loaded.scenario.services.len()
            );
            true
        }
        Err(error) => {
            let warnings = error.warnings();
            if !quiet && !warnings.is_empty() {
                eprintln!("{warnings}");
            }
            match error {
                crate::scenario::ScenarioError::Io { .. } => eprintln!("error: {error}"),
                _ => eprint!("{error}"),
            }
            false
        }
    }
}

pub fn run(args: ValidateArgs) -> ExitCode {
    let mut invalid = 0;
    for file in &args.files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if crate::scenario::looks_like_scenario(&text) {
            if !validate_scenario(file, args.quiet) {
                invalid += 1;
            }
            continue;
        }
        match config::load_file(file) {
            Ok(loaded) => {
                if !args.quiet && loaded.report.warnings().next().is_some() {
                    eprintln!("{}", loaded.report.render(Severity::Warning));
                }
                println!("{}: OK", file.display());
            }
            Err(error @ LoadError::Io { .. }) => {
                invalid += 1;
                eprintln!("error: {error}");
            }
            Err(LoadError::Invalid(report)) => {
                invalid += 1;
                if !args.quiet && report.warnings().next().is_some() {
                    eprintln!("{}", report.render(Severity::Warning));
                }
                eprintln!("{report}");
            }
        }
    }
    if invalid > 0 {
        ExitCode::from(exit::INVALID_INPUT)
    } else {
        ExitCode::from(exit::OK)
    }
}

//! `meshsim validate FILE...`: every error of every file, rendered with file:line:col, a snippet
//! and a hint; exit 2 when any file is invalid.

use std::process::ExitCode;

use crate::cli::ValidateArgs;
use crate::config::{self, diagnostics::Severity, LoadError};

use super::exit;

pub fn run(args: ValidateArgs) -> ExitCode {
    let mut invalid = 0;
    for file in &args.files {
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

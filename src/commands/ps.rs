//! `meshsim ps [--json]`: every unit of every run, on both runtimes.

use std::process::ExitCode;

use crate::cli::PsArgs;
use crate::supervisor::{all_units, table};

use super::exit;

pub fn run(args: PsArgs) -> ExitCode {
    let units = super::runtime().block_on(all_units());
    if args.json {
        match serde_json::to_string_pretty(&units) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(exit::FAILURE);
            }
        }
    } else if units.is_empty() {
        println!("no meshsim runs");
    } else {
        print!("{}", table::render(&units));
    }
    ExitCode::from(exit::OK)
}

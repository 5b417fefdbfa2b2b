//! Standalone runner of the sample apps: `sample-service --kind http|grpc|gateway ...`,
//! the same code that `meshsim service` runs.

use std::process::ExitCode;

use clap::Parser;
use sample_services::ServiceArgs;

#[derive(Parser)]
#[command(about = "Run one of meshsim's sample apps")]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
}

fn main() -> ExitCode {
    sample_services::run(Cli::parse().service)
}

//! The `meshsim` binary: parse the command line, dispatch. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use meshsim::cli::{self, Cli, Command, EnvoyCli};
use meshsim::commands;

fn main() -> ExitCode {
    let args = cli::split_joined_flags(std::env::args_os());
    if args.first().is_some_and(cli::invoked_as_envoy) {
        return commands::proxy::run(EnvoyCli::parse_from(args).proxy);
    }
    match Cli::parse_from(args).command {
        Command::Proxy(args) => commands::proxy::run(*args),
        Command::Validate(args) => commands::validate::run(args),
        Command::Up(args) => commands::up::run(args),
        Command::Test(args) => commands::test::run(args),
        Command::Down(args) => commands::down::run(args),
        Command::Ps(args) => commands::ps::run(args),
        Command::Logs(args) => commands::logs::run(args),
        Command::Image => commands::image::run(),
        Command::Top(args) => commands::top::run(args),
        Command::Service(args) => sample_services::run(*args),
        Command::Load(args) => commands::load::run(*args),
    }
}

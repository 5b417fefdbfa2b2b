//! `meshsim top ADMIN_URL...`: the terminal UI on running admin endpoints, no scenario needed.

use std::io::IsTerminal;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::TopArgs;
use crate::scrape::Target;

use super::exit;

pub fn run(args: TopArgs) -> ExitCode {
    let mut targets = Vec::new();
    for written in &args.admin {
        match parse_admin(written) {
            Ok(admin) => targets.push(Target {
                name: written
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_string(),
                admin,
            }),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(exit::INVALID_INPUT);
            }
        }
    }
    if !std::io::stdout().is_terminal() {
        eprintln!("error: meshsim top draws a terminal UI and stdout is not a terminal; `meshsim up` prints plain summary lines instead");
        return ExitCode::from(exit::INVALID_INPUT);
    }
    let interval = Duration::from_secs(args.interval.max(1));
    match super::runtime().block_on(crate::tui::run(
        crate::tui::feed::Feed::admin_only(targets, interval),
        false,
    )) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("error: the terminal failed: {e}");
            ExitCode::from(exit::FAILURE)
        }
    }
}

/// `127.0.0.1:9901`, `http://localhost:9901/` → an address.
fn parse_admin(written: &str) -> Result<SocketAddr, String> {
    let bare = written
        .trim()
        .trim_start_matches("http://")
        .trim_end_matches('/');
    if written.starts_with("https://") {
        return Err(format!(
            "`{written}`: admin endpoints are plain HTTP; use http://"
        ));
    }
    bare.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            format!("`{written}` is not an admin address; write HOST:PORT, e.g. 127.0.0.1:9901")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_addresses_with_or_without_scheme() {
        assert_eq!(parse_admin("127.0.0.1:9901").unwrap().port(), 9901);
        assert_eq!(parse_admin("http://127.0.0.1:8001/").unwrap().port(), 8001);
        assert!(parse_admin("9901").is_err());
        assert!(parse_admin("https://127.0.0.1:9901").is_err());
    }
}

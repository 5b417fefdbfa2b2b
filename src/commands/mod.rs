//! One module per `meshsim` command: each turns parsed arguments into an exit code.

pub mod proxy;
pub mod validate;

/// Exit codes shared by every command (the `meshsim test` contract uses the same numbers).
pub mod exit {
    pub const OK: u8 = 0;
    /// The proxy could not start (bind failure, unreachable DNS server…).
    pub const FAILURE: u8 = 1;
    /// Invalid input: a config or scenario with errors.
    pub const INVALID_INPUT: u8 = 2;
}

//! One module per `meshsim` command: each turns parsed arguments into an exit code.

pub mod down;
pub mod image;
pub mod load;
pub mod logs;
pub mod proxy;
pub mod ps;
pub mod test;
pub mod top;
pub mod up;
pub mod validate;

/// A tokio runtime for a command that is not a server (up, down, ps, logs, image).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime")
}

/// Exit codes shared by every command (the `meshsim test` contract uses the same numbers).
pub mod exit {
    pub const OK: u8 = 0;
    /// The proxy could not start (bind failure, unreachable DNS server…).
    pub const FAILURE: u8 = 1;
    /// Invalid input: a config or scenario with errors.
    pub const INVALID_INPUT: u8 = 2;
    /// A runtime failed, or the mesh did not become ready in time.
    pub const INFRASTRUCTURE: u8 = 3;
    /// `--runtime docker` and no Docker daemon answers.
    pub const DOCKER_UNREACHABLE: u8 = 4;
    /// An `image:` the scenario needs is not present locally (no registry is ever used).
    pub const IMAGE_MISSING: u8 = 5;
    /// A host port to publish is taken, or a port below 1024 may not be bound.
    pub const PORT_UNAVAILABLE: u8 = 6;
    /// Ctrl-C/SIGTERM before the mesh was ready (128 + SIGINT, as shells report it).
    pub const INTERRUPTED: u8 = 130;
}

//! meshsim: a local-dev service-mesh simulator.
//!
//! The library holds everything; `src/main.rs` only parses the command line and dispatches.
//!
//! - [`config`]: Envoy configs (v3, v2, v1) → one normalised model, with diagnostics.
//! - [`proxy`]: the Envoy-compatible data plane (listeners, HTTP connection manager, router,
//!   clusters, load balancing, upstream pools, access log, stats, admin API).
//! - [`certs`]: throwaway CA and server certificates for runs with TLS services (rcgen).
//! - [`dns`]: the resolver the proxy uses and the embedded DNS server for local runs.
//! - [`cli`]: command-line definitions, including the `envoy` multi-call personality.
//! - [`commands`]: one module per command, from parsed arguments to an exit code.
#![forbid(unsafe_code)]

pub mod certs;
pub mod cli;
pub mod commands;
pub mod config;
pub mod dns;
pub mod proxy;
pub mod runtime;
pub mod scenario;
pub mod scrape;
pub mod signals;
pub mod supervisor;
pub mod traffic;
pub mod tui;
pub mod verdict;

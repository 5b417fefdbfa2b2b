//! The Envoy-compatible data plane.
//!
//! Request path: [`listener`] accepts and speaks HTTP/1.1 + h2c → [`hcm`] applies the HTTP
//! connection manager's rules and asks the [`router`] for a route → the chosen [`cluster`] picks
//! a host with its load balancer → [`upstream`] pools connections to it. [`stats`],
//! [`access_log`] and the [`admin`] API observe it all in Envoy's formats. [`server`] builds and
//! runs the whole thing from a config.

pub mod access_log;
pub mod admin;
pub mod body;
pub mod cluster;
pub mod downstream;
pub mod filters;
pub mod hardening;
pub mod hcm;
pub mod headers;
pub mod http1_wire;
pub mod http2_wire;
pub mod listener;
pub mod local_reply;
pub mod logging;
pub mod reload;
pub mod router;
pub mod runtime;
pub mod server;
pub mod stats;
mod stats_scope;
pub mod tls;
mod turn_end;
pub mod upstream;

#[cfg(test)]
pub(crate) mod test_support;

pub use server::{Server, ServerError, ServerOptions};

//! HTTP/2 on the wire, for the proxy's own HTTP/2 server: [`frame`] reads and writes frames,
//! [`hpack`] decodes request header blocks and encodes response ones.
//!
//! Why our own and not the h2 crate's server: on an h2c request the h2 crate's bookkeeping
//! (its stream store behind a lock, prioritisation queues, per-frame tracing, HPACK with a
//! dynamic table on the encoder side) is about 15k of the proxy's 45k instructions (callgrind,
//! 2026-12-06), where the whole HTTP/1.1 path is 28k. Upstream HTTP/2 stays on the h2 crate.

pub mod frame;
pub mod hpack;

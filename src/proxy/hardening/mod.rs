//! Defences against hostile downstream traffic that hyper and h2 do not apply by themselves:
//! the hardening defaults the listener configures, the request-head checks the HCM makes
//! ([`head`]), Envoy's premature-reset guard against HTTP/2 Rapid Reset ([`resets`]), and the
//! per-connection watchdog that closes connections which stall or abuse resets ([`watchdog`]),
//! and the bound on a client that stops reading ([`write_stall`]).
//!
//! What hyper/h2 already enforce (and the listener only configures): HTTP/1 header count
//! (`max_headers` → 431), header bytes (`max_buf_size` → 431), the per-head read timeout
//! (`header_read_timeout`, needs a timer), invalid framing (CL/TE rules → 400 and close),
//! HTTP/2 `SETTINGS_MAX_HEADER_LIST_SIZE` (→ 431), CONTINUATION floods and reset floods
//! (GOAWAY `ENHANCE_YOUR_CALM`).

pub mod framing;
pub mod head;
pub mod resets;
pub mod watchdog;
pub mod write_stall;

use std::time::Duration;

/// `request_headers_timeout` when the config leaves it unset. Envoy's default is "disabled";
/// without a bound, one client can hold a connection (and its task and buffers) forever by
/// sending its request head a byte at a time. 10 s is HAProxy's and nginx's order of magnitude.
pub const DEFAULT_REQUEST_HEADERS_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`: Envoy's edge recommendation (its own default is
/// 2^31-1, hyper's 200). Also bounds how many upstream requests one connection can hold open.
pub const H2_MAX_CONCURRENT_STREAMS: u32 = 100;

/// Streams the client may reset before the server has accepted them (h2's own default, set
/// explicitly so a library upgrade cannot silently lift it): past this, GOAWAY
/// `ENHANCE_YOUR_CALM` (CVE-2023-44487 Rapid Reset, CVE-2023-26964).
pub const H2_MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;

/// Stream errors the server itself may answer with RST_STREAM before closing the connection
/// (h2's default; MadeYouReset CVE-2025-8671, reset flood CVE-2019-9514).
pub const H2_MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;

/// HTTP/2 keep-alive: PING an idle connection this often, and close it if the PING is not
/// acknowledged in time, so dead peers do not pin streams and buffers.
pub const H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
pub const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

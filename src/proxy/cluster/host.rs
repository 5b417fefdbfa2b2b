//! One upstream host of a cluster and its per-host counters (the `/clusters` lines).
//!
//! A host outlives DNS refreshes: when a re-resolution returns an address we already had, the
//! same `Host` (and its counters) is kept, as Envoy does.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use crate::proxy::upstream::HostConnections;

#[derive(Debug)]
pub struct Host {
    pub address: SocketAddr,
    /// The DNS name it came from (STRICT/LOGICAL_DNS) or the endpoint's `hostname`; empty for
    /// static IP endpoints without one.
    pub hostname: String,
    pub weight: u32,
    pub priority: u32,
    /// The DNS name this host was resolved from (empty for static endpoints), so a failed
    /// re-resolution can keep exactly that name's previous hosts.
    pub dns_name: String,
    /// `ip:port`, what ring hash and maglev hash.
    hash_key: String,
    pub stats: HostStats,
    /// Pooled upstream connections to this host; they close when the host is dropped.
    pub connections: HostConnections,
    /// Why it is unhealthy ([`Health`] bits); 0 = healthy.
    health: AtomicU8,
    /// Passive (outlier detection) and active (health check) bookkeeping.
    pub outlier: OutlierState,
    pub checks: CheckState,
}

/// The `/clusters` health flags a host can carry.
pub struct Health;

impl Health {
    /// `/failed_active_hc`: active health checking says so (or has not said yet).
    pub const FAILED_ACTIVE_HC: u8 = 1;
    /// `/failed_outlier_check`: ejected by outlier detection.
    pub const FAILED_OUTLIER_CHECK: u8 = 2;
}

/// Outlier detection's view of one host: atomics on the request path, a lock only to eject.
#[derive(Debug, Default)]
pub struct OutlierState {
    pub consecutive_5xx: AtomicU32,
    pub consecutive_gateway_failure: AtomicU32,
    /// Answers and failures in the current interval (success rate, failure percentage).
    pub interval_total: AtomicU64,
    pub interval_failed: AtomicU64,
    pub times_ejected: AtomicU32,
    /// When the current ejection ends.
    pub ejected_until: std::sync::Mutex<Option<std::time::Instant>>,
}

/// Active health checking's view of one host.
#[derive(Debug, Default)]
pub struct CheckState {
    pub successes: AtomicU32,
    pub failures: AtomicU32,
    /// No check has finished yet: the first success alone makes the host healthy.
    pub first_done: std::sync::atomic::AtomicBool,
}

/// Counters and gauges Envoy keeps per host, all plain atomics.
#[derive(Debug, Default)]
pub struct HostStats {
    pub cx_active: AtomicU64,
    pub cx_connect_fail: AtomicU64,
    pub cx_total: AtomicU64,
    pub rq_active: AtomicU64,
    pub rq_error: AtomicU64,
    pub rq_success: AtomicU64,
    pub rq_timeout: AtomicU64,
    pub rq_total: AtomicU64,
}

impl HostStats {
    /// The `/clusters` per-host stat lines in Envoy's (alphabetical) order.
    pub fn snapshot(&self) -> [(&'static str, u64); 8] {
        let v = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            ("cx_active", v(&self.cx_active)),
            ("cx_connect_fail", v(&self.cx_connect_fail)),
            ("cx_total", v(&self.cx_total)),
            ("rq_active", v(&self.rq_active)),
            ("rq_error", v(&self.rq_error)),
            ("rq_success", v(&self.rq_success)),
            ("rq_timeout", v(&self.rq_timeout)),
            ("rq_total", v(&self.rq_total)),
        ]
    }
}

/// What discovery knows about a host: plain data, cheap to produce on every DNS refresh. A
/// [`Host`] (with its counters and connection pool) is built from it only when the address is
/// new to the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSpec {
    pub address: SocketAddr,
    pub hostname: String,
    pub weight: u32,
    pub priority: u32,
    /// The DNS name it was resolved from; empty for static endpoints.
    pub dns_name: String,
}

impl Host {
    pub fn new(spec: HostSpec) -> Self {
        Host {
            hash_key: spec.address.to_string(),
            address: spec.address,
            hostname: spec.hostname,
            weight: spec.weight.max(1),
            priority: spec.priority,
            dns_name: spec.dns_name,
            stats: HostStats::default(),
            connections: HostConnections::default(),
            health: AtomicU8::new(0),
            outlier: OutlierState::default(),
            checks: CheckState::default(),
        }
    }

    pub fn health(&self) -> u8 {
        self.health.load(Ordering::Acquire)
    }

    pub fn is_healthy(&self) -> bool {
        self.health() == 0
    }

    /// Sets or clears one [`Health`] bit; returns whether the host's health changed.
    pub fn set_health(&self, flag: u8, failed: bool) -> bool {
        let before = if failed {
            self.health.fetch_or(flag, Ordering::AcqRel)
        } else {
            self.health.fetch_and(!flag, Ordering::AcqRel)
        };
        let after = if failed {
            before | flag
        } else {
            before & !flag
        };
        (before == 0) != (after == 0)
    }

    /// Envoy's `health_flags` text: `healthy`, or each failure as `/failed_active_hc` …
    pub fn health_flags(&self) -> String {
        let h = self.health();
        if h == 0 {
            return "healthy".into();
        }
        let mut flags = String::new();
        if h & Health::FAILED_ACTIVE_HC != 0 {
            flags.push_str("/failed_active_hc");
        }
        if h & Health::FAILED_OUTLIER_CHECK != 0 {
            flags.push_str("/failed_outlier_check");
        }
        flags
    }

    /// The description this host was built from, e.g. to keep it through a failed resolution.
    pub fn spec(&self) -> HostSpec {
        HostSpec {
            address: self.address,
            hostname: self.hostname.clone(),
            weight: self.weight,
            priority: self.priority,
            dns_name: self.dns_name.clone(),
        }
    }
}

impl super::lb::Endpoint for std::sync::Arc<Host> {
    fn weight(&self) -> u32 {
        self.weight
    }

    fn active_requests(&self) -> u64 {
        self.stats.rq_active.load(Ordering::Relaxed)
    }

    fn hash_key(&self) -> &str {
        &self.hash_key
    }
}

/// Decrements a gauge when dropped, so every exit path (error, cancel, panic unwind) balances
/// the increment.
pub struct GaugeGuard<'a>(&'a AtomicU64);

impl<'a> GaugeGuard<'a> {
    pub fn inc(gauge: &'a AtomicU64) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(gauge)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

//! `cluster.<name>.` stats, created when the cluster is (Envoy creates its cluster stats eagerly,
//! so `/stats` lists them at 0 before any traffic).

use std::sync::{Arc, OnceLock};

use crate::proxy::stats::{Counter, Gauge, Histogram, Store};
use crate::proxy::stats_scope::CodeCounters;

use super::Host;

pub struct ClusterStats {
    pub prefix: String,
    pub upstream_cx_total: Counter,
    pub upstream_cx_http1_total: Counter,
    pub upstream_cx_http2_total: Counter,
    pub upstream_cx_connect_fail: Counter,
    pub upstream_cx_connect_timeout: Counter,
    pub upstream_cx_none_healthy: Counter,
    pub lb_healthy_panic: Counter,
    pub upstream_cx_destroy: Counter,
    /// Connections retired after `max_requests_per_connection` requests.
    pub upstream_cx_max_requests: Counter,
    /// Connections closed after the cluster's `idle_timeout` with no request on them.
    pub upstream_cx_idle_timeout: Counter,
    pub upstream_cx_active: Gauge,
    pub upstream_cx_connect_ms: Histogram,
    pub upstream_cx_length_ms: Histogram,
    pub upstream_rq_total: Counter,
    pub upstream_rq_active: Gauge,
    pub upstream_rq_completed: Counter,
    pub upstream_rq_timeout: Counter,
    pub upstream_rq_rx_reset: Counter,
    pub upstream_rq_tx_reset: Counter,
    pub upstream_rq_cancelled: Counter,
    pub upstream_rq_per_try_timeout: Counter,
    pub upstream_rq_retry: Counter,
    pub upstream_rq_retry_success: Counter,
    pub upstream_rq_retry_overflow: Counter,
    pub upstream_rq_retry_limit_exceeded: Counter,
    pub upstream_rq_time: Histogram,
    pub upstream_rq: CodeCounters,
    /// `cluster.<name>.retry.upstream_rq_<code>`: answers that were retried (not counted in
    /// `upstream_rq_<code>`, as Envoy counts them).
    pub retry_upstream_rq: CodeCounters,
    /// `cluster.<name>.internal.` / `.external.` copies of the dynamic stats, as Envoy's
    /// router keeps them (the sandbox's `cluster.service1.external.upstream_rq_200`).
    pub internal: OriginStats,
    pub external: OriginStats,
    pub membership_change: Counter,
    pub membership_total: Gauge,
    pub membership_healthy: Gauge,
    pub membership_degraded: Gauge,
    pub membership_excluded: Gauge,
    pub max_host_weight: Gauge,
    pub update_attempt: Counter,
    pub update_success: Counter,
    pub update_failure: Counter,
    pub update_empty: Counter,
}

/// Envoy creates these on the first request of that origin, not with the cluster.
pub struct OriginStats {
    store: Store,
    prefix: String,
    pub upstream_rq: CodeCounters,
    completed: OnceLock<(Counter, Histogram)>,
}

impl OriginStats {
    fn new(store: &Store, prefix: &str) -> Self {
        OriginStats {
            store: store.clone(),
            prefix: prefix.to_string(),
            upstream_rq: CodeCounters::new(store, format!("{prefix}upstream_rq")),
            completed: OnceLock::new(),
        }
    }

    fn record_completed(&self, millis: u64) {
        let (completed, time) = self.completed.get_or_init(|| {
            (
                self.store
                    .counter(&format!("{}upstream_rq_completed", self.prefix)),
                self.store
                    .histogram(&format!("{}upstream_rq_time", self.prefix)),
            )
        });
        completed.inc();
        time.record(millis);
    }
}

impl ClusterStats {
    pub fn new(store: &Store, stat_name: &str) -> Self {
        let prefix = format!("cluster.{stat_name}.");
        let c = |n: &str| store.counter(&format!("{prefix}{n}"));
        let g = |n: &str| store.gauge(&format!("{prefix}{n}"));
        let h = |n: &str| store.histogram(&format!("{prefix}{n}"));
        // Envoy's circuit-breaker gauges exist from the start (0 = closed).
        for priority in ["default", "high"] {
            for open in [
                "cx_open",
                "cx_pool_open",
                "rq_open",
                "rq_pending_open",
                "rq_retry_open",
            ] {
                g(&format!("circuit_breakers.{priority}.{open}"));
            }
        }
        ClusterStats {
            upstream_cx_total: c("upstream_cx_total"),
            upstream_cx_http1_total: c("upstream_cx_http1_total"),
            upstream_cx_http2_total: c("upstream_cx_http2_total"),
            upstream_cx_connect_fail: c("upstream_cx_connect_fail"),
            upstream_cx_connect_timeout: c("upstream_cx_connect_timeout"),
            upstream_cx_none_healthy: c("upstream_cx_none_healthy"),
            lb_healthy_panic: c("lb_healthy_panic"),
            upstream_cx_destroy: c("upstream_cx_destroy"),
            upstream_cx_max_requests: c("upstream_cx_max_requests"),
            upstream_cx_idle_timeout: c("upstream_cx_idle_timeout"),
            upstream_cx_active: g("upstream_cx_active"),
            upstream_cx_connect_ms: h("upstream_cx_connect_ms"),
            upstream_cx_length_ms: h("upstream_cx_length_ms"),
            upstream_rq_total: c("upstream_rq_total"),
            upstream_rq_active: g("upstream_rq_active"),
            upstream_rq_completed: c("upstream_rq_completed"),
            upstream_rq_timeout: c("upstream_rq_timeout"),
            upstream_rq_rx_reset: c("upstream_rq_rx_reset"),
            upstream_rq_tx_reset: c("upstream_rq_tx_reset"),
            upstream_rq_cancelled: c("upstream_rq_cancelled"),
            upstream_rq_per_try_timeout: c("upstream_rq_per_try_timeout"),
            upstream_rq_retry: c("upstream_rq_retry"),
            upstream_rq_retry_success: c("upstream_rq_retry_success"),
            upstream_rq_retry_overflow: c("upstream_rq_retry_overflow"),
            upstream_rq_retry_limit_exceeded: c("upstream_rq_retry_limit_exceeded"),
            upstream_rq_time: h("upstream_rq_time"),
            upstream_rq: CodeCounters::new(store, format!("{prefix}upstream_rq")),
            retry_upstream_rq: CodeCounters::new(store, format!("{prefix}retry.upstream_rq")),
            internal: OriginStats::new(store, &format!("{prefix}internal.")),
            external: OriginStats::new(store, &format!("{prefix}external.")),
            membership_change: c("membership_change"),
            membership_total: g("membership_total"),
            membership_healthy: g("membership_healthy"),
            membership_degraded: g("membership_degraded"),
            membership_excluded: g("membership_excluded"),
            max_host_weight: g("max_host_weight"),
            update_attempt: c("update_attempt"),
            update_success: c("update_success"),
            update_failure: c("update_failure"),
            update_empty: c("update_empty"),
            prefix,
        }
    }

    pub fn set_membership(&self, hosts: &[Arc<Host>], healthy: usize) {
        self.membership_total.set(hosts.len() as u64);
        self.membership_healthy.set(healthy as u64);
        self.max_host_weight
            .set(hosts.iter().map(|h| u64::from(h.weight)).max().unwrap_or(0));
    }

    /// Counts one upstream response status in every scope Envoy does.
    pub fn record_response(&self, code: u16, internal: bool) {
        self.upstream_rq.record(code);
        self.origin(internal).upstream_rq.record(code);
    }

    /// Counts a finished upstream request and its duration in milliseconds.
    pub fn record_completed(&self, internal: bool, millis: u64) {
        self.upstream_rq_completed.inc();
        self.upstream_rq_time.record(millis);
        self.origin(internal).record_completed(millis);
    }

    fn origin(&self, internal: bool) -> &OriginStats {
        if internal {
            &self.internal
        } else {
            &self.external
        }
    }
}

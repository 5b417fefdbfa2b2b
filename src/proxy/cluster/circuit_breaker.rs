//! Circuit breaking as Envoy does it per cluster: at most `max_requests` requests and
//! `max_connections` connections at once, at most `max_pending_requests` requests waiting for a
//! connection, at most `max_retries` retries in flight. Past a limit a request overflows (503,
//! flag UO, `x-envoy-overloaded`) instead of queueing without end. Counts are atomics taken
//! and released by guards, so the request path takes no lock; the `circuit_breakers.default.*`
//! gauges say 1 while a limit is reached.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use crate::config::model::Thresholds;
use crate::proxy::stats::{Counter, Gauge, Store};

use super::ClusterCore;

pub struct Breakers {
    limits: Thresholds,
    requests: AtomicU32,
    pending: AtomicU32,
    connections: AtomicU32,
    retries: AtomicU32,
    rq_open: Gauge,
    rq_pending_open: Gauge,
    cx_open: Gauge,
    rq_retry_open: Gauge,
    pub upstream_rq_pending_overflow: Counter,
    pub upstream_cx_overflow: Counter,
    /// Woken when a connection is given back or closes: pending requests look again.
    pub connection_freed: Notify,
}

impl Breakers {
    pub fn new(store: &Store, prefix: &str, limits: Thresholds) -> Breakers {
        let g = |n: &str| store.gauge(&format!("{prefix}circuit_breakers.default.{n}"));
        let c = |n: &str| store.counter(&format!("{prefix}{n}"));
        Breakers {
            limits,
            requests: AtomicU32::new(0),
            pending: AtomicU32::new(0),
            connections: AtomicU32::new(0),
            retries: AtomicU32::new(0),
            rq_open: g("rq_open"),
            rq_pending_open: g("rq_pending_open"),
            cx_open: g("cx_open"),
            rq_retry_open: g("rq_retry_open"),
            upstream_rq_pending_overflow: c("upstream_rq_pending_overflow"),
            upstream_cx_overflow: c("upstream_cx_overflow"),
            connection_freed: Notify::new(),
        }
    }

    pub fn limits(&self) -> Thresholds {
        self.limits
    }

    /// Takes one unit of `count` if below `limit`; keeps `open` at 1 while the limit is reached.
    fn take(count: &AtomicU32, limit: u32, open: &Gauge) -> bool {
        let taken = count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok();
        let now = count.load(Ordering::Acquire);
        open.set(u64::from(now >= limit));
        taken
    }

    fn release(count: &AtomicU32, limit: u32, open: &Gauge) {
        let now = count.fetch_sub(1, Ordering::AcqRel).saturating_sub(1);
        open.set(u64::from(now >= limit));
    }

    /// Room for one more connection? (The caller releases it with [`Breakers::connection_closed`].)
    pub fn try_connection(&self) -> bool {
        let ok = Self::take(
            &self.connections,
            self.limits.max_connections,
            &self.cx_open,
        );
        if !ok {
            self.upstream_cx_overflow.inc();
        }
        ok
    }

    pub fn connection_closed(&self) {
        Self::release(
            &self.connections,
            self.limits.max_connections,
            &self.cx_open,
        );
        self.connection_freed.notify_waiters();
    }
}

/// One request in flight to the cluster.
pub struct RequestSlot(Arc<ClusterCore>);

impl RequestSlot {
    /// `None` when `max_requests` are in flight (the overflow is counted).
    pub fn take(core: &Arc<ClusterCore>) -> Option<RequestSlot> {
        let b = &core.breakers;
        if Breakers::take(&b.requests, b.limits.max_requests, &b.rq_open) {
            Some(RequestSlot(core.clone()))
        } else {
            b.upstream_rq_pending_overflow.inc();
            None
        }
    }
}

impl Drop for RequestSlot {
    fn drop(&mut self) {
        let b = &self.0.breakers;
        Breakers::release(&b.requests, b.limits.max_requests, &b.rq_open);
    }
}

/// One request waiting for a connection.
pub struct PendingSlot(Arc<ClusterCore>);

impl PendingSlot {
    /// `None` when `max_pending_requests` already wait (the overflow is counted).
    pub fn take(core: &Arc<ClusterCore>) -> Option<PendingSlot> {
        let b = &core.breakers;
        if Breakers::take(
            &b.pending,
            b.limits.max_pending_requests,
            &b.rq_pending_open,
        ) {
            Some(PendingSlot(core.clone()))
        } else {
            b.upstream_rq_pending_overflow.inc();
            None
        }
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let b = &self.0.breakers;
        Breakers::release(
            &b.pending,
            b.limits.max_pending_requests,
            &b.rq_pending_open,
        );
    }
}

/// One retry in flight.
pub struct RetrySlot(Arc<ClusterCore>);

impl RetrySlot {
    /// `None` when `max_retries` are in flight.
    pub fn take(core: &Arc<ClusterCore>) -> Option<RetrySlot> {
        let b = &core.breakers;
        Breakers::take(&b.retries, b.limits.max_retries, &b.rq_retry_open)
            .then(|| RetrySlot(core.clone()))
    }
}

impl Drop for RetrySlot {
    fn drop(&mut self) {
        let b = &self.0.breakers;
        Breakers::release(&b.retries, b.limits.max_retries, &b.rq_retry_open);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_admits_that_many_and_reopens_on_release() {
        let store = Store::default();
        let b = Breakers::new(
            &store,
            "cluster.c.",
            Thresholds {
                max_connections: 2,
                ..Thresholds::default()
            },
        );
        assert!(b.try_connection());
        assert!(b.try_connection());
        assert!(!b.try_connection());
        assert_eq!(b.cx_open.value(), 1);
        assert_eq!(b.upstream_cx_overflow.value(), 1);
        b.connection_closed();
        assert_eq!(b.cx_open.value(), 0);
        assert!(b.try_connection());
    }
}

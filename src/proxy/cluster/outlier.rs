//! Outlier detection (passive health): every answer, or failure to answer, of a host counts;
//! too many consecutive 5xx or gateway failures, or a success rate or failure percentage far
//! from its peers' at the end of an `interval`, ejects the host for `base_ejection_time` ×
//! times ejected (capped by `max_ejection_time`), never more than `max_ejection_percent` of the
//! cluster (one host is always ejectable). The request path only bumps atomics; ejecting takes
//! one lock on that host and rebuilds the balancer's host set.

use std::sync::{Arc, Weak};
use std::time::Instant;

use tokio::sync::watch;

use crate::config::model::OutlierDetection;
use crate::proxy::stats::{Counter, Gauge, Store};

use super::host::{Health, Host};
use super::ClusterCore;

use std::sync::atomic::Ordering;

/// Why a host was ejected: the `ejections_{detected,enforced}_<kind>` stat names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Consecutive5xx,
    ConsecutiveGatewayFailure,
    SuccessRate,
    FailurePercentage,
}

impl Kind {
    const ALL: [Kind; 4] = [
        Kind::Consecutive5xx,
        Kind::ConsecutiveGatewayFailure,
        Kind::SuccessRate,
        Kind::FailurePercentage,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Consecutive5xx => "consecutive_5xx",
            Kind::ConsecutiveGatewayFailure => "consecutive_gateway_failure",
            Kind::SuccessRate => "success_rate",
            Kind::FailurePercentage => "failure_percentage",
        }
    }

    fn enforcing(self, od: &OutlierDetection) -> u32 {
        match self {
            Kind::Consecutive5xx => od.enforcing_consecutive_5xx,
            Kind::ConsecutiveGatewayFailure => od.enforcing_consecutive_gateway_failure,
            Kind::SuccessRate => od.enforcing_success_rate,
            Kind::FailurePercentage => od.enforcing_failure_percentage,
        }
    }
}

/// `cluster.<name>.outlier_detection.*`, created with the cluster when it has outlier detection.
pub struct OutlierStats {
    pub ejections_active: Gauge,
    ejections_total: Counter,
    ejections_overflow: Counter,
    ejections_enforced_total: Counter,
    detected: [Counter; 4],
    enforced: [Counter; 4],
}

impl OutlierStats {
    pub fn new(store: &Store, prefix: &str) -> OutlierStats {
        let c = |n: &str| store.counter(&format!("{prefix}outlier_detection.{n}"));
        OutlierStats {
            ejections_active: store.gauge(&format!("{prefix}outlier_detection.ejections_active")),
            ejections_total: c("ejections_total"),
            ejections_overflow: c("ejections_overflow"),
            ejections_enforced_total: c("ejections_enforced_total"),
            detected: Kind::ALL.map(|k| c(&format!("ejections_detected_{}", k.name()))),
            enforced: Kind::ALL.map(|k| c(&format!("ejections_enforced_{}", k.name()))),
        }
    }
}

/// Counts one answer of `host` (a local failure counts as Envoy maps it: connect failures and
/// resets as 503, timeouts as 504).
pub fn record(core: &ClusterCore, host: &Host, code: u16) {
    let Some(od) = &core.config.outlier_detection else {
        return;
    };
    let state = &host.outlier;
    state.interval_total.fetch_add(1, Ordering::Relaxed);
    let failed = code >= 500;
    if failed {
        state.interval_failed.fetch_add(1, Ordering::Relaxed);
    }
    let consecutive = |counter: &std::sync::atomic::AtomicU32, hit: bool| {
        if hit {
            counter.fetch_add(1, Ordering::AcqRel) + 1
        } else {
            counter.store(0, Ordering::Release);
            0
        }
    };
    if consecutive(&state.consecutive_5xx, failed) >= od.consecutive_5xx.max(1) {
        state.consecutive_5xx.store(0, Ordering::Release);
        eject(core, host, Kind::Consecutive5xx, Instant::now());
    }
    let gateway = (502..=504).contains(&code);
    if consecutive(&state.consecutive_gateway_failure, gateway)
        >= od.consecutive_gateway_failure.max(1)
    {
        state
            .consecutive_gateway_failure
            .store(0, Ordering::Release);
        eject(core, host, Kind::ConsecutiveGatewayFailure, Instant::now());
    }
}

/// Detects, then (within `enforcing_*` % and `max_ejection_percent`) ejects.
fn eject(core: &ClusterCore, host: &Host, kind: Kind, now: Instant) {
    let (Some(od), Some(stats)) = (&core.config.outlier_detection, &core.outlier) else {
        return;
    };
    let i = kind as usize;
    stats.detected[i].inc();
    if host.health() & Health::FAILED_OUTLIER_CHECK != 0 {
        return;
    }
    if fastrand::u32(0..100) >= kind.enforcing(od) {
        return;
    }
    let set = core.hosts.load();
    let ejected = set
        .hosts
        .iter()
        .filter(|h| h.health() & Health::FAILED_OUTLIER_CHECK != 0)
        .count();
    let allowed = (set.hosts.len() * od.max_ejection_percent as usize / 100).max(1);
    if ejected >= allowed {
        stats.ejections_overflow.inc();
        return;
    }
    let times = host.outlier.times_ejected.fetch_add(1, Ordering::AcqRel) + 1;
    let length = od
        .base_ejection_time
        .saturating_mul(times)
        .min(od.max_ejection_time.max(od.base_ejection_time));
    *host.outlier.ejected_until.lock().expect("outlier lock") = Some(now + length);
    if host.set_health(Health::FAILED_OUTLIER_CHECK, true) {
        core.health_changed();
    }
    stats.ejections_active.inc();
    stats.ejections_total.inc();
    stats.ejections_enforced_total.inc();
    stats.enforced[i].inc();
    tracing::info!(cluster = %core.config.name, host = %host.address, reason = kind.name(), ejected_for = ?length, "outlier ejected");
}

/// Every `interval`: brings back hosts whose ejection ended, then judges the interval's success
/// rates and failure percentages, then starts a new interval.
pub fn spawn_intervals(core: &Arc<ClusterCore>, mut shutdown: watch::Receiver<bool>) {
    let weak: Weak<ClusterCore> = Arc::downgrade(core);
    let Some(interval) = core.config.outlier_detection.as_ref().map(|o| o.interval) else {
        return;
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => return,
            }
            let Some(core) = weak.upgrade() else { return };
            end_interval(&core, Instant::now());
        }
    });
}

pub fn end_interval(core: &ClusterCore, now: Instant) {
    let (Some(od), Some(stats)) = (&core.config.outlier_detection, &core.outlier) else {
        return;
    };
    let hosts = core.hosts.load().hosts.clone();
    let mut changed = false;
    for host in &hosts {
        let mut until = host.outlier.ejected_until.lock().expect("outlier lock");
        match *until {
            Some(end) if now >= end => {
                *until = None;
                changed |= host.set_health(Health::FAILED_OUTLIER_CHECK, false);
                stats.ejections_active.dec();
                tracing::info!(cluster = %core.config.name, host = %host.address, "outlier ejection ended");
            }
            Some(_) => {}
            // A host that stays in for an interval earns back one ejection's worth of time.
            None => {
                let _ = host.outlier.times_ejected.fetch_update(
                    Ordering::AcqRel,
                    Ordering::Acquire,
                    |t| t.checked_sub(1),
                );
            }
        }
    }
    if changed {
        core.health_changed();
    }
    // (host, answers, failures) of the interval, then a fresh interval.
    let counts: Vec<(&Arc<Host>, u64, u64)> = hosts
        .iter()
        .map(|h| {
            (
                h,
                h.outlier.interval_total.swap(0, Ordering::AcqRel),
                h.outlier.interval_failed.swap(0, Ordering::AcqRel),
            )
        })
        .collect();
    for kind in [Kind::SuccessRate, Kind::FailurePercentage] {
        for host in outliers(od, kind, &counts) {
            eject(core, host, kind, now);
        }
    }
}

/// The hosts whose interval stands out: success rate below mean − stdev × factor/1000, or a
/// failure percentage at or above the threshold, among enough hosts with enough requests.
fn outliers<'h>(
    od: &OutlierDetection,
    kind: Kind,
    counts: &[(&'h Arc<Host>, u64, u64)],
) -> Vec<&'h Arc<Host>> {
    let (volume, minimum) = match kind {
        Kind::SuccessRate => (
            od.success_rate_request_volume,
            od.success_rate_minimum_hosts,
        ),
        _ => (
            od.failure_percentage_request_volume,
            od.failure_percentage_minimum_hosts,
        ),
    };
    let judged: Vec<(&Arc<Host>, f64)> = counts
        .iter()
        .filter(|(_, total, _)| *total >= u64::from(volume) && *total > 0)
        .map(|(h, total, failed)| (*h, 100.0 * (total - failed) as f64 / *total as f64))
        .collect();
    if judged.len() < minimum as usize || judged.is_empty() {
        return Vec::new();
    }
    match kind {
        Kind::SuccessRate => {
            let n = judged.len() as f64;
            let mean = judged.iter().map(|(_, r)| r).sum::<f64>() / n;
            let variance = judged.iter().map(|(_, r)| (r - mean).powi(2)).sum::<f64>() / n;
            let threshold =
                mean - variance.sqrt() * f64::from(od.success_rate_stdev_factor) / 1000.0;
            judged
                .into_iter()
                .filter(|(_, r)| *r < threshold)
                .map(|(h, _)| h)
                .collect()
        }
        _ => judged
            .into_iter()
            .filter(|(_, r)| 100.0 - r >= f64::from(od.failure_percentage_threshold))
            .map(|(h, _)| h)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::cluster::host::HostSpec;

    fn host(port: u16) -> Arc<Host> {
        Arc::new(Host::new(HostSpec {
            address: ([10, 0, 0, 1], port).into(),
            hostname: String::new(),
            weight: 1,
            priority: 0,
            dns_name: String::new(),
        }))
    }

    #[test]
    fn success_rate_and_failure_percentage_pick_the_outlier() {
        let hosts: Vec<Arc<Host>> = (1..=5).map(host).collect();
        let counts: Vec<(&Arc<Host>, u64, u64)> = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h, 200, if i == 4 { 180 } else { 2 }))
            .collect();
        let od = OutlierDetection {
            enforcing_failure_percentage: 100,
            ..OutlierDetection::default()
        };
        let by_rate = outliers(&od, Kind::SuccessRate, &counts);
        assert_eq!(by_rate.len(), 1);
        assert_eq!(by_rate[0].address.port(), 5);
        let by_failures = outliers(&od, Kind::FailurePercentage, &counts);
        assert_eq!(by_failures.len(), 1);
        // Too few hosts with enough requests: nobody is judged.
        assert!(outliers(&od, Kind::SuccessRate, &counts[..3]).is_empty());
    }
}

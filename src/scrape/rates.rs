//! Rates from two scrapes: requests per second and success from counter deltas (never from
//! totals, so a proxy that served traffic an hour ago shows 0 rps now), the load-balancing
//! split from per-endpoint deltas.

use std::time::Duration;

use super::sample::{HostSample, ProxySample, Quantiles};

#[derive(Debug, Clone, PartialEq)]
pub struct HostRate {
    pub address: String,
    pub rps: f64,
    /// This endpoint's part of the cluster's requests in the interval, 0–1.
    pub share: f64,
    pub healthy: bool,
    /// Envoy's reasons for unhealthy (`failed_outlier_check`…); empty when healthy.
    pub flags: Vec<String>,
    /// Requests in flight on this endpoint now.
    pub active: u64,
    /// Failed requests per second (`rq_error`).
    pub errors: f64,
}

/// Answers per second by status class: 2xx, 3xx, 4xx, 5xx.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StatusClasses(pub [f64; 4]);

impl StatusClasses {
    fn from_deltas(
        before: &ProxySample,
        after: &ProxySample,
        prefix: &str,
        secs: f64,
    ) -> StatusClasses {
        let mut classes = [0.0; 4];
        for (i, class) in ["2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
            let name = format!("{prefix}{class}");
            classes[i] = delta(before.stat(&name), after.stat(&name)) as f64 / secs;
        }
        StatusClasses(classes)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRate {
    pub cluster: String,
    pub rps: f64,
    /// Non-5xx answers over all answers in the interval; None without answers.
    pub success: Option<f64>,
    pub latency: Quantiles,
    pub active: u64,
    pub status: StatusClasses,
    /// Endpoints ejected by outlier detection now.
    pub ejected: u64,
    pub hosts: Vec<HostRate>,
}

/// One HTTP connection manager (by `stat_prefix`), downstream side.
#[derive(Debug, Clone, PartialEq)]
pub struct HcmRate {
    pub stat_prefix: String,
    pub rps: f64,
    pub status: StatusClasses,
    pub active: u64,
}

/// Downstream rates of every HTTP connection manager (`http.<stat_prefix>.downstream_rq_*`).
pub fn hcm_rates(before: &ProxySample, after: &ProxySample, elapsed: Duration) -> Vec<HcmRate> {
    let secs = elapsed.as_secs_f64().max(1e-3);
    let mut prefixes: Vec<&str> = after
        .stats
        .keys()
        .filter_map(|k| {
            k.strip_prefix("http.")?
                .strip_suffix(".downstream_rq_total")
        })
        .collect();
    prefixes.sort_unstable();
    prefixes
        .into_iter()
        .map(|p| {
            let name = |suffix: &str| format!("http.{p}.{suffix}");
            HcmRate {
                stat_prefix: p.to_string(),
                rps: delta(
                    before.stat(&name("downstream_rq_total")),
                    after.stat(&name("downstream_rq_total")),
                ) as f64
                    / secs,
                status: StatusClasses::from_deltas(before, after, &name("downstream_rq_"), secs),
                active: after.stat(&name("downstream_rq_active")),
            }
        })
        .collect()
}

/// Counters only grow; a smaller value means the proxy restarted, and the new value is the delta.
fn delta(before: u64, after: u64) -> u64 {
    if after >= before {
        after - before
    } else {
        after
    }
}

pub fn cluster_rates(
    before: &ProxySample,
    after: &ProxySample,
    elapsed: Duration,
) -> Vec<ClusterRate> {
    let secs = elapsed.as_secs_f64().max(1e-3);
    after
        .cluster_names()
        .into_iter()
        .map(|name| {
            let stat = |s: &ProxySample, suffix: &str| s.stat(&format!("cluster.{name}.{suffix}"));
            let total = delta(
                stat(before, "upstream_rq_total"),
                stat(after, "upstream_rq_total"),
            );
            let completed = delta(
                stat(before, "upstream_rq_completed"),
                stat(after, "upstream_rq_completed"),
            );
            let failed = delta(
                stat(before, "upstream_rq_5xx"),
                stat(after, "upstream_rq_5xx"),
            );
            let hosts_before = before.clusters.iter().find(|c| c.name == name);
            let hosts_after = after.clusters.iter().find(|c| c.name == name);
            // Per endpoint: (its sample now, requests and errors in the interval).
            let host_deltas: Vec<(&HostSample, u64, u64)> = hosts_after
                .map(|c| {
                    c.hosts
                        .iter()
                        .map(|h| {
                            let was = hosts_before
                                .and_then(|b| b.hosts.iter().find(|x| x.address == h.address));
                            (
                                h,
                                delta(was.map_or(0, |x| x.rq_total), h.rq_total),
                                delta(was.map_or(0, |x| x.rq_error), h.rq_error),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let host_total: u64 = host_deltas.iter().map(|(_, d, _)| d).sum();
            ClusterRate {
                rps: total as f64 / secs,
                success: (completed > 0)
                    .then(|| (completed - failed.min(completed)) as f64 / completed as f64),
                latency: after
                    .quantiles
                    .get(&format!("cluster.{name}.upstream_rq_time"))
                    .cloned()
                    .unwrap_or_default(),
                active: stat(after, "upstream_rq_active"),
                status: StatusClasses::from_deltas(
                    before,
                    after,
                    &format!("cluster.{name}.upstream_rq_"),
                    secs,
                ),
                ejected: stat(after, "outlier_detection.ejections_active"),
                hosts: host_deltas
                    .into_iter()
                    .map(|(h, d, errors)| HostRate {
                        address: h.address.clone(),
                        rps: d as f64 / secs,
                        share: if host_total > 0 {
                            d as f64 / host_total as f64
                        } else {
                            0.0
                        },
                        healthy: h.healthy,
                        flags: h.flags.clone(),
                        active: h.rq_active,
                        errors: errors as f64 / secs,
                    })
                    .collect(),
                cluster: name,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::sample::{ClusterSample, HostSample};
    use super::*;

    fn sample(total: u64, completed: u64, fivexx: u64, hosts: &[(&str, u64)]) -> ProxySample {
        let mut s = ProxySample::default();
        s.stats
            .insert("cluster.web.upstream_rq_total".into(), total);
        s.stats
            .insert("cluster.web.upstream_rq_completed".into(), completed);
        s.stats.insert("cluster.web.upstream_rq_5xx".into(), fivexx);
        s.clusters.push(ClusterSample {
            name: "web".into(),
            hosts: hosts
                .iter()
                .map(|(a, n)| HostSample {
                    address: a.to_string(),
                    rq_total: *n,
                    rq_error: 0,
                    rq_active: 0,
                    healthy: true,
                    flags: Vec::new(),
                })
                .collect(),
        });
        s
    }

    #[test]
    fn rates_success_and_split_come_from_deltas() {
        let before = sample(100, 100, 0, &[("a:80", 50), ("b:80", 50)]);
        let after = sample(120, 120, 2, &[("a:80", 65), ("b:80", 55)]);
        let rates = cluster_rates(&before, &after, Duration::from_secs(2));
        let web = &rates[0];
        assert_eq!(web.rps, 10.0);
        assert_eq!(web.success, Some(0.9));
        assert_eq!(web.hosts[0].share, 0.75);
        assert_eq!(web.hosts[1].rps, 2.5);
    }

    #[test]
    fn status_classes_and_downstream_rates() {
        let mut before = sample(0, 0, 0, &[]);
        let mut after = sample(10, 10, 2, &[]);
        after.stats.insert("cluster.web.upstream_rq_2xx".into(), 8);
        before
            .stats
            .insert("http.ingress.downstream_rq_total".into(), 5);
        after
            .stats
            .insert("http.ingress.downstream_rq_total".into(), 15);
        after
            .stats
            .insert("http.ingress.downstream_rq_4xx".into(), 4);
        let rates = cluster_rates(&before, &after, Duration::from_secs(2));
        assert_eq!(rates[0].status.0, [4.0, 0.0, 0.0, 1.0]);
        let hcm = hcm_rates(&before, &after, Duration::from_secs(2));
        assert_eq!(hcm[0].stat_prefix, "ingress");
        assert_eq!((hcm[0].rps, hcm[0].status.0[2]), (5.0, 2.0));
    }

    #[test]
    fn an_idle_cluster_is_zero_not_its_history_and_a_restart_is_not_negative() {
        let busy = sample(500, 500, 0, &[("a:80", 500)]);
        let idle = cluster_rates(&busy, &busy, Duration::from_secs(1));
        assert_eq!((idle[0].rps, idle[0].success), (0.0, None));
        let restarted = sample(3, 3, 0, &[("a:80", 3)]);
        let after_restart = cluster_rates(&busy, &restarted, Duration::from_secs(1));
        assert_eq!(after_restart[0].rps, 3.0);
    }

    #[test]
    fn a_new_endpoint_counts_from_zero() {
        let before = sample(10, 10, 0, &[("a:80", 10)]);
        let after = sample(20, 20, 0, &[("a:80", 15), ("c:80", 5)]);
        let rates = cluster_rates(&before, &after, Duration::from_secs(1));
        assert_eq!(rates[0].hosts[1].share, 0.5);
    }
}

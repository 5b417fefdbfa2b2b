//! Rates from two scrapes: requests per second and success from counter deltas (never from
//! totals, so a proxy that served traffic an hour ago shows 0 rps now), the load-balancing
//! split from per-endpoint deltas.

use std::time::Duration;

use super::sample::{ProxySample, Quantiles};

#[derive(Debug, Clone, PartialEq)]
pub struct HostRate {
    pub address: String,
    pub rps: f64,
    /// This endpoint's part of the cluster's requests in the interval, 0–1.
    pub share: f64,
    pub healthy: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRate {
    pub cluster: String,
    pub rps: f64,
    /// Non-5xx answers over all answers in the interval; None without answers.
    pub success: Option<f64>,
    pub latency: Quantiles,
    pub active: u64,
    pub hosts: Vec<HostRate>,
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
            let host_deltas: Vec<(String, u64, bool)> = hosts_after
                .map(|c| {
                    c.hosts
                        .iter()
                        .map(|h| {
                            let was = hosts_before
                                .and_then(|b| b.hosts.iter().find(|x| x.address == h.address))
                                .map_or(0, |x| x.rq_total);
                            (h.address.clone(), delta(was, h.rq_total), h.healthy)
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
                    .copied()
                    .unwrap_or_default(),
                active: stat(after, "upstream_rq_active"),
                hosts: host_deltas
                    .into_iter()
                    .map(|(address, d, healthy)| HostRate {
                        address,
                        rps: d as f64 / secs,
                        share: if host_total > 0 {
                            d as f64 / host_total as f64
                        } else {
                            0.0
                        },
                        healthy,
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

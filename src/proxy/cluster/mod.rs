//! Clusters at run time: the host set (replaced wholesale when discovery changes it), the load
//! balancer built for that set, the cluster's stats, and its upstream connection pool.

pub mod circuit_breaker;
pub mod discovery;
pub mod health_check;
pub mod host;
pub mod lb;
mod manager;
pub mod outlier;
mod stats;

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::model;
use crate::proxy::upstream::Upstream;

pub use host::{Host, HostSpec};
pub use manager::{ClusterManager, ClusterManagerError};
pub use stats::ClusterStats;

/// The hosts of a cluster at one moment, with a balancer built for exactly the hosts that take
/// traffic: those of the lowest priority level present (higher levels are failover).
pub struct HostSet {
    pub hosts: Vec<Arc<Host>>,
    /// What the balancer picks from: the top priority's healthy hosts, or all of them in panic.
    pub active: Vec<Arc<Host>>,
    pub lb: lb::LoadBalancer,
    /// Too few healthy hosts (below `healthy_panic_threshold` %): health is ignored.
    pub panic: bool,
    pub healthy: usize,
}

impl HostSet {
    pub fn new(policy: &lb::Policy, hosts: Vec<Arc<Host>>, panic_threshold: f64) -> Self {
        let top = hosts.iter().map(|h| h.priority).min().unwrap_or(0);
        let level: Vec<Arc<Host>> = hosts
            .iter()
            .filter(|h| h.priority == top)
            .cloned()
            .collect();
        let healthy_hosts: Vec<Arc<Host>> =
            level.iter().filter(|h| h.is_healthy()).cloned().collect();
        let healthy = hosts.iter().filter(|h| h.is_healthy()).count();
        // Envoy's panic mode: with too few healthy hosts, spreading over all of them beats
        // overloading the few (a threshold of 0 disables it).
        let panic = !level.is_empty()
            && panic_threshold > 0.0
            && (healthy_hosts.len() as f64) * 100.0 / (level.len() as f64) < panic_threshold;
        let active = if panic { level } else { healthy_hosts };
        HostSet {
            lb: lb::LoadBalancer::new(policy, &active),
            active,
            hosts,
            panic,
            healthy,
        }
    }
}

/// What the data path and the admin API share about a cluster.
pub struct ClusterCore {
    pub config: model::Cluster,
    pub stats: ClusterStats,
    pub hosts: ArcSwap<HostSet>,
    pub lb_policy: lb::Policy,
    pub breakers: circuit_breaker::Breakers,
    /// `outlier_detection.*` stats, when outlier detection is configured.
    pub outlier: Option<outlier::OutlierStats>,
    /// `health_check.*` stats, when active health checks are configured.
    pub checks: Option<health_check::CheckStats>,
    /// The `UpstreamTlsContext`, when the cluster has one.
    pub tls: Option<crate::proxy::tls::client::Connector>,
}

impl ClusterCore {
    /// Picks a host for one request, without locks: load the current set, ask its balancer.
    pub fn choose_host(&self, hash: Option<u64>) -> Option<Arc<Host>> {
        let set = self.hosts.load();
        if set.panic {
            self.stats.lb_healthy_panic.inc();
        }
        let index = set
            .lb
            .pick(&set.active, &lb::PickContext { hash, attempt: 0 })?;
        set.active.get(index).cloned()
    }

    /// The host for a retry. With `avoid` (the `previous_hosts` predicate) up to `attempts`
    /// picks are made to find one not in it; the last pick stands if none is, as in Envoy.
    pub fn choose_retry_host(
        &self,
        hash: Option<u64>,
        avoid: Option<&[std::net::SocketAddr]>,
        attempts: u32,
    ) -> Option<Arc<Host>> {
        let set = self.hosts.load();
        let mut chosen = None;
        for attempt in 0..attempts.max(1) {
            let index = set
                .lb
                .pick(&set.active, &lb::PickContext { hash, attempt })?;
            let host = set.active.get(index).cloned()?;
            let fresh = avoid.is_none_or(|a| !a.contains(&host.address));
            chosen = Some(host);
            if fresh {
                break;
            }
        }
        chosen
    }

    /// Installs a new host list, keeping the existing `Host` (and its counters) for addresses
    /// that are still present. Returns whether membership changed.
    pub fn update_hosts(&self, fresh: Vec<HostSpec>) -> bool {
        let current = self.hosts.load();
        let mut changed = fresh.len() != current.hosts.len();
        let hosts: Vec<Arc<Host>> = fresh
            .into_iter()
            .map(|h| {
                match current
                    .hosts
                    .iter()
                    .find(|old| old.address == h.address && old.weight == h.weight)
                {
                    Some(old) => old.clone(),
                    None => {
                        changed = true;
                        self.new_host(h)
                    }
                }
            })
            .collect();
        if !changed {
            return false;
        }
        self.install(hosts);
        self.stats.membership_change.inc();
        true
    }

    /// A host for `spec`: with active health checks configured it starts unhealthy until its
    /// first check passes, as in Envoy.
    pub fn new_host(&self, spec: HostSpec) -> Arc<Host> {
        let host = Host::new(spec);
        if !self.config.health_checks.is_empty() {
            host.set_health(host::Health::FAILED_ACTIVE_HC, true);
        }
        Arc::new(host)
    }

    /// The first host list (static endpoints), each host new.
    pub fn install_specs(&self, specs: Vec<HostSpec>) {
        let hosts = specs.into_iter().map(|s| self.new_host(s)).collect();
        self.install(hosts);
    }

    /// Rebuilds what the balancer picks from after a host's health changed.
    pub fn health_changed(&self) {
        let hosts = self.hosts.load().hosts.clone();
        self.install(hosts);
    }

    fn install(&self, hosts: Vec<Arc<Host>>) {
        let set = HostSet::new(&self.lb_policy, hosts, self.config.healthy_panic_threshold);
        self.stats.set_membership(&set.hosts, set.healthy);
        self.hosts.store(Arc::new(set));
    }
}

/// A cluster: its shared core plus the client that pools connections to its hosts.
pub struct Cluster {
    pub core: Arc<ClusterCore>,
    pub upstream: Upstream,
}

pub fn lb_policy(policy: &model::LbPolicy) -> lb::Policy {
    match policy {
        model::LbPolicy::RoundRobin => lb::Policy::RoundRobin,
        model::LbPolicy::LeastRequest {
            choice_count,
            active_request_bias,
        } => lb::Policy::LeastRequest {
            choice_count: *choice_count,
            active_request_bias: *active_request_bias,
        },
        model::LbPolicy::Random => lb::Policy::Random,
        model::LbPolicy::RingHash {
            minimum_ring_size,
            maximum_ring_size,
        } => lb::Policy::RingHash {
            minimum_ring_size: *minimum_ring_size,
            maximum_ring_size: *maximum_ring_size,
        },
        model::LbPolicy::Maglev { table_size } => lb::Policy::Maglev {
            table_size: *table_size,
        },
    }
}

//! Clusters at run time: the host set (replaced wholesale when discovery changes it), the load
//! balancer built for that set, the cluster's stats, and its upstream connection pool.

pub mod circuit_breaker;
pub mod discovery;
pub mod host;
pub mod lb;
mod manager;
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
    pub active: Vec<Arc<Host>>,
    pub lb: lb::LoadBalancer,
}

impl HostSet {
    pub fn new(policy: &lb::Policy, hosts: Vec<Arc<Host>>) -> Self {
        let top = hosts.iter().map(|h| h.priority).min().unwrap_or(0);
        let active: Vec<Arc<Host>> = hosts
            .iter()
            .filter(|h| h.priority == top)
            .cloned()
            .collect();
        HostSet {
            lb: lb::LoadBalancer::new(policy, &active),
            active,
            hosts,
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
    /// The `UpstreamTlsContext`, when the cluster has one.
    pub tls: Option<crate::proxy::tls::client::Connector>,
}

impl ClusterCore {
    /// Picks a host for one request, without locks: load the current set, ask its balancer.
    pub fn choose_host(&self, hash: Option<u64>) -> Option<Arc<Host>> {
        let set = self.hosts.load();
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
                        Arc::new(Host::new(h))
                    }
                }
            })
            .collect();
        if !changed {
            return false;
        }
        self.stats.set_membership(&hosts);
        self.hosts
            .store(Arc::new(HostSet::new(&self.lb_policy, hosts)));
        self.stats.membership_change.inc();
        true
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

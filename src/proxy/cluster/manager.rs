//! The cluster manager: every configured cluster, initialised before listeners start (Envoy's
//! "cluster warming": DNS clusters get their first resolution first, so the first request does
//! not see an empty cluster).

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::model::{self, DiscoveryType};
use crate::proxy::stats::Store;
use crate::proxy::upstream::Upstream;

use super::discovery::{self, Network, NotAnIp};
use super::{lb_policy, Cluster, ClusterCore, ClusterStats, HostSet};

#[derive(Debug, thiserror::Error)]
pub enum ClusterManagerError {
    #[error(transparent)]
    StaticEndpoint(#[from] NotAnIp),
    #[error("cluster `{cluster}`: TLS: {source}")]
    Tls {
        cluster: String,
        #[source]
        source: crate::proxy::tls::TlsError,
    },
}

/// What a rebuild did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Changes {
    pub added: usize,
    pub modified: usize,
    pub removed: usize,
}

/// One cluster, built from its config: stats, TLS, breakers, outlier detection and health
/// checks running; static hosts installed, DNS ones still to resolve.
fn new_core(
    config: &model::Cluster,
    store: &Store,
    net: &Network,
    shutdown: &watch::Receiver<bool>,
) -> Result<Arc<ClusterCore>, ClusterManagerError> {
    let policy = lb_policy(&config.lb_policy);
    let stats = ClusterStats::new(store, config.stat_name());
    let tls = match &config.tls {
        Some(t) => Some(
            crate::proxy::tls::client::Connector::new(t, store, &stats.prefix).map_err(
                |source| ClusterManagerError::Tls {
                    cluster: config.name.clone(),
                    source,
                },
            )?,
        ),
        None => None,
    };
    let initial = match config.discovery {
        DiscoveryType::Static => discovery::static_hosts(config, net)?,
        DiscoveryType::StrictDns | DiscoveryType::LogicalDns => Vec::new(),
    };
    let outlier = config
        .outlier_detection
        .as_ref()
        .map(|_| super::outlier::OutlierStats::new(store, &stats.prefix));
    let checks = (!config.health_checks.is_empty())
        .then(|| super::health_check::CheckStats::new(store, &stats.prefix));
    let breakers = super::circuit_breaker::Breakers::new(
        store,
        &stats.prefix,
        config.circuit_breakers.default,
    );
    let core = Arc::new(ClusterCore {
        hosts: ArcSwap::from_pointee(HostSet::new(&policy, Vec::new(), 0.0)),
        lb_policy: policy,
        breakers,
        outlier,
        checks,
        stats,
        config: config.clone(),
        tls,
    });
    core.install_specs(initial);
    if core.outlier.is_some() {
        super::outlier::spawn_intervals(&core, shutdown.clone());
    }
    for (i, _) in config.health_checks.iter().enumerate() {
        super::health_check::spawn(&core, i, shutdown.clone());
    }
    Ok(core)
}

pub struct ClusterManager {
    /// By name. Looked up on every request, so hashed with foldhash rather than SipHash: the
    /// names come from the operator's config, not from clients, so there is no flooding to
    /// guard against.
    clusters: HashMap<String, Cluster, foldhash::fast::RandomState>,
    /// Configuration order, for `/clusters` and `/config_dump`.
    order: Vec<String>,
}

impl ClusterManager {
    pub async fn build(
        configs: &[model::Cluster],
        store: &Store,
        net: &Network,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self, ClusterManagerError> {
        let (manager, changes) = Self::assemble(None, configs, store, net, shutdown).await?;
        store
            .gauge("cluster_manager.active_clusters")
            .set(manager.clusters.len() as u64);
        store
            .counter("cluster_manager.cluster_added")
            .add(changes.added as u64);
        store.gauge("cluster_manager.warming_clusters").set(0);
        Ok(manager)
    }

    /// The cluster set for a reloaded config: a cluster whose config is unchanged is the same
    /// cluster (hosts, health, connections, counters); a changed or new one is built and warmed
    /// before this returns. Removed clusters go when the last request using them ends.
    pub async fn rebuild(
        &self,
        configs: &[model::Cluster],
        store: &Store,
        net: &Network,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(Self, Changes), ClusterManagerError> {
        Self::assemble(Some(self), configs, store, net, shutdown).await
    }

    async fn assemble(
        previous: Option<&ClusterManager>,
        configs: &[model::Cluster],
        store: &Store,
        net: &Network,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(Self, Changes), ClusterManagerError> {
        let mut clusters = HashMap::default();
        let mut order = Vec::new();
        let mut changes = Changes::default();
        let mut warming = JoinSet::new();
        for config in configs {
            let old = previous.and_then(|p| p.clusters.get(&config.name));
            let core = match old {
                Some(old) if old.core.config == *config => old.core.clone(),
                _ => {
                    if old.is_some() {
                        changes.modified += 1;
                    } else {
                        changes.added += 1;
                    }
                    let core = new_core(config, store, net, &shutdown)?;
                    if config.discovery != DiscoveryType::Static {
                        let (core, net) = (core.clone(), net.clone());
                        warming.spawn(async move {
                            discovery::resolve_once(&core, &net).await;
                            core
                        });
                    }
                    core
                }
            };
            order.push(config.name.clone());
            clusters.insert(
                config.name.clone(),
                Cluster {
                    upstream: Upstream::new(core.clone()),
                    core,
                },
            );
        }
        if let Some(previous) = previous {
            changes.removed = previous
                .order
                .iter()
                .filter(|n| !clusters.contains_key(*n))
                .count();
        }
        while let Some(done) = warming.join_next().await {
            if let Ok(core) = done {
                discovery::spawn_refresh(&core, net.clone(), shutdown.clone());
            }
        }
        Ok((ClusterManager { clusters, order }, changes))
    }

    pub fn get(&self, name: &str) -> Option<&Cluster> {
        self.clusters.get(name)
    }

    /// Clusters in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Cluster> {
        self.order.iter().filter_map(|n| self.clusters.get(n))
    }
}

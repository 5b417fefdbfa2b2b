//! Host discovery: STATIC endpoints once; STRICT_DNS and LOGICAL_DNS by re-resolving every
//! `dns_refresh_rate`, so replicas that appear or vanish behind a name (Docker's embedded DNS,
//! a Kubernetes headless service, meshsim's local DNS) are picked up without a restart.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::model::{self, DiscoveryType, DnsLookupFamily};
use crate::dns::{LookupFamily, Resolver};

use super::{ClusterCore, HostSpec};

/// How a proxy reaches the network: the resolver for DNS clusters and, for local runs, the
/// loopback address standing in for the pod's own namespace.
#[derive(Clone)]
pub struct Network {
    pub resolver: Resolver,
    pub pod_ip: Option<IpAddr>,
}

impl Network {
    /// Inside a pod, 127.0.0.1 means the pod itself; with `--pod-ip` that is the pod's address.
    /// Only the canonical loopback addresses are "self": other 127.x addresses are other pods.
    pub fn localize(&self, ip: IpAddr) -> IpAddr {
        match self.pod_ip {
            Some(pod) if is_pod_self(ip) => pod,
            _ => ip,
        }
    }
}

/// 127.0.0.1 and ::1, what a config means by "this pod".
pub fn is_pod_self(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4 == std::net::Ipv4Addr::LOCALHOST,
        IpAddr::V6(v6) => v6 == std::net::Ipv6Addr::LOCALHOST,
    }
}

/// Why a STATIC endpoint cannot become a host (the config validator rejects these too; this is
/// the runtime's guard).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_loopback_means_this_pod() {
        let net = Network {
            resolver: Resolver::with_nameserver("127.0.0.1:53".parse().unwrap()).unwrap(),
            pod_ip: Some("127.0.5.1".parse().unwrap()),
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(net.localize(ip("127.0.0.1")), ip("127.0.5.1"));
        assert_eq!(net.localize(ip("::1")), ip("127.0.5.1"));
        assert_eq!(
            net.localize(ip("127.0.9.2")),
            ip("127.0.9.2"),
            "another pod"
        );
        assert_eq!(net.localize(ip("10.1.2.3")), ip("10.1.2.3"));
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cluster `{cluster}`: endpoint `{address}` is not an IP address; use type STRICT_DNS for DNS names")]
pub struct NotAnIp {
    pub cluster: String,
    pub address: String,
}

pub fn static_hosts(cluster: &model::Cluster, net: &Network) -> Result<Vec<HostSpec>, NotAnIp> {
    cluster
        .endpoints
        .iter()
        .map(|e| {
            let ip: IpAddr = e.address.address.parse().map_err(|_| NotAnIp {
                cluster: cluster.name.clone(),
                address: e.address.address.clone(),
            })?;
            Ok(HostSpec {
                address: SocketAddr::new(net.localize(ip), e.address.port),
                hostname: e.hostname.clone().unwrap_or_default(),
                weight: e.weight,
                priority: e.priority,
                dns_name: String::new(),
            })
        })
        .collect()
}

fn family(f: DnsLookupFamily) -> LookupFamily {
    match f {
        DnsLookupFamily::Auto => LookupFamily::Auto,
        DnsLookupFamily::V4Only => LookupFamily::V4Only,
        DnsLookupFamily::V6Only => LookupFamily::V6Only,
        DnsLookupFamily::V4Preferred => LookupFamily::V4Preferred,
        DnsLookupFamily::All => LookupFamily::All,
    }
}

/// Resolves every endpoint of a DNS cluster once and installs the result. A name that fails to
/// resolve keeps the hosts it had (Envoy keeps the last good answer). Returns true when every
/// resolution succeeded.
pub async fn resolve_once(core: &ClusterCore, net: &Network) -> bool {
    let cluster = &core.config;
    let current = core.hosts.load_full();
    let mut fresh = Vec::new();
    let mut all_ok = true;
    for endpoint in &cluster.endpoints {
        core.stats.update_attempt.inc();
        let name = &endpoint.address.address;
        match net
            .resolver
            .resolve(name, family(cluster.dns_lookup_family))
            .await
        {
            Ok(mut addrs) => {
                core.stats.update_success.inc();
                if addrs.is_empty() {
                    core.stats.update_empty.inc();
                }
                if cluster.discovery == DiscoveryType::LogicalDns {
                    addrs.truncate(1);
                }
                for ip in addrs {
                    fresh.push(HostSpec {
                        address: SocketAddr::new(net.localize(ip), endpoint.address.port),
                        hostname: endpoint.hostname.clone().unwrap_or_else(|| name.clone()),
                        weight: endpoint.weight,
                        priority: endpoint.priority,
                        dns_name: name.clone(),
                    });
                }
            }
            Err(error) => {
                all_ok = false;
                core.stats.update_failure.inc();
                tracing::warn!(cluster = %cluster.name, host = %name, %error, "DNS resolution failed; keeping the previous hosts");
                fresh.extend(
                    current
                        .hosts
                        .iter()
                        .filter(|h| &h.dns_name == name)
                        .map(|h| h.spec()),
                );
            }
        }
    }
    if core.update_hosts(fresh) {
        let hosts = core.hosts.load();
        tracing::info!(
            cluster = %cluster.name,
            hosts = ?hosts.hosts.iter().map(|h| h.address).collect::<Vec<_>>(),
            "membership changed"
        );
    }
    all_ok
}

/// Keeps a DNS cluster's hosts fresh until `shutdown` flips or the cluster is gone (a reload
/// removed or replaced it).
pub fn spawn_refresh(core: &Arc<ClusterCore>, net: Network, mut shutdown: watch::Receiver<bool>) {
    let weak = Arc::downgrade(core);
    tokio::spawn(async move {
        let mut ok = true;
        loop {
            let wait: Duration = match weak.upgrade() {
                Some(core) if ok => core.config.dns_refresh_rate,
                Some(core) => core.config.dns_failure_refresh_rate,
                None => return,
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            let Some(core) = weak.upgrade() else { return };
            ok = resolve_once(&core, &net).await;
        }
    });
}

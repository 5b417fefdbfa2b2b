//! When is a mesh ready? Every proxy's `/ready` says LIVE, every cluster configured with hosts
//! has a healthy one in `/clusters` (so DNS has caught up with the replicas), and every app
//! answers on its port, and so does every published port.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::runtime::{Plan, PortPurpose, Program, UnitStatus};

use super::http_probe;

const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// One thing to wait for.
#[derive(Debug, Clone)]
pub struct Probe {
    /// `service#replica`.
    pub pod: String,
    pub kind: ProbeKind,
}

#[derive(Debug, Clone)]
pub enum ProbeKind {
    /// A proxy's admin endpoint, with the clusters that must have a healthy host.
    Proxy {
        admin: SocketAddr,
        clusters: Vec<String>,
    },
    /// Something must answer on this port (an app, a published listener).
    Answers { addr: SocketAddr, what: String },
}

impl Probe {
    pub fn describe(&self) -> String {
        match &self.kind {
            ProbeKind::Proxy { .. } => format!("{} proxy", self.pod),
            ProbeKind::Answers { what, .. } => format!("{} {what}", self.pod),
        }
    }
}

/// The probes for a launched plan. Admin and app ports are found through the units' published
/// ports (Docker maps them to 127.0.0.1; local pods are reached at their own address).
pub fn probes(plan: &Plan, units: &[UnitStatus]) -> Vec<Probe> {
    let mut out = Vec::new();
    for pod in &plan.pods {
        let published: Vec<_> = units
            .iter()
            .filter(|u| u.service == pod.service && u.replica == pod.replica)
            .flat_map(|u| u.published.iter())
            .collect();
        let host_addr = |container_port: u16| {
            published
                .iter()
                .find(|p| p.container_port == container_port)
                .map(|p| SocketAddr::new(p.host_ip, p.host_port))
        };
        // The pod's proxy config, parsed once: its admin port and the clusters that must have
        // a healthy host.
        let proxy = pod.containers.iter().find_map(|c| match &c.program {
            Program::Proxy { config, .. } => load(&config.contents),
            _ => None,
        });
        let admin = proxy
            .as_ref()
            .and_then(|b| b.admin.as_ref())
            .map(|a| a.address.port);
        let clusters: Vec<String> = proxy
            .map(|b| {
                b.clusters
                    .into_iter()
                    .filter(|c| !c.endpoints.is_empty())
                    .map(|c| c.name)
                    .collect()
            })
            .unwrap_or_default();
        for spec in &pod.ports {
            let Some(addr) = host_addr(spec.container_port) else {
                continue;
            };
            let is_admin = admin.is_some_and(|p| p == spec.container_port);
            // A proxy with an admin port is judged by it; probing its published listeners too
            // would only add probe requests to its stats and access log.
            if !is_admin && admin.is_some() && spec.purpose == PortPurpose::Publish {
                continue;
            }
            let kind = if is_admin {
                ProbeKind::Proxy {
                    admin: addr,
                    clusters: clusters.clone(),
                }
            } else {
                // An app's port, or a published port (a proxy without an admin section still
                // has to listen before the mesh is usable from the host).
                ProbeKind::Answers {
                    addr,
                    what: match spec.purpose {
                        PortPurpose::App => "app".to_string(),
                        _ => format!("port {}", spec.container_port),
                    },
                }
            };
            out.push(Probe {
                pod: pod.name(),
                kind,
            });
        }
    }
    out
}

fn load(contents: &[u8]) -> Option<crate::config::model::Bootstrap> {
    let text = String::from_utf8_lossy(contents);
    crate::config::load_str("config", &text, Path::new("."))
        .ok()
        .map(|l| l.bootstrap)
}

/// Checks one probe once; `Err` says what is still missing.
pub async fn check(probe: &Probe) -> Result<(), String> {
    match &probe.kind {
        ProbeKind::Answers { addr, what } => http_probe::answers(*addr, PROBE_TIMEOUT)
            .await
            .map_err(|e| format!("{what} on {addr}: {e}")),
        ProbeKind::Proxy { admin, clusters } => {
            let (status, body) = http_probe::get(*admin, "/ready", PROBE_TIMEOUT)
                .await
                .map_err(|e| format!("admin {admin}/ready: {e}"))?;
            if status != 200 || body.trim() != "LIVE" {
                return Err(format!("admin {admin}/ready says {status} {}", body.trim()));
            }
            if clusters.is_empty() {
                return Ok(());
            }
            let (_, text) = http_probe::get(*admin, "/clusters", PROBE_TIMEOUT)
                .await
                .map_err(|e| format!("admin {admin}/clusters: {e}"))?;
            let healthy = healthy_hosts(&text);
            match clusters
                .iter()
                .find(|c| healthy.get(c.as_str()).copied().unwrap_or(0) == 0)
            {
                Some(c) => Err(format!("cluster `{c}` has no healthy host yet")),
                None => Ok(()),
            }
        }
    }
}

/// Healthy hosts per cluster from Envoy's `/clusters` text (`name::ip:port::health_flags::healthy`).
pub fn healthy_hosts(text: &str) -> BTreeMap<&str, usize> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.split("::");
        let (Some(cluster), Some(_host), Some(key), Some(value)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if key == "health_flags" {
            let count = out.entry(cluster).or_insert(0);
            if value == "healthy" {
                *count += 1;
            }
        }
    }
    out
}

/// Polls every probe until all pass or `deadline` passes; `progress` hears (ready, total).
/// On timeout, returns what each unready probe last said.
pub async fn wait(
    probes: &[Probe],
    within: Duration,
    mut progress: impl FnMut(usize, usize),
) -> Result<(), Vec<(String, String)>> {
    let deadline = tokio::time::Instant::now() + within;
    let mut pending: Vec<(usize, String)> = (0..probes.len())
        .map(|i| (i, "not checked".into()))
        .collect();
    loop {
        let mut still = Vec::new();
        let results =
            futures_util::future::join_all(pending.iter().map(|(i, _)| check(&probes[*i]))).await;
        for ((i, _), result) in pending.iter().zip(results) {
            if let Err(why) = result {
                still.push((*i, why));
            }
        }
        pending = still;
        progress(probes.len() - pending.len(), probes.len());
        if pending.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(pending
                .into_iter()
                .map(|(i, why)| (probes[i].describe(), why))
                .collect());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_healthy_hosts_per_cluster() {
        let text = "service1::default_priority::max_connections::1024\n\
                    service1::10.0.0.2:80::health_flags::healthy\n\
                    service1::10.0.0.3:80::health_flags::/failed_active_hc\n\
                    service2::10.0.0.4:80::cx_active::0\n";
        let healthy = healthy_hosts(text);
        assert_eq!(healthy.get("service1"), Some(&1));
        assert_eq!(healthy.get("service2"), None);
    }
}

//! What a test run watches while traffic flows: every proxy's admin API and every sample app's
//! own counters (`/meshsim/stats`), read together into a [`Snapshot`] — before traffic, about
//! once a second, at each phase boundary, and after the last request.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::future::join_all;

use crate::runtime::{Plan, PortPurpose, Role, UnitStatus};
use crate::scenario::model::{AppSource, Scenario, ServiceBody};
use crate::verdict::record::{AppCounters, Snapshot};

use super::super::{http_probe, readiness};

const STATS_TIMEOUT: Duration = Duration::from_secs(1);

/// Where each proxy's admin API and each sample app's counters answer from the host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Targets {
    /// `(pod, admin)`.
    pub proxies: Vec<(String, SocketAddr)>,
    /// `(pod, app port)`: sample apps only (an image app has no counters).
    pub apps: Vec<(String, SocketAddr)>,
}

impl Targets {
    /// From the run's plan (each proxy's admin port is in its config) and its units (where
    /// each port is published).
    pub fn of(units: &[UnitStatus], plan: &Plan, scenario: &Scenario) -> Targets {
        let running: Vec<UnitStatus> = units
            .iter()
            .filter(|u| u.state == "running")
            .cloned()
            .collect();
        let mut targets = Targets::default();
        for probe in readiness::probes(plan, &running) {
            if let readiness::ProbeKind::Proxy { admin, .. } = probe.kind {
                targets.proxies.push((probe.pod, admin));
            }
        }
        for unit in running.iter().filter(|u| u.role == Role::App) {
            let sample = scenario.service(&unit.service).is_some_and(|s| {
                matches!(&s.body, ServiceBody::App { app, .. } if matches!(app.source, AppSource::Sample(_)))
            });
            let port = unit
                .published
                .iter()
                .find(|p| p.purpose == PortPurpose::App)
                .map(|p| SocketAddr::new(p.host_ip, p.host_port));
            if let (true, Some(addr)) = (sample, port) {
                targets.apps.push((pod_name(unit), addr));
            }
        }
        targets
    }
}

/// `service#replica`.
pub fn pod_name(unit: &UnitStatus) -> String {
    format!("{}#{}", unit.service, unit.replica)
}

/// Reads everything once, concurrently. What does not answer is left out of the snapshot (a
/// killed pod, a paused one), never recorded as zero.
pub async fn snapshot(targets: &Targets, at: Duration) -> Snapshot {
    let proxies = join_all(
        targets
            .proxies
            .iter()
            .map(|(pod, admin)| async move { (pod.clone(), crate::scrape::scrape(*admin).await) }),
    );
    let apps = join_all(
        targets
            .apps
            .iter()
            .map(|(pod, addr)| async move { (pod.clone(), app_counters(*addr).await) }),
    );
    let (proxies, apps) = tokio::join!(proxies, apps);
    Snapshot {
        at,
        proxies: proxies
            .into_iter()
            .filter_map(|(pod, r)| r.ok().map(|s| (pod, s)))
            .collect(),
        apps: apps
            .into_iter()
            .filter_map(|(pod, r)| r.map(|c| (pod, c)))
            .collect(),
    }
}

/// A sample app's `/meshsim/stats`.
async fn app_counters(addr: SocketAddr) -> Option<AppCounters> {
    let (status, body) = http_probe::get(addr, "/meshsim/stats", STATS_TIMEOUT)
        .await
        .ok()?;
    if status != 200 {
        return None;
    }
    parse_app_counters(&body)
}

fn parse_app_counters(body: &str) -> Option<AppCounters> {
    #[derive(serde::Deserialize)]
    struct Doc {
        requests_total: u64,
        #[serde(default)]
        by_path: BTreeMap<String, u64>,
        #[serde(default)]
        by_status: BTreeMap<String, u64>,
    }
    let doc: Doc = serde_json::from_str(body).ok()?;
    Some(AppCounters {
        requests_total: doc.requests_total,
        by_path: doc.by_path,
        by_status: doc
            .by_status
            .into_iter()
            .filter_map(|(k, v)| Some((k.parse().ok()?, v)))
            .collect(),
    })
}

/// Every endpoint address the proxies listed (`ip:port`) → the pod that had that address.
pub fn endpoint_names(
    snapshots: &[Snapshot],
    addresses: &BTreeMap<std::net::IpAddr, String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for snapshot in snapshots {
        for sample in snapshot.proxies.values() {
            for cluster in &sample.clusters {
                for host in &cluster.hosts {
                    let ip = host.address.parse::<SocketAddr>().map(|a| a.ip()).ok();
                    if let Some(pod) = ip.and_then(|ip| addresses.get(&ip)) {
                        out.insert(host.address.clone(), pod.clone());
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_counters_parse_the_sample_document() {
        let c = parse_app_counters(
            r#"{"hostname":"h","service_name":"1","requests_total":3,"by_path":{"/service/1":2,"/x":1},"by_status":{"200":2,"404":1}}"#,
        )
        .unwrap();
        assert_eq!(c.requests_total, 3);
        assert_eq!(c.by_status[&404], 1);
        assert_eq!(c.by_path["/service/1"], 2);
        assert!(parse_app_counters("not json").is_none());
    }
}

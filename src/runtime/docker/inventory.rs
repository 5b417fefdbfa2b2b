//! What runs, found by labels: `ps`, `down` and the start-up janitor.
//!
//! State lives in the daemon, not in this process (docker compose's lesson), so all three work
//! after a crash, from another terminal, or from another meshsim version.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use bollard::models::{ContainerSummary, Network};
use bollard::query_parameters::{ListContainersOptionsBuilder, ListNetworksOptionsBuilder};
use futures_util::future::join_all;

use crate::runtime::{labels, PublishedPort, Role, UnitStatus};

use super::error::{status, DockerError};
use super::{network, owner, spec, DockerRuntime};

/// Which runs `down` removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    /// One run, by id.
    Run(String),
    /// Every run of a scenario (by its `name:`).
    Scenario(String),
    /// Every meshsim run on this daemon.
    All,
}

impl Which {
    fn label_filter(&self) -> String {
        match self {
            Which::Run(id) => format!("{}={id}", labels::RUN),
            Which::Scenario(name) => format!("{}={name}", labels::SCENARIO),
            // A key-only label filter matches any value.
            Which::All => labels::RUN.to_string(),
        }
    }
}

/// What `down` removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    pub containers: usize,
    pub networks: usize,
}

impl DockerRuntime {
    /// Every meshsim unit (of one run, or all), in any state, sorted by run, service, replica.
    pub async fn list(&self, run_id: Option<&str>) -> Result<Vec<UnitStatus>, DockerError> {
        let filter = match run_id {
            Some(id) => Which::Run(id.to_string()),
            None => Which::All,
        };
        let summaries = self.containers(&[filter.label_filter()]).await?;
        let mut units: Vec<UnitStatus> = summaries.iter().filter_map(unit_status).collect();
        share_pod_network(&mut units);
        units.sort_by(|a, b| {
            (&a.run, &a.service, a.replica, a.role.as_str()).cmp(&(
                &b.run,
                &b.service,
                b.replica,
                b.role.as_str(),
            ))
        });
        Ok(units)
    }

    /// Removes by labels: containers first (concurrently, forced), then networks (a network
    /// with endpoints cannot go). Idempotent: nothing to remove is `Ok` with zero counts.
    pub async fn down(&self, which: &Which) -> Result<Removed, DockerError> {
        let filter = [which.label_filter()];
        let ids: Vec<String> = self
            .containers(&filter)
            .await?
            .into_iter()
            .filter_map(|c| c.id)
            .collect();
        self.remove_containers(&ids).await?;
        let networks: Vec<String> = self
            .networks(&filter)
            .await?
            .into_iter()
            .filter_map(|n| n.id)
            .collect();
        let results = join_all(networks.iter().map(|id| self.remove_network_settled(id))).await;
        results.into_iter().collect::<Result<(), _>>()?;
        Ok(Removed {
            containers: ids.len(),
            networks: networks.len(),
        })
    }

    /// Removes the runs whose owner process is gone: owned by a pid on this machine
    /// (`meshsim.owner-host`) that no longer exists, is a zombie, or is a newer process that
    /// reused the pid. Detached runs carry no owner and are kept; so are runs owned from another
    /// machine sharing the daemon, whose pids mean nothing here. Returns the removed run ids.
    pub async fn janitor(&self) -> Result<Vec<String>, DockerError> {
        let owned = [labels::OWNER_PID.to_string()];
        // run id → (owner pid, owner host, earliest creation time seen)
        let mut runs: BTreeMap<String, (u32, String, Option<i64>)> = BTreeMap::new();
        let mut note = |labels: Option<&HashMap<String, String>>, created: Option<i64>| {
            let Some(l) = labels else { return };
            let (Some(run), Some(pid), Some(host)) = (
                l.get(labels::RUN),
                l.get(labels::OWNER_PID).and_then(|p| p.parse::<u32>().ok()),
                l.get(labels::OWNER_HOST),
            ) else {
                return;
            };
            let entry = runs
                .entry(run.clone())
                .or_insert_with(|| (pid, host.clone(), created));
            entry.2 = match (entry.2, created) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        };
        for c in self.containers(&owned).await? {
            note(c.labels.as_ref(), c.created);
        }
        for n in self.networks(&owned).await? {
            let created = n.created.as_deref().and_then(owner::parse_rfc3339);
            note(n.labels.as_ref(), created);
        }
        let dead: Vec<String> = runs
            .into_iter()
            .filter(|(_, (pid, host, created))| {
                *host == self.owner.host && owner::owner_gone(*pid, *created)
            })
            .map(|(run, _)| run)
            .collect();
        for run in &dead {
            tracing::info!(run = %run, "removing a run whose owner is gone");
            self.down(&Which::Run(run.clone())).await?;
        }
        Ok(dead)
    }

    /// Containers (any state) carrying all the given label filters.
    async fn containers(
        &self,
        label_filters: &[String],
    ) -> Result<Vec<ContainerSummary>, DockerError> {
        let filters = HashMap::from([("label", label_filters.to_vec())]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        self.docker
            .list_containers(Some(options))
            .await
            .map_err(|e| self.api_error("listing meshsim containers", e))
    }

    async fn networks(&self, label_filters: &[String]) -> Result<Vec<Network>, DockerError> {
        let filters = HashMap::from([("label", label_filters.to_vec())]);
        let options = ListNetworksOptionsBuilder::new().filters(&filters).build();
        self.docker
            .list_networks(Some(options))
            .await
            .map_err(|e| self.api_error("listing meshsim networks", e))
    }

    /// Removes a network, retrying briefly on 403 "active endpoints": the daemon can report an
    /// endpoint of a container it has just finished removing (moby/moby#17217).
    async fn remove_network_settled(&self, id: &str) -> Result<(), DockerError> {
        let mut attempt = 0;
        loop {
            match network::remove(&self.docker, &self.endpoint, id).await {
                Err(DockerError::Api { source, .. })
                    if status(&source) == Some(403) && attempt < 5 =>
                {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                other => return other,
            }
        }
    }
}

/// A container as a unit; None when its labels are not meshsim's (edited by hand, or another
/// version's).
fn unit_status(c: &ContainerSummary) -> Option<UnitStatus> {
    let l = c.labels.as_ref()?;
    let role = Role::parse(l.get(labels::ROLE)?)?;
    let purposes = l
        .get(labels::PORTS)
        .map(|text| spec::parse_ports_label(text))
        .unwrap_or_default();
    let published = c
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            let host_port = p.public_port?;
            let host_ip: IpAddr = p.ip.as_deref()?.parse().ok()?;
            // Docker lists the IPv6 twin of a binding too; ours are on 127.0.0.1 only.
            if !host_ip.is_ipv4() {
                return None;
            }
            let purpose = purposes
                .iter()
                .find(|s| s.container_port == p.private_port)
                .map(|s| s.purpose)
                .unwrap_or(crate::runtime::PortPurpose::Publish);
            Some(PublishedPort {
                host_ip,
                host_port,
                container_port: p.private_port,
                purpose,
            })
        })
        .collect();
    let address = c
        .network_settings
        .as_ref()
        .and_then(|s| s.networks.as_ref())
        .and_then(|nets| {
            nets.values()
                .filter_map(|n| n.ip_address.as_deref())
                .find(|ip| !ip.is_empty())
        })
        .and_then(|ip| ip.parse().ok());
    Some(UnitStatus {
        run: l.get(labels::RUN)?.clone(),
        scenario: l.get(labels::SCENARIO).cloned().unwrap_or_default(),
        unit: l.get(labels::UNIT)?.clone(),
        service: l.get(labels::SERVICE)?.clone(),
        replica: l.get(labels::REPLICA)?.parse().ok()?,
        role,
        state: c
            .state
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown".into()),
        id: c.id.clone()?,
        address,
        runtime: "docker",
        published,
        // Creation, not start: close enough for an uptime, and in the listing already.
        started_at: c
            .created
            .and_then(|s| u64::try_from(s).ok())
            .map(|s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s)),
    })
}

/// A sidecar lives in its pod's namespace, so Docker shows it without address or ports; it has
/// the pod's, which the namespace owner shows.
fn share_pod_network(units: &mut [UnitStatus]) {
    let pod_of = |u: &UnitStatus| format!("{}\n{}#{}", u.run, u.service, u.replica);
    let mut pods: HashMap<String, (Option<IpAddr>, Vec<PublishedPort>)> = HashMap::new();
    for u in units.iter() {
        if u.address.is_some() || !u.published.is_empty() {
            pods.entry(pod_of(u))
                .or_insert_with(|| (u.address, u.published.clone()));
        }
    }
    for u in units.iter_mut() {
        if u.address.is_none() && u.published.is_empty() {
            if let Some((address, published)) = pods.get(&pod_of(u)) {
                u.address = *address;
                u.published = published.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerSummaryStateEnum, PortSummary};

    fn summary(role: &str, ports: Option<Vec<PortSummary>>) -> ContainerSummary {
        ContainerSummary {
            id: Some(format!("id-{role}")),
            state: Some(ContainerSummaryStateEnum::RUNNING),
            ports,
            labels: Some(HashMap::from([
                (labels::RUN.to_string(), "r1".to_string()),
                (labels::SCENARIO.to_string(), "s".to_string()),
                (labels::UNIT.to_string(), format!("web#1/{role}")),
                (labels::SERVICE.to_string(), "web".to_string()),
                (labels::REPLICA.to_string(), "1".to_string()),
                (labels::ROLE.to_string(), role.to_string()),
                (
                    labels::PORTS.to_string(),
                    "8000:0:publish,8001:0:admin".to_string(),
                ),
            ])),
            ..Default::default()
        }
    }

    #[test]
    fn sidecar_gets_the_pods_ports_and_purposes_come_from_the_label() {
        let port = |private, public, ip: &str| PortSummary {
            ip: Some(ip.into()),
            private_port: private,
            public_port: Some(public),
            typ: None,
        };
        let app = summary(
            "app",
            Some(vec![
                port(8000, 49000, "127.0.0.1"),
                port(8001, 49001, "127.0.0.1"),
                port(8001, 49001, "::"),
            ]),
        );
        let sidecar = summary("sidecar", None);
        let mut units: Vec<UnitStatus> = [app, sidecar].iter().filter_map(unit_status).collect();
        share_pod_network(&mut units);
        assert_eq!(units.len(), 2);
        assert_eq!(units[0].state, "running");
        let admin = units[1]
            .published
            .iter()
            .find(|p| p.container_port == 8001)
            .unwrap();
        assert_eq!(admin.host_port, 49001);
        assert_eq!(admin.purpose, crate::runtime::PortPurpose::Admin);
        assert_eq!(units[1].published.len(), 2);
    }

    #[test]
    fn foreign_labels_are_not_units() {
        let mut c = summary("app", None);
        c.labels
            .as_mut()
            .unwrap()
            .insert(labels::ROLE.into(), "db".into());
        assert!(unit_status(&c).is_none());
    }

    #[test]
    fn which_filters() {
        assert_eq!(Which::Run("a".into()).label_filter(), "meshsim.run=a");
        assert_eq!(
            Which::Scenario("s".into()).label_filter(),
            "meshsim.scenario=s"
        );
        assert_eq!(Which::All.label_filter(), "meshsim.run");
    }
}

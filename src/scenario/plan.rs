//! Scenario → [`Plan`]: the pods and containers a runtime launches for one run.

use std::collections::HashMap;

use crate::config::model::DiscoveryType;

use crate::runtime::{
    ConfigFile, Container, Plan, Pod, PodFile, PortPurpose, PortSpec, Program, Role,
};

use super::check::{app_port, Configs};
use super::model::*;

/// Proxy flags every pod gets unless the scenario sets them: the node's cluster is the service
/// (as Envoy's examples pass `--service-cluster`), and a short drain so `down` is quick.
fn default_proxy_flags(service: &Service, replica: u32) -> [(&'static str, String); 3] {
    [
        ("--service-cluster", service.name.clone()),
        ("--service-node", format!("{}#{replica}", service.name)),
        ("--drain-time-s", "1".to_string()),
    ]
}

pub fn plan(
    scenario: &Scenario,
    configs: &Configs,
    run_id: String,
    detached: bool,
) -> std::io::Result<Plan> {
    let tls = run_tls(scenario, &run_id)?;
    let mut pods = Vec::new();
    for service in &scenario.services {
        let wave = wave(scenario, configs, service);
        for replica in 1..=service.replicas {
            let mut pod = pod(service, replica, configs)?;
            if let Some(tls) = &tls {
                tls.hand_out(service, &mut pod);
            }
            pod.wave = wave;
            pods.push(pod);
        }
    }
    pods.sort_by_key(|p| p.wave);
    Ok(Plan {
        run_id,
        scenario: scenario.name.clone(),
        scenario_path: scenario.path.clone(),
        pods,
        detached,
    })
}

/// The services whose names `service`'s proxy resolves (its DNS clusters), itself excluded.
fn dns_dependencies<'s>(
    scenario: &'s Scenario,
    configs: &Configs,
    service: &Service,
) -> Vec<&'s Service> {
    let Some(bootstrap) = service.proxy().and_then(|p| configs.get(&p.config)) else {
        return Vec::new();
    };
    bootstrap
        .clusters
        .iter()
        .filter(|c| c.discovery != DiscoveryType::Static)
        .flat_map(|c| &c.endpoints)
        .filter_map(|e| scenario.service(e.address.address.trim_end_matches('.')))
        .filter(|dep| dep.name != service.name)
        .collect()
}

/// 0 for a service that resolves no other service, else one more than its dependencies'.
/// Memoised depth-first; a cycle (two sidecars calling each other) is cut where it closes.
fn wave(scenario: &Scenario, configs: &Configs, service: &Service) -> u32 {
    fn visit(
        scenario: &Scenario,
        configs: &Configs,
        service: &Service,
        memo: &mut HashMap<String, u32>,
        on_path: &mut Vec<String>,
    ) -> u32 {
        if let Some(w) = memo.get(&service.name) {
            return *w;
        }
        if on_path.contains(&service.name) {
            return 0;
        }
        on_path.push(service.name.clone());
        let w = dns_dependencies(scenario, configs, service)
            .into_iter()
            .map(|dep| visit(scenario, configs, dep, memo, on_path) + 1)
            .max()
            .unwrap_or(0);
        on_path.pop();
        memo.insert(service.name.clone(), w);
        w
    }
    visit(
        scenario,
        configs,
        service,
        &mut HashMap::new(),
        &mut Vec::new(),
    )
}

/// Another replica of `service` for a running `plan` (scaling up, or restarting one the plan
/// does not hold), built exactly as [`plan`] builds them: the same wave, and each `publish:`
/// port on a fixed or a free host port as the plan's replicas have it (`--ephemeral-ports`).
/// `Ok(None)`: the scenario has no such service.
pub fn replica(
    scenario: &Scenario,
    configs: &Configs,
    plan: &Plan,
    service: &str,
    replica: u32,
) -> std::io::Result<Option<Pod>> {
    let Some(spec) = scenario.service(service) else {
        return Ok(None);
    };
    let mut pod = pod(spec, replica, configs)?;
    let planned = plan.pods.iter().find(|p| p.service == service);
    // The same certificate as the other replicas (it names the service, which they share).
    if let Some(planned) = planned {
        for container in &mut pod.containers {
            if let Some(same) = planned.containers.iter().find(|c| c.role == container.role) {
                container.files = same.files.clone();
            }
        }
    }
    pod.wave = planned.map_or_else(|| wave(scenario, configs, spec), |p| p.wave);
    if let Some(planned) = planned {
        for port in &mut pod.ports {
            if let Some(same) = planned
                .ports
                .iter()
                .find(|p| p.container_port == port.container_port)
            {
                port.host_port = same.host_port;
            }
        }
    }
    Ok(Some(pod))
}

/// Where generated TLS files go inside a container.
const TLS_DIR: &str = "/etc/meshsim/tls";

/// The TLS material of a run with `tls: true` apps: a CA made for this run, and a
/// certificate per TLS service for its DNS name (and `localhost`), signed by it.
struct RunTls {
    ca: PodFile,
    services: HashMap<String, (PodFile, PodFile)>,
}

fn run_tls(scenario: &Scenario, run_id: &str) -> std::io::Result<Option<RunTls>> {
    let tls_services: Vec<&Service> = scenario
        .services
        .iter()
        .filter(|s| matches!(&s.body, ServiceBody::App { app, .. } if app.tls))
        .collect();
    if tls_services.is_empty() {
        return Ok(None);
    }
    let ca = crate::certs::Ca::new(&format!("meshsim run {run_id} CA"))
        .map_err(std::io::Error::other)?;
    let file = |name: &str, env: &str, contents: String, private: bool| PodFile {
        container_path: format!("{TLS_DIR}/{name}"),
        env: env.to_string(),
        contents: contents.into_bytes(),
        private,
    };
    let mut services = HashMap::new();
    for service in tls_services {
        let issued = ca
            .issue(&[service.name.as_str(), "localhost"])
            .map_err(std::io::Error::other)?;
        services.insert(
            service.name.clone(),
            (
                file(
                    &format!("{}.crt", service.name),
                    "TLS_CERT",
                    issued.cert_pem,
                    false,
                ),
                file(
                    &format!("{}.key", service.name),
                    "TLS_KEY",
                    issued.key_pem,
                    true,
                ),
            ),
        );
    }
    Ok(Some(RunTls {
        ca: file("ca.crt", "MESHSIM_TLS_CA", ca.cert_pem(), false),
        services,
    }))
}

impl RunTls {
    /// The CA to every container; the service's certificate and key to its app.
    fn hand_out(&self, service: &Service, pod: &mut Pod) {
        for container in &mut pod.containers {
            container.files.push(self.ca.clone());
            if container.role == Role::App {
                if let Some((cert, key)) = self.services.get(&service.name) {
                    container.files.extend([cert.clone(), key.clone()]);
                }
            }
        }
    }
}

fn pod(service: &Service, replica: u32, configs: &Configs) -> std::io::Result<Pod> {
    let mut containers = Vec::new();
    let mut internal_ports = Vec::new();
    match &service.body {
        ServiceBody::App { app, sidecar } => {
            containers.push(app_container(app));
            if let Some(port) = app_port(app) {
                internal_ports.push((port, PortPurpose::App));
            }
            if let Some(proxy) = sidecar {
                containers.push(proxy_container(service, replica, proxy, Role::Sidecar)?);
            }
        }
        ServiceBody::Proxy(proxy) => {
            containers.push(proxy_container(service, replica, proxy, Role::Proxy)?);
        }
    }
    if let Some(admin) = service
        .proxy()
        .and_then(|p| configs.get(&p.config))
        .and_then(|b| b.admin.as_ref())
    {
        internal_ports.push((admin.address.port, PortPurpose::Admin));
    }
    let mut ports: Vec<PortSpec> = service
        .publish
        .iter()
        .map(|p| PortSpec {
            container_port: p.container_port,
            host_port: p.host_port,
            purpose: PortPurpose::Publish,
        })
        .collect();
    // Admin and app ports are reachable from the host too (readiness, the stats scraper), on a
    // free port, unless the scenario already publishes them.
    for (port, purpose) in internal_ports {
        if port != 0 && !ports.iter().any(|p| p.container_port == port) {
            ports.push(PortSpec {
                container_port: port,
                host_port: None,
                purpose,
            });
        }
    }
    Ok(Pod {
        service: service.name.clone(),
        replica,
        containers,
        ports,
        wave: 0,
    })
}

fn app_container(app: &App) -> Container {
    let program = match &app.source {
        AppSource::Sample(kind) => {
            let mut args = Vec::new();
            if let Some(port) = app.port {
                args.extend(["--listen".to_string(), format!("0.0.0.0:{port}")]);
            }
            args.extend(app.args.iter().cloned());
            Program::Sample {
                kind: kind.as_str().to_string(),
                args,
            }
        }
        AppSource::Image { image, command } => Program::Image {
            image: image.clone(),
            command: command.clone(),
        },
    };
    Container {
        role: Role::App,
        program,
        env: app.env.clone(),
        files: Vec::new(),
    }
}

fn proxy_container(
    service: &Service,
    replica: u32,
    proxy: &Proxy,
    role: Role,
) -> std::io::Result<Container> {
    let contents = std::fs::read(&proxy.config)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", proxy.config.display())))?;
    let file_name = proxy
        .config
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "envoy.yaml".into());
    let mut args = Vec::new();
    for (flag, value) in default_proxy_flags(service, replica) {
        if !proxy
            .args
            .iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
        {
            args.extend([flag.to_string(), value]);
        }
    }
    args.extend(proxy.args.iter().cloned());
    Ok(Container {
        role,
        program: Program::Proxy {
            config: ConfigFile {
                source: proxy.config.clone(),
                container_path: format!("/etc/meshsim/{file_name}"),
                contents,
            },
            args,
        },
        env: Vec::new(),
        files: Vec::new(),
    })
}

/// A fresh run id: 8 hex digits, short enough for container names, random enough for one
/// laptop's runs.
pub fn new_run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn pods_start_after_the_services_they_resolve() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/front-proxy.yaml");
        let loaded = crate::scenario::load(&path).unwrap();
        let plan = plan(&loaded.scenario, &loaded.configs, "t".into(), false).unwrap();
        let waves: Vec<(String, u32)> = plan.pods.iter().map(|p| (p.name(), p.wave)).collect();
        // service2 resolves nobody else; service1's sidecar resolves service2; the front proxy
        // resolves both.
        assert_eq!(
            waves,
            [
                ("service2#1", 0),
                ("service1#1", 1),
                ("service1#2", 1),
                ("front-envoy#1", 2)
            ]
            .map(|(n, w)| (n.to_string(), w))
        );
    }

    #[test]
    fn another_replica_is_built_like_the_planned_ones() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/front-proxy.yaml");
        let loaded = crate::scenario::load(&path).unwrap();
        let mut plan = plan(&loaded.scenario, &loaded.configs, "t".into(), false).unwrap();
        // As `--ephemeral-ports` leaves it.
        for port in plan.pods.iter_mut().flat_map(|p| p.ports.iter_mut()) {
            port.host_port = None;
        }
        let third = replica(&loaded.scenario, &loaded.configs, &plan, "service1", 3)
            .unwrap()
            .unwrap();
        assert_eq!((third.name(), third.wave), ("service1#3".to_string(), 1));
        let Program::Proxy { args, .. } = &third.containers[1].program else {
            panic!("service1's second container is its sidecar");
        };
        assert!(args
            .windows(2)
            .any(|w| w == ["--service-node", "service1#3"]));
        let front = replica(&loaded.scenario, &loaded.configs, &plan, "front-envoy", 2)
            .unwrap()
            .unwrap();
        assert!(front.ports.iter().all(|p| p.host_port.is_none()));
        assert!(replica(&loaded.scenario, &loaded.configs, &plan, "nope", 1)
            .unwrap()
            .is_none());
    }
}

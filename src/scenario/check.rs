//! Cross-checks that need more than one file: every proxy config exists and loads, clusters
//! name services of this scenario, ports inside a pod do not collide, published ports are
//! served by something.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::config::diagnostics::{did_you_mean, Diagnostic, Report};
use crate::config::model::{Bootstrap, DiscoveryType};
use crate::config::{self, LoadError};

use super::model::*;

/// The proxy configs of a scenario, loaded once each (several services may share one file).
pub type Configs = BTreeMap<PathBuf, Bootstrap>;

/// Loads every proxy config and runs the cross-checks; problems go to `diags` (against the
/// scenario file) and, for a config with its own errors, its report to `config_reports`.
pub fn check(
    scenario: &Scenario,
    diags: &mut Vec<Diagnostic>,
    config_reports: &mut Vec<Report>,
) -> Configs {
    let mut configs = Configs::new();
    let mut failed: Vec<PathBuf> = Vec::new();
    for service in &scenario.services {
        let Some(proxy) = service.proxy() else {
            continue;
        };
        if configs.contains_key(&proxy.config) || failed.contains(&proxy.config) {
            continue;
        }
        match config::load_file(&proxy.config) {
            Ok(loaded) => {
                if loaded.report.warnings().next().is_some() {
                    config_reports.push(loaded.report);
                }
                configs.insert(proxy.config.clone(), loaded.bootstrap);
            }
            Err(LoadError::Io { source, .. }) => {
                failed.push(proxy.config.clone());
                diags.push(missing_config(proxy, &source));
            }
            Err(LoadError::Invalid(report)) => {
                failed.push(proxy.config.clone());
                let errors = report.errors().count();
                diags.push(
                    Diagnostic::error(
                        &proxy.config_path,
                        proxy.config_span,
                        format!(
                            "`{}` is not a valid Envoy config ({errors} error{}, shown below)",
                            proxy.config_written,
                            if errors == 1 { "" } else { "s" }
                        ),
                    )
                    .with_help(format!(
                        "check it alone with `meshsim validate {}`",
                        proxy.config.display()
                    )),
                );
                config_reports.push(report);
            }
        }
    }
    for service in &scenario.services {
        check_clusters(scenario, service, &configs, diags);
        check_pod_ports(service, &configs, diags);
    }
    check_host_ports(scenario, diags);
    check_size(scenario, diags);
    super::check_test::check(scenario, &configs, diags);
    configs
}

/// A local run gives each pod one address of a /24; Docker has no such limit, but a scenario
/// should run on both.
fn check_size(scenario: &Scenario, diags: &mut Vec<Diagnostic>) {
    let pods: u32 = scenario.services.iter().map(|s| s.replicas).sum();
    if pods as usize > crate::runtime::local::MAX_PODS {
        let biggest = scenario
            .services
            .iter()
            .max_by_key(|s| s.replicas)
            .expect("services");
        diags.push(
            Diagnostic::error(
                format!("services.{}.replicas", biggest.name),
                biggest.span,
                format!(
                    "the scenario has {pods} pods; at most {} fit in one run",
                    crate::runtime::local::MAX_PODS
                ),
            )
            .with_help(format!(
                "lower `replicas` (service `{}` has {})",
                biggest.name, biggest.replicas
            )),
        );
    }
}

fn missing_config(proxy: &Proxy, source: &std::io::Error) -> Diagnostic {
    let dir = proxy.config.parent().unwrap_or(Path::new("."));
    let written_dir = Path::new(&proxy.config_written)
        .parent()
        .unwrap_or(Path::new(""));
    let wanted = proxy
        .config
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let siblings: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    let candidates: Vec<&str> = siblings.iter().map(String::as_str).collect();
    let help = match did_you_mean(wanted, &candidates) {
        Some(name) => format!("did you mean `{}`?", written_dir.join(name).display()),
        None => "paths are relative to the scenario file's directory".to_string(),
    };
    Diagnostic::error(
        &proxy.config_path,
        proxy.config_span,
        format!(
            "config file `{}` cannot be read ({}): {}",
            proxy.config_written,
            proxy.config.display(),
            source
        ),
    )
    .with_help(help)
}

/// DNS clusters must name services of this scenario: a run is offline, and a typo in a host
/// name would otherwise show up as an unhealthy cluster minutes later.
fn check_clusters(
    scenario: &Scenario,
    service: &Service,
    configs: &Configs,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(proxy) = service.proxy() else { return };
    let Some(bootstrap) = configs.get(&proxy.config) else {
        return;
    };
    let names: Vec<&str> = scenario.services.iter().map(|s| s.name.as_str()).collect();
    for cluster in &bootstrap.clusters {
        if cluster.discovery == DiscoveryType::Static {
            continue;
        }
        for endpoint in &cluster.endpoints {
            let host = endpoint.address.address.trim_end_matches('.');
            if host.parse::<IpAddr>().is_ok() || host == "localhost" {
                continue;
            }
            match scenario.service(host) {
                Some(target) => {
                    let port = endpoint.address.port;
                    if let Some(served) = unserved(&pod_ports(target, configs), port) {
                        diags.push(
                            Diagnostic::warning(
                                &proxy.config_path,
                                proxy.config_span,
                                format!(
                                    "cluster `{}` in `{}` dials {host}:{port}, but nothing in service `{host}` listens on {port}",
                                    cluster.name, proxy.config_written
                                ),
                            )
                            .with_help(format!("`{host}` listens on {served}")),
                        );
                    }
                }
                None => {
                    let help = match did_you_mean(host, &names) {
                        Some(n) => format!("did you mean `{n}`? A service's name is its DNS name"),
                        None => format!(
                            "a run is offline: only this scenario's services resolve ({})",
                            names.join(", ")
                        ),
                    };
                    diags.push(
                        Diagnostic::error(
                            &proxy.config_path,
                            proxy.config_span,
                            format!(
                                "cluster `{}` in `{}` resolves `{host}`, which names no service of this scenario",
                                cluster.name, proxy.config_written
                            ),
                        )
                        .with_help(help),
                    );
                }
            }
        }
    }
}

/// The ports something in one replica of `service` listens on, with what listens there.
pub fn pod_ports(service: &Service, configs: &Configs) -> Vec<(u16, String)> {
    let mut ports = Vec::new();
    if let ServiceBody::App { app, .. } = &service.body {
        if let Some(port) = app_port(app) {
            ports.push((port, "the app".to_string()));
        }
    }
    if let Some(bootstrap) = service.proxy().and_then(|p| configs.get(&p.config)) {
        for listener in &bootstrap.listeners {
            ports.push((listener.address.port, format!("listener {}", listener.name)));
        }
        if let Some(admin) = &bootstrap.admin {
            ports.push((admin.address.port, "the proxy's admin".to_string()));
        }
    }
    ports
}

/// When `port` is not among the known `ports` of a pod: what does listen there, for the help
/// text. None when it is served, or when nothing is known (an image without `port:`).
fn unserved(ports: &[(u16, String)], port: u16) -> Option<String> {
    if ports.is_empty() || ports.iter().any(|(p, _)| *p == port) {
        return None;
    }
    let served: Vec<String> = ports
        .iter()
        .map(|(p, what)| format!("{p} ({what})"))
        .collect();
    Some(served.join(", "))
}

/// The app's port: written, or the sample's default; unknown for an image without `port:`.
pub fn app_port(app: &App) -> Option<u16> {
    match app.source {
        AppSource::Sample(kind) => Some(app.port.unwrap_or_else(|| kind.default_port())),
        AppSource::Image { .. } => app.port,
    }
}

fn check_pod_ports(service: &Service, configs: &Configs, diags: &mut Vec<Diagnostic>) {
    let ports = pod_ports(service, configs);
    for (i, (port, what)) in ports.iter().enumerate() {
        if let Some((_, first)) = ports[..i].iter().find(|(p, _)| p == port) {
            let (path, span) = match service.proxy() {
                Some(p) => (p.config_path.clone(), p.config_span),
                None => (service.name.clone(), service.span),
            };
            diags.push(
                Diagnostic::error(
                    path,
                    span,
                    format!(
                        "in service `{}`, {what} and {first} both use port {port}",
                        service.name
                    ),
                )
                .with_help(
                    "a sidecar shares its app's network namespace: give them different ports",
                ),
            );
        }
    }
    for publish in &service.publish {
        if let Some(served) = unserved(&ports, publish.container_port) {
            // With every port of the pod known, the mesh could never be ready: an error.
            // An image app without `port:` may listen there: only a warning.
            let all_known = match &service.body {
                ServiceBody::App { app, .. } => app_port(app).is_some(),
                ServiceBody::Proxy(_) => true,
            };
            let make = if all_known {
                Diagnostic::error
            } else {
                Diagnostic::warning
            };
            diags.push(
                make(
                    format!("services.{}.publish", service.name),
                    publish.span,
                    format!(
                        "service `{}` publishes port {}, but nothing in it listens there",
                        service.name, publish.container_port
                    ),
                )
                .with_help(format!("it listens on {served}")),
            );
        }
    }
}

fn check_host_ports(scenario: &Scenario, diags: &mut Vec<Diagnostic>) {
    let mut taken: Vec<(u16, &str)> = Vec::new();
    for service in &scenario.services {
        for publish in &service.publish {
            let Some(host_port) = publish.host_port else {
                continue;
            };
            let path = format!("services.{}.publish", service.name);
            if service.replicas > 1 {
                diags.push(
                    Diagnostic::error(
                        &path,
                        publish.span,
                        format!(
                            "service `{}` has {} replicas, but host port {host_port} can be published by one only",
                            service.name, service.replicas
                        ),
                    )
                    .with_help(format!("publish `0:{}` to give each replica a free host port (see `meshsim ps`)", publish.container_port)),
                );
            }
            if let Some((_, owner)) = taken.iter().find(|(p, _)| *p == host_port) {
                diags.push(
                    Diagnostic::error(
                        &path,
                        publish.span,
                        format!("host port {host_port} is already published by service `{owner}`"),
                    )
                    .with_help("choose another host port: `HOST_PORT:PORT`"),
                );
            } else {
                taken.push((host_port, &service.name));
            }
        }
    }
}

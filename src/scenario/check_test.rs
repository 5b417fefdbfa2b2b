//! Cross-checks of what `meshsim test` runs: the traffic's target is a port something serves,
//! fault steps name services, pods and phases of this scenario (and a proxy fault has a fault
//! filter to drive), expectations name phases, routes and services that exist.

use crate::config::diagnostics::{did_you_mean, Diagnostic};
use crate::config::model::{Bootstrap, HttpFilterKind, NetworkFilter};
use crate::traffic::faults::{FaultAction, Target, When};

use super::check::{pod_ports, Configs};
use super::model::*;

pub fn check(scenario: &Scenario, configs: &Configs, diags: &mut Vec<Diagnostic>) {
    if let Some(traffic) = &scenario.traffic {
        check_target(scenario, configs, traffic, diags);
    }
    let phases: Vec<&str> = scenario
        .traffic
        .as_ref()
        .map(|t| t.plan.phases.iter().map(|p| p.name.as_str()).collect())
        .unwrap_or_default();
    if !scenario.faults.is_empty() && scenario.traffic.is_none() {
        diags.push(
            Diagnostic::error("faults", scenario.faults[0].span, "fault steps are timed from the start of traffic, and this scenario has no `traffic:`")
                .with_help("add `traffic:` (target and phases); see the README's `meshsim test` section"),
        );
    }
    for step in &scenario.faults {
        check_step(scenario, configs, &phases, step, diags);
    }
    let mut routes: Vec<&str> = scenario
        .traffic
        .as_ref()
        .map(|t| {
            t.plan
                .phases
                .iter()
                .flat_map(|p| p.requests.iter().map(|r| r.name.as_str()))
                .collect()
        })
        .unwrap_or_default();
    routes.sort_unstable();
    routes.dedup();
    let services: Vec<&str> = scenario.services.iter().map(|s| s.name.as_str()).collect();
    for (span, message, help) in
        crate::verdict::decode::check_references(&scenario.expect, &phases, &routes, &services)
    {
        diags.push(Diagnostic::error("expect", span, message).with_help(help));
    }
}

fn check_target(
    scenario: &Scenario,
    configs: &Configs,
    traffic: &crate::traffic::decode::Traffic,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(service) = known_service(
        scenario,
        &traffic.target_service,
        traffic.target_span,
        "traffic.target",
        diags,
    ) else {
        return;
    };
    let ports = pod_ports(service, configs);
    if !ports.iter().any(|(p, _)| *p == traffic.target_port) {
        let served = ports
            .iter()
            .map(|(p, what)| format!("{p} ({what})"))
            .collect::<Vec<_>>()
            .join(", ");
        diags.push(
            Diagnostic::error(
                "traffic.target",
                traffic.target_span,
                format!(
                    "nothing in `{}` listens on port {}",
                    service.name, traffic.target_port
                ),
            )
            .with_help(if served.is_empty() {
                format!("give `{}` a port to send to", service.name)
            } else {
                format!(
                    "its pod serves {served}: write `{}:PORT` with one of them",
                    service.name
                )
            }),
        );
    }
}

fn known_service<'s>(
    scenario: &'s Scenario,
    name: &str,
    span: crate::config::node::Span,
    path: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<&'s Service> {
    let found = scenario.service(name);
    if found.is_none() {
        let names: Vec<&str> = scenario.services.iter().map(|s| s.name.as_str()).collect();
        let help = match did_you_mean(name, &names) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!("the services are: {}", names.join(", ")),
        };
        diags.push(
            Diagnostic::error(path, span, format!("no service `{name}` in this scenario"))
                .with_help(help),
        );
    }
    found
}

fn check_step(
    scenario: &Scenario,
    configs: &Configs,
    phases: &[&str],
    step: &crate::traffic::faults::FaultStep,
    diags: &mut Vec<Diagnostic>,
) {
    if let When::Phase { name, .. } = &step.at {
        if !phases.contains(&name.as_str()) && !phases.is_empty() {
            let help = match did_you_mean(name, phases) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("the phases are: {}", phases.join(", ")),
            };
            diags.push(
                Diagnostic::error(
                    "faults.at",
                    step.at_span,
                    format!("no phase `{name}` in `traffic.phases`"),
                )
                .with_help(help),
            );
        }
    }
    let Some(service) = known_service(scenario, step.action.service(), step.span, "faults", diags)
    else {
        return;
    };
    // Replicas a step may name: the scenario's, or as many as a scale step makes.
    let most = scenario
        .faults
        .iter()
        .filter_map(|s| match &s.action {
            FaultAction::Scale {
                service: n,
                replicas,
            } if *n == service.name => Some(*replicas),
            _ => None,
        })
        .max()
        .unwrap_or(0)
        .max(service.replicas);
    let target = step.action.target();
    if let Some(Target {
        replica: Some(r), ..
    }) = target
    {
        if *r > most {
            diags.push(
                Diagnostic::error(
                    "faults",
                    step.span,
                    format!(
                        "`{}` has {most} replica{}: there is no `{}#{r}`",
                        service.name,
                        if most == 1 { "" } else { "s" },
                        service.name
                    ),
                )
                .with_help(format!(
                    "name `{}#1`…`{}#{most}`, or scale it up first",
                    service.name, service.name
                )),
            );
        }
    }
    match &step.action {
        FaultAction::Proxy { .. } => {
            let Some(proxy) = service.proxy() else {
                diags.push(no_proxy(service, step));
                return;
            };
            if let Some(bootstrap) = configs.get(&proxy.config) {
                if !has_fault_filter(bootstrap) {
                    diags.push(
                        Diagnostic::error(
                            "faults",
                            step.span,
                            format!("a proxy fault drives the fault filter, and `{}` has none", proxy.config_written),
                        )
                        .with_help("add it before the router in the listener's http_filters: `- name: envoy.filters.http.fault` with `typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault, abort: {percentage: {numerator: 0}, http_status: 503}, delay: {percentage: {numerator: 0}, fixed_delay: 0.1s}}` (0 %: off until the step sets it)"),
                    );
                }
            }
        }
        FaultAction::Reload {
            config, written, ..
        } => {
            if service.proxy().is_none() {
                diags.push(no_proxy(service, step));
                return;
            }
            if let Err(e) = crate::config::load_file(config) {
                diags.push(
                    Diagnostic::error(
                        "faults.config",
                        step.span,
                        format!(
                            "`{written}` is not a config the proxy could reload: {}",
                            first_line(&e.to_string())
                        ),
                    )
                    .with_help(format!(
                        "check it with `meshsim validate {}`",
                        config.display()
                    )),
                );
            }
        }
        FaultAction::App { .. } => {
            let http_sample = matches!(
                &service.body,
                ServiceBody::App { app, .. } if app.source == AppSource::Sample(SampleKind::Http)
            );
            if !http_sample {
                diags.push(
                    Diagnostic::error("faults", step.span, format!("an app fault needs `sample: http`; `{}` runs something else", service.name))
                        .with_help("only the http sample has a fault control (`/meshsim/fault`); use a proxy fault instead"),
                );
            }
        }
        _ => {}
    }
}

fn no_proxy(service: &Service, step: &crate::traffic::faults::FaultStep) -> Diagnostic {
    Diagnostic::error(
        "faults",
        step.span,
        format!("`{}` has no proxy", service.name),
    )
    .with_help("name a service with `proxy:` or `sidecar:`")
}

fn has_fault_filter(bootstrap: &Bootstrap) -> bool {
    bootstrap.listeners.iter().any(|l| {
        l.filter_chains.iter().any(|c| {
            c.filters.iter().any(|f| match f {
                NetworkFilter::HttpConnectionManager(hcm) => hcm
                    .http_filters
                    .iter()
                    .any(|h| matches!(h.kind, HttpFilterKind::Fault(_))),
            })
        })
    })
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

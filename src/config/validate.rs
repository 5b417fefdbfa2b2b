//! Semantic checks that span several objects: cluster references, unique names, listen
//! addresses. Checks local to one object (regexes, ports, endpoint rules, domains, router
//! position, durations, enum values, data sources) happen while decoding, where the span is at
//! hand; this pass works on the positions the decoder recorded in [`Facts`].

use std::collections::HashMap;

use super::decode::{Decoder, Facts, Site};
use super::diagnostics::{did_you_mean, Diagnostic};

pub fn validate(d: &mut Decoder) {
    let facts = std::mem::take(&mut d.facts);
    for diag in check(&facts) {
        d.push(diag);
    }
    d.facts = facts;
}

fn check(facts: &Facts) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    unique_names(&facts.clusters, "cluster", &mut out);
    let listener_names: Vec<Site> = facts
        .listeners
        .iter()
        .filter_map(|l| l.name.clone())
        .collect();
    unique_names(&listener_names, "listener", &mut out);
    cluster_references(facts, &mut out);
    listen_addresses(facts, &mut out);
    out
}

fn unique_names(sites: &[Site], kind: &str, out: &mut Vec<Diagnostic>) {
    let mut first: HashMap<&str, &Site> = HashMap::new();
    for site in sites {
        match first.get(site.name.as_str()) {
            Some(prev) => out.push(
                Diagnostic::error(
                    site.path.clone(),
                    site.span,
                    format!("duplicate {kind} name `{}`", site.name),
                )
                .with_help(format!(
                    "the first {kind} named `{}` is at line {}; {kind} names must be unique",
                    site.name, prev.span.line
                )),
            ),
            None => {
                first.insert(&site.name, site);
            }
        }
    }
}

fn cluster_references(facts: &Facts, out: &mut Vec<Diagnostic>) {
    let names: Vec<&str> = facts.clusters.iter().map(|c| c.name.as_str()).collect();
    for r in &facts.cluster_refs {
        if names.contains(&r.name.as_str()) {
            continue;
        }
        let help = match did_you_mean(&r.name, &names) {
            Some(s) => format!("did you mean `{s}`?"),
            None if names.is_empty() => "no clusters are defined".to_string(),
            None => format!("defined clusters: {}", names.join(", ")),
        };
        out.push(
            Diagnostic::error(
                r.path.clone(),
                r.span,
                format!("route refers to undefined cluster `{}`", r.name),
            )
            .with_help(help),
        );
    }
}

fn listen_addresses(facts: &Facts, out: &mut Vec<Diagnostic>) {
    let describe = |i: usize| match &facts.listeners[i].name {
        Some(n) => format!("listener `{}`", n.name),
        None => format!(
            "the listener at line {}",
            facts.listeners[i].address_span.line
        ),
    };
    // Port 0 binds a fresh ephemeral port each time, so two of them never clash.
    for (i, l) in facts
        .listeners
        .iter()
        .enumerate()
        .filter(|(_, l)| l.address.port != 0)
    {
        if let Some(j) = facts.listeners[..i]
            .iter()
            .position(|p| p.address == l.address)
        {
            out.push(
                Diagnostic::error(
                    l.path.clone(),
                    l.address_span,
                    format!(
                        "listener address {} is already used by {}",
                        l.address,
                        describe(j)
                    ),
                )
                .with_help(format!(
                    "two listeners cannot bind the same address (line {}); change the port or merge the filter chains",
                    facts.listeners[j].address_span.line
                )),
            );
        }
    }
    if let Some((admin, span)) = facts.admin_address.as_ref().filter(|(a, _)| a.port != 0) {
        if let Some(j) = facts.listeners.iter().position(|l| &l.address == admin) {
            out.push(
                Diagnostic::error(
                    "admin.address",
                    *span,
                    format!("admin address {admin} is also used by {}", describe(j)),
                )
                .with_help("give the admin interface its own port"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode::{bootstrap::bootstrap, Field, Mode};
    use super::super::node::parse;
    use super::*;
    use std::path::PathBuf;

    fn errors(yaml: &str) -> Vec<(String, usize)> {
        let doc = parse(yaml).unwrap();
        let mut d = Decoder::new(PathBuf::from("."), Mode::Bootstrap);
        bootstrap(&mut d, &Field::root(&doc));
        validate(&mut d);
        d.finish()
            .into_iter()
            .filter(|d| d.is_error())
            .map(|d| (d.message, d.span.line))
            .collect()
    }

    const HCM: &str = "{name: envoy.filters.network.http_connection_manager, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager, stat_prefix: s, route_config: {virtual_hosts: [{name: v, domains: [\"*\"], routes: [{match: {prefix: /}, route: {weighted_clusters: {clusters: [{name: a, weight: 1}, {name: b, weight: 1}]}}}]}]}, http_filters: [{name: envoy.filters.http.router}]}}";

    #[test]
    fn names_addresses_and_references() {
        let yaml = format!(
            "admin: {{address: {{socket_address: {{address: 0.0.0.0, port_value: 9000}}}}}}\nstatic_resources:\n  listeners:\n  - {{name: l, address: {{socket_address: {{address: 0.0.0.0, port_value: 9000}}}}, filter_chains: [{{filters: [{HCM}]}}]}}\n  - {{name: l, address: {{socket_address: {{address: 0.0.0.0, port_value: 9001}}}}, filter_chains: [{{filters: [{HCM}]}}]}}\n  clusters:\n  - {{name: a}}\n  - {{name: a}}\n"
        );
        assert_eq!(
            errors(&yaml),
            [
                (
                    "admin address 0.0.0.0:9000 is also used by listener `l`".to_string(),
                    1
                ),
                ("route refers to undefined cluster `b`".to_string(), 4),
                ("duplicate listener name `l`".to_string(), 5),
                ("route refers to undefined cluster `b`".to_string(), 5),
                ("duplicate cluster name `a`".to_string(), 8),
            ]
        );
    }

    #[test]
    fn unnamed_listeners_are_described_by_line() {
        let yaml = format!(
            "static_resources:\n  listeners:\n  - {{address: {{socket_address: {{address: 0.0.0.0, port_value: 80}}}}, filter_chains: [{{filters: [{HCM}]}}]}}\n  - {{address: {{socket_address: {{address: 0.0.0.0, port_value: 80}}}}, filter_chains: [{{filters: [{HCM}]}}]}}\n  clusters: [{{name: a}}, {{name: b}}]\n"
        );
        assert_eq!(
            errors(&yaml),
            [(
                "listener address 0.0.0.0:80 is already used by the listener at line 3".to_string(),
                4
            )]
        );
    }
}

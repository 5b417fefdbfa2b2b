//! An xDS bundle: a DiscoveryResponse-shaped file (`version_info`, `resources: [...]`) holding
//! the Listener, RouteConfiguration and Cluster resources a control plane would have served
//! (seed 002's slide). meshsim runs no management server, so it loads the resources as if they
//! had arrived over ADS: `rds` in a listener is resolved against the RouteConfiguration of the
//! same name in the file.
//!
//! Top-level keys starting with `x-` are skipped, as in Docker Compose, so a bundle can hold
//! YAML anchors (`x-cluster: &cluster {...}` for `<<: *cluster`).

use std::collections::HashMap;

use super::decode::bootstrap::{runtime, DEFAULT_STATS_FLUSH_INTERVAL};
use super::decode::cluster::cluster;
use super::decode::extensions::{bare_type_url, deprecated_type_url};
use super::decode::listener::listener;
use super::decode::route::{route_configuration, Routes};
use super::decode::{scalars, Decoder, Field, Message};
use super::diagnostics::{did_you_mean, Diagnostic};
use super::model::{Bootstrap, NetworkFilter, NodeInfo};

const DISCOVERY_RESPONSE: Message = Message {
    name: "DiscoveryResponse",
    fields: &["version_info", "resources", "type_url", "nonce", "canary"],
    ignored: &["control_plane"],
};

/// (v3 type, v2 type) of each resource kind a bundle may hold.
const LISTENER: (&str, &str) = ("envoy.config.listener.v3.Listener", "envoy.api.v2.Listener");
const ROUTE_CONFIGURATION: (&str, &str) = (
    "envoy.config.route.v3.RouteConfiguration",
    "envoy.api.v2.RouteConfiguration",
);
const CLUSTER: (&str, &str) = ("envoy.config.cluster.v3.Cluster", "envoy.api.v2.Cluster");

/// True when the document is a bundle rather than a bootstrap.
pub fn is_bundle(root: &super::node::Node) -> bool {
    root.get("resources").is_some_and(|r| r.as_seq().is_some())
        && root.get("static_resources").is_none()
}

pub fn bundle(d: &mut Decoder, root: &Field) -> Option<Bootstrap> {
    let Some(entries) = root.node.as_map() else {
        d.error_at_value(root, "an xDS bundle must be a mapping", None);
        return None;
    };
    let mut resources = None;
    for (key, value) in entries {
        let f = root.child(key, value);
        match key.name.as_str() {
            "resources" => resources = Some(f),
            "version_info" | "type_url" | "nonce" => {
                scalars::string(d, &f);
            }
            "canary" => {
                scalars::bool(d, &f);
            }
            "control_plane" => d.ignored(DISCOVERY_RESPONSE.name, &f, None),
            "service_name" => d.push(
                Diagnostic::warning(
                    f.path.clone(),
                    f.span,
                    "`service_name` is not a DiscoveryResponse field; ignored",
                )
                .with_help("meshsim takes the node's service cluster from `--service-cluster`"),
            ),
            name if name.starts_with("x-") => {}
            name => {
                let candidates: Vec<&str> = DISCOVERY_RESPONSE.fields.to_vec();
                let mut diag = Diagnostic::error(
                    f.path.clone(),
                    f.span,
                    format!("unknown field `{name}` in DiscoveryResponse"),
                );
                diag.help = Some(match did_you_mean(name, &candidates) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "a bundle holds `version_info` and `resources` (keys starting with `x-` may hold YAML anchors)".into(),
                });
                d.push(diag);
            }
        }
    }
    let resources = resources?;
    let mut listeners = Vec::new();
    let mut clusters = Vec::new();
    let mut routes: Vec<(Routes, Field)> = Vec::new();
    for (i, item) in d.seq(&resources).iter().enumerate() {
        let Some(url_node) = item.node.get("@type") else {
            d.error_help(
                item,
                "resource has no `@type`",
                "each resource names its type, e.g. `\"@type\": type.googleapis.com/envoy.config.cluster.v3.Cluster`",
            );
            continue;
        };
        let url_field = Field {
            node: url_node,
            span: url_node.span,
            path: format!("{}.@type", item.path),
        };
        let url = bare_type_url(url_node.as_scalar().unwrap_or_default()).to_string();
        let kind = [LISTENER, ROUTE_CONFIGURATION, CLUSTER]
            .into_iter()
            .find(|(v3, v2)| url == *v3 || url == *v2);
        let Some((v3, v2)) = kind else {
            d.error_at_value(
                &url_field,
                format!("resource type `{url}` is not supported in an xDS bundle"),
                Some("a bundle may hold Listener, RouteConfiguration and Cluster resources; put endpoints in each Cluster's `load_assignment`".into()),
            );
            continue;
        };
        if url == v2 {
            deprecated_type_url(d, &url_field, v2, v3);
        }
        match v3 {
            v if v == LISTENER.0 => {
                if let Some(l) = listener(d, item, i, true) {
                    listeners.push(l);
                }
            }
            v if v == CLUSTER.0 => {
                if let Some(c) = cluster(d, item, true) {
                    clusters.push(c);
                }
            }
            _ => {
                if let Some(r) = route_configuration(d, item, true) {
                    routes.push((r, item.clone()));
                }
            }
        }
    }
    resolve_rds(d, &mut listeners, &routes);
    Some(Bootstrap {
        node: NodeInfo::default(),
        admin: None,
        listeners,
        clusters,
        stats_flush_interval: DEFAULT_STATS_FLUSH_INTERVAL,
        runtime_layers: runtime(d, None, None),
    })
}

/// Fills each `rds` HCM with the bundle's RouteConfiguration of that name.
fn resolve_rds(
    d: &mut Decoder,
    listeners: &mut [super::model::Listener],
    routes: &[(Routes, Field)],
) {
    let mut by_name: HashMap<&str, &Routes> = HashMap::new();
    for (r, f) in routes {
        if by_name.insert(&r.config.name, r).is_some() {
            d.error(
                f,
                format!("duplicate RouteConfiguration `{}`", r.config.name),
            );
        }
    }
    let names: Vec<&str> = by_name.keys().copied().collect();
    for site in std::mem::take(&mut d.facts.rds_refs) {
        if by_name.contains_key(site.name.as_str()) {
            continue;
        }
        let help = match did_you_mean(&site.name, &names) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!(
                "add a resource with `\"@type\": type.googleapis.com/envoy.config.route.v3.RouteConfiguration` and `name: {}`",
                site.name
            ),
        };
        d.push(
            Diagnostic::error(
                site.path,
                site.span,
                format!(
                    "RDS route configuration `{}` is not in this bundle",
                    site.name
                ),
            )
            .with_help(help),
        );
    }
    let mut used: Vec<&str> = Vec::new();
    for l in listeners.iter_mut() {
        for chain in &mut l.filter_chains {
            for NetworkFilter::HttpConnectionManager(h) in &mut chain.filters {
                let Some(name) = h.rds_route_config_name.clone() else {
                    continue;
                };
                if let Some(r) = by_name.get(name.as_str()) {
                    h.route_config = r.config.clone();
                    if r.websocket && !h.upgrade_types.iter().any(|t| t == "websocket") {
                        h.upgrade_types.push("websocket".into());
                    }
                    used.push(&r.config.name);
                }
            }
        }
    }
    for (r, f) in routes {
        if !used.contains(&r.config.name.as_str()) {
            d.push(Diagnostic::warning(
                f.path.clone(),
                f.span,
                format!(
                    "RouteConfiguration `{}` is not used by any listener's `rds`",
                    r.config.name
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode::Mode;
    use super::super::node::parse;
    use super::*;
    use std::path::PathBuf;

    fn run(yaml: &str) -> (Option<Bootstrap>, Vec<String>) {
        let doc = parse(yaml).unwrap();
        assert!(is_bundle(&doc));
        let mut d = Decoder::new(PathBuf::from("."), Mode::Bundle);
        let b = bundle(&mut d, &Field::root(&doc));
        (b, d.finish().into_iter().map(|d| d.message).collect())
    }

    const LISTENER: &str = "- \"@type\": type.googleapis.com/envoy.config.listener.v3.Listener\n  name: l\n  address: {socket_address: {address: 0.0.0.0, port_value: 80}}\n  filter_chains: [{filters: [{name: envoy.filters.network.http_connection_manager, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager, stat_prefix: s, rds: {route_config_name: routes, config_source: {ads: {}}}, http_filters: [{name: envoy.filters.http.router}]}}]}]\n";

    #[test]
    fn rds_must_name_a_route_configuration_in_the_bundle() {
        let (_, e) = run(&format!(
            "version_info: \"1\"\nresources:\n{LISTENER}- \"@type\": type.googleapis.com/envoy.config.route.v3.RouteConfiguration\n  name: route\n  virtual_hosts: []\n"
        ));
        assert_eq!(
            e,
            [
                "RDS route configuration `routes` is not in this bundle",
                "RouteConfiguration `route` is not used by any listener's `rds`",
            ]
        );
    }

    #[test]
    fn v3_bundle_resolves_and_rejects_other_resource_types() {
        let (b, e) = run(&format!(
            "resources:\n{LISTENER}- \"@type\": type.googleapis.com/envoy.config.route.v3.RouteConfiguration\n  name: routes\n  virtual_hosts: [{{name: v, domains: [\"*\"], routes: []}}]\n- \"@type\": type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment\n  cluster_name: c\n"
        ));
        assert_eq!(
            e,
            ["resource type `envoy.config.endpoint.v3.ClusterLoadAssignment` is not supported in an xDS bundle"]
        );
        let b = b.unwrap();
        let NetworkFilter::HttpConnectionManager(h) = &b.listeners[0].filter_chains[0].filters[0];
        assert_eq!(h.route_config.virtual_hosts[0].name, "v");
    }

    #[test]
    fn unknown_top_level_keys_are_errors_but_x_keys_hold_anchors() {
        let (_, e) = run("x-defaults: &d {type: STATIC}\nversion_inf: 1\nresources: []\n");
        assert_eq!(e, ["unknown field `version_inf` in DiscoveryResponse"]);
    }
}

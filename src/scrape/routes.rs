//! The routing table of a proxy, from its `/config_dump`: listener → HTTP connection manager →
//! virtual host → route → cluster. Envoy's own dump format, so it reads real Envoy as well.
//! Routes named by RDS are looked up in the dump's route configs.

use serde_json::Value;

use super::sample::FormatError;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteTable {
    pub listeners: Vec<ListenerRoutes>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListenerRoutes {
    pub name: String,
    /// `0.0.0.0:8080`.
    pub address: String,
    /// The HTTP connection manager's `stat_prefix` (its `http.<prefix>.` stats); `None` for a
    /// listener without one (a TCP proxy…).
    pub stat_prefix: Option<String>,
    pub virtual_hosts: Vec<VirtualHostRoutes>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VirtualHostRoutes {
    pub name: String,
    pub domains: Vec<String>,
    pub routes: Vec<RouteEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteEntry {
    /// The match as written: `prefix /service/1`, `path /healthz`, `regex ^/v[0-9]+/`…
    pub matcher: String,
    pub action: RouteAction,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RouteAction {
    Cluster(String),
    /// Weighted clusters: (name, weight).
    Weighted(Vec<(String, u64)>),
    /// The cluster comes from a request header.
    ClusterHeader(String),
    Redirect,
    Direct(u64),
}

impl RouteAction {
    /// The clusters this route can send to.
    pub fn clusters(&self) -> Vec<&str> {
        match self {
            RouteAction::Cluster(c) => vec![c.as_str()],
            RouteAction::Weighted(w) => w.iter().map(|(c, _)| c.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            RouteAction::Cluster(c) => c.clone(),
            RouteAction::Weighted(w) => w
                .iter()
                .map(|(c, n)| format!("{c} ({n})"))
                .collect::<Vec<_>>()
                .join(", "),
            RouteAction::ClusterHeader(h) => format!("cluster from header {h}"),
            RouteAction::Redirect => "redirect".into(),
            RouteAction::Direct(status) => format!("direct response {status}"),
        }
    }
}

/// Parses `/config_dump` (JSON).
pub fn parse_config_dump(text: &str) -> Result<RouteTable, FormatError> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| FormatError(format!("/config_dump: {e}")))?;
    let configs = doc["configs"]
        .as_array()
        .ok_or_else(|| FormatError("/config_dump has no `configs` list".into()))?;
    let of_type = |suffix: &str| {
        configs
            .iter()
            .find(|c| c["@type"].as_str().is_some_and(|t| t.ends_with(suffix)))
    };
    // Route configurations by name, for HCMs that name theirs through RDS.
    let mut named_routes: Vec<&Value> = Vec::new();
    if let Some(routes) = of_type("RoutesConfigDump") {
        for key in ["static_route_configs", "dynamic_route_configs"] {
            for entry in routes[key].as_array().into_iter().flatten() {
                named_routes.push(&entry["route_config"]);
            }
        }
    }
    let mut table = RouteTable::default();
    let Some(listeners) = of_type("ListenersConfigDump") else {
        return Ok(table);
    };
    let all = listeners["static_listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| &l["listener"])
        .chain(
            listeners["dynamic_listeners"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| &l["active_state"]["listener"]),
        );
    for listener in all {
        let socket = &listener["address"]["socket_address"];
        let address = format!(
            "{}:{}",
            socket["address"].as_str().unwrap_or("?"),
            socket["port_value"].as_u64().unwrap_or(0)
        );
        let name = listener["name"].as_str().unwrap_or(&address).to_string();
        let hcms = listener["filter_chains"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|chain| chain["filters"].as_array().into_iter().flatten())
            .map(|f| &f["typed_config"])
            .filter(|c| {
                c["@type"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("HttpConnectionManager"))
            });
        let mut any = false;
        for hcm in hcms {
            any = true;
            let route_config = if hcm["route_config"].is_object() {
                Some(&hcm["route_config"])
            } else {
                let wanted = hcm["rds"]["route_config_name"].as_str();
                named_routes
                    .iter()
                    .copied()
                    .find(|r| wanted.is_some() && r["name"].as_str() == wanted)
            };
            table.listeners.push(ListenerRoutes {
                name: name.clone(),
                address: address.clone(),
                stat_prefix: hcm["stat_prefix"].as_str().map(str::to_string),
                virtual_hosts: route_config.map(virtual_hosts).unwrap_or_default(),
            });
        }
        if !any {
            table.listeners.push(ListenerRoutes {
                name,
                address,
                stat_prefix: None,
                virtual_hosts: Vec::new(),
            });
        }
    }
    Ok(table)
}

fn virtual_hosts(route_config: &Value) -> Vec<VirtualHostRoutes> {
    route_config["virtual_hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|vh| VirtualHostRoutes {
            name: vh["name"].as_str().unwrap_or("").to_string(),
            domains: vh["domains"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect(),
            routes: vh["routes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| RouteEntry {
                    matcher: matcher(&r["match"]),
                    action: action(r),
                })
                .collect(),
        })
        .collect()
}

fn matcher(m: &Value) -> String {
    for key in ["prefix", "path", "path_separated_prefix"] {
        if let Some(v) = m[key].as_str() {
            return format!("{key} {v}");
        }
    }
    if let Some(v) = m["safe_regex"]["regex"].as_str().or(m["regex"].as_str()) {
        return format!("regex {v}");
    }
    if m["connect_matcher"].is_object() {
        return "CONNECT".into();
    }
    "any".into()
}

fn action(route: &Value) -> RouteAction {
    let r = &route["route"];
    if let Some(c) = r["cluster"].as_str() {
        return RouteAction::Cluster(c.to_string());
    }
    if let Some(clusters) = r["weighted_clusters"]["clusters"].as_array() {
        return RouteAction::Weighted(
            clusters
                .iter()
                .map(|c| {
                    let weight = match &c["weight"] {
                        Value::String(s) => s.parse().unwrap_or(0),
                        v => v.as_u64().unwrap_or(0),
                    };
                    (c["name"].as_str().unwrap_or("?").to_string(), weight)
                })
                .collect(),
        );
    }
    if let Some(h) = r["cluster_header"].as_str() {
        return RouteAction::ClusterHeader(h.to_string());
    }
    if route["redirect"].is_object() {
        return RouteAction::Redirect;
    }
    RouteAction::Direct(route["direct_response"]["status"].as_u64().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_rds_routes_with_their_clusters() {
        let dump = r#"{"configs":[
          {"@type":"type.googleapis.com/envoy.admin.v3.ListenersConfigDump","static_listeners":[
            {"listener":{"name":"ingress","address":{"socket_address":{"address":"0.0.0.0","port_value":8080}},
             "filter_chains":[{"filters":[{"name":"hcm","typed_config":{
               "@type":"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
               "stat_prefix":"ingress_http",
               "route_config":{"virtual_hosts":[{"name":"backend","domains":["*"],"routes":[
                 {"match":{"prefix":"/service/1"},"route":{"cluster":"service1"}},
                 {"match":{"safe_regex":{"regex":"^/w"}},"route":{"weighted_clusters":{"clusters":[
                   {"name":"a","weight":80},{"name":"b","weight":"20"}]}}},
                 {"match":{"path":"/old"},"redirect":{"path_redirect":"/new"}}]}]}}}]}]}},
            {"listener":{"name":"egress","address":{"socket_address":{"address":"127.0.0.1","port_value":9000}},
             "filter_chains":[{"filters":[{"name":"hcm","typed_config":{
               "@type":"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
               "stat_prefix":"egress","rds":{"route_config_name":"out"}}}]}]}}]},
          {"@type":"type.googleapis.com/envoy.admin.v3.RoutesConfigDump","static_route_configs":[
            {"route_config":{"name":"out","virtual_hosts":[{"name":"s2","domains":["*"],"routes":[
              {"match":{"prefix":"/"},"direct_response":{"status":503}}]}]}}]}]}"#;
        let table = parse_config_dump(dump).unwrap();
        let ingress = &table.listeners[0];
        assert_eq!(
            (ingress.address.as_str(), ingress.stat_prefix.as_deref()),
            ("0.0.0.0:8080", Some("ingress_http"))
        );
        let routes = &ingress.virtual_hosts[0].routes;
        assert_eq!(routes[0].matcher, "prefix /service/1");
        assert_eq!(routes[0].action.clusters(), ["service1"]);
        assert_eq!(routes[1].action.describe(), "a (80), b (20)");
        assert_eq!(routes[2].action, RouteAction::Redirect);
        let egress = &table.listeners[1];
        assert_eq!(
            egress.virtual_hosts[0].routes[0].action,
            RouteAction::Direct(503)
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_config_dump("nope").is_err());
        assert!(parse_config_dump("{}").is_err());
    }
}

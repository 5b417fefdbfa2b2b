//! Clusters: discovery type, load balancing, endpoints (`load_assignment` or v2 `hosts`),
//! DNS settings, upstream HTTP protocol and TLS.
//!
//! Only STATIC, STRICT_DNS and LOGICAL_DNS are simulated. EDS and v1 SDS users are pointed at
//! STRICT_DNS on the service's DNS name: meshsim's DNS answers one A record per replica, which
//! is what an EDS server would have listed.

use std::net::IpAddr;
use std::time::Duration;

use super::super::model::{Cluster, DiscoveryType, DnsLookupFamily, LbEndpoint, LbPolicy};
use super::address::{address, Host};
use super::listener::DEFAULT_BUFFER_LIMIT;
use super::protocol::{common_http_options, upstream_protocol};
use super::scalars;
use super::tls::{tls_context, transport_socket, Side, Tls};
use super::{Decoder, Field, Message, Obj, Site};

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_DNS_REFRESH_RATE: Duration = Duration::from_secs(5);

/// What to use instead of an unsupported discovery type.
pub const DISCOVERY_HELP: &str = "use `type: STRICT_DNS` with the service's DNS name in `load_assignment` (meshsim's DNS returns one A record per replica), or `type: STATIC` with IP endpoints";

pub const CLUSTER: Message = Message {
    name: "Cluster",
    fields: &[
        "circuit_breakers",
        "outlier_detection",
        "health_checks",
        "common_lb_config",
        "name",
        "alt_stat_name",
        "type",
        "cluster_type",
        "eds_cluster_config",
        "connect_timeout",
        "per_connection_buffer_limit_bytes",
        "lb_policy",
        "load_assignment",
        "hosts",
        "max_requests_per_connection",
        "http_protocol_options",
        "http2_protocol_options",
        "protocol_selection",
        "typed_extension_protocol_options",
        "common_http_protocol_options",
        "dns_refresh_rate",
        "dns_failure_refresh_rate",
        "respect_dns_ttl",
        "dns_lookup_family",
        "ring_hash_lb_config",
        "maglev_lb_config",
        "least_request_lb_config",
        "load_balancing_policy",
        "transport_socket",
        "tls_context",
    ],
    ignored: &[
        "transport_socket_matches",
        "upstream_http_protocol_options",
        "dns_resolvers",
        "use_tcp_for_dns_lookups",
        "dns_resolution_config",
        "typed_dns_resolver_config",
        "wait_for_warm_on_init",
        "cleanup_interval",
        "upstream_bind_config",
        "lb_subset_config",
        "round_robin_lb_config",
        "original_dst_lb_config",
        "metadata",
        "upstream_connection_options",
        "close_connections_on_host_health_failure",
        "ignore_health_on_host_removal",
        "filters",
        "lrs_server",
        "lrs_report_endpoint_metrics",
        "track_timeout_budgets",
        "upstream_config",
        "track_cluster_stats",
        "preconnect_policy",
        "connection_pool_per_downstream_connection",
        "dns_jitter",
        "extension_protocol_options",
    ],
};

const LOAD_ASSIGNMENT: Message = Message {
    name: "ClusterLoadAssignment",
    fields: &["cluster_name", "endpoints"],
    ignored: &["named_endpoints", "policy"],
};

const LOCALITY_LB_ENDPOINTS: Message = Message {
    name: "LocalityLbEndpoints",
    fields: &["lb_endpoints", "priority", "leds_cluster_locality_config"],
    ignored: &["locality", "metadata", "load_balancing_weight", "proximity"],
};

const LB_ENDPOINT: Message = Message {
    name: "LbEndpoint",
    fields: &["endpoint", "load_balancing_weight", "endpoint_name"],
    ignored: &["health_status", "metadata"],
};

const ENDPOINT: Message = Message {
    name: "Endpoint",
    fields: &["address", "hostname"],
    ignored: &["health_check_config", "additional_addresses"],
};

const REFRESH_RATE: Message = Message {
    name: "RefreshRate",
    fields: &["base_interval", "max_interval"],
    ignored: &[],
};

const LEAST_REQUEST_LB_CONFIG: Message = Message {
    name: "LeastRequestLbConfig",
    fields: &["choice_count", "active_request_bias"],
    ignored: &["slow_start_config"],
};

const RUNTIME_DOUBLE: Message = Message {
    name: "RuntimeDouble",
    fields: &["default_value"],
    ignored: &["runtime_key"],
};

const RING_HASH_LB_CONFIG: Message = Message {
    name: "RingHashLbConfig",
    fields: &["minimum_ring_size", "maximum_ring_size"],
    ignored: &["hash_function"],
};

const MAGLEV_LB_CONFIG: Message = Message {
    name: "MaglevLbConfig",
    fields: &["table_size"],
    ignored: &[],
};

const DISCOVERY_TYPES: [&str; 5] = ["STATIC", "STRICT_DNS", "LOGICAL_DNS", "EDS", "ORIGINAL_DST"];

const LB_POLICIES: [&str; 8] = [
    "ROUND_ROBIN",
    "LEAST_REQUEST",
    "RING_HASH",
    "RANDOM",
    "MAGLEV",
    "CLUSTER_PROVIDED",
    "LOAD_BALANCING_POLICY_CONFIG",
    "ORIGINAL_DST_LB",
];

/// An endpoint with where its host was written, for the per-type checks.
struct Placed<'n> {
    endpoint: LbEndpoint,
    at: Field<'n>,
}

pub fn cluster(d: &mut Decoder, f: &Field, any: bool) -> Option<Cluster> {
    let o = if any {
        d.obj_any(f, &CLUSTER)?
    } else {
        d.obj(f, &CLUSTER)?
    };
    let name = required_name(d, &o);
    let discovery = discovery_type(d, &o);
    let lb_policy = lb_policy(d, &o);
    let connect_timeout = match o.get("connect_timeout") {
        Some(t) => match scalars::duration(d, &t) {
            Some(v) if v.is_zero() => {
                d.error_at_value(&t, "`connect_timeout` must be greater than 0", None);
                DEFAULT_CONNECT_TIMEOUT
            }
            Some(v) => v,
            None => DEFAULT_CONNECT_TIMEOUT,
        },
        None => DEFAULT_CONNECT_TIMEOUT,
    };
    let endpoints = endpoints(d, &o, name.as_deref().unwrap_or(""));
    let dns_refresh_rate = match o.get("dns_refresh_rate") {
        Some(t) => match scalars::duration(d, &t) {
            Some(v) if v < Duration::from_millis(1) => {
                d.error_at_value(&t, "`dns_refresh_rate` must be at least 1ms", None);
                DEFAULT_DNS_REFRESH_RATE
            }
            Some(v) => v,
            None => DEFAULT_DNS_REFRESH_RATE,
        },
        None => DEFAULT_DNS_REFRESH_RATE,
    };
    let dns_failure_refresh_rate = match o.get("dns_failure_refresh_rate") {
        Some(r) => d
            .obj(&r, &REFRESH_RATE)
            .and_then(|ro| match ro.get("base_interval") {
                Some(b) => scalars::duration(d, &b),
                None => {
                    d.missing(&ro, "base_interval");
                    None
                }
            })
            .unwrap_or(dns_refresh_rate),
        None => dns_refresh_rate,
    };
    let respect_dns_ttl = o
        .get("respect_dns_ttl")
        .and_then(|v| scalars::bool(d, &v))
        .unwrap_or(false);
    let dns_lookup_family = match o.get("dns_lookup_family") {
        Some(v) => match scalars::enum_name(
            d,
            &v,
            "Cluster.DnsLookupFamily",
            &["AUTO", "V4_ONLY", "V6_ONLY", "V4_PREFERRED", "ALL"],
        ) {
            Some("V4_ONLY") => DnsLookupFamily::V4Only,
            Some("V6_ONLY") => DnsLookupFamily::V6Only,
            Some("V4_PREFERRED") => DnsLookupFamily::V4Preferred,
            Some("ALL") => DnsLookupFamily::All,
            _ => DnsLookupFamily::Auto,
        },
        None => DnsLookupFamily::Auto,
    };
    let (upstream_protocol, mut common) = upstream_protocol(d, &o);
    if let Some(c) = o.get("common_http_protocol_options") {
        d.deprecated(
            "Cluster.common_http_protocol_options",
            &c,
            "deprecated field `common_http_protocol_options` in Cluster; loaded as HttpProtocolOptions `common_http_protocol_options`".into(),
            "move it into `typed_extension_protocol_options` (envoy.extensions.upstreams.http.v3.HttpProtocolOptions)".into(),
        );
        // The typed options win where both set a field.
        let legacy = common_http_options(d, &c);
        common.max_requests_per_connection = common
            .max_requests_per_connection
            .or(legacy.max_requests_per_connection);
        common.idle_timeout = common.idle_timeout.or(legacy.idle_timeout);
    }
    let idle_timeout = common.idle_timeout_in_force();
    let mut max_requests_per_connection = common.max_requests_per_connection;
    if let Some(m) = o.get("max_requests_per_connection") {
        d.deprecated(
            "Cluster.max_requests_per_connection",
            &m,
            "deprecated field `max_requests_per_connection` in Cluster; loaded as HttpProtocolOptions `common_http_protocol_options.max_requests_per_connection`".into(),
            "move it into `typed_extension_protocol_options` (envoy.extensions.upstreams.http.v3.HttpProtocolOptions)".into(),
        );
        max_requests_per_connection = scalars::u32(d, &m).or(max_requests_per_connection);
    }
    let per_connection_buffer_limit_bytes = o
        .get("per_connection_buffer_limit_bytes")
        .and_then(|v| scalars::u32(d, &v))
        .unwrap_or(DEFAULT_BUFFER_LIMIT);
    let alt_stat_name = o
        .get("alt_stat_name")
        .and_then(|v| scalars::string(d, &v))
        .filter(|s| !s.is_empty());
    let tls = upstream_tls(d, &o);
    let circuit_breakers = o
        .get("circuit_breakers")
        .map(|c| super::circuit_breakers::circuit_breakers(d, &c))
        .unwrap_or_default();
    let outlier_detection = o
        .get("outlier_detection")
        .and_then(|c| super::health::outlier_detection(d, &c));
    let health_checks = match o.get("health_checks") {
        Some(list) => d
            .seq(&list)
            .iter()
            .filter_map(|h| super::health::health_check(d, h))
            .collect(),
        None => Vec::new(),
    };
    let healthy_panic_threshold = o
        .get("common_lb_config")
        .map(|c| super::health::healthy_panic_threshold(d, &c))
        .unwrap_or(super::health::DEFAULT_PANIC_THRESHOLD);

    let name = name?;
    let discovery = discovery?;
    let list = o
        .get("load_assignment")
        .or_else(|| o.get("hosts"))
        .unwrap_or_else(|| o.field_ref().clone());
    let placed = endpoints.into_iter().map(|p| (p.endpoint, p.at)).collect();
    let endpoints = check_endpoint_rules(d, &name, discovery, placed, &list);
    Some(Cluster {
        name,
        alt_stat_name,
        discovery,
        connect_timeout,
        lb_policy: lb_policy?,
        endpoints,
        dns_refresh_rate,
        dns_failure_refresh_rate,
        respect_dns_ttl,
        dns_lookup_family,
        upstream_protocol,
        per_connection_buffer_limit_bytes,
        max_requests_per_connection,
        idle_timeout,
        tls,
        circuit_breakers,
        outlier_detection,
        health_checks,
        healthy_panic_threshold,
    })
}

/// The cluster's `name`, recorded for the cross-reference check as soon as it is known so that
/// a cluster that fails to decode for another reason does not also cause "undefined cluster"
/// errors at every route that names it.
pub fn required_name(d: &mut Decoder, o: &Obj) -> Option<String> {
    let Some(nf) = o.get("name") else {
        d.missing(o, "name");
        return None;
    };
    match scalars::string(d, &nf) {
        Some(n) if !n.is_empty() => {
            d.facts.clusters.push(Site {
                name: n.clone(),
                span: nf.value_span(),
                path: nf.path.clone(),
            });
            Some(n)
        }
        Some(_) => {
            d.missing(o, "name");
            None
        }
        None => None,
    }
}

fn discovery_type(d: &mut Decoder, o: &Obj) -> Option<DiscoveryType> {
    if let Some(c) = o.get("cluster_type") {
        if let Some(t) = o.get("type") {
            d.oneof_conflict(&c, t.name());
        }
        let name = c
            .node
            .get("name")
            .and_then(|n| n.as_scalar())
            .unwrap_or("?")
            .to_string();
        d.error_help(
            &c,
            format!("custom cluster type `{name}` is not supported by meshsim"),
            DISCOVERY_HELP,
        );
        return None;
    }
    let Some(t) = o.get("type") else {
        return Some(DiscoveryType::Static);
    };
    match scalars::enum_name(d, &t, "Cluster.DiscoveryType", &DISCOVERY_TYPES)? {
        "STRICT_DNS" => Some(DiscoveryType::StrictDns),
        "LOGICAL_DNS" => Some(DiscoveryType::LogicalDns),
        "STATIC" => Some(DiscoveryType::Static),
        "EDS" => {
            d.error_at_value(
                &t,
                "cluster type EDS is not supported by meshsim: it runs no EDS server",
                Some(DISCOVERY_HELP.into()),
            );
            None
        }
        other => {
            d.error_at_value(
                &t,
                format!("cluster type {other} is not supported by meshsim"),
                Some(DISCOVERY_HELP.into()),
            );
            None
        }
    }
}

fn lb_policy(d: &mut Decoder, o: &Obj) -> Option<LbPolicy> {
    if let Some(p) = o.get("load_balancing_policy") {
        d.error_help(
            &p,
            "`load_balancing_policy` extensions are not supported by meshsim",
            "use `lb_policy: ROUND_ROBIN | LEAST_REQUEST | RANDOM | RING_HASH | MAGLEV`",
        );
        return None;
    }
    let name = match o.get("lb_policy") {
        Some(p) => {
            let name = scalars::enum_name(d, &p, "Cluster.LbPolicy", &LB_POLICIES)?;
            if matches!(
                name,
                "CLUSTER_PROVIDED" | "LOAD_BALANCING_POLICY_CONFIG" | "ORIGINAL_DST_LB"
            ) {
                d.error_at_value(
                    &p,
                    format!("lb_policy {name} is not supported by meshsim"),
                    Some("use ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH or MAGLEV".into()),
                );
                return None;
            }
            name
        }
        None => "ROUND_ROBIN",
    };
    Some(match name {
        "LEAST_REQUEST" => {
            let mut choice_count = 2;
            let mut active_request_bias = 1.0;
            if let Some(c) = o.get("least_request_lb_config") {
                if let Some(co) = d.obj(&c, &LEAST_REQUEST_LB_CONFIG) {
                    if let Some(v) = co.get("choice_count") {
                        choice_count = scalars::u32(d, &v).unwrap_or(2).max(2);
                    }
                    if let Some(b) = co.get("active_request_bias") {
                        if let Some(bo) = d.obj(&b, &RUNTIME_DOUBLE) {
                            if let Some(v) = bo.get("default_value") {
                                active_request_bias = scalars::f64(d, &v).unwrap_or(1.0);
                            }
                        }
                    }
                }
            }
            LbPolicy::LeastRequest {
                choice_count,
                active_request_bias,
            }
        }
        "RING_HASH" => {
            let mut minimum_ring_size = 1024;
            let mut maximum_ring_size = 8 * 1024 * 1024;
            if let Some(c) = o.get("ring_hash_lb_config") {
                if let Some(co) = d.obj(&c, &RING_HASH_LB_CONFIG) {
                    if let Some(v) = co.get("minimum_ring_size") {
                        minimum_ring_size = scalars::uint(d, &v, 8 * 1024 * 1024).unwrap_or(1024);
                    }
                    if let Some(v) = co.get("maximum_ring_size") {
                        maximum_ring_size =
                            scalars::uint(d, &v, 8 * 1024 * 1024).unwrap_or(maximum_ring_size);
                    }
                }
            }
            LbPolicy::RingHash {
                minimum_ring_size,
                maximum_ring_size,
            }
        }
        "MAGLEV" => {
            let mut table_size = 65537;
            if let Some(c) = o.get("maglev_lb_config") {
                if let Some(co) = d.obj(&c, &MAGLEV_LB_CONFIG) {
                    if let Some(v) = co.get("table_size") {
                        table_size = scalars::u64(d, &v).unwrap_or(65537);
                    }
                }
            }
            LbPolicy::Maglev { table_size }
        }
        "RANDOM" => LbPolicy::Random,
        _ => LbPolicy::RoundRobin,
    })
}

/// `load_assignment` or the v2 `hosts` list.
fn endpoints<'n>(d: &mut Decoder, o: &Obj<'n>, cluster: &str) -> Vec<Placed<'n>> {
    let mut out = Vec::new();
    if let Some(h) = o.get("hosts") {
        if let Some(l) = o.get("load_assignment") {
            d.oneof_conflict(&l, "hosts");
        }
        d.deprecated(
            "Cluster.hosts",
            &h,
            "deprecated v2 field `hosts` in Cluster; loaded as `load_assignment`".into(),
            format!(
                "write `load_assignment: {{cluster_name: {cluster}, endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: ..., port_value: ...}}}}}}}}]}}]}}` (v2 `hosts` was removed in Envoy 1.18)"
            ),
        );
        for item in d.seq(&h) {
            if let Some(a) = address(d, &item, Host::IpOrName) {
                out.push(Placed {
                    endpoint: LbEndpoint {
                        address: a,
                        hostname: None,
                        weight: 1,
                        priority: 0,
                    },
                    at: host_field(&item),
                });
            }
        }
        return out;
    }
    let Some(l) = o.get("load_assignment") else {
        return out;
    };
    let Some(lo) = d.obj(&l, &LOAD_ASSIGNMENT) else {
        return out;
    };
    if let Some(n) = lo.get("cluster_name") {
        scalars::string(d, &n);
    }
    let Some(eps) = lo.get("endpoints") else {
        return out;
    };
    for locality in d.seq(&eps) {
        let Some(lle) = d.obj(&locality, &LOCALITY_LB_ENDPOINTS) else {
            continue;
        };
        if let Some(leds) = lle.get("leds_cluster_locality_config") {
            d.error_help(
                &leds,
                "LEDS is not simulated by meshsim",
                "list the endpoints under `lb_endpoints`",
            );
        }
        let priority = lle
            .get("priority")
            .and_then(|p| scalars::u32(d, &p))
            .unwrap_or(0);
        let Some(lbs) = lle.get("lb_endpoints") else {
            continue;
        };
        for item in d.seq(&lbs) {
            if let Some(p) = lb_endpoint(d, &item, priority) {
                out.push(p);
            }
        }
    }
    out
}

/// The `socket_address.address` value inside an Address, for errors about the host.
fn host_field<'n>(address: &Field<'n>) -> Field<'n> {
    address
        .node
        .get("socket_address")
        .and_then(|s| s.get("address"))
        .map(|n| Field {
            node: n,
            span: n.span,
            path: format!("{}.socket_address.address", address.path),
        })
        .unwrap_or_else(|| address.clone())
}

fn lb_endpoint<'n>(d: &mut Decoder, f: &Field<'n>, priority: u32) -> Option<Placed<'n>> {
    let o = d.obj(f, &LB_ENDPOINT)?;
    if let Some(n) = o.get("endpoint_name") {
        d.error_help(
            &n,
            "named endpoints are not supported by meshsim",
            "give the endpoint an `address`",
        );
        return None;
    }
    let weight = match o.get("load_balancing_weight") {
        Some(w) => match scalars::u32(d, &w)? {
            0 => {
                d.error_at_value(&w, "`load_balancing_weight` must be at least 1", None);
                return None;
            }
            w => w,
        },
        None => 1,
    };
    let ef = match o.get("endpoint") {
        Some(e) => e,
        None => {
            d.missing(&o, "endpoint");
            return None;
        }
    };
    let eo = d.obj(&ef, &ENDPOINT)?;
    let hostname = eo
        .get("hostname")
        .and_then(|h| scalars::string(d, &h))
        .filter(|h| !h.is_empty());
    let af = match eo.get("address") {
        Some(a) => a,
        None => {
            d.missing(&eo, "address");
            return None;
        }
    };
    let a = address(d, &af, Host::IpOrName)?;
    let at = host_field(&af);
    Some(Placed {
        endpoint: LbEndpoint {
            address: a,
            hostname,
            weight,
            priority,
        },
        at,
    })
}

/// Per-type endpoint rules; DNS clusters get the DNS name as the host's hostname, as Envoy
/// reports it in `/clusters` and uses it for `auto_host_rewrite`. `list` is where the endpoints
/// were listed (for the LOGICAL_DNS count error); each endpoint comes with its host's field.
pub fn check_endpoint_rules(
    d: &mut Decoder,
    name: &str,
    discovery: DiscoveryType,
    placed: Vec<(LbEndpoint, Field)>,
    list: &Field,
) -> Vec<LbEndpoint> {
    match discovery {
        DiscoveryType::Static => {
            for (e, at) in &placed {
                if e.address.address.parse::<IpAddr>().is_err() {
                    d.error_at_value(
                        at,
                        format!(
                            "STATIC cluster `{name}` has endpoint `{}`, which is not an IP address",
                            e.address.address
                        ),
                        Some("use STRICT_DNS for DNS names: `type: STRICT_DNS`".into()),
                    );
                }
            }
        }
        DiscoveryType::LogicalDns if placed.len() > 1 => {
            d.error_help(
                list,
                format!(
                    "LOGICAL_DNS cluster `{name}` must have exactly one endpoint, found {}",
                    placed.len()
                ),
                "use STRICT_DNS to balance over several hosts",
            );
        }
        _ => {}
    }
    placed
        .into_iter()
        .map(|(mut e, _)| {
            if discovery != DiscoveryType::Static && e.hostname.is_none() {
                e.hostname = Some(e.address.address.clone());
            }
            e
        })
        .collect()
}

fn upstream_tls(d: &mut Decoder, o: &Obj) -> Option<super::super::model::UpstreamTls> {
    let mut tls = None;
    if let Some(t) = o.get("transport_socket") {
        if let Some(Some(Tls::Upstream(u))) = transport_socket(d, &t, Side::Upstream) {
            tls = Some(u);
        }
    }
    if let Some(t) = o.get("tls_context") {
        if o.has("transport_socket") {
            d.oneof_conflict(&t, "transport_socket");
            return tls;
        }
        d.deprecated(
            "Cluster.tls_context",
            &t,
            "deprecated v2 field `tls_context` in Cluster; loaded as `transport_socket`".into(),
            "write `transport_socket: {name: envoy.transport_sockets.tls, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext, sni: ...}}`".into(),
        );
        if let Some(Tls::Upstream(u)) = tls_context(d, &t, Side::Upstream, false) {
            tls = Some(u);
        }
    }
    tls
}

#[cfg(test)]
mod tests {
    use super::super::super::model::UpstreamProtocol;
    use super::super::super::node::parse;
    use super::super::Mode;
    use super::*;
    use std::path::PathBuf;

    fn run(yaml: &str) -> (Option<Cluster>, Vec<String>) {
        let doc = parse(yaml).unwrap();
        let (k, v) = &doc.as_map().unwrap()[0];
        let f = Field::root(&doc).child(k, v);
        let mut d = Decoder::new(PathBuf::from("."), Mode::Bootstrap);
        let c = cluster(&mut d, &f, false);
        (c, d.finish().into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn v2_cluster_from_the_getting_started_article() {
        let (c, w) = run(
            "c:\n  name: service_google\n  connect_timeout: 0.25s\n  type: LOGICAL_DNS\n  dns_lookup_family: V4_ONLY\n  lb_policy: ROUND_ROBIN\n  hosts: [{ socket_address: { address: google.com, port_value: 443 }}]\n  tls_context: { sni: www.google.com }\n",
        );
        let c = c.unwrap();
        assert_eq!(c.discovery, DiscoveryType::LogicalDns);
        assert_eq!(c.connect_timeout, Duration::from_millis(250));
        assert_eq!(c.dns_lookup_family, DnsLookupFamily::V4Only);
        assert_eq!(c.endpoints[0].address.address, "google.com");
        assert_eq!(c.endpoints[0].hostname.as_deref(), Some("google.com"));
        assert_eq!(c.tls.unwrap().sni.as_deref(), Some("www.google.com"));
        assert_eq!(w.len(), 2, "hosts and tls_context: {w:?}");
    }

    #[test]
    fn typed_protocol_options_and_defaults() {
        let (c, w) = run(
            "c:\n  name: s\n  type: strict_dns\n  load_assignment: {cluster_name: s, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: s, port_value: 80}}}}]}]}\n  typed_extension_protocol_options:\n    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n      \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n      explicit_http_config: {http2_protocol_options: {}}\n",
        );
        assert!(w.is_empty(), "{w:?}");
        let c = c.unwrap();
        assert_eq!(c.upstream_protocol, UpstreamProtocol::Http2);
        assert_eq!(c.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(c.dns_refresh_rate, DEFAULT_DNS_REFRESH_RATE);
        assert_eq!(c.dns_failure_refresh_rate, DEFAULT_DNS_REFRESH_RATE);
        assert_eq!(c.lb_policy, LbPolicy::RoundRobin);
        assert_eq!(c.per_connection_buffer_limit_bytes, 1024 * 1024);
    }

    #[test]
    fn type_rules() {
        let (_, e) = run("c: {name: a, type: EDS, eds_cluster_config: {}}");
        assert_eq!(
            e,
            ["cluster type EDS is not supported by meshsim: it runs no EDS server"]
        );
        let (_, e) = run(
            "c: {name: a, type: STATIC, hosts: [{socket_address: {address: alive-svc, port_value: 80}}]}",
        );
        assert_eq!(
            e[0],
            "STATIC cluster `a` has endpoint `alive-svc`, which is not an IP address"
        );
        let (_, e) = run(
            "c: {name: a, type: LOGICAL_DNS, hosts: [{socket_address: {address: x, port_value: 80}}, {socket_address: {address: y, port_value: 80}}]}",
        );
        assert_eq!(
            e[0],
            "LOGICAL_DNS cluster `a` must have exactly one endpoint, found 2"
        );
        let (_, e) = run("c: {name: a, lb_policy: round_robbin}");
        assert_eq!(e, ["unknown value `round_robbin` for Cluster.LbPolicy"]);
    }
}

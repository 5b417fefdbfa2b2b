//! The v1 JSON format (Envoy ≤ 1.7, removed in 1.8), decoded straight into the same model.
//!
//! v1 differs in shape more than in meaning: addresses are `tcp://ip:port` URLs, clusters live
//! under `cluster_manager`, timeouts are integer `_ms` fields, filters are `{type, name, config}`
//! with short names (`http_connection_manager`, `router`) and routes carry their action
//! inline. The dynamic v1 APIs (SDS, CDS, LDS, RDS over REST) have no meshsim counterpart and
//! are rejected with the alternative spelled out.

mod http;

use std::net::IpAddr;
use std::time::Duration;

use super::decode::address::Host;
use super::decode::bootstrap::{runtime, DEFAULT_STATS_FLUSH_INTERVAL};
use super::decode::cluster::{
    check_endpoint_rules, required_name, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DNS_REFRESH_RATE,
};
use super::decode::listener::{
    generated_listener_name, record_listener_site, DEFAULT_BUFFER_LIMIT,
};
use super::decode::{scalars, Decoder, Field, Message};
use super::diagnostics::Diagnostic;
use super::model::{
    AccessLog, AccessLogFormat, AccessLogSink, Admin, Bootstrap, CircuitBreakers, Cluster,
    DiscoveryType, DnsLookupFamily, FilterChain, HttpConnectionManager, LbEndpoint, LbPolicy,
    Listener, NetworkFilter, NodeInfo, SocketAddress, Thresholds, UpstreamProtocol,
};
use super::node::Node;
use http::hcm;

const ROOT: Message = Message {
    name: "v1 config",
    fields: &[
        "listeners",
        "lds",
        "admin",
        "cluster_manager",
        "stats_flush_interval_ms",
    ],
    ignored: &[
        "flags_path",
        "statsd_udp_ip_address",
        "statsd_tcp_cluster_name",
        "statsd_local_udp_port",
        "watchdog_miss_timeout_ms",
        "watchdog_megamiss_timeout_ms",
        "watchdog_kill_timeout_ms",
        "watchdog_multikill_timeout_ms",
        "tracing",
        "rate_limit_service",
        "runtime",
    ],
};

const LISTENER: Message = Message {
    name: "v1 listener",
    fields: &[
        "name",
        "address",
        "filters",
        "ssl_context",
        "per_connection_buffer_limit_bytes",
    ],
    ignored: &[
        "bind_to_port",
        "use_proxy_proto",
        "use_original_dst",
        "drain_type",
    ],
};

const FILTER: Message = Message {
    name: "v1 filter",
    fields: &["type", "name", "config"],
    ignored: &[],
};

const ADMIN: Message = Message {
    name: "v1 admin",
    fields: &["access_log_path", "address"],
    ignored: &["profile_path"],
};

const CLUSTER_MANAGER: Message = Message {
    name: "v1 cluster_manager",
    fields: &["clusters", "sds", "cds"],
    ignored: &["local_cluster_name", "outlier_detection"],
};

const CLUSTER: Message = Message {
    name: "v1 cluster",
    fields: &[
        "circuit_breakers",
        "name",
        "type",
        "connect_timeout_ms",
        "lb_type",
        "hosts",
        "service_name",
        "features",
        "dns_refresh_rate_ms",
        "dns_lookup_family",
        "ssl_context",
        "alt_stat_name",
        "max_requests_per_connection",
        "per_connection_buffer_limit_bytes",
        "ring_hash_lb_config",
    ],
    ignored: &[
        "health_check",
        "http2_settings",
        "cleanup_interval_ms",
        "dns_resolvers",
        "outlier_detection",
    ],
};

const HOST: Message = Message {
    name: "v1 host",
    fields: &["url"],
    ignored: &[],
};

const RING_HASH: Message = Message {
    name: "v1 ring_hash_lb_config",
    fields: &["minimum_ring_size"],
    ignored: &["use_std_hash"],
};

/// True for a v1 config, recognised by its shape: a listener whose `address` is
/// a `tcp://`-style string or that has `filters` but no `filter_chains`, or a `cluster_manager`
/// holding v1 `clusters`, `sds` or `cds` (v3's `cluster_manager` has none of those). A v3
/// config that merely forgot `static_resources:` is not v1; the bootstrap decoder says where
/// its `listeners` belong.
pub fn is_v1(root: &Node) -> bool {
    let v1_listener = |l: &Node| {
        l.get("address").is_some_and(|a| a.as_scalar().is_some())
            || (l.get("filters").is_some() && l.get("filter_chains").is_none())
    };
    let listeners = root
        .get("listeners")
        .and_then(Node::as_seq)
        .is_some_and(|ls| ls.iter().any(v1_listener));
    listeners
        || root.get("cluster_manager").is_some_and(|cm| {
            ["clusters", "sds", "cds"]
                .iter()
                .any(|k| cm.get(k).is_some())
        })
}

fn v1_sds_help(cluster: &str, service: Option<&str>) -> String {
    let host = service.unwrap_or(cluster);
    format!(
        "make `{cluster}` a STRICT_DNS cluster on the service's DNS name, e.g. `\"type\": \"strict_dns\", \"hosts\": [{{\"url\": \"tcp://{host}:PORT\"}}]`: meshsim's DNS returns one A record per replica, so every replica becomes a host (in Envoy 1.8+ the successor of v1 SDS is an EDS cluster, which meshsim does not simulate)"
    )
}

pub fn bootstrap(d: &mut Decoder, root: &Field) -> Option<Bootstrap> {
    d.push(Diagnostic::warning(
        "",
        root.value_span(),
        "v1 JSON config (removed from Envoy in 1.8); loaded as its v3 equivalent — `/config_dump` on the admin port shows it",
    ).with_help("copy the v3 form from `/config_dump` into a new config: current Envoy rejects v1"));
    let o = d.obj(root, &ROOT)?;
    if let Some(l) = o.get("lds") {
        d.error_help(
            &l,
            "v1 LDS (`lds`) is not supported by meshsim",
            "list the listeners under `listeners`",
        );
    }
    let mut listeners = Vec::new();
    if let Some(l) = o.get("listeners") {
        for (i, item) in d.seq(&l).iter().enumerate() {
            if let Some(listener) = listener(d, item, i) {
                listeners.push(listener);
            }
        }
    }
    let admin = o.get("admin").and_then(|a| admin(d, &a));
    let mut clusters = Vec::new();
    if let Some(cm) = o.get("cluster_manager") {
        if let Some(cmo) = d.obj(&cm, &CLUSTER_MANAGER) {
            if let Some(s) = cmo.get("sds") {
                d.error_help(
                    &s,
                    "v1 SDS (`cluster_manager.sds`, the v1 service discovery REST API) is not supported by meshsim",
                    "remove `sds` and turn each `\"type\": \"sds\"` cluster into a STRICT_DNS cluster on the service's DNS name: meshsim's DNS returns one A record per replica (in Envoy 1.8+ the successor of v1 SDS is an EDS cluster, which meshsim does not simulate)",
                );
            }
            if let Some(c) = cmo.get("cds") {
                d.error_help(
                    &c,
                    "v1 CDS (`cluster_manager.cds`) is not supported by meshsim",
                    "list the clusters under `cluster_manager.clusters`",
                );
            }
            if let Some(list) = cmo.get("clusters") {
                for item in d.seq(&list) {
                    if let Some(c) = cluster(d, &item) {
                        clusters.push(c);
                    }
                }
            }
        }
    }
    let stats_flush_interval = match o.get("stats_flush_interval_ms") {
        Some(v) => match scalars::u64(d, &v) {
            Some(0) | None => DEFAULT_STATS_FLUSH_INTERVAL,
            Some(ms) => Duration::from_millis(ms),
        },
        None => DEFAULT_STATS_FLUSH_INTERVAL,
    };
    Some(Bootstrap {
        node: NodeInfo::default(),
        admin,
        listeners,
        clusters,
        stats_flush_interval,
        runtime_layers: runtime(d, None, None),
    })
}

/// A v1 address URL, `tcp://host:port`.
fn url(d: &mut Decoder, f: &Field, host: Host) -> Option<SocketAddress> {
    let text = scalars::string(d, f)?;
    if text.starts_with("unix://") {
        d.error_at_value(
            f,
            format!("v1 `unix://` addresses are not supported by meshsim (`{text}`)"),
            Some("use a `tcp://IP:PORT` address".into()),
        );
        return None;
    }
    let invalid = |d: &mut Decoder| {
        d.error_at_value(
            f,
            format!("invalid v1 address `{text}`"),
            Some("v1 addresses look like `tcp://0.0.0.0:80`".into()),
        );
    };
    let Some(rest) = text.strip_prefix("tcp://") else {
        invalid(d);
        return None;
    };
    let (address, port) = if let Some(v6) = rest.strip_prefix('[') {
        match v6.split_once("]:") {
            Some((a, p)) => (a, p),
            None => {
                invalid(d);
                return None;
            }
        }
    } else {
        match rest.rsplit_once(':') {
            Some((a, p)) => (a, p),
            None => {
                invalid(d);
                return None;
            }
        }
    };
    let port = match port.parse::<u64>() {
        Ok(p) if (1..=65535).contains(&p) => p as u16,
        // Binding port 0 asks the kernel for a free port, as Envoy allows.
        Ok(0) if host == Host::Ip => 0,
        Ok(0) => {
            d.error_at_value(
                f,
                "port 0 is not allowed for an upstream endpoint",
                Some("use the port the upstream listens on (1–65535)".into()),
            );
            return None;
        }
        Ok(p) => {
            d.error_at_value(
                f,
                format!("port {p} is out of range"),
                Some("use a port between 1 and 65535".into()),
            );
            return None;
        }
        Err(_) => {
            invalid(d);
            return None;
        }
    };
    if address.is_empty() {
        invalid(d);
        return None;
    }
    if host == Host::Ip && address.parse::<IpAddr>().is_err() {
        d.error_at_value(
            f,
            format!("`{address}` is not an IP address"),
            Some(
                "a listening address must be an IP: use `tcp://0.0.0.0:PORT` (all interfaces) or `tcp://127.0.0.1:PORT`"
                    .into(),
            ),
        );
        return None;
    }
    Some(SocketAddress {
        address: address.to_string(),
        port,
    })
}

fn listener(d: &mut Decoder, f: &Field, index: usize) -> Option<Listener> {
    let o = d.obj(f, &LISTENER)?;
    if let Some(s) = o.get("ssl_context") {
        d.error_help(
            &s,
            "v1 `ssl_context` is not supported by meshsim",
            "rewrite the listener in v3 with a filter chain `transport_socket` (DownstreamTlsContext)",
        );
    }
    let name_field = o.get("name");
    let configured = name_field
        .as_ref()
        .and_then(|n| scalars::string(d, n))
        .filter(|n| !n.is_empty());
    let (addr, address_span, address_path) = match o.get("address") {
        Some(a) => (url(d, &a, Host::Ip), a.value_span(), a.path.clone()),
        None => {
            d.missing(&o, "address");
            (None, o.span(), o.path().to_string())
        }
    };
    let mut filters = Vec::new();
    if let Some(list) = o.get("filters") {
        for item in d.seq(&list) {
            if let Some(h) = network_filter(d, &item) {
                filters.push(NetworkFilter::HttpConnectionManager(Box::new(h)));
            }
        }
    }
    let per_connection_buffer_limit_bytes = o
        .get("per_connection_buffer_limit_bytes")
        .and_then(|v| scalars::u32(d, &v))
        .unwrap_or(DEFAULT_BUFFER_LIMIT);
    let addr = addr?;
    record_listener_site(
        d,
        &o,
        name_field.as_ref(),
        configured.as_ref(),
        &addr,
        address_span,
        address_path,
    );
    Some(Listener {
        name: configured.unwrap_or_else(|| generated_listener_name(index, &addr)),
        address: addr,
        filter_chains: vec![FilterChain {
            name: None,
            filters,
            tls: None,
        }],
        per_connection_buffer_limit_bytes,
    })
}

fn network_filter(d: &mut Decoder, f: &Field) -> Option<HttpConnectionManager> {
    let o = d.obj(f, &FILTER)?;
    if let Some(t) = o.get("type") {
        scalars::enum_name(d, &t, "v1 network filter type", &["READ", "WRITE", "BOTH"]);
    }
    let Some(name_field) = o.get("name") else {
        d.missing(&o, "name");
        return None;
    };
    let name = scalars::string(d, &name_field)?;
    if name != "http_connection_manager" {
        d.error_at_value(
            &name_field,
            format!("network filter `envoy.filters.network.{name}` is not supported by meshsim"),
            Some("supported: envoy.filters.network.http_connection_manager (v1 name `http_connection_manager`)".into()),
        );
        return None;
    }
    match o.get("config") {
        Some(c) => hcm(d, &c),
        None => {
            d.error(
                o.field_ref(),
                "missing required field `stat_prefix` in HttpConnectionManager",
            );
            None
        }
    }
}

fn admin(d: &mut Decoder, f: &Field) -> Option<Admin> {
    let o = d.obj(f, &ADMIN)?;
    let access_log = o
        .get("access_log_path")
        .and_then(|p| scalars::string(d, &p))
        .filter(|p| !p.is_empty())
        .map(|path| AccessLog {
            name: "envoy.access_loggers.file".into(),
            sink: AccessLogSink::File(path),
            format: AccessLogFormat::Default,
        })
        .into_iter()
        .collect();
    let af = match o.get("address") {
        Some(a) => a,
        None => {
            d.missing(&o, "address");
            return None;
        }
    };
    let address = url(d, &af, Host::Ip)?;
    d.facts.admin_address = Some((address.clone(), af.value_span()));
    Some(Admin {
        address,
        access_log,
    })
}

fn cluster(d: &mut Decoder, f: &Field) -> Option<Cluster> {
    let o = d.obj(f, &CLUSTER)?;
    let name = required_name(d, &o);
    let service_name = o.get("service_name").and_then(|s| scalars::string(d, &s));
    if let Some(s) = o.get("ssl_context") {
        d.error_help(
            &s,
            "v1 `ssl_context` is not supported by meshsim",
            "rewrite this cluster in v3 with a `transport_socket` (UpstreamTlsContext)",
        );
    }
    let discovery = match o.get("type") {
        Some(t) => match scalars::enum_name(
            d,
            &t,
            "v1 cluster type",
            &["STATIC", "STRICT_DNS", "LOGICAL_DNS", "SDS", "ORIGINAL_DST"],
        ) {
            Some("STATIC") => Some(DiscoveryType::Static),
            Some("STRICT_DNS") => Some(DiscoveryType::StrictDns),
            Some("LOGICAL_DNS") => Some(DiscoveryType::LogicalDns),
            Some("SDS") => {
                d.error_at_value(
                    &t,
                    "v1 SDS (`\"type\": \"sds\"`) is not supported by meshsim",
                    Some(v1_sds_help(
                        name.as_deref().unwrap_or("this cluster"),
                        service_name.as_deref(),
                    )),
                );
                None
            }
            Some(_) => {
                d.error_at_value(
                    &t,
                    "v1 cluster type `original_dst` is not supported by meshsim",
                    Some("use `strict_dns` or `static` with explicit hosts".into()),
                );
                None
            }
            None => None,
        },
        None => {
            d.missing(&o, "type");
            None
        }
    };
    let connect_timeout = match o.get("connect_timeout_ms") {
        Some(t) => match scalars::u64(d, &t) {
            Some(0) => {
                d.error_at_value(&t, "`connect_timeout_ms` must be greater than 0", None);
                DEFAULT_CONNECT_TIMEOUT
            }
            Some(ms) => Duration::from_millis(ms),
            None => DEFAULT_CONNECT_TIMEOUT,
        },
        None => DEFAULT_CONNECT_TIMEOUT,
    };
    let lb_policy = match o.get("lb_type") {
        Some(l) => match scalars::enum_name(
            d,
            &l,
            "v1 lb_type",
            &[
                "ROUND_ROBIN",
                "LEAST_REQUEST",
                "RING_HASH",
                "RANDOM",
                "ORIGINAL_DST_LB",
            ],
        ) {
            Some("LEAST_REQUEST") => Some(LbPolicy::LeastRequest {
                choice_count: 2,
                active_request_bias: 1.0,
            }),
            Some("RING_HASH") => {
                let mut minimum_ring_size = 1024;
                if let Some(r) = o.get("ring_hash_lb_config") {
                    if let Some(ro) = d.obj(&r, &RING_HASH) {
                        if let Some(m) = ro.get("minimum_ring_size") {
                            minimum_ring_size = scalars::u64(d, &m).unwrap_or(1024);
                        }
                    }
                }
                Some(LbPolicy::RingHash {
                    minimum_ring_size,
                    maximum_ring_size: 8 * 1024 * 1024,
                })
            }
            Some("RANDOM") => Some(LbPolicy::Random),
            Some("ORIGINAL_DST_LB") => {
                d.error_at_value(
                    &l,
                    "lb_type `original_dst_lb` is not supported by meshsim",
                    Some("use round_robin, least_request, random or ring_hash".into()),
                );
                None
            }
            Some(_) => Some(LbPolicy::RoundRobin),
            None => None,
        },
        None => Some(LbPolicy::RoundRobin),
    };
    let mut placed = Vec::new();
    if let Some(h) = o.get("hosts") {
        for item in d.seq(&h) {
            let Some(ho) = d.obj(&item, &HOST) else {
                continue;
            };
            let Some(uf) = ho.get("url") else {
                d.missing(&ho, "url");
                continue;
            };
            if let Some(address) = url(d, &uf, Host::IpOrName) {
                placed.push((
                    LbEndpoint {
                        address,
                        hostname: None,
                        weight: 1,
                        priority: 0,
                    },
                    uf,
                ));
            }
        }
    }
    let upstream_protocol = match o.get("features") {
        Some(fe) => match scalars::string(d, &fe) {
            Some(s) if s == "http2" => UpstreamProtocol::Http2,
            Some(s) if s.is_empty() => UpstreamProtocol::Http1,
            Some(s) => {
                d.error_at_value(
                    &fe,
                    format!("unknown v1 cluster feature `{s}`"),
                    Some("the only v1 feature is `http2`".into()),
                );
                UpstreamProtocol::Http1
            }
            None => UpstreamProtocol::Http1,
        },
        None => UpstreamProtocol::Http1,
    };
    let dns_refresh_rate = match o.get("dns_refresh_rate_ms") {
        Some(r) => match scalars::u64(d, &r) {
            Some(0) | None => DEFAULT_DNS_REFRESH_RATE,
            Some(ms) => Duration::from_millis(ms),
        },
        None => DEFAULT_DNS_REFRESH_RATE,
    };
    let dns_lookup_family = match o.get("dns_lookup_family") {
        Some(f) => match scalars::enum_name(
            d,
            &f,
            "v1 dns_lookup_family",
            &["AUTO", "V4_ONLY", "V6_ONLY"],
        ) {
            Some("V4_ONLY") => DnsLookupFamily::V4Only,
            Some("V6_ONLY") => DnsLookupFamily::V6Only,
            _ => DnsLookupFamily::Auto,
        },
        None => DnsLookupFamily::Auto,
    };
    let max_requests_per_connection = o
        .get("max_requests_per_connection")
        .and_then(|m| scalars::u32(d, &m));
    let per_connection_buffer_limit_bytes = o
        .get("per_connection_buffer_limit_bytes")
        .and_then(|v| scalars::u32(d, &v))
        .unwrap_or(DEFAULT_BUFFER_LIMIT);
    let alt_stat_name = o
        .get("alt_stat_name")
        .and_then(|v| scalars::string(d, &v))
        .filter(|s| !s.is_empty());
    let name = name?;
    let discovery = discovery?;
    let circuit_breakers = o
        .get("circuit_breakers")
        .map(|c| v1_circuit_breakers(d, &c))
        .unwrap_or_default();
    let list = o.get("hosts").unwrap_or_else(|| o.field_ref().clone());
    let endpoints = check_endpoint_rules(d, &name, discovery, placed, &list);
    Some(Cluster {
        name,
        alt_stat_name,
        discovery,
        connect_timeout,
        lb_policy: lb_policy?,
        endpoints,
        dns_refresh_rate,
        dns_failure_refresh_rate: dns_refresh_rate,
        respect_dns_ttl: false,
        dns_lookup_family,
        upstream_protocol,
        per_connection_buffer_limit_bytes,
        max_requests_per_connection,
        // v1 clusters have no connection idle timeout field; Envoy's default applies.
        idle_timeout: Some(crate::config::decode::hcm::DEFAULT_IDLE_TIMEOUT),
        tls: None,
        circuit_breakers,
        outlier_detection: None,
        health_checks: Vec::new(),
        healthy_panic_threshold: crate::config::decode::health::DEFAULT_PANIC_THRESHOLD,
    })
}

const V1_CIRCUIT_BREAKERS: Message = Message {
    name: "v1 circuit_breakers",
    fields: &["default", "high"],
    ignored: &[],
};

const V1_THRESHOLDS: Message = Message {
    name: "v1 circuit_breakers priority",
    fields: &[
        "max_connections",
        "max_pending_requests",
        "max_requests",
        "max_retries",
    ],
    ignored: &[],
};

/// v1 `circuit_breakers: {default: {max_connections, ...}, high: {...}}`.
fn v1_circuit_breakers(d: &mut Decoder, f: &Field) -> CircuitBreakers {
    let mut breakers = CircuitBreakers::default();
    let Some(o) = d.obj(f, &V1_CIRCUIT_BREAKERS) else {
        return breakers;
    };
    for (key, into) in [
        ("default", &mut breakers.default),
        ("high", &mut breakers.high),
    ] {
        let Some(p) = o.get(key) else { continue };
        let Some(t) = d.obj(&p, &V1_THRESHOLDS) else {
            continue;
        };
        let mut read = |name: &str, default: u32| {
            t.get(name)
                .and_then(|v| scalars::u32(d, &v))
                .unwrap_or(default)
        };
        let defaults = Thresholds::default();
        *into = Thresholds {
            max_connections: read("max_connections", defaults.max_connections),
            max_pending_requests: read("max_pending_requests", defaults.max_pending_requests),
            max_requests: read("max_requests", defaults.max_requests),
            max_retries: read("max_retries", defaults.max_retries),
        };
    }
    breakers
}

#[cfg(test)]
mod tests {
    use super::super::decode::Mode;
    use super::super::model::RouteAction;
    use super::super::node::parse;
    use super::*;
    use std::path::PathBuf;

    fn run(json: &str) -> (Option<Bootstrap>, Vec<String>) {
        let doc = parse(json).unwrap();
        assert!(is_v1(&doc));
        let mut d = Decoder::new(PathBuf::from("."), Mode::Bootstrap);
        let b = bootstrap(&mut d, &Field::root(&doc));
        (b, d.finish().into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn v1_front_proxy() {
        let (b, w) = run(r#"{"listeners":[{"address":"tcp://0.0.0.0:80",
   "filters":[{"type":"read","name":"http_connection_manager","config":{
      "codec_type":"auto","stat_prefix":"ingress_http",
      "route_config":{"virtual_hosts":[{"name":"backend","domains":["*"],
         "routes":[{"timeout_ms":0,"prefix":"/service/1","cluster":"service1"}]}]},
      "filters":[{"type":"decoder","name":"router","config":{}}]}}]}],
 "admin":{"access_log_path":"/dev/null","address":"tcp://0.0.0.0:8001"},
 "cluster_manager":{"clusters":[{"name":"service1","connect_timeout_ms":250,"type":"strict_dns",
    "lb_type":"round_robin","features":"http2","hosts":[{"url":"tcp://service1:80"}]}]}}"#);
        let b = b.unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("v1 JSON config (removed from Envoy in 1.8)"));
        let c = &b.clusters[0];
        assert_eq!(c.discovery, DiscoveryType::StrictDns);
        assert_eq!(c.connect_timeout, Duration::from_millis(250));
        assert_eq!(c.upstream_protocol, UpstreamProtocol::Http2);
        assert_eq!(c.endpoints[0].address.address, "service1");
        let NetworkFilter::HttpConnectionManager(h) = &b.listeners[0].filter_chains[0].filters[0];
        let RouteAction::Forward(fw) = &h.route_config.virtual_hosts[0].routes[0].action else {
            panic!()
        };
        assert_eq!(fw.timeout, None);
        assert_eq!(b.admin.unwrap().address.port, 8001);
    }

    #[test]
    fn v1_rejections() {
        let (_, e) = run(
            r#"{"listeners":[{"address":"unix:///tmp/envoy.sock","filters":[]}],
                "cluster_manager":{"clusters":[],"cds":{"cluster":{},"refresh_delay_ms":1000}}}"#,
        );
        assert_eq!(
            e,
            [
                "v1 `unix://` addresses are not supported by meshsim (`unix:///tmp/envoy.sock`)",
                "v1 CDS (`cluster_manager.cds`) is not supported by meshsim",
                "v1 JSON config (removed from Envoy in 1.8); loaded as its v3 equivalent — `/config_dump` on the admin port shows it",
            ]
        );
    }
}

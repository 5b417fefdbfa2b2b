//! The model printed back as Envoy v3 JSON, for `/config_dump`.
//!
//! Whatever generation the user wrote, the dump shows the v3 spelling (`load_assignment`,
//! `typed_config` with `@type`, v3 extension names, `typed_extension_protocol_options`), so
//! copying from `/config_dump` is how a v1/v2 user gets a config current Envoy accepts. As in
//! Envoy's proto-JSON output, fields at their proto default (enum value 0, false, empty) are
//! omitted, durations print as `"0.250s"`, and private keys are redacted.

mod routes;

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::decode::extensions::full_type_url;
use super::decode::hcm::{
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_HEADERS_COUNT, DEFAULT_MAX_REQUEST_HEADERS_KB,
    DEFAULT_STREAM_IDLE_TIMEOUT,
};
use super::decode::listener::DEFAULT_BUFFER_LIMIT;
use super::decode::scalars::format_duration;
use super::model::*;
use routes::{route_configuration, routes_dump};

const ADMIN_TYPES: &str = "type.googleapis.com/envoy.admin.v3.";
const LISTENER_URL: &str = "envoy.config.listener.v3.Listener";
const CLUSTER_URL: &str = "envoy.config.cluster.v3.Cluster";
const ROUTE_CONFIGURATION_URL: &str = "envoy.config.route.v3.RouteConfiguration";
const HCM_URL: &str =
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER_URL: &str = "envoy.extensions.filters.http.router.v3.Router";
const HTTP_PROTOCOL_OPTIONS_URL: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// `{"configs": [BootstrapConfigDump, ClustersConfigDump, ListenersConfigDump, RoutesConfigDump]}`.
pub fn config_dump(b: &Bootstrap) -> Value {
    json!({
        "configs": [
            {
                "@type": format!("{ADMIN_TYPES}BootstrapConfigDump"),
                "bootstrap": bootstrap(b),
            },
            {
                "@type": format!("{ADMIN_TYPES}ClustersConfigDump"),
                "static_clusters": b.clusters.iter()
                    .map(|c| json!({"cluster": any(CLUSTER_URL, cluster(c))}))
                    .collect::<Vec<_>>(),
            },
            {
                "@type": format!("{ADMIN_TYPES}ListenersConfigDump"),
                "static_listeners": b.listeners.iter()
                    .map(|l| json!({"listener": any(LISTENER_URL, listener(l))}))
                    .collect::<Vec<_>>(),
            },
            routes_dump(b),
        ]
    })
}

/// An `Any`: `@type` first, then the message's fields.
fn any(url: &str, fields: Map<String, Value>) -> Value {
    let mut m = Map::new();
    m.insert("@type".into(), Value::String(full_type_url(url)));
    m.extend(fields);
    Value::Object(m)
}

fn dur(d: Duration) -> Value {
    Value::String(format_duration(d))
}

/// An optional duration whose `None` means "disabled", which Envoy writes as `0s`.
fn opt_dur(d: Option<Duration>) -> Value {
    dur(d.unwrap_or_default())
}

fn bootstrap(b: &Bootstrap) -> Value {
    let mut m = Map::new();
    let mut node = Map::new();
    if !b.node.id.is_empty() {
        node.insert("id".into(), json!(b.node.id));
    }
    if !b.node.cluster.is_empty() {
        node.insert("cluster".into(), json!(b.node.cluster));
    }
    if !node.is_empty() {
        m.insert("node".into(), Value::Object(node));
    }
    m.insert(
        "static_resources".into(),
        json!({
            "listeners": b.listeners.iter().map(|l| Value::Object(listener(l))).collect::<Vec<_>>(),
            "clusters": b.clusters.iter().map(|c| Value::Object(cluster(c))).collect::<Vec<_>>(),
        }),
    );
    if let Some(a) = &b.admin {
        let mut admin = Map::new();
        if !a.access_log.is_empty() {
            admin.insert(
                "access_log".into(),
                a.access_log.iter().map(access_log).collect(),
            );
        }
        admin.insert("address".into(), address(&a.address));
        m.insert("admin".into(), Value::Object(admin));
    }
    m.insert("stats_flush_interval".into(), dur(b.stats_flush_interval));
    let layers: Vec<Value> = b
        .runtime_layers
        .iter()
        .map(|l| {
            let (key, value) = match l.kind {
                RuntimeLayerKind::Static => (
                    "static_layer",
                    l.static_layer.clone().unwrap_or_else(|| json!({})),
                ),
                RuntimeLayerKind::Disk => ("disk_layer", json!({})),
                RuntimeLayerKind::Admin => ("admin_layer", json!({})),
                RuntimeLayerKind::Rtds => ("rtds_layer", json!({})),
            };
            json!({"name": l.name, key: value})
        })
        .collect();
    m.insert("layered_runtime".into(), json!({ "layers": layers }));
    Value::Object(m)
}

fn address(a: &SocketAddress) -> Value {
    json!({"socket_address": {"address": a.address, "port_value": a.port}})
}

fn listener(l: &Listener) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), json!(l.name));
    m.insert("address".into(), address(&l.address));
    m.insert(
        "filter_chains".into(),
        l.filter_chains.iter().map(filter_chain).collect(),
    );
    if l.per_connection_buffer_limit_bytes != DEFAULT_BUFFER_LIMIT {
        m.insert(
            "per_connection_buffer_limit_bytes".into(),
            json!(l.per_connection_buffer_limit_bytes),
        );
    }
    m
}

fn filter_chain(c: &FilterChain) -> Value {
    let mut m = Map::new();
    if let Some(n) = &c.name {
        m.insert("name".into(), json!(n));
    }
    let filters: Vec<Value> = c
        .filters
        .iter()
        .map(|f| match f {
            NetworkFilter::HttpConnectionManager(h) => json!({
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": any(HCM_URL, hcm(h)),
            }),
        })
        .collect();
    m.insert("filters".into(), Value::Array(filters));
    if let Some(t) = &c.tls {
        let mut ctx = Map::new();
        ctx.insert("common_tls_context".into(), common_tls(&t.common));
        if t.require_client_certificate {
            ctx.insert("require_client_certificate".into(), json!(true));
        }
        m.insert(
            "transport_socket".into(),
            json!({
                "name": "envoy.transport_sockets.tls",
                "typed_config": any("envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext", ctx),
            }),
        );
    }
    Value::Object(m)
}

fn hcm(h: &HttpConnectionManager) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("stat_prefix".into(), json!(h.stat_prefix));
    match h.codec_type {
        CodecType::Auto => {}
        CodecType::Http1 => {
            m.insert("codec_type".into(), json!("HTTP1"));
        }
        CodecType::Http2 => {
            m.insert("codec_type".into(), json!("HTTP2"));
        }
    }
    match &h.rds_route_config_name {
        Some(name) => {
            m.insert(
                "rds".into(),
                json!({
                    "route_config_name": name,
                    "config_source": {"ads": {}, "resource_api_version": "V3"},
                }),
            );
        }
        None => {
            m.insert(
                "route_config".into(),
                Value::Object(route_configuration(&h.route_config)),
            );
        }
    }
    m.insert(
        "http_filters".into(),
        h.http_filters.iter().map(http_filter).collect(),
    );
    if !h.access_log.is_empty() {
        m.insert(
            "access_log".into(),
            h.access_log.iter().map(access_log).collect(),
        );
    }
    if !h.generate_request_id {
        m.insert("generate_request_id".into(), json!(false));
    }
    let flags = [
        (
            "preserve_external_request_id",
            h.preserve_external_request_id,
        ),
        ("use_remote_address", h.use_remote_address),
        ("skip_xff_append", h.skip_xff_append),
        ("normalize_path", h.normalize_path),
        ("merge_slashes", h.merge_slashes),
    ];
    for (key, value) in flags {
        if value {
            m.insert(key.into(), json!(true));
        }
    }
    if h.xff_num_trusted_hops > 0 {
        m.insert("xff_num_trusted_hops".into(), json!(h.xff_num_trusted_hops));
    }
    if h.server_name != "envoy" {
        m.insert("server_name".into(), json!(h.server_name));
    }
    match h.server_header_transformation {
        ServerHeaderTransformation::Overwrite => {}
        ServerHeaderTransformation::AppendIfAbsent => {
            m.insert(
                "server_header_transformation".into(),
                json!("APPEND_IF_ABSENT"),
            );
        }
        ServerHeaderTransformation::PassThrough => {
            m.insert("server_header_transformation".into(), json!("PASS_THROUGH"));
        }
    }
    if let Some(v) = &h.via {
        m.insert("via".into(), json!(v));
    }
    if !h.upgrade_types.is_empty() {
        m.insert(
            "upgrade_configs".into(),
            h.upgrade_types
                .iter()
                .map(|t| json!({"upgrade_type": t}))
                .collect(),
        );
    }
    if h.stream_idle_timeout != Some(DEFAULT_STREAM_IDLE_TIMEOUT) {
        m.insert("stream_idle_timeout".into(), opt_dur(h.stream_idle_timeout));
    }
    if let Some(t) = h.request_timeout {
        m.insert("request_timeout".into(), dur(t));
    }
    if let Some(t) = h.request_headers_timeout {
        m.insert("request_headers_timeout".into(), dur(t));
    }
    let mut common = Map::new();
    if h.idle_timeout != Some(DEFAULT_IDLE_TIMEOUT) {
        common.insert("idle_timeout".into(), opt_dur(h.idle_timeout));
    }
    if h.max_headers_count != DEFAULT_MAX_HEADERS_COUNT {
        common.insert("max_headers_count".into(), json!(h.max_headers_count));
    }
    if !common.is_empty() {
        m.insert("common_http_protocol_options".into(), Value::Object(common));
    }
    if h.max_request_headers_kb != DEFAULT_MAX_REQUEST_HEADERS_KB {
        m.insert(
            "max_request_headers_kb".into(),
            json!(h.max_request_headers_kb),
        );
    }
    m
}

fn http_filter(f: &HttpFilter) -> Value {
    match &f.kind {
        HttpFilterKind::Router(r) => {
            let mut c = Map::new();
            if !r.dynamic_stats {
                c.insert("dynamic_stats".into(), json!(false));
            }
            if r.suppress_envoy_headers {
                c.insert("suppress_envoy_headers".into(), json!(true));
            }
            json!({"name": f.name, "typed_config": any(ROUTER_URL, c)})
        }
        HttpFilterKind::Fault(c) => as_written(
            f,
            "envoy.extensions.filters.http.fault.v3.HTTPFault",
            &c.dump,
        ),
        HttpFilterKind::LocalRateLimit(c) => as_written(
            f,
            "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
            &c.dump,
        ),
        HttpFilterKind::HealthCheck(c) => as_written(
            f,
            "envoy.extensions.filters.http.health_check.v3.HealthCheck",
            &c.dump,
        ),
    }
}

/// A filter whose config is dumped as it was written, under its v3 type (a v2 `config:` or
/// a v2 `@type` becomes the v3 one).
fn as_written(f: &HttpFilter, url: &str, written: &Value) -> Value {
    let mut fields = written.as_object().cloned().unwrap_or_default();
    fields.remove("@type");
    json!({"name": f.name, "typed_config": any(url, fields)})
}

fn access_log(l: &AccessLog) -> Value {
    let mut c = Map::new();
    let url = match &l.sink {
        AccessLogSink::File(path) => {
            c.insert("path".into(), json!(path));
            "envoy.extensions.access_loggers.file.v3.FileAccessLog"
        }
        AccessLogSink::Stdout => "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
        AccessLogSink::Stderr => "envoy.extensions.access_loggers.stream.v3.StderrAccessLog",
    };
    match &l.format {
        AccessLogFormat::Default => {}
        AccessLogFormat::Text(t) => {
            c.insert(
                "log_format".into(),
                json!({"text_format_source": {"inline_string": t}}),
            );
        }
        AccessLogFormat::Json(j) => {
            c.insert("log_format".into(), json!({ "json_format": j }));
        }
    }
    json!({"name": l.name, "typed_config": any(url, c)})
}

fn data_source(d: &DataSource, sensitive: bool) -> Value {
    if d.origin == "inline" {
        if sensitive {
            return json!({"inline_string": "[redacted]"});
        }
        return match std::str::from_utf8(&d.bytes) {
            Ok(s) => json!({ "inline_string": s }),
            Err(_) => json!({ "inline_bytes": base64(&d.bytes) }),
        };
    }
    match d.origin.strip_prefix('$') {
        Some(var) => json!({ "environment_variable": var }),
        None => json!({ "filename": d.origin }),
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn common_tls(c: &CommonTls) -> Value {
    let mut m = Map::new();
    if !c.certificates.is_empty() {
        m.insert(
            "tls_certificates".into(),
            c.certificates
                .iter()
                .map(|(chain, key)| {
                    json!({
                        "certificate_chain": data_source(chain, false),
                        "private_key": data_source(key, true),
                    })
                })
                .collect(),
        );
    }
    if let Some(ca) = &c.trusted_ca {
        m.insert(
            "validation_context".into(),
            json!({"trusted_ca": data_source(ca, false)}),
        );
    }
    if !c.alpn_protocols.is_empty() {
        m.insert("alpn_protocols".into(), json!(c.alpn_protocols));
    }
    Value::Object(m)
}

fn cluster(c: &Cluster) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), json!(c.name));
    if let Some(a) = &c.alt_stat_name {
        m.insert("alt_stat_name".into(), json!(a));
    }
    match c.discovery {
        DiscoveryType::Static => {}
        DiscoveryType::StrictDns => {
            m.insert("type".into(), json!("STRICT_DNS"));
        }
        DiscoveryType::LogicalDns => {
            m.insert("type".into(), json!("LOGICAL_DNS"));
        }
    }
    m.insert("connect_timeout".into(), dur(c.connect_timeout));
    if c.per_connection_buffer_limit_bytes != DEFAULT_BUFFER_LIMIT {
        m.insert(
            "per_connection_buffer_limit_bytes".into(),
            json!(c.per_connection_buffer_limit_bytes),
        );
    }
    match &c.lb_policy {
        LbPolicy::RoundRobin => {}
        LbPolicy::Random => {
            m.insert("lb_policy".into(), json!("RANDOM"));
        }
        LbPolicy::LeastRequest {
            choice_count,
            active_request_bias,
        } => {
            m.insert("lb_policy".into(), json!("LEAST_REQUEST"));
            m.insert(
                "least_request_lb_config".into(),
                json!({
                    "choice_count": choice_count,
                    "active_request_bias": {"default_value": active_request_bias, "runtime_key": ""},
                }),
            );
        }
        LbPolicy::RingHash {
            minimum_ring_size,
            maximum_ring_size,
        } => {
            m.insert("lb_policy".into(), json!("RING_HASH"));
            m.insert(
                "ring_hash_lb_config".into(),
                json!({"minimum_ring_size": minimum_ring_size.to_string(), "maximum_ring_size": maximum_ring_size.to_string()}),
            );
        }
        LbPolicy::Maglev { table_size } => {
            m.insert("lb_policy".into(), json!("MAGLEV"));
            m.insert(
                "maglev_lb_config".into(),
                json!({"table_size": table_size.to_string()}),
            );
        }
    }
    m.insert("load_assignment".into(), load_assignment(c));
    if c.discovery != DiscoveryType::Static {
        if c.dns_refresh_rate != super::decode::cluster::DEFAULT_DNS_REFRESH_RATE {
            m.insert("dns_refresh_rate".into(), dur(c.dns_refresh_rate));
        }
        if c.dns_failure_refresh_rate != c.dns_refresh_rate {
            m.insert(
                "dns_failure_refresh_rate".into(),
                json!({"base_interval": dur(c.dns_failure_refresh_rate)}),
            );
        }
        if c.respect_dns_ttl {
            m.insert("respect_dns_ttl".into(), json!(true));
        }
        let family = match c.dns_lookup_family {
            DnsLookupFamily::Auto => None,
            DnsLookupFamily::V4Only => Some("V4_ONLY"),
            DnsLookupFamily::V6Only => Some("V6_ONLY"),
            DnsLookupFamily::V4Preferred => Some("V4_PREFERRED"),
            DnsLookupFamily::All => Some("ALL"),
        };
        if let Some(f) = family {
            m.insert("dns_lookup_family".into(), json!(f));
        }
    }
    if let Some(options) = protocol_options(c) {
        m.insert(
            "typed_extension_protocol_options".into(),
            json!({ HTTP_PROTOCOL_OPTIONS_URL: any(HTTP_PROTOCOL_OPTIONS_URL, options) }),
        );
    }
    if let Some(t) = &c.tls {
        let mut ctx = Map::new();
        if let Some(sni) = &t.sni {
            ctx.insert("sni".into(), json!(sni));
        }
        let common = common_tls(&t.common);
        if common.as_object().is_some_and(|o| !o.is_empty()) {
            ctx.insert("common_tls_context".into(), common);
        }
        m.insert(
            "transport_socket".into(),
            json!({
                "name": "envoy.transport_sockets.tls",
                "typed_config": any("envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", ctx),
            }),
        );
    }
    m
}

fn protocol_options(c: &Cluster) -> Option<Map<String, Value>> {
    let mut m = Map::new();
    match c.upstream_protocol {
        UpstreamProtocol::Http2 => {
            m.insert(
                "explicit_http_config".into(),
                json!({"http2_protocol_options": {}}),
            );
        }
        UpstreamProtocol::UseDownstream => {
            m.insert(
                "use_downstream_protocol_config".into(),
                json!({"http_protocol_options": {}, "http2_protocol_options": {}}),
            );
        }
        UpstreamProtocol::Http1 => {
            if c.max_requests_per_connection.is_none() && idle_timeout_is_default(c) {
                return None;
            }
            m.insert(
                "explicit_http_config".into(),
                json!({"http_protocol_options": {}}),
            );
        }
    }
    let mut common = Map::new();
    if let Some(max) = c.max_requests_per_connection {
        common.insert("max_requests_per_connection".into(), json!(max));
    }
    if !idle_timeout_is_default(c) {
        common.insert("idle_timeout".into(), opt_dur(c.idle_timeout));
    }
    if !common.is_empty() {
        m.insert("common_http_protocol_options".into(), Value::Object(common));
    }
    Some(m)
}

/// Envoy's `/config_dump` shows only what the config set; the 1 h default is left out.
fn idle_timeout_is_default(c: &Cluster) -> bool {
    c.idle_timeout == Some(DEFAULT_IDLE_TIMEOUT)
}

fn load_assignment(c: &Cluster) -> Value {
    let mut priorities: Vec<u32> = c.endpoints.iter().map(|e| e.priority).collect();
    priorities.sort_unstable();
    priorities.dedup();
    let endpoints: Vec<Value> = priorities
        .iter()
        .map(|p| {
            let lb_endpoints: Vec<Value> = c
                .endpoints
                .iter()
                .filter(|e| e.priority == *p)
                .map(|e| lb_endpoint(c, e))
                .collect();
            let mut m = Map::new();
            m.insert("lb_endpoints".into(), Value::Array(lb_endpoints));
            if *p > 0 {
                m.insert("priority".into(), json!(p));
            }
            Value::Object(m)
        })
        .collect();
    json!({"cluster_name": c.name, "endpoints": endpoints})
}

fn lb_endpoint(c: &Cluster, e: &LbEndpoint) -> Value {
    let mut endpoint = Map::new();
    endpoint.insert("address".into(), address(&e.address));
    // DNS clusters carry the DNS name as hostname; only print one the user chose.
    if let Some(h) = &e.hostname {
        if c.discovery == DiscoveryType::Static || *h != e.address.address {
            endpoint.insert("hostname".into(), json!(h));
        }
    }
    let mut m = Map::new();
    m.insert("endpoint".into(), Value::Object(endpoint));
    if e.weight != 1 {
        m.insert("load_balancing_weight".into(), json!(e.weight));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b"hello"), "aGVsbG8=");
        assert_eq!(base64(b"he"), "aGU=");
        assert_eq!(base64(b"hel"), "aGVs");
    }

    #[test]
    fn durations_print_like_protobuf() {
        assert_eq!(dur(Duration::from_millis(250)), json!("0.250s"));
        assert_eq!(opt_dur(None), json!("0s"));
    }
}

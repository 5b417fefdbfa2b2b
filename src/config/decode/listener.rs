//! Listeners and filter chains. The only network filter simulated is the HTTP connection
//! manager; a listener without a name gets a generated one, as in Envoy.

use super::super::model::{FilterChain, Listener, NetworkFilter, SocketAddress};
use super::super::node::Span;
use super::address::{address, Host};
use super::extensions::{self, Category, HCM, NETWORK_FILTER};
use super::hcm::http_connection_manager;
use super::scalars;
use super::tls::{tls_context, transport_socket, Side, Tls};
use super::{Decoder, Field, ListenerSite, Message, Obj, Site};

/// Envoy's default `per_connection_buffer_limit_bytes` (1 MiB).
pub const DEFAULT_BUFFER_LIMIT: u32 = 1024 * 1024;

pub const LISTENER: Message = Message {
    name: "Listener",
    fields: &[
        "name",
        "address",
        "filter_chains",
        "default_filter_chain",
        "per_connection_buffer_limit_bytes",
        "additional_addresses",
        "api_listener",
        "internal_listener",
    ],
    ignored: &[
        "stat_prefix",
        "fcds_config",
        "filter_chain_matcher",
        "use_original_dst",
        "metadata",
        "deprecated_v1",
        "drain_type",
        "listener_filters",
        "listener_filters_timeout",
        "continue_on_listener_filters_timeout",
        "transparent",
        "freebind",
        "socket_options",
        "tcp_fast_open_queue_length",
        "traffic_direction",
        "udp_listener_config",
        "connection_balance_config",
        "reuse_port",
        "enable_reuse_port",
        "access_log",
        "tcp_backlog_size",
        "max_connections_to_accept_per_socket_event",
        "bind_to_port",
        "enable_mptcp",
        "ignore_global_conn_limit",
        "bypass_overload_manager",
    ],
};

const FILTER_CHAIN: Message = Message {
    name: "FilterChain",
    fields: &["name", "filters", "transport_socket", "tls_context"],
    ignored: &[
        "filter_chain_match",
        "use_proxy_proto",
        "metadata",
        "transport_socket_connect_timeout",
        "on_demand_configuration",
    ],
};

/// Envoy names an unnamed listener with a random UUID (listener.proto: "If no name is provided,
/// Envoy will allocate an internal UUID"), which is what `/listeners` then shows. meshsim
/// derives it from the listener's position and address instead, so it is the same on every
/// run; the form (8-4-4-4-12 hex, version 4) is Envoy's.
pub fn generated_listener_name(index: usize, address: &SocketAddress) -> String {
    let seed = format!("meshsim-listener:{index}:{address}");
    let a = fnv1a(seed.as_bytes(), 0xcbf2_9ce4_8422_2325);
    let b = fnv1a(seed.as_bytes(), 0x8422_2325_cbf2_9ce4);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_be_bytes());
    bytes[8..].copy_from_slice(&b.to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn fnv1a(data: &[u8], seed: u64) -> u64 {
    data.iter().fold(seed, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `index` numbers the listener in the file (for the generated name).
pub fn listener(d: &mut Decoder, f: &Field, index: usize, any: bool) -> Option<Listener> {
    let o = if any {
        d.obj_any(f, &LISTENER)?
    } else {
        d.obj(f, &LISTENER)?
    };
    for key in ["api_listener", "internal_listener"] {
        if let Some(k) = o.get(key) {
            d.error_help(
                &k,
                format!("`{key}` listeners are not supported by meshsim"),
                "give the listener an `address` with a socket address",
            );
            return None;
        }
    }
    if let Some(a) = o.get("additional_addresses") {
        d.error_help(
            &a,
            "`additional_addresses` is not supported by meshsim",
            "declare one listener per address",
        );
    }
    let name_field = o.get("name");
    let configured_name = name_field
        .as_ref()
        .and_then(|n| scalars::string(d, n))
        .filter(|n| !n.is_empty());
    let (addr, address_span, address_path) = match o.get("address") {
        Some(a) => (address(d, &a, Host::Ip), a.span, a.path.clone()),
        None => {
            d.missing(&o, "address");
            (None, o.span(), o.path().to_string())
        }
    };
    let mut filter_chains = Vec::new();
    if let Some(c) = o.get("filter_chains") {
        for item in d.seq(&c) {
            if let Some(chain) = filter_chain(d, &item) {
                filter_chains.push(chain);
            }
        }
    }
    if let Some(c) = o.get("default_filter_chain") {
        if let Some(chain) = filter_chain(d, &c) {
            filter_chains.push(chain);
        }
    }
    let chains_written = o
        .get("filter_chains")
        .is_some_and(|c| !d.seq(&c).is_empty());
    if !chains_written && !o.has("default_filter_chain") {
        d.error_help(
            o.get("filter_chains").as_ref().unwrap_or(o.field_ref()),
            "listener has no filter chains",
            "add `filter_chains: [{filters: [{name: envoy.filters.network.http_connection_manager, typed_config: {...}}]}]`",
        );
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
        configured_name.as_ref(),
        &addr,
        address_span,
        address_path,
    );
    let name = configured_name.unwrap_or_else(|| generated_listener_name(index, &addr));
    Some(Listener {
        name,
        address: addr,
        filter_chains,
        per_connection_buffer_limit_bytes,
    })
}

fn filter_chain(d: &mut Decoder, f: &Field) -> Option<FilterChain> {
    let o = d.obj(f, &FILTER_CHAIN)?;
    let name = o
        .get("name")
        .and_then(|n| scalars::string(d, &n))
        .filter(|n| !n.is_empty());
    let mut tls = None;
    if let Some(t) = o.get("transport_socket") {
        if let Some(Some(Tls::Downstream(ds))) = transport_socket(d, &t, Side::Downstream) {
            tls = Some(ds);
        }
    }
    if let Some(t) = o.get("tls_context") {
        if o.has("transport_socket") {
            d.oneof_conflict(&t, "transport_socket");
        } else {
            d.deprecated(
                "FilterChain.tls_context",
                &t,
                "deprecated v2 field `tls_context` in FilterChain; loaded as `transport_socket`".into(),
                "write `transport_socket: {name: envoy.transport_sockets.tls, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext, ...}}`".into(),
            );
            if let Some(Tls::Downstream(ds)) = tls_context(d, &t, Side::Downstream, false) {
                tls = Some(ds);
            }
        }
    }
    let mut filters = Vec::new();
    let list = o.get("filters");
    let items = list.as_ref().map(|l| d.seq(l)).unwrap_or_default();
    if items.is_empty() {
        d.error_help(
            list.as_ref().unwrap_or(o.field_ref()),
            "filter chain has no filters",
            "add `filters: [{name: envoy.filters.network.http_connection_manager, typed_config: {...}}]`",
        );
        return None;
    }
    for item in &items {
        if let Some(nf) = network_filter(d, item) {
            filters.push(nf);
        }
    }
    if filters.len() > 1 {
        d.error_help(
            &items[0],
            "a filter chain may hold only one HTTP connection manager",
            "the HTTP connection manager is terminal: it must be the last (and here the only) network filter",
        );
        return None;
    }
    Some(FilterChain { name, filters, tls })
}

fn network_filter(d: &mut Decoder, f: &Field) -> Option<NetworkFilter> {
    let o = d.obj(f, &NETWORK_FILTER)?;
    let r = extensions::resolve(d, &o, Category::NetworkFilter, std::iter::once(&HCM))?;
    if r.ext != HCM.name {
        d.error_at_value(
            &r.at,
            format!("network filter `{}` is not supported by meshsim", r.ext),
            Some(format!("supported: {}", HCM.name)),
        );
        return None;
    }
    let hcm = http_connection_manager(d, r.config.as_ref(), r.config_is_any, r.legacy, &f.clone())?;
    Some(NetworkFilter::HttpConnectionManager(Box::new(hcm)))
}

/// Records where a listener was declared, for the cross-listener checks in `validate`
/// (duplicate addresses and names). Shared by the v3 and v1 decoders.
pub fn record_listener_site(
    d: &mut Decoder,
    o: &Obj<'_>,
    name_field: Option<&Field<'_>>,
    configured_name: Option<&String>,
    address: &SocketAddress,
    address_span: Span,
    address_path: String,
) {
    d.facts.listeners.push(ListenerSite {
        name: configured_name.map(|n| Site {
            name: n.clone(),
            span: name_field.map_or(o.span(), |f| f.value_span()),
            path: name_field.map_or(String::new(), |f| f.path.clone()),
        }),
        address: address.clone(),
        address_span,
        path: address_path,
    });
}

#[cfg(test)]
mod tests {
    use super::super::super::node::parse;
    use super::super::Mode;
    use super::*;
    use std::path::PathBuf;

    fn run(yaml: &str) -> (Option<Listener>, Vec<String>) {
        let doc = parse(yaml).unwrap();
        let (k, v) = &doc.as_map().unwrap()[0];
        let f = Field::root(&doc).child(k, v);
        let mut d = Decoder::new(PathBuf::from("."), Mode::Bootstrap);
        let l = listener(&mut d, &f, 0, false);
        (l, d.finish().into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn unnamed_listeners_get_a_stable_uuid() {
        let a = SocketAddress {
            address: "0.0.0.0".into(),
            port: 80,
        };
        let n = generated_listener_name(0, &a);
        assert_eq!(n, generated_listener_name(0, &a));
        assert_ne!(n, generated_listener_name(1, &a));
        assert_eq!(n.len(), 36);
        assert_eq!(&n[14..15], "4");
    }

    #[test]
    fn v2_listener_with_legacy_hcm() {
        let (l, w) = run(
            "l:\n  address: {socket_address: {address: 0.0.0.0, port_value: 10000}}\n  filter_chains:\n  - filters:\n    - name: envoy.http_connection_manager\n      config:\n        stat_prefix: ingress_http\n        route_config: {virtual_hosts: [{name: s, domains: [\"*\"], routes: [{match: {prefix: /}, route: {cluster: local_service}}]}]}\n        http_filters: [{name: envoy.router}]\n",
        );
        let l = l.unwrap();
        assert_eq!(l.address.port, 10000);
        let NetworkFilter::HttpConnectionManager(h) = &l.filter_chains[0].filters[0];
        assert_eq!(h.stat_prefix, "ingress_http");
        assert_eq!(h.http_filters[0].name, "envoy.filters.http.router");
        assert_eq!(w.len(), 3, "config, two legacy names: {w:?}");
    }

    #[test]
    fn unsupported_network_filter() {
        let (_, e) = run(
            "l:\n  name: tcp\n  address: {socket_address: {address: 0.0.0.0, port_value: 9000}}\n  filter_chains:\n  - filters:\n    - name: envoy.filters.network.tcp_proxy\n      typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: t, cluster: c}\n",
        );
        assert_eq!(
            e,
            ["network filter `envoy.filters.network.tcp_proxy` is not supported by meshsim"]
        );
    }
}

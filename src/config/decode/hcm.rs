//! `HttpConnectionManager` and its HTTP filter chain.
//!
//! Only the router is simulated today. The list of HTTP filters meshsim implements is the one
//! constant [`SUPPORTED_HTTP_FILTERS`]: adding a filter is one entry there plus its decode
//! function (`http_filters.rs`) and a model variant.

use std::time::Duration;

use super::super::model::{
    CodecType, HttpConnectionManager, HttpFilter, HttpFilterKind, RouteConfiguration, RouterConfig,
    ServerHeaderTransformation,
};
use super::access_log::access_logs;
use super::extensions::{self, Category, KnownExt};
use super::http_filters;
use super::route::route_configuration;
use super::scalars;
use super::{Decoder, Field, Message, Mode, Obj, Site};

/// Decodes one HTTP filter's config (`None` = all defaults; the bool says whether the config is
/// an `Any` with an `@type` key; the last field is the filter entry, for errors about it).
pub type HttpFilterDecode =
    fn(&mut Decoder, Option<&Field>, bool, &Field) -> Option<HttpFilterKind>;

/// An HTTP filter meshsim implements.
pub struct HttpFilterSpec {
    pub ext: KnownExt,
    pub decode: HttpFilterDecode,
    /// Terminal filters (the router) must be last in the chain.
    pub terminal: bool,
}

/// Every HTTP filter meshsim simulates. Anything else is rejected with this list.
pub const SUPPORTED_HTTP_FILTERS: &[HttpFilterSpec] = &[
    HttpFilterSpec {
        ext: KnownExt {
            name: ROUTER,
            v3: "envoy.extensions.filters.http.router.v3.Router",
            v2: Some("envoy.config.filter.http.router.v2.Router"),
        },
        decode: router,
        terminal: true,
    },
    HttpFilterSpec {
        ext: KnownExt {
            name: "envoy.filters.http.fault",
            v3: "envoy.extensions.filters.http.fault.v3.HTTPFault",
            v2: Some("envoy.config.filter.http.fault.v2.HTTPFault"),
        },
        decode: http_filters::fault,
        terminal: false,
    },
    HttpFilterSpec {
        ext: KnownExt {
            name: "envoy.filters.http.local_ratelimit",
            v3: "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
            v2: None,
        },
        decode: http_filters::local_ratelimit,
        terminal: false,
    },
    HttpFilterSpec {
        ext: KnownExt {
            name: "envoy.filters.http.health_check",
            v3: "envoy.extensions.filters.http.health_check.v3.HealthCheck",
            v2: Some("envoy.config.filter.http.health_check.v2.HealthCheck"),
        },
        decode: http_filters::health_check,
        terminal: false,
    },
];

pub const ROUTER: &str = "envoy.filters.http.router";

pub fn supported_http_filter_names() -> String {
    SUPPORTED_HTTP_FILTERS
        .iter()
        .map(|s| s.ext.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why `stat_prefix` is required, shown with the error.
pub const STAT_PREFIX_HELP: &str =
    "it names the HCM's `http.<stat_prefix>.` stats: add e.g. `stat_prefix: ingress_http`";

pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
pub const DEFAULT_MAX_REQUEST_HEADERS_KB: u32 = 60;
pub const DEFAULT_MAX_HEADERS_COUNT: u32 = 100;

pub const HTTP_CONNECTION_MANAGER: Message = Message {
    name: "HttpConnectionManager",
    fields: &[
        "codec_type",
        "stat_prefix",
        "rds",
        "route_config",
        "scoped_routes",
        "http_filters",
        "access_log",
        "generate_request_id",
        "preserve_external_request_id",
        "use_remote_address",
        "xff_num_trusted_hops",
        "skip_xff_append",
        "server_name",
        "server_header_transformation",
        "via",
        "upgrade_configs",
        "stream_idle_timeout",
        "request_timeout",
        "request_headers_timeout",
        "common_http_protocol_options",
        "idle_timeout",
        "max_request_headers_kb",
        "normalize_path",
        "merge_slashes",
    ],
    ignored: &[
        "add_user_agent",
        "tracing",
        "http_protocol_options",
        "http2_protocol_options",
        "http3_protocol_options",
        "scheme_header_transformation",
        "drain_timeout",
        "delayed_close_timeout",
        "access_log_flush_interval",
        "flush_access_log_on_new_request",
        "access_log_options",
        "original_ip_detection_extensions",
        "early_header_mutation_extensions",
        "internal_address_config",
        "always_set_request_id_in_response",
        "forward_client_cert_details",
        "set_current_client_cert_details",
        "proxy_100_continue",
        "represent_ipv4_remote_address_as_ipv4_mapped_ipv6",
        "path_with_escaped_slashes_action",
        "request_id_extension",
        "local_reply_config",
        "strip_matching_host_port",
        "strip_any_host_port",
        "stream_error_on_invalid_http_message",
        "path_normalization_options",
        "strip_trailing_host_dot",
        "proxy_status_config",
        "typed_header_validation_config",
        "append_x_forwarded_port",
        "append_local_overload",
        "add_proxy_protocol_connection_state",
        "http1_safe_max_connection_duration",
        "bugfix_reverse_encode_order",
    ],
};

const HTTP_FILTER: Message = Message {
    name: "HttpFilter",
    fields: &["name", "typed_config", "config", "is_optional", "disabled"],
    ignored: &["config_discovery"],
};

const ROUTER_CONFIG: Message = Message {
    name: "Router",
    fields: &["dynamic_stats", "suppress_envoy_headers"],
    ignored: &[
        "start_child_span",
        "upstream_log",
        "upstream_log_options",
        "strict_check_headers",
        "respect_expected_rq_timeout",
        "suppress_grpc_request_failure_code_stats",
        "upstream_http_filters",
    ],
};

const COMMON_HTTP_PROTOCOL_OPTIONS: Message = Message {
    name: "HttpProtocolOptions",
    fields: &["idle_timeout", "max_headers_count"],
    ignored: &[
        "max_connection_duration",
        "max_stream_duration",
        "headers_with_underscores_action",
        "max_requests_per_connection",
        "max_response_headers_kb",
    ],
};

const UPGRADE_CONFIG: Message = Message {
    name: "UpgradeConfig",
    fields: &["upgrade_type", "enabled"],
    ignored: &["filters"],
};

const RDS: Message = Message {
    name: "Rds",
    fields: &["route_config_name", "config_source"],
    ignored: &[],
};

/// The router filter's config (`Router`).
fn router(d: &mut Decoder, f: Option<&Field>, any: bool, _at: &Field) -> Option<HttpFilterKind> {
    let mut config = RouterConfig {
        dynamic_stats: true,
        suppress_envoy_headers: false,
    };
    if let Some(f) = f {
        let o = if any {
            d.obj_any(f, &ROUTER_CONFIG)?
        } else {
            d.obj(f, &ROUTER_CONFIG)?
        };
        if let Some(v) = o.get("dynamic_stats") {
            config.dynamic_stats = scalars::bool(d, &v).unwrap_or(true);
        }
        if let Some(v) = o.get("suppress_envoy_headers") {
            config.suppress_envoy_headers = scalars::bool(d, &v).unwrap_or(false);
        }
    }
    Some(HttpFilterKind::Router(config))
}

/// Decodes an HCM config. `at` is the network filter entry (for errors when the config is
/// absent); `legacy` says the filter was written in v2 form, which allows an absent
/// `http_filters` (blog excerpts omit it) with a warning instead of an error.
pub fn http_connection_manager(
    d: &mut Decoder,
    config: Option<&Field>,
    any: bool,
    legacy: bool,
    at: &Field,
) -> Option<HttpConnectionManager> {
    let Some(cf) = config else {
        d.error_help(
            at,
            "missing required field `stat_prefix` in HttpConnectionManager",
            STAT_PREFIX_HELP,
        );
        return None;
    };
    let o = if any {
        d.obj_any(cf, &HTTP_CONNECTION_MANAGER)?
    } else {
        d.obj(cf, &HTTP_CONNECTION_MANAGER)?
    };
    let stat_prefix = o
        .get("stat_prefix")
        .and_then(|s| scalars::string(d, &s))
        .filter(|s| !s.is_empty());
    if stat_prefix.is_none() {
        d.missing_help(&o, "stat_prefix", STAT_PREFIX_HELP);
    }
    let codec_type = match o.get("codec_type") {
        Some(c) => match scalars::enum_name(
            d,
            &c,
            "HttpConnectionManager.CodecType",
            &["AUTO", "HTTP1", "HTTP2", "HTTP3"],
        ) {
            Some("HTTP1") => CodecType::Http1,
            Some("HTTP2") => CodecType::Http2,
            Some("HTTP3") => {
                d.error_at_value(
                    &c,
                    "HTTP/3 is not simulated by meshsim",
                    Some("use AUTO, HTTP1 or HTTP2".into()),
                );
                CodecType::Auto
            }
            _ => CodecType::Auto,
        },
        None => CodecType::Auto,
    };
    let (route_config, rds_route_config_name, websocket) = routes(d, &o);
    let http_filters = http_filters(d, &o, legacy);
    let access_log = o
        .get("access_log")
        .map(|a| access_logs(d, &a))
        .unwrap_or_default();
    let flag = |d: &mut Decoder, key: &str, default: bool| {
        o.get(key)
            .and_then(|v| scalars::bool(d, &v))
            .unwrap_or(default)
    };
    let generate_request_id = flag(d, "generate_request_id", true);
    let preserve_external_request_id = flag(d, "preserve_external_request_id", false);
    let use_remote_address = flag(d, "use_remote_address", false);
    let skip_xff_append = flag(d, "skip_xff_append", false);
    let normalize_path = flag(d, "normalize_path", false);
    let merge_slashes = flag(d, "merge_slashes", false);
    let xff_num_trusted_hops = o
        .get("xff_num_trusted_hops")
        .and_then(|v| scalars::u32(d, &v))
        .unwrap_or(0);
    let server_name = o
        .get("server_name")
        .and_then(|v| scalars::string(d, &v))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "envoy".into());
    let server_header_transformation = match o.get("server_header_transformation") {
        Some(v) => match scalars::enum_name(
            d,
            &v,
            "HttpConnectionManager.ServerHeaderTransformation",
            &["OVERWRITE", "APPEND_IF_ABSENT", "PASS_THROUGH"],
        ) {
            Some("APPEND_IF_ABSENT") => ServerHeaderTransformation::AppendIfAbsent,
            Some("PASS_THROUGH") => ServerHeaderTransformation::PassThrough,
            _ => ServerHeaderTransformation::Overwrite,
        },
        None => ServerHeaderTransformation::Overwrite,
    };
    let via = o
        .get("via")
        .and_then(|v| scalars::string(d, &v))
        .filter(|s| !s.is_empty());
    let mut upgrade_types = Vec::new();
    if let Some(u) = o.get("upgrade_configs") {
        for item in d.seq(&u) {
            if let Some(t) = upgrade_config(d, &item) {
                upgrade_types.push(t);
            }
        }
    }
    if websocket && !upgrade_types.iter().any(|t| t == "websocket") {
        upgrade_types.push("websocket".into());
    }
    let optional_duration = |d: &mut Decoder, key: &str, default: Option<Duration>| match o.get(key)
    {
        Some(v) => scalars::duration(d, &v).and_then(|t| (!t.is_zero()).then_some(t)),
        None => default,
    };
    let stream_idle_timeout =
        optional_duration(d, "stream_idle_timeout", Some(DEFAULT_STREAM_IDLE_TIMEOUT));
    let request_timeout = optional_duration(d, "request_timeout", None);
    let request_headers_timeout = optional_duration(d, "request_headers_timeout", None);
    let mut idle_timeout = Some(DEFAULT_IDLE_TIMEOUT);
    let mut max_headers_count = DEFAULT_MAX_HEADERS_COUNT;
    if let Some(v) = o.get("idle_timeout") {
        d.deprecated(
            "HttpConnectionManager.idle_timeout",
            &v,
            "deprecated v2 field `idle_timeout` in HttpConnectionManager; loaded as `common_http_protocol_options.idle_timeout`".into(),
            "write `common_http_protocol_options: {idle_timeout: ...}`".into(),
        );
        idle_timeout = optional_duration(d, "idle_timeout", idle_timeout);
    }
    if let Some(c) = o.get("common_http_protocol_options") {
        if let Some(co) = d.obj(&c, &COMMON_HTTP_PROTOCOL_OPTIONS) {
            if let Some(v) = co.get("idle_timeout") {
                idle_timeout = scalars::duration(d, &v).and_then(|t| (!t.is_zero()).then_some(t));
            }
            if let Some(v) = co.get("max_headers_count") {
                max_headers_count = scalars::u32(d, &v).unwrap_or(max_headers_count);
            }
        }
    }
    let max_request_headers_kb = match o.get("max_request_headers_kb") {
        Some(v) => match scalars::uint(d, &v, 8192) {
            Some(0) => {
                d.error_at_value(&v, "`max_request_headers_kb` must be at least 1", None);
                DEFAULT_MAX_REQUEST_HEADERS_KB
            }
            Some(kb) => kb as u32,
            None => DEFAULT_MAX_REQUEST_HEADERS_KB,
        },
        None => DEFAULT_MAX_REQUEST_HEADERS_KB,
    };
    Some(HttpConnectionManager {
        stat_prefix: stat_prefix?,
        codec_type,
        route_config: route_config?,
        rds_route_config_name,
        http_filters: http_filters?,
        access_log,
        generate_request_id,
        preserve_external_request_id,
        use_remote_address,
        xff_num_trusted_hops,
        skip_xff_append,
        server_name,
        server_header_transformation,
        via,
        upgrade_types,
        stream_idle_timeout,
        request_timeout,
        request_headers_timeout,
        idle_timeout,
        max_request_headers_kb,
        max_headers_count,
        normalize_path,
        merge_slashes,
    })
}

/// `route_config`, or `rds` resolved later from the same xDS bundle.
fn routes(d: &mut Decoder, o: &Obj) -> (Option<RouteConfiguration>, Option<String>, bool) {
    if let Some(s) = o.get("scoped_routes") {
        d.error_help(
            &s,
            "`scoped_routes` is not supported by meshsim",
            "put the routes inline under `route_config`",
        );
        return (None, None, false);
    }
    let inline = o.get("route_config");
    if let Some(r) = o.get("rds") {
        if inline.is_some() {
            d.oneof_conflict(&r, "route_config");
            return (None, None, false);
        }
        return match rds(d, &r) {
            Some(name) => (
                Some(RouteConfiguration {
                    name: name.clone(),
                    ..Default::default()
                }),
                Some(name),
                false,
            ),
            None => (None, None, false),
        };
    }
    match inline {
        Some(r) => match route_configuration(d, &r, false) {
            Some(routes) => (Some(routes.config), None, routes.websocket),
            None => (None, None, false),
        },
        None => {
            d.error_help(
                o.field_ref(),
                "HttpConnectionManager has no routes",
                "add `route_config: {virtual_hosts: [...]}`",
            );
            (None, None, false)
        }
    }
}

fn rds(d: &mut Decoder, f: &Field) -> Option<String> {
    if d.mode == Mode::Bootstrap {
        d.error_help(
            f,
            "xDS is not simulated; put resources in static_resources",
            "`rds` needs a management server: put the RouteConfiguration inline under `route_config`, or give meshsim the DiscoveryResponse file (a top-level `resources:` list) that holds it",
        );
        return None;
    }
    let o = d.obj(f, &RDS)?;
    let name_field = match o.get("route_config_name") {
        Some(n) => n,
        None => {
            d.missing(&o, "route_config_name");
            return None;
        }
    };
    let name = scalars::string(d, &name_field)?;
    d.facts.rds_refs.push(Site {
        name: name.clone(),
        span: name_field.value_span(),
        path: name_field.path.clone(),
    });
    Some(name)
}

fn upgrade_config(d: &mut Decoder, f: &Field) -> Option<String> {
    let o = d.obj(f, &UPGRADE_CONFIG)?;
    let t = match o.get("upgrade_type") {
        Some(t) => scalars::string(d, &t)?.to_ascii_lowercase(),
        None => {
            d.missing(&o, "upgrade_type");
            return None;
        }
    };
    let enabled = o
        .get("enabled")
        .and_then(|e| scalars::bool(d, &e))
        .unwrap_or(true);
    enabled.then_some(t)
}

/// One entry of `http_filters` as written, for the router-position check.
struct Entry {
    name: String,
    terminal: bool,
    index: usize,
}

fn http_filters(d: &mut Decoder, o: &Obj, legacy: bool) -> Option<Vec<HttpFilter>> {
    let add_router = "add `http_filters: [{name: envoy.filters.http.router, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}]`";
    let list = o.get("http_filters");
    let items = list.as_ref().map(|l| d.seq(l)).unwrap_or_default();
    if items.is_empty() {
        if legacy && list.is_none() {
            d.warn_once(
                "implicit-router",
                super::super::diagnostics::Diagnostic::warning(
                    o.path().to_string(),
                    o.span(),
                    "HttpConnectionManager has no `http_filters`; meshsim added envoy.filters.http.router",
                )
                .with_help(format!(
                    "blog excerpts often leave the router out; Envoy itself would accept this but forward nothing: {add_router}"
                )),
            );
            return Some(vec![HttpFilter {
                name: ROUTER.into(),
                kind: HttpFilterKind::Router(RouterConfig {
                    dynamic_stats: true,
                    suppress_envoy_headers: false,
                }),
            }]);
        }
        let at = list.as_ref().unwrap_or(o.field_ref());
        d.error_help(
            at,
            "http_filters must end with envoy.filters.http.router",
            add_router,
        );
        return None;
    }
    let mut filters = Vec::new();
    let mut entries = Vec::new();
    let mut ok = true;
    for (index, item) in items.iter().enumerate() {
        match http_filter(d, item) {
            Some(Some((filter, terminal))) => {
                entries.push(Entry {
                    name: filter.name.clone(),
                    terminal,
                    index,
                });
                filters.push(filter);
            }
            Some(None) => {} // optional or disabled filter skipped with a warning
            None => ok = false,
        }
    }
    // The router (the only terminal filter) must be present and last.
    let last = items.len() - 1;
    let terminals: Vec<&Entry> = entries.iter().filter(|e| e.terminal).collect();
    if terminals.is_empty() && ok {
        let at = list.as_ref().unwrap_or(o.field_ref());
        d.error_help(
            at,
            "http_filters must end with envoy.filters.http.router",
            format!("none of the filters is the router; add `- name: {ROUTER}` as the last entry"),
        );
        return None;
    }
    for t in &terminals {
        if t.index != last {
            let after = items[t.index + 1]
                .node
                .get("name")
                .and_then(|n| n.as_scalar())
                .unwrap_or("another filter");
            d.error_at_value(
                &name_or_item(&items[t.index]),
                "http_filters must end with envoy.filters.http.router",
                Some(format!(
                    "`{after}` comes after `{}` and would never run; move the router to the end",
                    t.name
                )),
            );
            ok = false;
        }
    }
    ok.then_some(filters)
}

/// The `name` value of a list item (what to point at), else the item.
fn name_or_item<'n>(item: &Field<'n>) -> Field<'n> {
    match item.node.get("name") {
        Some(n) => Field {
            node: n,
            span: n.span,
            path: format!("{}.name", item.path),
        },
        None => item.clone(),
    }
}

/// One `http_filters` entry: `Some(Some(..))` decoded (with whether it is terminal),
/// `Some(None)` an unsupported filter marked optional or disabled and skipped, `None` an error.
fn http_filter(d: &mut Decoder, f: &Field) -> Option<Option<(HttpFilter, bool)>> {
    let o = d.obj(f, &HTTP_FILTER)?;
    let known = SUPPORTED_HTTP_FILTERS.iter().map(|s| &s.ext);
    let r = extensions::resolve(d, &o, Category::HttpFilter, known)?;
    let optional = o
        .get("is_optional")
        .and_then(|v| scalars::bool(d, &v))
        .unwrap_or(false);
    let disabled = o
        .get("disabled")
        .and_then(|v| scalars::bool(d, &v))
        .unwrap_or(false);
    let Some(spec) = SUPPORTED_HTTP_FILTERS.iter().find(|s| s.ext.name == r.ext) else {
        let message = format!(
            "HTTP filter `{}` is not supported by meshsim yet; supported: {}",
            r.ext,
            supported_http_filter_names()
        );
        if optional || disabled {
            let why = if optional { "is_optional" } else { "disabled" };
            d.warn_once(
                format!("skipped-filter:{}", r.ext),
                super::super::diagnostics::Diagnostic::warning(f.path.clone(), f.span, message)
                    .with_help(format!("it is marked `{why}: true`, so meshsim skips it")),
            );
            return Some(None);
        }
        d.error_at_value(
            &r.at,
            message,
            Some("remove it, or mark it `is_optional: true` to have meshsim skip it".into()),
        );
        return None;
    };
    let kind = (spec.decode)(d, r.config.as_ref(), r.config_is_any, f)?;
    Some(Some((HttpFilter { name: r.name, kind }, spec.terminal)))
}

#[cfg(test)]
mod tests {
    use super::super::super::node::parse;
    use super::*;
    use std::path::PathBuf;

    fn run(yaml: &str, legacy: bool) -> (Option<HttpConnectionManager>, Vec<String>) {
        let doc = parse(yaml).unwrap();
        let (k, v) = &doc.as_map().unwrap()[0];
        let f = Field::root(&doc).child(k, v);
        let mut d = Decoder::new(PathBuf::from("."), Mode::Bootstrap);
        let h = http_connection_manager(&mut d, Some(&f), false, legacy, &f);
        (h, d.finish().into_iter().map(|d| d.message).collect())
    }

    const ROUTES: &str = "  route_config: {virtual_hosts: [{name: a, domains: [\"*\"], routes: [{match: {prefix: /}, route: {cluster: c}}]}]}\n";

    #[test]
    fn defaults_are_applied() {
        let (h, e) = run(
            &format!("hcm:\n  stat_prefix: ingress_http\n{ROUTES}  http_filters: [{{name: envoy.filters.http.router}}]\n"),
            false,
        );
        assert!(e.is_empty(), "{e:?}");
        let h = h.unwrap();
        assert_eq!(h.codec_type, CodecType::Auto);
        assert!(h.generate_request_id);
        assert_eq!(h.server_name, "envoy");
        assert_eq!(h.stream_idle_timeout, Some(DEFAULT_STREAM_IDLE_TIMEOUT));
        assert_eq!(h.idle_timeout, Some(DEFAULT_IDLE_TIMEOUT));
        assert_eq!((h.max_request_headers_kb, h.max_headers_count), (60, 100));
        assert_eq!(h.http_filters[0].name, ROUTER);
    }

    #[test]
    fn router_rules() {
        let (_, e) = run(&format!("hcm:\n  stat_prefix: s\n{ROUTES}"), false);
        assert_eq!(e, ["http_filters must end with envoy.filters.http.router"]);
        let (h, w) = run(&format!("hcm:\n  stat_prefix: s\n{ROUTES}"), true);
        assert_eq!(h.unwrap().http_filters.len(), 1);
        assert_eq!(
            w,
            ["HttpConnectionManager has no `http_filters`; meshsim added envoy.filters.http.router"]
        );
        let (_, e) = run(
            &format!("hcm:\n  stat_prefix: s\n{ROUTES}  http_filters: [{{name: envoy.filters.http.router}}, {{name: envoy.filters.http.fault}}]\n"),
            false,
        );
        assert_eq!(e, ["http_filters must end with envoy.filters.http.router"]);
    }

    #[test]
    fn optional_unsupported_filters_are_skipped() {
        let (h, w) = run(
            &format!("hcm:\n  stat_prefix: s\n{ROUTES}  http_filters: [{{name: envoy.filters.http.cors, is_optional: true}}, {{name: envoy.filters.http.router}}]\n"),
            false,
        );
        assert_eq!(h.unwrap().http_filters.len(), 1);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn missing_stat_prefix_and_rds_outside_a_bundle() {
        let (_, e) = run(
            "hcm:\n  rds: {route_config_name: r, config_source: {ads: {}}}\n  http_filters: [{name: envoy.filters.http.router}]\n",
            false,
        );
        assert_eq!(
            e,
            [
                "missing required field `stat_prefix` in HttpConnectionManager",
                "xDS is not simulated; put resources in static_resources",
            ]
        );
    }
}

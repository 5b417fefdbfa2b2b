//! v1 HTTP: the `http_connection_manager` filter's config, its `{type, name, config}` HTTP
//! filters, access logs and the inline route table (routes carry their action inline, timeouts
//! are `_ms` integers, header matchers are `{name, value, regex}`).

use std::time::Duration;

use super::super::decode::hcm::{
    supported_http_filter_names, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_HEADERS_COUNT,
    DEFAULT_MAX_REQUEST_HEADERS_KB, DEFAULT_STREAM_IDLE_TIMEOUT, ROUTER, STAT_PREFIX_HELP,
};
use super::super::decode::matchers::check_regex;
use super::super::decode::route::check_domain;
use super::super::decode::route_action::DEFAULT_ROUTE_TIMEOUT;
use super::super::decode::{scalars, Decoder, Field, Message, Obj, Site};
use super::super::diagnostics::Diagnostic;
use super::super::model::{
    AccessLog, AccessLogFormat, AccessLogSink, AppendAction, ClusterSpecifier, CodecType,
    ForwardAction, HashPolicy, HashPolicyKind, HeaderMatchSpec, HeaderMatcher, HeaderMutations,
    HeaderValueOption, HostRewrite, HttpConnectionManager, HttpFilter, HttpFilterKind,
    PathSpecifier, RedirectAction, RedirectPath, RequireTls, RetryOn, RetryPolicy, Route,
    RouteAction, RouteConfiguration, RouteMatch, RouterConfig, ServerHeaderTransformation,
    StringMatcher, StringPattern, VirtualHost, WeightedCluster, WeightedClusters,
};
use super::FILTER;

const HCM: Message = Message {
    name: "v1 http_connection_manager",
    fields: &[
        "codec_type",
        "stat_prefix",
        "route_config",
        "rds",
        "filters",
        "access_log",
        "generate_request_id",
        "use_remote_address",
        "server_name",
        "idle_timeout_s",
    ],
    ignored: &[
        "add_user_agent",
        "tracing",
        "http1_settings",
        "http2_settings",
        "drain_timeout_ms",
    ],
};

const ROUTER_CONFIG: Message = Message {
    name: "v1 router",
    fields: &["dynamic_stats"],
    ignored: &["start_child_span"],
};

const ACCESS_LOG: Message = Message {
    name: "v1 access_log",
    fields: &["path", "format"],
    ignored: &["filter"],
};

const ROUTE_CONFIG: Message = Message {
    name: "v1 route_config",
    fields: &[
        "virtual_hosts",
        "request_headers_to_add",
        "response_headers_to_add",
        "response_headers_to_remove",
    ],
    ignored: &["internal_only_headers", "validate_clusters"],
};

const VIRTUAL_HOST: Message = Message {
    name: "v1 virtual_host",
    fields: &[
        "name",
        "domains",
        "routes",
        "require_ssl",
        "request_headers_to_add",
    ],
    ignored: &["virtual_clusters", "rate_limits", "cors"],
};

const ROUTE: Message = Message {
    name: "v1 route",
    fields: &[
        "prefix",
        "path",
        "cluster",
        "cluster_header",
        "weighted_clusters",
        "host_redirect",
        "path_redirect",
        "prefix_rewrite",
        "host_rewrite",
        "auto_host_rewrite",
        "case_sensitive",
        "timeout_ms",
        "headers",
        "use_websocket",
        "request_headers_to_add",
        "hash_policy",
        "retry_policy",
    ],
    ignored: &[
        "runtime",
        "shadow",
        "priority",
        "rate_limits",
        "include_vh_rate_limits",
        "opaque_config",
        "cors",
        "decorator",
    ],
};

const WEIGHTED_CLUSTERS: Message = Message {
    name: "v1 weighted_clusters",
    fields: &["clusters"],
    ignored: &["runtime_key_prefix"],
};

const WEIGHTED_CLUSTER: Message = Message {
    name: "v1 weighted cluster",
    fields: &["name", "weight"],
    ignored: &[],
};

const HEADER: Message = Message {
    name: "v1 route header",
    fields: &["name", "value", "regex"],
    ignored: &[],
};

const HEADER_VALUE: Message = Message {
    name: "v1 header",
    fields: &["key", "value"],
    ignored: &[],
};

const HASH_POLICY: Message = Message {
    name: "v1 hash_policy",
    fields: &["header_name"],
    ignored: &[],
};

/// v1 HTTP filter names that are not just `envoy.filters.http.<name>`.
const HTTP_FILTER_NAMES: &[(&str, &str)] = &[("rate_limit", "envoy.filters.http.ratelimit")];

pub(super) fn hcm(d: &mut Decoder, f: &Field) -> Option<HttpConnectionManager> {
    let o = d.obj(f, &HCM)?;
    let stat_prefix = o
        .get("stat_prefix")
        .and_then(|s| scalars::string(d, &s))
        .filter(|s| !s.is_empty());
    if stat_prefix.is_none() {
        d.missing_help(&o, "stat_prefix", STAT_PREFIX_HELP);
    }
    let codec_type = match o.get("codec_type") {
        Some(c) => match scalars::enum_name(d, &c, "v1 codec_type", &["AUTO", "HTTP1", "HTTP2"]) {
            Some("HTTP1") => CodecType::Http1,
            Some("HTTP2") => CodecType::Http2,
            _ => CodecType::Auto,
        },
        None => CodecType::Auto,
    };
    if let Some(r) = o.get("rds") {
        d.error_help(
            &r,
            "v1 RDS (`rds`) is not supported by meshsim",
            "inline the routes under `route_config`",
        );
    }
    let mut websocket = false;
    let route_config = match o.get("route_config") {
        Some(r) => route_config(d, &r, &mut websocket),
        None => {
            if !o.has("rds") {
                d.error_help(
                    o.field_ref(),
                    "HttpConnectionManager has no routes",
                    "add `\"route_config\": {\"virtual_hosts\": [...]}`",
                );
            }
            None
        }
    };
    let http_filters = http_filters(d, &o);
    let access_log = match o.get("access_log") {
        Some(a) => d
            .seq(&a)
            .iter()
            .filter_map(|item| access_log(d, item))
            .collect(),
        None => Vec::new(),
    };
    let generate_request_id = o
        .get("generate_request_id")
        .and_then(|v| scalars::bool(d, &v))
        .unwrap_or(true);
    let use_remote_address = o
        .get("use_remote_address")
        .and_then(|v| scalars::bool(d, &v))
        .unwrap_or(false);
    let server_name = o
        .get("server_name")
        .and_then(|v| scalars::string(d, &v))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "envoy".into());
    let idle_timeout = match o.get("idle_timeout_s") {
        Some(v) => scalars::u64(d, &v).and_then(|s| (s > 0).then(|| Duration::from_secs(s))),
        None => Some(DEFAULT_IDLE_TIMEOUT),
    };
    Some(HttpConnectionManager {
        stat_prefix: stat_prefix?,
        codec_type,
        route_config: route_config?,
        rds_route_config_name: None,
        http_filters: http_filters?,
        access_log,
        generate_request_id,
        preserve_external_request_id: false,
        use_remote_address,
        xff_num_trusted_hops: 0,
        skip_xff_append: false,
        server_name,
        server_header_transformation: ServerHeaderTransformation::Overwrite,
        via: None,
        upgrade_types: if websocket {
            vec!["websocket".into()]
        } else {
            Vec::new()
        },
        stream_idle_timeout: Some(DEFAULT_STREAM_IDLE_TIMEOUT),
        request_timeout: None,
        request_headers_timeout: None,
        idle_timeout,
        max_request_headers_kb: DEFAULT_MAX_REQUEST_HEADERS_KB,
        max_headers_count: DEFAULT_MAX_HEADERS_COUNT,
        normalize_path: false,
        merge_slashes: false,
    })
}

fn default_router() -> HttpFilter {
    HttpFilter {
        name: ROUTER.into(),
        kind: HttpFilterKind::Router(RouterConfig {
            dynamic_stats: true,
            suppress_envoy_headers: false,
        }),
    }
}

fn http_filters(d: &mut Decoder, o: &Obj) -> Option<Vec<HttpFilter>> {
    let Some(list) = o.get("filters") else {
        d.push(
            Diagnostic::warning(
                o.path().to_string(),
                o.span(),
                "HttpConnectionManager has no `http_filters`; meshsim added envoy.filters.http.router",
            )
            .with_help("add `\"filters\": [{\"type\": \"decoder\", \"name\": \"router\", \"config\": {}}]`"),
        );
        return Some(vec![default_router()]);
    };
    let items = d.seq(&list);
    let mut filters = Vec::new();
    let mut router_at: Option<usize> = None;
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let Some(fo) = d.obj(item, &FILTER) else {
            ok = false;
            continue;
        };
        if let Some(t) = fo.get("type") {
            scalars::enum_name(
                d,
                &t,
                "v1 HTTP filter type",
                &["DECODER", "ENCODER", "BOTH"],
            );
        }
        let Some(name_field) = fo.get("name") else {
            d.missing(&fo, "name");
            ok = false;
            continue;
        };
        let Some(name) = scalars::string(d, &name_field) else {
            ok = false;
            continue;
        };
        let v3 = HTTP_FILTER_NAMES
            .iter()
            .find(|(v1, _)| *v1 == name)
            .map_or_else(
                || format!("envoy.filters.http.{name}"),
                |(_, v3)| v3.to_string(),
            );
        if v3 != ROUTER {
            d.error_at_value(
                &name_field,
                format!(
                    "HTTP filter `{v3}` is not supported by meshsim yet; supported: {}",
                    supported_http_filter_names()
                ),
                None,
            );
            ok = false;
            continue;
        }
        let mut config = RouterConfig {
            dynamic_stats: true,
            suppress_envoy_headers: false,
        };
        if let Some(c) = fo.get("config") {
            if let Some(co) = d.obj(&c, &ROUTER_CONFIG) {
                if let Some(v) = co.get("dynamic_stats") {
                    config.dynamic_stats = scalars::bool(d, &v).unwrap_or(true);
                }
            }
        }
        if router_at.is_none() {
            router_at = Some(i);
        }
        filters.push(HttpFilter {
            name: v3,
            kind: HttpFilterKind::Router(config),
        });
    }
    match router_at {
        Some(i) if i + 1 != items.len() => {
            d.error_help(
                &items[i],
                "http_filters must end with envoy.filters.http.router",
                "filters after the router would never run; move the router to the end",
            );
            return None;
        }
        None if ok => {
            d.error_help(
                &list,
                "http_filters must end with envoy.filters.http.router",
                "add `{\"type\": \"decoder\", \"name\": \"router\", \"config\": {}}` as the last filter",
            );
            return None;
        }
        _ => {}
    }
    ok.then_some(filters)
}

fn access_log(d: &mut Decoder, f: &Field) -> Option<AccessLog> {
    let o = d.obj(f, &ACCESS_LOG)?;
    let path = match o.get("path") {
        Some(p) => scalars::string(d, &p)?,
        None => {
            d.missing(&o, "path");
            return None;
        }
    };
    let format = match o.get("format") {
        Some(fmt) => AccessLogFormat::Text(scalars::string(d, &fmt)?),
        None => AccessLogFormat::Default,
    };
    Some(AccessLog {
        name: "envoy.access_loggers.file".into(),
        sink: AccessLogSink::File(path),
        format,
    })
}

fn headers_to_add(d: &mut Decoder, f: &Field) -> Vec<HeaderValueOption> {
    let mut out = Vec::new();
    for item in d.seq(f) {
        let Some(o) = d.obj(&item, &HEADER_VALUE) else {
            continue;
        };
        let key = o.get("key").and_then(|k| scalars::string(d, &k));
        let value = o
            .get("value")
            .and_then(|v| scalars::string(d, &v))
            .unwrap_or_default();
        match key {
            Some(key) => out.push(HeaderValueOption {
                key: key.to_ascii_lowercase(),
                value,
                append_action: AppendAction::AppendIfExistsOrAdd,
            }),
            None => d.missing(&o, "key"),
        }
    }
    out
}

fn route_config(d: &mut Decoder, f: &Field, websocket: &mut bool) -> Option<RouteConfiguration> {
    let o = d.obj(f, &ROUTE_CONFIG)?;
    let mut headers = HeaderMutations::default();
    if let Some(h) = o.get("request_headers_to_add") {
        headers.request_headers_to_add = headers_to_add(d, &h);
    }
    if let Some(h) = o.get("response_headers_to_add") {
        headers.response_headers_to_add = headers_to_add(d, &h);
    }
    if let Some(h) = o.get("response_headers_to_remove") {
        headers.response_headers_to_remove = scalars::strings(d, &h)
            .into_iter()
            .map(|s| s.to_ascii_lowercase())
            .collect();
    }
    let mut virtual_hosts = Vec::new();
    let mut seen = Vec::new();
    if let Some(v) = o.get("virtual_hosts") {
        for item in d.seq(&v) {
            let Some(vo) = d.obj(&item, &VIRTUAL_HOST) else {
                continue;
            };
            let name = vo
                .get("name")
                .and_then(|n| scalars::string(d, &n))
                .unwrap_or_default();
            let mut domains = Vec::new();
            match vo.get("domains") {
                Some(df) => {
                    for item in d.seq(&df) {
                        if let Some(s) = scalars::string(d, &item) {
                            let s = s.to_ascii_lowercase();
                            check_domain(d, "", &name, &s, &item, &mut seen);
                            domains.push(s);
                        }
                    }
                    if domains.is_empty() {
                        d.error_help(
                            &df,
                            format!("virtual host `{name}` has no domains"),
                            "add `\"domains\": [\"*\"]` to match every host",
                        );
                    }
                }
                None => d.error_help(
                    vo.field_ref(),
                    format!("virtual host `{name}` has no domains"),
                    "add `\"domains\": [\"*\"]` to match every host",
                ),
            }
            let require_tls = match vo.get("require_ssl") {
                Some(r) => {
                    match scalars::enum_name(d, &r, "v1 require_ssl", &["ALL", "EXTERNAL_ONLY"]) {
                        Some("ALL") => RequireTls::All,
                        Some(_) => RequireTls::ExternalOnly,
                        None => RequireTls::None,
                    }
                }
                None => RequireTls::None,
            };
            let mut vh_headers = HeaderMutations::default();
            if let Some(h) = vo.get("request_headers_to_add") {
                vh_headers.request_headers_to_add = headers_to_add(d, &h);
            }
            let mut routes = Vec::new();
            if let Some(r) = vo.get("routes") {
                for item in d.seq(&r) {
                    if let Some(route) = route(d, &item, websocket) {
                        routes.push(route);
                    }
                }
            }
            virtual_hosts.push(VirtualHost {
                name,
                domains,
                routes,
                headers: vh_headers,
                require_tls,
                retry_policy: None,
            });
        }
    }
    Some(RouteConfiguration {
        name: String::new(),
        virtual_hosts,
        headers,
    })
}

fn cluster_ref(d: &mut Decoder, f: &Field) -> Option<String> {
    let name = scalars::string(d, f)?;
    d.facts.cluster_refs.push(Site {
        name: name.clone(),
        span: f.value_span(),
        path: f.path.clone(),
    });
    Some(name)
}

fn route(d: &mut Decoder, f: &Field, websocket: &mut bool) -> Option<Route> {
    let o = d.obj(f, &ROUTE)?;
    let path = match (o.get("prefix"), o.get("path")) {
        (Some(p), None) => scalars::string(d, &p).map(PathSpecifier::Prefix),
        (None, Some(p)) => scalars::string(d, &p).map(PathSpecifier::Path),
        (Some(_), Some(p)) => {
            d.oneof_conflict(&p, "prefix");
            None
        }
        (None, None) => {
            d.error_help(
                o.field_ref(),
                "v1 route has no `prefix` or `path`",
                "add `\"prefix\": \"/\"` to match every path",
            );
            None
        }
    };
    let case_sensitive = o
        .get("case_sensitive")
        .and_then(|v| scalars::bool(d, &v))
        .unwrap_or(true);
    let mut headers = Vec::new();
    if let Some(h) = o.get("headers") {
        for item in d.seq(&h) {
            let Some(ho) = d.obj(&item, &HEADER) else {
                continue;
            };
            let Some(name) = ho.get("name").and_then(|n| scalars::string(d, &n)) else {
                d.missing(&ho, "name");
                continue;
            };
            let regex = ho
                .get("regex")
                .and_then(|r| scalars::bool(d, &r))
                .unwrap_or(false);
            let spec = match ho.get("value") {
                Some(v) => {
                    let value = scalars::string(d, &v).unwrap_or_default();
                    if regex {
                        if !check_regex(d, &v, &value) {
                            continue;
                        }
                        string_spec(StringPattern::Regex(value))
                    } else {
                        string_spec(StringPattern::Exact(value))
                    }
                }
                None => HeaderMatchSpec::Present(true),
            };
            headers.push(HeaderMatcher {
                name: name.to_ascii_lowercase(),
                spec,
                invert: false,
            });
        }
    }
    let mut route_headers = HeaderMutations::default();
    if let Some(h) = o.get("request_headers_to_add") {
        route_headers.request_headers_to_add = headers_to_add(d, &h);
    }
    if let Some(w) = o.get("use_websocket") {
        *websocket |= scalars::bool(d, &w).unwrap_or(false);
    }
    let action = if o.has("host_redirect") || o.has("path_redirect") {
        let host = o.get("host_redirect").and_then(|h| scalars::string(d, &h));
        let path = o
            .get("path_redirect")
            .and_then(|p| scalars::string(d, &p))
            .map_or(RedirectPath::Keep, RedirectPath::Path);
        Some(RouteAction::Redirect(RedirectAction {
            scheme: None,
            host,
            port: None,
            path,
            response_code: 301,
            strip_query: false,
        }))
    } else {
        forward(d, &o).map(|fw| RouteAction::Forward(Box::new(fw)))
    };
    Some(Route {
        name: None,
        matcher: RouteMatch {
            path: path?,
            case_sensitive,
            headers,
            query_parameters: Vec::new(),
            grpc: false,
        },
        action: action?,
        headers: route_headers,
    })
}

fn string_spec(pattern: StringPattern) -> HeaderMatchSpec {
    HeaderMatchSpec::String(StringMatcher {
        pattern,
        ignore_case: false,
    })
}

fn forward(d: &mut Decoder, o: &Obj) -> Option<ForwardAction> {
    let cluster = if let Some(c) = o.get("cluster") {
        cluster_ref(d, &c).map(ClusterSpecifier::Cluster)
    } else if let Some(h) = o.get("cluster_header") {
        scalars::string(d, &h).map(|h| ClusterSpecifier::Header(h.to_ascii_lowercase()))
    } else if let Some(w) = o.get("weighted_clusters") {
        weighted_clusters(d, &w).map(ClusterSpecifier::Weighted)
    } else {
        d.error_help(
            o.field_ref(),
            "v1 route names no cluster",
            "add `\"cluster\": \"NAME\"` (or `cluster_header` / `weighted_clusters`)",
        );
        None
    };
    let timeout = match o.get("timeout_ms") {
        Some(t) => match scalars::u64(d, &t) {
            Some(0) => None,
            Some(ms) => Some(Duration::from_millis(ms)),
            None => Some(DEFAULT_ROUTE_TIMEOUT),
        },
        None => Some(DEFAULT_ROUTE_TIMEOUT),
    };
    let host_rewrite = if let Some(h) = o.get("host_rewrite") {
        scalars::string(d, &h).map_or(HostRewrite::None, HostRewrite::Literal)
    } else if o
        .get("auto_host_rewrite")
        .and_then(|a| scalars::bool(d, &a))
        .unwrap_or(false)
    {
        HostRewrite::Auto
    } else {
        HostRewrite::None
    };
    let mut hash_policy = Vec::new();
    if let Some(h) = o.get("hash_policy") {
        for item in d.seq(&h) {
            if let Some(ho) = d.obj(&item, &HASH_POLICY) {
                if let Some(n) = ho.get("header_name").and_then(|n| scalars::string(d, &n)) {
                    hash_policy.push(HashPolicy {
                        kind: HashPolicyKind::Header {
                            name: n.to_ascii_lowercase(),
                        },
                        terminal: false,
                    });
                }
            }
        }
    }
    Some(ForwardAction {
        cluster: cluster?,
        cluster_not_found_response_code: 503,
        prefix_rewrite: o.get("prefix_rewrite").and_then(|p| scalars::string(d, &p)),
        regex_rewrite: None,
        host_rewrite,
        timeout,
        idle_timeout: None,
        hash_policy,
        retry_policy: o.get("retry_policy").and_then(|r| retry_policy(d, &r)),
    })
}

const RETRY_POLICY: Message = Message {
    name: "v1 retry_policy",
    fields: &["retry_on", "num_retries", "per_try_timeout_ms"],
    ignored: &[],
};

/// v1 `retry_policy`: `retry_on`, `num_retries`, `per_try_timeout_ms`.
fn retry_policy(d: &mut Decoder, f: &Field) -> Option<RetryPolicy> {
    let o = d.obj(f, &RETRY_POLICY)?;
    let Some(on) = o.get("retry_on") else {
        d.error_help(
            o.field_ref(),
            "retry_policy without `retry_on` never retries",
            "add e.g. `\"retry_on\": \"5xx,connect-failure\"`",
        );
        return None;
    };
    let text = scalars::string(d, &on)?;
    let retry_on = match RetryOn::parse(&text) {
        Ok(r) => r,
        Err(unknown) => {
            d.error_at_value(
                &on,
                format!("unknown retry condition `{unknown}`"),
                Some(format!(
                    "use a comma-separated list of: {}",
                    RetryOn::NAMES.join(", ")
                )),
            );
            return None;
        }
    };
    Some(RetryPolicy {
        retry_on,
        num_retries: o
            .get("num_retries")
            .and_then(|n| scalars::u32(d, &n))
            .unwrap_or(1),
        per_try_timeout: o
            .get("per_try_timeout_ms")
            .and_then(|t| scalars::u64(d, &t))
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis),
        back_off_base: crate::config::decode::retry::DEFAULT_BACK_OFF_BASE,
        back_off_max: crate::config::decode::retry::DEFAULT_BACK_OFF_BASE * 10,
        retriable_status_codes: Vec::new(),
        retriable_headers: Vec::new(),
        avoid_previous_hosts: false,
        host_selection_retry_max_attempts: 1,
    })
}

fn weighted_clusters(d: &mut Decoder, f: &Field) -> Option<WeightedClusters> {
    let o = d.obj(f, &WEIGHTED_CLUSTERS)?;
    let mut clusters = Vec::new();
    if let Some(list) = o.get("clusters") {
        for item in d.seq(&list) {
            let Some(wo) = d.obj(&item, &WEIGHTED_CLUSTER) else {
                continue;
            };
            let Some(name) = wo.get("name").and_then(|n| cluster_ref(d, &n)) else {
                d.missing(&wo, "name");
                continue;
            };
            let weight = wo
                .get("weight")
                .and_then(|w| scalars::u32(d, &w))
                .unwrap_or(0);
            clusters.push(WeightedCluster {
                name,
                weight,
                headers: HeaderMutations::default(),
            });
        }
    }
    let sum: u64 = clusters.iter().map(|c| u64::from(c.weight)).sum();
    if sum != 100 {
        d.error_help(
            o.field_ref(),
            format!("v1 weighted cluster weights must add up to 100, found {sum}"),
            "adjust the `weight` values",
        );
        return None;
    }
    Some(WeightedClusters {
        clusters,
        total_weight: 100,
    })
}

#[cfg(test)]
mod tests {
    use super::super::super::decode::Mode;
    use super::super::super::node::parse;
    use super::*;
    use std::path::PathBuf;

    fn run(json: &str) -> (Option<RouteConfiguration>, bool, Vec<String>) {
        let doc = parse(json).unwrap();
        let (k, v) = &doc.as_map().unwrap()[0];
        let f = Field::root(&doc).child(k, v);
        let mut d = Decoder::new(PathBuf::from("."), Mode::Bootstrap);
        let mut websocket = false;
        let r = route_config(&mut d, &f, &mut websocket);
        let msgs = d.finish().into_iter().map(|d| d.message).collect();
        (r, websocket, msgs)
    }

    #[test]
    fn v1_routes_headers_redirects_and_websocket() {
        let (r, ws, e) = run(
            r#"{"rc": {"virtual_hosts": [{"name": "a", "domains": ["Foo.com"], "require_ssl": "all",
                "routes": [
                  {"prefix": "/old", "host_redirect": "new.example.com"},
                  {"path": "/ws", "cluster": "c", "use_websocket": true, "timeout_ms": 2500,
                   "headers": [{"name": "X-Id", "value": "[0-9]+", "regex": true}, {"name": "x-debug"}]}
                ]}]}}"#,
        );
        assert!(e.is_empty(), "{e:?}");
        assert!(ws);
        let vh = &r.unwrap().virtual_hosts[0];
        assert_eq!(vh.domains, ["foo.com"]);
        assert_eq!(vh.require_tls, RequireTls::All);
        let RouteAction::Redirect(rd) = &vh.routes[0].action else {
            panic!()
        };
        assert_eq!(rd.host.as_deref(), Some("new.example.com"));
        let RouteAction::Forward(fw) = &vh.routes[1].action else {
            panic!()
        };
        assert_eq!(fw.timeout, Some(Duration::from_millis(2500)));
        let m = &vh.routes[1].matcher;
        assert_eq!(m.path, PathSpecifier::Path("/ws".into()));
        assert_eq!(m.headers[0].name, "x-id");
        assert_eq!(m.headers[1].spec, HeaderMatchSpec::Present(true));
    }

    #[test]
    fn v1_weights_must_add_up_to_100() {
        let (_, _, e) = run(
            r#"{"rc": {"virtual_hosts": [{"name": "a", "domains": ["*"], "routes": [
                {"prefix": "/", "weighted_clusters": {"clusters": [{"name": "a", "weight": 50}, {"name": "b", "weight": 40}]}}
            ]}]}}"#,
        );
        assert_eq!(
            e,
            ["v1 weighted cluster weights must add up to 100, found 90"]
        );
    }
}

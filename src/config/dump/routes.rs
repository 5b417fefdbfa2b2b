//! The route tables of `/config_dump`: inline route configurations under
//! `static_route_configs`, RDS-resolved ones (xDS bundles) under `dynamic_route_configs`.

use serde_json::{json, Map, Value};

use super::super::decode::route_action::DEFAULT_ROUTE_TIMEOUT;
use super::super::model::*;
use super::{any, dur, opt_dur, ADMIN_TYPES, ROUTE_CONFIGURATION_URL};

pub(super) fn routes_dump(b: &Bootstrap) -> Value {
    let mut static_configs = Vec::new();
    let mut dynamic_configs = Vec::new();
    let mut dynamic_names: Vec<&str> = Vec::new();
    for l in &b.listeners {
        for chain in &l.filter_chains {
            for NetworkFilter::HttpConnectionManager(h) in &chain.filters {
                let rc = any(
                    ROUTE_CONFIGURATION_URL,
                    route_configuration(&h.route_config),
                );
                match &h.rds_route_config_name {
                    Some(name) => {
                        if !dynamic_names.contains(&name.as_str()) {
                            dynamic_names.push(name);
                            dynamic_configs.push(json!({ "route_config": rc }));
                        }
                    }
                    None => static_configs.push(json!({ "route_config": rc })),
                }
            }
        }
    }
    let mut m = Map::new();
    m.insert(
        "@type".into(),
        json!(format!("{ADMIN_TYPES}RoutesConfigDump")),
    );
    m.insert("static_route_configs".into(), Value::Array(static_configs));
    if !dynamic_configs.is_empty() {
        m.insert(
            "dynamic_route_configs".into(),
            Value::Array(dynamic_configs),
        );
    }
    Value::Object(m)
}

pub(super) fn route_configuration(rc: &RouteConfiguration) -> Map<String, Value> {
    let mut m = Map::new();
    if !rc.name.is_empty() {
        m.insert("name".into(), json!(rc.name));
    }
    m.insert(
        "virtual_hosts".into(),
        rc.virtual_hosts.iter().map(virtual_host).collect(),
    );
    headers(&rc.headers, &mut m);
    m
}

fn virtual_host(v: &VirtualHost) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(v.name));
    m.insert("domains".into(), json!(v.domains));
    m.insert("routes".into(), v.routes.iter().map(route).collect());
    match v.require_tls {
        RequireTls::None => {}
        RequireTls::ExternalOnly => {
            m.insert("require_tls".into(), json!("EXTERNAL_ONLY"));
        }
        RequireTls::All => {
            m.insert("require_tls".into(), json!("ALL"));
        }
    }
    headers(&v.headers, &mut m);
    if let Some(r) = &v.retry_policy {
        m.insert("retry_policy".into(), retry_policy(r));
    }
    Value::Object(m)
}

fn retry_policy(r: &RetryPolicy) -> Value {
    use super::super::decode::retry::DEFAULT_BACK_OFF_BASE;
    let mut m = Map::new();
    m.insert("retry_on".into(), json!(r.retry_on.names()));
    m.insert("num_retries".into(), json!(r.num_retries));
    if let Some(t) = r.per_try_timeout {
        m.insert("per_try_timeout".into(), dur(t));
    }
    if r.back_off_base != DEFAULT_BACK_OFF_BASE || r.back_off_max != DEFAULT_BACK_OFF_BASE * 10 {
        m.insert(
            "retry_back_off".into(),
            json!({"base_interval": dur(r.back_off_base), "max_interval": dur(r.back_off_max)}),
        );
    }
    if !r.retriable_status_codes.is_empty() {
        m.insert(
            "retriable_status_codes".into(),
            json!(r.retriable_status_codes),
        );
    }
    if !r.retriable_headers.is_empty() {
        m.insert(
            "retriable_headers".into(),
            header_matchers(&r.retriable_headers),
        );
    }
    if r.avoid_previous_hosts {
        m.insert(
            "retry_host_predicate".into(),
            json!([{"name": "envoy.retry_host_predicates.previous_hosts"}]),
        );
    }
    if r.host_selection_retry_max_attempts != 1 {
        m.insert(
            "host_selection_retry_max_attempts".into(),
            json!(r.host_selection_retry_max_attempts.to_string()),
        );
    }
    Value::Object(m)
}

fn headers(h: &HeaderMutations, m: &mut Map<String, Value>) {
    let option = |o: &HeaderValueOption| {
        let mut v = Map::new();
        v.insert("header".into(), json!({"key": o.key, "value": o.value}));
        let action = match o.append_action {
            AppendAction::AppendIfExistsOrAdd => None,
            AppendAction::AddIfAbsent => Some("ADD_IF_ABSENT"),
            AppendAction::OverwriteIfExistsOrAdd => Some("OVERWRITE_IF_EXISTS_OR_ADD"),
            AppendAction::OverwriteIfExists => Some("OVERWRITE_IF_EXISTS"),
        };
        if let Some(a) = action {
            v.insert("append_action".into(), json!(a));
        }
        Value::Object(v)
    };
    if !h.request_headers_to_add.is_empty() {
        m.insert(
            "request_headers_to_add".into(),
            h.request_headers_to_add.iter().map(option).collect(),
        );
    }
    if !h.request_headers_to_remove.is_empty() {
        m.insert(
            "request_headers_to_remove".into(),
            json!(h.request_headers_to_remove),
        );
    }
    if !h.response_headers_to_add.is_empty() {
        m.insert(
            "response_headers_to_add".into(),
            h.response_headers_to_add.iter().map(option).collect(),
        );
    }
    if !h.response_headers_to_remove.is_empty() {
        m.insert(
            "response_headers_to_remove".into(),
            json!(h.response_headers_to_remove),
        );
    }
}

fn route(r: &Route) -> Value {
    let mut m = Map::new();
    if let Some(n) = &r.name {
        m.insert("name".into(), json!(n));
    }
    m.insert("match".into(), route_match(&r.matcher));
    match &r.action {
        RouteAction::Forward(f) => {
            m.insert("route".into(), forward(f));
        }
        RouteAction::Redirect(rd) => {
            m.insert("redirect".into(), redirect(rd));
        }
        RouteAction::DirectResponse(dr) => {
            let mut d = Map::new();
            d.insert("status".into(), json!(dr.status));
            if let Some(b) = &dr.body {
                d.insert("body".into(), json!({ "inline_string": b }));
            }
            m.insert("direct_response".into(), Value::Object(d));
        }
    }
    headers(&r.headers, &mut m);
    Value::Object(m)
}

fn string_matcher(s: &StringMatcher) -> Value {
    let mut m = Map::new();
    match &s.pattern {
        StringPattern::Exact(v) => m.insert("exact".into(), json!(v)),
        StringPattern::Prefix(v) => m.insert("prefix".into(), json!(v)),
        StringPattern::Suffix(v) => m.insert("suffix".into(), json!(v)),
        StringPattern::Contains(v) => m.insert("contains".into(), json!(v)),
        StringPattern::Regex(v) => m.insert("safe_regex".into(), json!({ "regex": v })),
    };
    if s.ignore_case {
        m.insert("ignore_case".into(), json!(true));
    }
    Value::Object(m)
}

fn header_matchers(matchers: &[HeaderMatcher]) -> Value {
    matchers
        .iter()
        .map(|h| {
            let mut hm = Map::new();
            hm.insert("name".into(), json!(h.name));
            match &h.spec {
                HeaderMatchSpec::Present(p) => hm.insert("present_match".into(), json!(p)),
                HeaderMatchSpec::Range { start, end } => hm.insert(
                    "range_match".into(),
                    json!({"start": start.to_string(), "end": end.to_string()}),
                ),
                HeaderMatchSpec::String(s) => hm.insert("string_match".into(), string_matcher(s)),
            };
            if h.invert {
                hm.insert("invert_match".into(), json!(true));
            }
            Value::Object(hm)
        })
        .collect()
}

fn route_match(rm: &RouteMatch) -> Value {
    let mut m = Map::new();
    match &rm.path {
        PathSpecifier::Prefix(p) => m.insert("prefix".into(), json!(p)),
        PathSpecifier::Path(p) => m.insert("path".into(), json!(p)),
        PathSpecifier::SafeRegex(p) => m.insert("safe_regex".into(), json!({ "regex": p })),
        PathSpecifier::PathSeparatedPrefix(p) => m.insert("path_separated_prefix".into(), json!(p)),
    };
    if !rm.case_sensitive {
        m.insert("case_sensitive".into(), json!(false));
    }
    if !rm.headers.is_empty() {
        m.insert("headers".into(), header_matchers(&rm.headers));
    }
    if !rm.query_parameters.is_empty() {
        let params: Vec<Value> = rm
            .query_parameters
            .iter()
            .map(|q| match &q.string_match {
                Some(s) => json!({"name": q.name, "string_match": string_matcher(s)}),
                None => json!({"name": q.name, "present_match": true}),
            })
            .collect();
        m.insert("query_parameters".into(), Value::Array(params));
    }
    if rm.grpc {
        m.insert("grpc".into(), json!({}));
    }
    Value::Object(m)
}

fn regex_rewrite(r: &RegexRewrite) -> Value {
    json!({"pattern": {"regex": r.pattern}, "substitution": r.substitution})
}

fn forward(f: &ForwardAction) -> Value {
    let mut m = Map::new();
    match &f.cluster {
        ClusterSpecifier::Cluster(c) => {
            m.insert("cluster".into(), json!(c));
        }
        ClusterSpecifier::Header(h) => {
            m.insert("cluster_header".into(), json!(h));
        }
        ClusterSpecifier::Weighted(w) => {
            let clusters: Vec<Value> = w
                .clusters
                .iter()
                .map(|c| {
                    let mut cm = Map::new();
                    cm.insert("name".into(), json!(c.name));
                    cm.insert("weight".into(), json!(c.weight));
                    headers(&c.headers, &mut cm);
                    Value::Object(cm)
                })
                .collect();
            m.insert("weighted_clusters".into(), json!({ "clusters": clusters }));
        }
    }
    match f.cluster_not_found_response_code {
        404 => {
            m.insert("cluster_not_found_response_code".into(), json!("NOT_FOUND"));
        }
        500 => {
            m.insert(
                "cluster_not_found_response_code".into(),
                json!("INTERNAL_SERVER_ERROR"),
            );
        }
        _ => {}
    }
    if let Some(p) = &f.prefix_rewrite {
        m.insert("prefix_rewrite".into(), json!(p));
    }
    if let Some(r) = &f.regex_rewrite {
        m.insert("regex_rewrite".into(), regex_rewrite(r));
    }
    match &f.host_rewrite {
        HostRewrite::None => {}
        HostRewrite::Literal(h) => {
            m.insert("host_rewrite_literal".into(), json!(h));
        }
        HostRewrite::Auto => {
            m.insert("auto_host_rewrite".into(), json!(true));
        }
        HostRewrite::Header(h) => {
            m.insert("host_rewrite_header".into(), json!(h));
        }
        HostRewrite::PathRegex(r) => {
            m.insert("host_rewrite_path_regex".into(), regex_rewrite(r));
        }
    }
    if f.timeout != Some(DEFAULT_ROUTE_TIMEOUT) {
        m.insert("timeout".into(), opt_dur(f.timeout));
    }
    if let Some(t) = f.idle_timeout {
        m.insert("idle_timeout".into(), dur(t));
    }
    if let Some(r) = &f.retry_policy {
        m.insert("retry_policy".into(), retry_policy(r));
    }
    if !f.hash_policy.is_empty() {
        let policies: Vec<Value> = f
            .hash_policy
            .iter()
            .map(|p| {
                let mut pm = Map::new();
                match &p.kind {
                    HashPolicyKind::Header { name } => {
                        pm.insert("header".into(), json!({ "header_name": name }))
                    }
                    HashPolicyKind::Cookie { name } => {
                        pm.insert("cookie".into(), json!({ "name": name }))
                    }
                    HashPolicyKind::SourceIp => {
                        pm.insert("connection_properties".into(), json!({"source_ip": true}))
                    }
                    HashPolicyKind::QueryParameter { name } => {
                        pm.insert("query_parameter".into(), json!({ "name": name }))
                    }
                };
                if p.terminal {
                    pm.insert("terminal".into(), json!(true));
                }
                Value::Object(pm)
            })
            .collect();
        m.insert("hash_policy".into(), Value::Array(policies));
    }
    Value::Object(m)
}

fn redirect(r: &RedirectAction) -> Value {
    let mut m = Map::new();
    match r.scheme.as_deref() {
        Some("https") => {
            m.insert("https_redirect".into(), json!(true));
        }
        Some(s) => {
            m.insert("scheme_redirect".into(), json!(s));
        }
        None => {}
    }
    if let Some(h) = &r.host {
        m.insert("host_redirect".into(), json!(h));
    }
    if let Some(p) = r.port {
        m.insert("port_redirect".into(), json!(p));
    }
    match &r.path {
        RedirectPath::Keep => {}
        RedirectPath::Path(p) => {
            m.insert("path_redirect".into(), json!(p));
        }
        RedirectPath::PrefixRewrite(p) => {
            m.insert("prefix_rewrite".into(), json!(p));
        }
        RedirectPath::RegexRewrite(rr) => {
            m.insert("regex_rewrite".into(), regex_rewrite(rr));
        }
    }
    let code = match r.response_code {
        302 => Some("FOUND"),
        303 => Some("SEE_OTHER"),
        307 => Some("TEMPORARY_REDIRECT"),
        308 => Some("PERMANENT_REDIRECT"),
        _ => None,
    };
    if let Some(c) = code {
        m.insert("response_code".into(), json!(c));
    }
    if r.strip_query {
        m.insert("strip_query".into(), json!(true));
    }
    Value::Object(m)
}

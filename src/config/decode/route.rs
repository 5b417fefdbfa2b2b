//! Routing: `RouteConfiguration` → virtual hosts → routes and how they match, with the v2
//! `regex` match translated. What a route does is `route_action.rs`; per-route-config checks
//! (unique domains, one `*`) happen here.

use super::super::model::{
    PathSpecifier, RequireTls, Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost,
};
use super::headers::header_mutations;
use super::matchers;
use super::route_action::{direct_response, forward, redirect};
use super::scalars;
use super::{Decoder, Field, Message};

pub const ROUTE_CONFIGURATION: Message = Message {
    name: "RouteConfiguration",
    fields: &[
        "name",
        "virtual_hosts",
        "request_headers_to_add",
        "request_headers_to_remove",
        "response_headers_to_add",
        "response_headers_to_remove",
    ],
    ignored: &[
        "vhds",
        "internal_only_headers",
        "most_specific_header_mutations_wins",
        "validate_clusters",
        "max_direct_response_body_size_bytes",
        "cluster_specifier_plugins",
        "request_mirror_policies",
        "ignore_port_in_host_matching",
        "ignore_path_parameters_in_path_matching",
        "typed_per_filter_config",
        "metadata",
    ],
};

const VIRTUAL_HOST: Message = Message {
    name: "VirtualHost",
    fields: &[
        "name",
        "domains",
        "routes",
        "require_tls",
        "matcher",
        "request_headers_to_add",
        "request_headers_to_remove",
        "response_headers_to_add",
        "response_headers_to_remove",
        "retry_policy",
    ],
    ignored: &[
        "virtual_clusters",
        "rate_limits",
        "cors",
        "typed_per_filter_config",
        "per_filter_config",
        "include_request_attempt_count",
        "include_attempt_count_in_response",
        "retry_policy_typed_config",
        "hedge_policy",
        "include_is_timeout_retry_header",
        "per_request_buffer_limit_bytes",
        "request_mirror_policies",
        "metadata",
    ],
};

const ROUTE: Message = Message {
    name: "Route",
    fields: &[
        "name",
        "match",
        "route",
        "redirect",
        "direct_response",
        "filter_action",
        "non_forwarding_action",
        "request_headers_to_add",
        "request_headers_to_remove",
        "response_headers_to_add",
        "response_headers_to_remove",
    ],
    ignored: &[
        "metadata",
        "decorator",
        "typed_per_filter_config",
        "per_filter_config",
        "tracing",
        "per_request_buffer_limit_bytes",
        "stat_prefix",
    ],
};

const ROUTE_MATCH: Message = Message {
    name: "RouteMatch",
    fields: &[
        "prefix",
        "path",
        "safe_regex",
        "regex",
        "path_separated_prefix",
        "connect_matcher",
        "path_match_policy",
        "case_sensitive",
        "headers",
        "query_parameters",
        "grpc",
    ],
    ignored: &[
        "runtime_fraction",
        "tls_context",
        "dynamic_metadata",
        "filter_state",
    ],
};

const GRPC_ROUTE_MATCH: Message = Message {
    name: "GrpcRouteMatchOptions",
    fields: &[],
    ignored: &[],
};

/// A decoded route configuration plus whether any route used v2 `use_websocket` (which the
/// HCM turns into an enabled `websocket` upgrade).
pub struct Routes {
    pub config: RouteConfiguration,
    pub websocket: bool,
}

pub fn route_configuration(d: &mut Decoder, f: &Field, any: bool) -> Option<Routes> {
    let o = if any {
        d.obj_any(f, &ROUTE_CONFIGURATION)?
    } else {
        d.obj(f, &ROUTE_CONFIGURATION)?
    };
    let name = o
        .get("name")
        .and_then(|n| scalars::string(d, &n))
        .unwrap_or_default();
    let mut websocket = false;
    let mut virtual_hosts = Vec::new();
    // (domain, vhost name, line) for the uniqueness check.
    let mut seen: Vec<(String, String, usize)> = Vec::new();
    if let Some(v) = o.get("virtual_hosts") {
        for item in d.seq(&v) {
            if let Some((vh, ws, domain_fields)) = virtual_host(d, &item) {
                websocket |= ws;
                for (domain, df) in domain_fields {
                    check_domain(d, &name, &vh.name, &domain, &df, &mut seen);
                }
                virtual_hosts.push(vh);
            }
        }
    }
    let headers = header_mutations(d, &o);
    Some(Routes {
        config: RouteConfiguration {
            name,
            virtual_hosts,
            headers,
        },
        websocket,
    })
}

/// Envoy rejects a route configuration in which a domain appears twice (across or within
/// virtual hosts); `*` is the common case, when two vhosts both say "everything".
pub fn check_domain(
    d: &mut Decoder,
    route_config: &str,
    vhost: &str,
    domain: &str,
    f: &Field,
    seen: &mut Vec<(String, String, usize)>,
) {
    if let Some((_, first_vhost, line)) = seen.iter().find(|(dom, _, _)| dom == domain) {
        let rc = if route_config.is_empty() {
            String::new()
        } else {
            format!(" of route configuration `{route_config}`")
        };
        let (message, help) = if domain == "*" {
            (
                format!("only one virtual host{rc} may use the `*` domain"),
                format!("virtual host `{first_vhost}` (line {line}) already matches every host"),
            )
        } else {
            (
                format!("duplicate domain `{domain}` in virtual host `{vhost}`{rc}"),
                format!(
                    "virtual host `{first_vhost}` (line {line}) already has it; a domain may belong to one virtual host only"
                ),
            )
        };
        d.error_at_value(f, message, Some(help));
    } else {
        seen.push((domain.to_string(), vhost.to_string(), f.value_span().line));
    }
}

type DomainFields<'n> = Vec<(String, Field<'n>)>;

fn virtual_host<'n>(
    d: &mut Decoder,
    f: &Field<'n>,
) -> Option<(VirtualHost, bool, DomainFields<'n>)> {
    let o = d.obj(f, &VIRTUAL_HOST)?;
    let name = match o.get("name") {
        Some(n) => scalars::string(d, &n)?,
        None => {
            d.missing(&o, "name");
            String::new()
        }
    };
    let mut domain_fields = Vec::new();
    match o.get("domains") {
        Some(df) => {
            for item in d.seq(&df) {
                if let Some(s) = scalars::string(d, &item) {
                    domain_fields.push((s.to_ascii_lowercase(), item));
                }
            }
            if domain_fields.is_empty() {
                d.error_help(
                    &df,
                    format!("virtual host `{name}` has no domains"),
                    "add `domains: [\"*\"]` to match every host",
                );
            }
        }
        None => d.error_help(
            o.field_ref(),
            format!("virtual host `{name}` has no domains"),
            "add `domains: [\"*\"]` to match every host",
        ),
    }
    if let Some(m) = o.get("matcher") {
        d.error_help(
            &m,
            "the `matcher` tree API is not supported by meshsim",
            "use `routes`",
        );
    }
    let require_tls = match o.get("require_tls") {
        Some(r) => match scalars::enum_name(
            d,
            &r,
            "VirtualHost.TlsRequirementType",
            &["NONE", "EXTERNAL_ONLY", "ALL"],
        ) {
            Some("ALL") => RequireTls::All,
            Some("EXTERNAL_ONLY") => RequireTls::ExternalOnly,
            _ => RequireTls::None,
        },
        None => RequireTls::None,
    };
    let mut websocket = false;
    let mut routes = Vec::new();
    if let Some(r) = o.get("routes") {
        for item in d.seq(&r) {
            if let Some((route, ws)) = route(d, &item) {
                websocket |= ws;
                routes.push(route);
            }
        }
    }
    let headers = header_mutations(d, &o);
    let retry_policy = o
        .get("retry_policy")
        .and_then(|r| super::retry::retry_policy(d, &r));
    let domains = domain_fields.iter().map(|(s, _)| s.clone()).collect();
    Some((
        VirtualHost {
            name,
            domains,
            routes,
            headers,
            require_tls,
            retry_policy,
        },
        websocket,
        domain_fields,
    ))
}

fn route(d: &mut Decoder, f: &Field) -> Option<(Route, bool)> {
    let o = d.obj(f, &ROUTE)?;
    let name = o
        .get("name")
        .and_then(|n| scalars::string(d, &n))
        .filter(|n| !n.is_empty());
    let matcher = match o.get("match") {
        Some(m) => route_match(d, &m),
        None => {
            d.missing(&o, "match");
            None
        }
    };
    for key in ["filter_action", "non_forwarding_action"] {
        if let Some(a) = o.get(key) {
            d.error_help(
                &a,
                format!("route action `{key}` is not supported by meshsim"),
                "use `route`, `redirect` or `direct_response`",
            );
        }
    }
    let mut action: Option<(&str, Option<(RouteAction, bool)>)> = None;
    for key in ["route", "redirect", "direct_response"] {
        let Some(a) = o.get(key) else { continue };
        if let Some((first, _)) = &action {
            d.oneof_conflict(&a, first);
            continue;
        }
        let decoded = match key {
            "route" => forward(d, &a).map(|(fw, ws)| (RouteAction::Forward(Box::new(fw)), ws)),
            "redirect" => redirect(d, &a).map(|r| (RouteAction::Redirect(r), false)),
            _ => direct_response(d, &a).map(|r| (RouteAction::DirectResponse(r), false)),
        };
        action = Some((key, decoded));
    }
    let headers = header_mutations(d, &o);
    let (action, websocket) = match action {
        Some((_, decoded)) => decoded?,
        None => {
            d.error_help(
                o.field_ref(),
                "route has no action",
                "add `route: {cluster: NAME}`, `redirect` or `direct_response`",
            );
            return None;
        }
    };
    Some((
        Route {
            name,
            matcher: matcher?,
            action,
            headers,
        },
        websocket,
    ))
}

fn route_match(d: &mut Decoder, f: &Field) -> Option<RouteMatch> {
    let o = d.obj(f, &ROUTE_MATCH)?;
    for key in ["connect_matcher", "path_match_policy"] {
        if let Some(k) = o.get(key) {
            d.error_help(
                &k,
                format!("route match `{key}` is not supported by meshsim"),
                "use prefix, path, safe_regex or path_separated_prefix",
            );
            return None;
        }
    }
    let mut path: Option<(&str, Option<PathSpecifier>)> = None;
    for key in [
        "prefix",
        "path",
        "safe_regex",
        "regex",
        "path_separated_prefix",
    ] {
        let Some(v) = o.get(key) else { continue };
        if let Some((first, _)) = &path {
            d.oneof_conflict(&v, first);
            continue;
        }
        let spec = match key {
            "prefix" => scalars::string(d, &v).map(PathSpecifier::Prefix),
            "path" => scalars::string(d, &v).map(PathSpecifier::Path),
            "safe_regex" => matchers::regex_matcher(d, &v).map(PathSpecifier::SafeRegex),
            "regex" => {
                d.deprecated(
                    "RouteMatch.regex",
                    &v,
                    "deprecated v2 field `regex` in RouteMatch; loaded as `safe_regex`".into(),
                    "write `safe_regex: {google_re2: {}, regex: \"...\"}`".into(),
                );
                matchers::legacy_regex(d, &v).map(PathSpecifier::SafeRegex)
            }
            _ => scalars::string(d, &v).map(PathSpecifier::PathSeparatedPrefix),
        };
        path = Some((key, spec));
    }
    let path = match path {
        Some((_, spec)) => spec?,
        None => {
            d.error_help(
                o.field_ref(),
                "route match has no path specifier",
                "add `prefix: \"/\"` to match every path",
            );
            return None;
        }
    };
    let case_sensitive = o
        .get("case_sensitive")
        .and_then(|c| scalars::bool(d, &c))
        .unwrap_or(true);
    let headers = o
        .get("headers")
        .map(|h| matchers::header_matchers(d, &h))
        .unwrap_or_default();
    let query_parameters = o
        .get("query_parameters")
        .map(|q| matchers::query_parameter_matchers(d, &q))
        .unwrap_or_default();
    let grpc = match o.get("grpc") {
        Some(g) => {
            d.obj(&g, &GRPC_ROUTE_MATCH);
            true
        }
        None => false,
    };
    Some(RouteMatch {
        path,
        case_sensitive,
        headers,
        query_parameters,
        grpc,
    })
}

#[cfg(test)]
mod tests {
    use super::super::super::model::HostRewrite;
    use super::super::super::node::parse;
    use super::super::route_action::DEFAULT_ROUTE_TIMEOUT;
    use super::super::Mode;
    use super::*;
    use std::path::PathBuf;

    fn run(yaml: &str) -> (Option<RouteConfiguration>, Vec<String>, Decoder) {
        let doc = parse(yaml).unwrap();
        let (k, v) = &doc.as_map().unwrap()[0];
        let f = Field::root(&doc).child(k, v);
        let mut d = Decoder::new(PathBuf::from("."), Mode::Bootstrap);
        let r = route_configuration(&mut d, &f, false).map(|r| r.config);
        let facts_refs = std::mem::take(&mut d.facts.cluster_refs);
        let msgs = d.finish().into_iter().map(|d| d.message).collect();
        let mut d2 = Decoder::new(PathBuf::from("."), Mode::Bootstrap);
        d2.facts.cluster_refs = facts_refs;
        (r, msgs, d2)
    }

    #[test]
    fn v2_routes_with_host_rewrite_and_regex() {
        let (r, w, d) = run(
            "rc:\n  name: local_route\n  virtual_hosts:\n  - name: local_service\n    domains: [\"*\"]\n    routes:\n    - match: { prefix: \"/\" }\n      route: { host_rewrite: www.google.com, cluster: service_google }\n    - match: { regex: \"/api/v[0-9]+\" }\n      route: { cluster: api, timeout: 0s }\n",
        );
        let r = r.unwrap();
        let vh = &r.virtual_hosts[0];
        let RouteAction::Forward(fw) = &vh.routes[0].action else {
            panic!()
        };
        assert_eq!(
            fw.host_rewrite,
            HostRewrite::Literal("www.google.com".into())
        );
        assert_eq!(fw.timeout, Some(DEFAULT_ROUTE_TIMEOUT));
        assert_eq!(
            vh.routes[1].matcher.path,
            PathSpecifier::SafeRegex("/api/v[0-9]+".into())
        );
        let RouteAction::Forward(fw) = &vh.routes[1].action else {
            panic!()
        };
        assert_eq!(fw.timeout, None);
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!(d.facts.cluster_refs.len(), 2);
        assert_eq!(d.facts.cluster_refs[0].name, "service_google");
    }

    #[test]
    fn domain_rules() {
        let (_, e, _) = run(
            "rc:\n  name: r\n  virtual_hosts:\n  - {name: a, domains: [\"*\"], routes: []}\n  - {name: b, domains: [\"*\", foo.com, FOO.com], routes: []}\n  - {name: c, domains: [], routes: []}\n",
        );
        assert_eq!(
            e,
            [
                "only one virtual host of route configuration `r` may use the `*` domain",
                "duplicate domain `foo.com` in virtual host `b` of route configuration `r`",
                "virtual host `c` has no domains",
            ]
        );
    }

    #[test]
    fn weighted_total_must_match() {
        let (_, e, _) = run(
            "rc:\n  virtual_hosts:\n  - name: a\n    domains: [\"*\"]\n    routes:\n    - match: {prefix: /}\n      route:\n        weighted_clusters:\n          clusters: [{name: a, weight: 30}, {name: b, weight: 60}]\n          total_weight: 100\n",
        );
        assert_eq!(
            e,
            ["`total_weight` is 100 but the cluster weights add up to 90"]
        );
    }

    #[test]
    fn redirects_and_direct_responses() {
        let (r, e, _) = run(
            "rc:\n  virtual_hosts:\n  - name: a\n    domains: [\"*\"]\n    routes:\n    - match: {prefix: /old}\n      redirect: {https_redirect: true, response_code: FOUND}\n    - match: {path: /ping}\n      direct_response: {status: 200, body: {inline_string: pong}}\n",
        );
        assert!(e.is_empty(), "{e:?}");
        let r = r.unwrap();
        let routes = &r.virtual_hosts[0].routes;
        let RouteAction::Redirect(rd) = &routes[0].action else {
            panic!()
        };
        assert_eq!(
            (rd.scheme.as_deref(), rd.response_code),
            (Some("https"), 302)
        );
        let RouteAction::DirectResponse(dr) = &routes[1].action else {
            panic!()
        };
        assert_eq!((dr.status, dr.body.as_deref()), (200, Some("pong")));
    }
}

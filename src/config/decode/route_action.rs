//! What a route does: forward to a cluster (`cluster`, `cluster_header`, `weighted_clusters`,
//! with rewrites, timeout and hash policy), redirect, or answer directly. Every cluster name is
//! recorded for `validate.rs`.

use std::time::Duration;

use super::super::model::{
    ClusterSpecifier, DirectResponseAction, ForwardAction, HashPolicy, HashPolicyKind, HostRewrite,
    RedirectAction, RedirectPath, WeightedCluster, WeightedClusters,
};
use super::headers::header_mutations;
use super::matchers;
use super::scalars;
use super::tls::data_source;
use super::{Decoder, Field, Message, Obj, Site};

/// Envoy's default route timeout.
pub const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);

const ROUTE_ACTION: Message = Message {
    name: "RouteAction",
    fields: &[
        "cluster",
        "cluster_header",
        "weighted_clusters",
        "cluster_specifier_plugin",
        "inline_cluster_specifier_plugin",
        "cluster_not_found_response_code",
        "prefix_rewrite",
        "regex_rewrite",
        "path_rewrite_policy",
        "host_rewrite_literal",
        "host_rewrite",
        "auto_host_rewrite",
        "host_rewrite_header",
        "auto_host_rewrite_header",
        "host_rewrite_path_regex",
        "timeout",
        "idle_timeout",
        "hash_policy",
        "use_websocket",
        "retry_policy",
    ],
    ignored: &[
        "metadata_match",
        "append_x_forwarded_host",
        "early_data_policy",
        "retry_policy_typed_config",
        "request_mirror_policies",
        "request_mirror_policy",
        "priority",
        "rate_limits",
        "include_vh_rate_limits",
        "cors",
        "max_grpc_timeout",
        "grpc_timeout_offset",
        "upgrade_configs",
        "internal_redirect_policy",
        "internal_redirect_action",
        "max_internal_redirects",
        "hedge_policy",
        "max_stream_duration",
        "websocket_config",
    ],
};

const WEIGHTED_CLUSTER: Message = Message {
    name: "WeightedCluster",
    fields: &["clusters", "total_weight"],
    ignored: &[
        "runtime_key_prefix",
        "header_name",
        "random_value_specifier",
    ],
};

const CLUSTER_WEIGHT: Message = Message {
    name: "ClusterWeight",
    fields: &[
        "name",
        "weight",
        "cluster_header",
        "request_headers_to_add",
        "request_headers_to_remove",
        "response_headers_to_add",
        "response_headers_to_remove",
    ],
    ignored: &[
        "metadata_match",
        "typed_per_filter_config",
        "per_filter_config",
        "host_rewrite_literal",
    ],
};

const HASH_POLICY: Message = Message {
    name: "HashPolicy",
    fields: &[
        "header",
        "cookie",
        "connection_properties",
        "query_parameter",
        "filter_state",
        "terminal",
    ],
    ignored: &[],
};

const HASH_HEADER: Message = Message {
    name: "HashPolicy.Header",
    fields: &["header_name"],
    ignored: &["regex_rewrite"],
};

const HASH_COOKIE: Message = Message {
    name: "HashPolicy.Cookie",
    fields: &["name"],
    ignored: &["ttl", "path", "attributes"],
};

const HASH_CONNECTION: Message = Message {
    name: "HashPolicy.ConnectionProperties",
    fields: &["source_ip"],
    ignored: &[],
};

const HASH_QUERY: Message = Message {
    name: "HashPolicy.QueryParameter",
    fields: &["name"],
    ignored: &[],
};

const REDIRECT_ACTION: Message = Message {
    name: "RedirectAction",
    fields: &[
        "https_redirect",
        "scheme_redirect",
        "host_redirect",
        "port_redirect",
        "path_redirect",
        "prefix_rewrite",
        "regex_rewrite",
        "response_code",
        "strip_query",
    ],
    ignored: &[],
};

const DIRECT_RESPONSE: Message = Message {
    name: "DirectResponseAction",
    fields: &["status", "body"],
    ignored: &[],
};

fn cluster_ref(d: &mut Decoder, f: &Field) -> Option<String> {
    let name = scalars::string(d, f)?;
    if name.is_empty() {
        d.error_at_value(f, "cluster name is empty", None);
        return None;
    }
    d.facts.cluster_refs.push(Site {
        name: name.clone(),
        span: f.value_span(),
        path: f.path.clone(),
    });
    Some(name)
}

pub fn forward(d: &mut Decoder, f: &Field) -> Option<(ForwardAction, bool)> {
    let o = d.obj(f, &ROUTE_ACTION)?;
    for key in [
        "cluster_specifier_plugin",
        "inline_cluster_specifier_plugin",
    ] {
        if let Some(p) = o.get(key) {
            d.error_help(
                &p,
                "cluster specifier plugins are not supported by meshsim",
                "use `cluster`, `cluster_header` or `weighted_clusters`",
            );
            return None;
        }
    }
    if let Some(p) = o.get("path_rewrite_policy") {
        d.error_help(
            &p,
            "`path_rewrite_policy` extensions are not supported by meshsim",
            "use `prefix_rewrite` or `regex_rewrite`",
        );
    }
    let mut cluster: Option<(&str, Option<ClusterSpecifier>)> = None;
    for key in ["cluster", "cluster_header", "weighted_clusters"] {
        let Some(v) = o.get(key) else { continue };
        if let Some((first, _)) = &cluster {
            d.oneof_conflict(&v, first);
            continue;
        }
        let spec = match key {
            "cluster" => cluster_ref(d, &v).map(ClusterSpecifier::Cluster),
            "cluster_header" => {
                scalars::string(d, &v).map(|h| ClusterSpecifier::Header(h.to_ascii_lowercase()))
            }
            _ => weighted_clusters(d, &v).map(ClusterSpecifier::Weighted),
        };
        cluster = Some((key, spec));
    }
    let cluster = match cluster {
        Some((_, spec)) => spec,
        None => {
            d.error_help(
                o.field_ref(),
                "route action names no cluster",
                "add `cluster: NAME` (or `cluster_header` / `weighted_clusters`)",
            );
            None
        }
    };
    let cluster_not_found_response_code = match o.get("cluster_not_found_response_code") {
        Some(c) => match scalars::enum_name(
            d,
            &c,
            "RouteAction.ClusterNotFoundResponseCode",
            &["SERVICE_UNAVAILABLE", "NOT_FOUND", "INTERNAL_SERVER_ERROR"],
        ) {
            Some("NOT_FOUND") => 404,
            Some("INTERNAL_SERVER_ERROR") => 500,
            _ => 503,
        },
        None => 503,
    };
    let prefix_rewrite = o.get("prefix_rewrite").and_then(|p| scalars::string(d, &p));
    let regex_rewrite = o
        .get("regex_rewrite")
        .and_then(|r| matchers::regex_rewrite(d, &r));
    if let (Some(_), Some(r)) = (&prefix_rewrite, o.get("regex_rewrite")) {
        d.oneof_conflict(&r, "prefix_rewrite");
    }
    let host_rewrite = host_rewrite(d, &o);
    let timeout = match o.get("timeout") {
        Some(t) => scalars::duration(d, &t).and_then(|t| (!t.is_zero()).then_some(t)),
        None => Some(DEFAULT_ROUTE_TIMEOUT),
    };
    let idle_timeout = o
        .get("idle_timeout")
        .and_then(|t| scalars::duration(d, &t))
        .filter(|t| !t.is_zero());
    let hash_policy = match o.get("hash_policy") {
        Some(h) => d
            .seq(&h)
            .iter()
            .filter_map(|item| hash_policy(d, item))
            .collect(),
        None => Vec::new(),
    };
    let retry_policy = o
        .get("retry_policy")
        .and_then(|r| super::retry::retry_policy(d, &r));
    let mut websocket = false;
    if let Some(w) = o.get("use_websocket") {
        d.deprecated(
            "RouteAction.use_websocket",
            &w,
            "deprecated v2 field `use_websocket`; loaded as an HCM `upgrade_configs` entry for `websocket`".into(),
            "write `upgrade_configs: [{upgrade_type: websocket}]` on the HttpConnectionManager or the route".into(),
        );
        websocket = scalars::bool(d, &w).unwrap_or(false);
    }
    Some((
        ForwardAction {
            cluster: cluster?,
            cluster_not_found_response_code,
            prefix_rewrite,
            regex_rewrite,
            host_rewrite,
            timeout,
            idle_timeout,
            hash_policy,
            retry_policy,
        },
        websocket,
    ))
}

fn host_rewrite(d: &mut Decoder, o: &Obj) -> HostRewrite {
    let mut result: Option<(&str, HostRewrite)> = None;
    for key in [
        "host_rewrite_literal",
        "host_rewrite",
        "auto_host_rewrite",
        "host_rewrite_header",
        "auto_host_rewrite_header",
        "host_rewrite_path_regex",
    ] {
        let Some(v) = o.get(key) else { continue };
        if let Some((first, _)) = &result {
            d.oneof_conflict(&v, first);
            continue;
        }
        let rewrite = match key {
            "host_rewrite_literal" => scalars::string(d, &v).map(HostRewrite::Literal),
            "host_rewrite" => {
                d.deprecated(
                    "RouteAction.host_rewrite",
                    &v,
                    "deprecated v2 field `host_rewrite`; loaded as `host_rewrite_literal`".into(),
                    "rename it to `host_rewrite_literal`".into(),
                );
                scalars::string(d, &v).map(HostRewrite::Literal)
            }
            "auto_host_rewrite" => scalars::bool(d, &v).map(|b| {
                if b {
                    HostRewrite::Auto
                } else {
                    HostRewrite::None
                }
            }),
            "host_rewrite_header" => {
                scalars::string(d, &v).map(|h| HostRewrite::Header(h.to_ascii_lowercase()))
            }
            "auto_host_rewrite_header" => {
                d.deprecated(
                    "RouteAction.auto_host_rewrite_header",
                    &v,
                    "deprecated v2 field `auto_host_rewrite_header`; loaded as `host_rewrite_header`".into(),
                    "rename it to `host_rewrite_header`".into(),
                );
                scalars::string(d, &v).map(|h| HostRewrite::Header(h.to_ascii_lowercase()))
            }
            _ => matchers::regex_rewrite(d, &v).map(HostRewrite::PathRegex),
        };
        if let Some(r) = rewrite {
            result = Some((key, r));
        }
    }
    result.map_or(HostRewrite::None, |(_, r)| r)
}

fn weighted_clusters(d: &mut Decoder, f: &Field) -> Option<WeightedClusters> {
    let o = d.obj(f, &WEIGHTED_CLUSTER)?;
    let mut clusters = Vec::new();
    if let Some(c) = o.get("clusters") {
        for item in d.seq(&c) {
            if let Some(w) = cluster_weight(d, &item) {
                clusters.push(w);
            }
        }
    }
    if clusters.is_empty() {
        d.error(o.field_ref(), "`weighted_clusters` lists no clusters");
        return None;
    }
    let sum: u64 = clusters.iter().map(|c| u64::from(c.weight)).sum();
    if sum == 0 {
        d.error_help(
            o.field_ref(),
            "the weights of `weighted_clusters` add up to 0",
            "give at least one cluster a positive `weight`",
        );
        return None;
    }
    if let Some(t) = o.get("total_weight") {
        let total = scalars::u32(d, &t)?;
        if u64::from(total) != sum {
            d.error_at_value(
                &t,
                format!("`total_weight` is {total} but the cluster weights add up to {sum}"),
                Some(format!(
                    "set `total_weight: {sum}` or remove it (v3 uses the sum of the weights)"
                )),
            );
            return None;
        }
    }
    Some(WeightedClusters {
        clusters,
        total_weight: u32::try_from(sum).unwrap_or(u32::MAX),
    })
}

fn cluster_weight(d: &mut Decoder, f: &Field) -> Option<WeightedCluster> {
    let o = d.obj(f, &CLUSTER_WEIGHT)?;
    if let Some(h) = o.get("cluster_header") {
        d.error_help(
            &h,
            "`cluster_header` inside `weighted_clusters` is not supported by meshsim",
            "name the cluster with `name`",
        );
        return None;
    }
    let name = match o.get("name") {
        Some(n) => cluster_ref(d, &n)?,
        None => {
            d.missing(&o, "name");
            return None;
        }
    };
    let weight = match o.get("weight") {
        Some(w) => scalars::u32(d, &w)?,
        None => 0,
    };
    let headers = header_mutations(d, &o);
    Some(WeightedCluster {
        name,
        weight,
        headers,
    })
}

fn hash_policy(d: &mut Decoder, f: &Field) -> Option<HashPolicy> {
    let o = d.obj(f, &HASH_POLICY)?;
    let terminal = o
        .get("terminal")
        .and_then(|t| scalars::bool(d, &t))
        .unwrap_or(false);
    if let Some(fs) = o.get("filter_state") {
        d.error_help(
            &fs,
            "`filter_state` hash policies are not supported by meshsim",
            "hash on a header, cookie, query parameter or the source IP",
        );
        return None;
    }
    let kind = if let Some(h) = o.get("header") {
        let ho = d.obj(&h, &HASH_HEADER)?;
        let name = ho.get("header_name").and_then(|n| scalars::string(d, &n));
        HashPolicyKind::Header {
            name: name?.to_ascii_lowercase(),
        }
    } else if let Some(c) = o.get("cookie") {
        let co = d.obj(&c, &HASH_COOKIE)?;
        HashPolicyKind::Cookie {
            name: co.get("name").and_then(|n| scalars::string(d, &n))?,
        }
    } else if let Some(c) = o.get("connection_properties") {
        let co = d.obj(&c, &HASH_CONNECTION)?;
        if let Some(s) = co.get("source_ip") {
            scalars::bool(d, &s);
        }
        HashPolicyKind::SourceIp
    } else if let Some(q) = o.get("query_parameter") {
        let qo = d.obj(&q, &HASH_QUERY)?;
        HashPolicyKind::QueryParameter {
            name: qo.get("name").and_then(|n| scalars::string(d, &n))?,
        }
    } else {
        d.error_help(
            o.field_ref(),
            "hash policy has no key",
            "set one of header, cookie, connection_properties or query_parameter",
        );
        return None;
    };
    Some(HashPolicy { kind, terminal })
}

pub fn redirect(d: &mut Decoder, f: &Field) -> Option<RedirectAction> {
    let o = d.obj(f, &REDIRECT_ACTION)?;
    let mut scheme = None;
    if let Some(h) = o.get("https_redirect") {
        if scalars::bool(d, &h) == Some(true) {
            scheme = Some("https".to_string());
        }
    }
    if let Some(s) = o.get("scheme_redirect") {
        if scheme.is_some() {
            d.oneof_conflict(&s, "https_redirect");
        }
        scheme = scalars::string(d, &s).map(|s| s.to_ascii_lowercase());
    }
    let host = o.get("host_redirect").and_then(|h| scalars::string(d, &h));
    let port = o.get("port_redirect").and_then(|p| scalars::port(d, &p));
    let mut path = RedirectPath::Keep;
    let mut chosen: Option<&str> = None;
    for key in ["path_redirect", "prefix_rewrite", "regex_rewrite"] {
        let Some(v) = o.get(key) else { continue };
        if let Some(first) = chosen {
            d.oneof_conflict(&v, first);
            continue;
        }
        chosen = Some(key);
        path = match key {
            "path_redirect" => scalars::string(d, &v).map(RedirectPath::Path),
            "prefix_rewrite" => scalars::string(d, &v).map(RedirectPath::PrefixRewrite),
            _ => matchers::regex_rewrite(d, &v).map(RedirectPath::RegexRewrite),
        }
        .unwrap_or(RedirectPath::Keep);
    }
    let response_code = match o.get("response_code") {
        Some(c) => match scalars::enum_name(
            d,
            &c,
            "RedirectAction.RedirectResponseCode",
            &[
                "MOVED_PERMANENTLY",
                "FOUND",
                "SEE_OTHER",
                "TEMPORARY_REDIRECT",
                "PERMANENT_REDIRECT",
            ],
        ) {
            Some("FOUND") => 302,
            Some("SEE_OTHER") => 303,
            Some("TEMPORARY_REDIRECT") => 307,
            Some("PERMANENT_REDIRECT") => 308,
            _ => 301,
        },
        None => 301,
    };
    let strip_query = o
        .get("strip_query")
        .and_then(|s| scalars::bool(d, &s))
        .unwrap_or(false);
    Some(RedirectAction {
        scheme,
        host,
        port,
        path,
        response_code,
        strip_query,
    })
}

pub fn direct_response(d: &mut Decoder, f: &Field) -> Option<DirectResponseAction> {
    let o = d.obj(f, &DIRECT_RESPONSE)?;
    let status = match o.get("status") {
        Some(s) => {
            let v = scalars::u32(d, &s)?;
            if !(100..=599).contains(&v) {
                d.error_at_value(
                    &s,
                    format!("status {v} is not an HTTP status code"),
                    Some("use a status between 100 and 599".into()),
                );
                return None;
            }
            v as u16
        }
        None => {
            d.missing(&o, "status");
            return None;
        }
    };
    let body = match o.get("body") {
        Some(b) => {
            let source = data_source(d, &b)?;
            Some(String::from_utf8_lossy(&source.bytes).into_owned())
        }
        None => None,
    };
    Some(DirectResponseAction { status, body })
}

#[cfg(test)]
mod tests {
    use super::super::super::node::parse;
    use super::super::Mode;
    use super::*;
    use std::path::PathBuf;

    fn run(yaml: &str) -> (Option<ForwardAction>, Vec<String>) {
        let doc = parse(yaml).unwrap();
        let (k, v) = &doc.as_map().unwrap()[0];
        let f = Field::root(&doc).child(k, v);
        let mut d = Decoder::new(PathBuf::from("."), Mode::Bootstrap);
        let a = forward(&mut d, &f).map(|(a, _)| a);
        (a, d.finish().into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn rewrites_hashing_and_defaults() {
        let (a, e) = run(
            "r: {cluster: c, prefix_rewrite: /v2/, auto_host_rewrite: true, idle_timeout: 30s, cluster_not_found_response_code: NOT_FOUND, hash_policy: [{header: {header_name: X-User}}, {connection_properties: {source_ip: true}, terminal: true}]}",
        );
        assert!(e.is_empty(), "{e:?}");
        let a = a.unwrap();
        assert_eq!(a.cluster, ClusterSpecifier::Cluster("c".into()));
        assert_eq!(a.prefix_rewrite.as_deref(), Some("/v2/"));
        assert_eq!(a.host_rewrite, HostRewrite::Auto);
        assert_eq!(a.timeout, Some(DEFAULT_ROUTE_TIMEOUT));
        assert_eq!(a.idle_timeout, Some(Duration::from_secs(30)));
        assert_eq!(a.cluster_not_found_response_code, 404);
        assert_eq!(
            a.hash_policy[0].kind,
            HashPolicyKind::Header {
                name: "x-user".into()
            }
        );
        assert!(a.hash_policy[1].terminal);
    }

    #[test]
    fn oneof_members_conflict() {
        let (_, e) = run("r: {cluster: a, cluster_header: x-cluster, host_rewrite_literal: h, auto_host_rewrite: true}");
        assert_eq!(
            e,
            [
                "`cluster_header` cannot be combined with `cluster`",
                "`auto_host_rewrite` cannot be combined with `host_rewrite_literal`",
            ]
        );
    }
}

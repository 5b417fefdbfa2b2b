//! The route table: a `RouteConfiguration` compiled once (regexes, header values, domain index)
//! into an immutable structure the request path only reads. A new config produces a new table
//! that is swapped in atomically.

pub mod domains;
pub mod matcher;
mod redirect;

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use http::header::HeaderName;
use regex::Regex;

use crate::config::model::{
    ClusterSpecifier, HashPolicy, HeaderMutations, HostRewrite, RedirectAction, RetryPolicy,
    RouteAction, RouteConfiguration,
};
use crate::proxy::headers::{self, CompiledHeader, InvalidHeader};

use domains::DomainIndex;
use matcher::{BadRegex, CompiledMatch, RequestView};

pub use redirect::redirect_location;

#[derive(Debug, thiserror::Error)]
pub enum RouteTableError {
    #[error("route configuration `{route_config}`: {source}")]
    Regex {
        route_config: String,
        #[source]
        source: BadRegex,
    },
    #[error("route configuration `{route_config}`: {source}")]
    Header {
        route_config: String,
        #[source]
        source: InvalidHeader,
    },
}

/// Header edits at one level (route config, virtual host, route, weighted cluster).
#[derive(Debug, Default)]
pub struct Mutations {
    pub request_add: Vec<CompiledHeader>,
    pub request_remove: Vec<HeaderName>,
    pub response_add: Vec<CompiledHeader>,
    pub response_remove: Vec<HeaderName>,
}

impl Mutations {
    fn compile(m: &HeaderMutations) -> Result<Self, InvalidHeader> {
        Ok(Mutations {
            request_add: headers::compile_additions(&m.request_headers_to_add)?,
            request_remove: headers::compile_removals(&m.request_headers_to_remove)?,
            response_add: headers::compile_additions(&m.response_headers_to_add)?,
            response_remove: headers::compile_removals(&m.response_headers_to_remove)?,
        })
    }

    pub fn apply_request(&self, h: &mut http::HeaderMap) {
        headers::apply_removals(h, &self.request_remove);
        headers::apply_additions(h, &self.request_add);
    }

    pub fn apply_response(&self, h: &mut http::HeaderMap) {
        headers::apply_removals(h, &self.response_remove);
        headers::apply_additions(h, &self.response_add);
    }
}

#[derive(Debug)]
pub struct RouteTable {
    pub name: String,
    pub vhosts: Vec<VirtualHostEntry>,
    domains: DomainIndex,
    pub mutations: Mutations,
}

#[derive(Debug)]
pub struct VirtualHostEntry {
    pub name: String,
    pub routes: Vec<RouteEntry>,
    pub mutations: Mutations,
}

#[derive(Debug)]
pub struct RouteEntry {
    pub name: Option<String>,
    pub matcher: CompiledMatch,
    pub action: Action,
    pub mutations: Mutations,
}

#[derive(Debug)]
pub enum Action {
    Forward(Box<ForwardEntry>),
    Redirect(RedirectEntry),
    Direct { status: u16, body: Option<Bytes> },
}

#[derive(Debug)]
pub struct ForwardEntry {
    pub cluster: ClusterChoice,
    pub cluster_not_found_response_code: u16,
    pub prefix_rewrite: Option<String>,
    pub regex_rewrite: Option<(Regex, String)>,
    pub host_rewrite: HostRewriteEntry,
    pub timeout: Option<std::time::Duration>,
    /// `x-envoy-expected-rq-timeout-ms` for the configured timeout, built once.
    pub timeout_header: Option<http::HeaderValue>,
    pub hash_policy: Vec<HashPolicy>,
    /// The route's retry policy, else its virtual host's.
    pub retry: Option<Arc<RetryRule>>,
    /// The route's stream idle timeout (overrides the HCM's `stream_idle_timeout`).
    pub idle_timeout: Option<std::time::Duration>,
}

#[derive(Debug)]
pub enum HostRewriteEntry {
    None,
    Literal(http::HeaderValue),
    Auto,
    Header(HeaderName),
    PathRegex(Regex, String),
}

#[derive(Debug)]
pub enum ClusterChoice {
    Named(String),
    Header(HeaderName),
    Weighted(Vec<WeightedEntry>),
}

#[derive(Debug)]
pub struct WeightedEntry {
    pub name: String,
    /// Running total including this entry, so a draw in [0, total) finds its entry by scan.
    pub upper_bound: u32,
    pub mutations: Mutations,
}

impl RouteTable {
    pub fn build(config: &RouteConfiguration) -> Result<RouteTable, RouteTableError> {
        let regex_err = |source| RouteTableError::Regex {
            route_config: config.name.clone(),
            source,
        };
        let header_err = |source| RouteTableError::Header {
            route_config: config.name.clone(),
            source,
        };
        let mut vhosts = Vec::with_capacity(config.virtual_hosts.len());
        for vh in &config.virtual_hosts {
            // Compiled once, shared by every route of the host that has no policy of its own.
            let vhost_retry = vh
                .retry_policy
                .as_ref()
                .map(RetryRule::compile)
                .transpose()
                .map_err(regex_err)?
                .map(Arc::new);
            let mut routes = Vec::with_capacity(vh.routes.len());
            for r in &vh.routes {
                let action = match &r.action {
                    RouteAction::Forward(f) => {
                        let mut entry = compile_forward(f).map_err(|e| match e {
                            CompileError::Regex(e) => regex_err(e),
                            CompileError::Header(e) => header_err(e),
                        })?;
                        // A route's own policy replaces the virtual host's (Envoy does not
                        // merge them).
                        if entry.retry.is_none() {
                            entry.retry = vhost_retry.clone();
                        }
                        Action::Forward(Box::new(entry))
                    }
                    RouteAction::Redirect(r) => {
                        Action::Redirect(RedirectEntry::compile(r).map_err(regex_err)?)
                    }
                    RouteAction::DirectResponse(d) => Action::Direct {
                        status: d.status,
                        body: d.body.clone().map(Bytes::from),
                    },
                };
                routes.push(RouteEntry {
                    name: r.name.clone(),
                    matcher: CompiledMatch::compile(&r.matcher).map_err(regex_err)?,
                    action,
                    mutations: Mutations::compile(&r.headers).map_err(header_err)?,
                });
            }
            vhosts.push(VirtualHostEntry {
                name: vh.name.clone(),
                routes,
                mutations: Mutations::compile(&vh.headers).map_err(header_err)?,
            });
        }
        Ok(RouteTable {
            name: config.name.clone(),
            domains: DomainIndex::build(config.virtual_hosts.iter().map(|v| v.domains.as_slice())),
            vhosts,
            mutations: Mutations::compile(&config.headers).map_err(header_err)?,
        })
    }

    /// The virtual host for the authority, then the first route that matches.
    pub fn route(&self, req: &RequestView<'_>) -> Option<(&VirtualHostEntry, &RouteEntry)> {
        let vhost = &self.vhosts[self.domains.find(req.authority)?];
        let route = vhost.routes.iter().find(|r| r.matcher.matches(req))?;
        Some((vhost, route))
    }
}

enum CompileError {
    Regex(BadRegex),
    Header(InvalidHeader),
}

fn compile_forward(f: &crate::config::model::ForwardAction) -> Result<ForwardEntry, CompileError> {
    let cluster = match &f.cluster {
        ClusterSpecifier::Cluster(name) => ClusterChoice::Named(name.clone()),
        ClusterSpecifier::Header(h) => {
            ClusterChoice::Header(HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                CompileError::Header(InvalidHeader {
                    name: h.clone(),
                    reason: "not a valid header name",
                })
            })?)
        }
        ClusterSpecifier::Weighted(w) => {
            let mut total = 0;
            let mut entries = Vec::with_capacity(w.clusters.len());
            for c in &w.clusters {
                total += c.weight;
                entries.push(WeightedEntry {
                    name: c.name.clone(),
                    upper_bound: total,
                    mutations: Mutations::compile(&c.headers).map_err(CompileError::Header)?,
                });
            }
            ClusterChoice::Weighted(entries)
        }
    };
    let host_rewrite = match &f.host_rewrite {
        HostRewrite::None => HostRewriteEntry::None,
        HostRewrite::Literal(h) => {
            HostRewriteEntry::Literal(http::HeaderValue::from_str(h).map_err(|_| {
                CompileError::Header(InvalidHeader {
                    name: "host_rewrite_literal".into(),
                    reason: "the value contains control characters",
                })
            })?)
        }
        HostRewrite::Auto => HostRewriteEntry::Auto,
        HostRewrite::Header(h) => {
            HostRewriteEntry::Header(HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                CompileError::Header(InvalidHeader {
                    name: h.clone(),
                    reason: "not a valid header name",
                })
            })?)
        }
        HostRewrite::PathRegex(r) => {
            let (re, sub) =
                compile_rewrite(&r.pattern, &r.substitution).map_err(CompileError::Regex)?;
            HostRewriteEntry::PathRegex(re, sub)
        }
    };
    Ok(ForwardEntry {
        cluster,
        cluster_not_found_response_code: f.cluster_not_found_response_code,
        prefix_rewrite: f.prefix_rewrite.clone(),
        regex_rewrite: f
            .regex_rewrite
            .as_ref()
            .map(|r| compile_rewrite(&r.pattern, &r.substitution))
            .transpose()
            .map_err(CompileError::Regex)?,
        host_rewrite,
        timeout: f.timeout,
        timeout_header: f
            .timeout
            .map(|t| http::HeaderValue::from(t.as_millis() as u64)),
        hash_policy: f.hash_policy.clone(),
        retry: f
            .retry_policy
            .as_ref()
            .map(RetryRule::compile)
            .transpose()
            .map_err(CompileError::Regex)?
            .map(Arc::new),
        idle_timeout: f.idle_timeout,
    })
}

/// A `regex_rewrite`-style pattern: unanchored, every match replaced (RE2::GlobalReplace).
pub(crate) fn compile_rewrite(
    pattern: &str,
    substitution: &str,
) -> Result<(Regex, String), BadRegex> {
    Regex::new(pattern)
        .map(|re| (re, re2_substitution(substitution)))
        .map_err(|source| BadRegex {
            pattern: pattern.to_string(),
            source,
        })
}

/// A redirect action with its regex (if any) compiled once.
#[derive(Debug)]
pub struct RedirectEntry {
    pub action: RedirectAction,
    pub regex: Option<(Regex, String)>,
}

impl RedirectEntry {
    fn compile(r: &RedirectAction) -> Result<Self, BadRegex> {
        let regex = match &r.path {
            crate::config::model::RedirectPath::RegexRewrite(rw) => {
                Some(compile_rewrite(&rw.pattern, &rw.substitution)?)
            }
            _ => None,
        };
        Ok(RedirectEntry {
            action: r.clone(),
            regex,
        })
    }
}

/// RE2 substitutions write capture groups as `\1`; the regex crate wants `${1}`.
fn re2_substitution(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(|d| d.is_ascii_digit()) => {
                let d = chars.next().expect("peeked");
                out.push_str(&format!("${{{d}}}"));
            }
            '\\' if chars.peek() == Some(&'\\') => {
                chars.next();
                out.push('\\');
            }
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

/// A retry policy with its `retriable_headers` matchers compiled.
#[derive(Debug)]
pub struct RetryRule {
    pub policy: RetryPolicy,
    pub retriable_headers: Vec<matcher::CompiledHeaderMatcher>,
}

impl RetryRule {
    pub(crate) fn compile(policy: &RetryPolicy) -> Result<RetryRule, BadRegex> {
        Ok(RetryRule {
            retriable_headers: policy
                .retriable_headers
                .iter()
                .map(matcher::compile_header)
                .collect::<Result<_, _>>()?,
            policy: policy.clone(),
        })
    }
}

impl ForwardEntry {
    /// The cluster when the route names one (`cluster:`), for filters that care.
    pub fn named_cluster(&self) -> Option<&str> {
        match &self.cluster {
            ClusterChoice::Named(n) => Some(n),
            _ => None,
        }
    }

    /// The upstream path after `prefix_rewrite` / `regex_rewrite`, or None when unchanged.
    /// `path` excludes the query, which is carried over untouched.
    pub fn rewrite_path(
        &self,
        matcher: &CompiledMatch,
        path: &str,
        query: Option<&str>,
    ) -> Option<String> {
        let rewritten = if let Some(prefix) = &self.prefix_rewrite {
            let cut = matcher.rewritable_prefix_len(path).min(path.len());
            let rest = &path[cut..];
            // Envoy avoids a double slash when the rewrite ends with `/` and the rest starts with one.
            if prefix.ends_with('/') && rest.starts_with('/') {
                format!("{}{}", prefix, &rest[1..])
            } else {
                format!("{prefix}{rest}")
            }
        } else if let Some((re, sub)) = &self.regex_rewrite {
            re.replace_all(path, sub.as_str()).into_owned()
        } else {
            return None;
        };
        Some(match query {
            Some(q) => format!("{rewritten}?{q}"),
            None => rewritten,
        })
    }

    /// Picks the cluster name for this request (`draw` is a uniform random number, used by
    /// weighted clusters). Returns the weighted entry too, for its header mutations.
    pub fn choose_cluster<'a>(
        &'a self,
        headers: &http::HeaderMap,
        draw: u32,
    ) -> Option<(Cow<'a, str>, Option<&'a WeightedEntry>)> {
        match &self.cluster {
            ClusterChoice::Named(n) => Some((Cow::Borrowed(n), None)),
            ClusterChoice::Header(h) => headers
                .get(h)?
                .to_str()
                .ok()
                .map(|n| (Cow::Owned(n.to_string()), None)),
            ClusterChoice::Weighted(entries) => {
                let total = entries.last()?.upper_bound;
                if total == 0 {
                    return None;
                }
                let pick = draw % total;
                let e = entries.iter().find(|e| pick < e.upper_bound)?;
                Some((Cow::Borrowed(&e.name), Some(e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::*;

    fn forward(cluster: ClusterSpecifier) -> ForwardAction {
        ForwardAction {
            cluster,
            cluster_not_found_response_code: 503,
            prefix_rewrite: None,
            regex_rewrite: None,
            host_rewrite: HostRewrite::None,
            timeout: Some(std::time::Duration::from_secs(15)),
            idle_timeout: None,
            hash_policy: vec![],
            retry_policy: None,
        }
    }

    fn route(prefix: &str, action: RouteAction) -> Route {
        Route {
            name: None,
            matcher: RouteMatch {
                path: PathSpecifier::Prefix(prefix.into()),
                case_sensitive: true,
                headers: vec![],
                query_parameters: vec![],
                grpc: false,
            },
            action,
            headers: HeaderMutations::default(),
        }
    }

    fn table() -> RouteTable {
        RouteTable::build(&RouteConfiguration {
            name: "local_route".into(),
            virtual_hosts: vec![
                VirtualHost {
                    name: "backend".into(),
                    domains: vec!["*".into()],
                    routes: vec![
                        route(
                            "/service/1",
                            RouteAction::Forward(Box::new(forward(ClusterSpecifier::Cluster(
                                "service1".into(),
                            )))),
                        ),
                        route(
                            "/service/2",
                            RouteAction::Forward(Box::new(forward(ClusterSpecifier::Cluster(
                                "service2".into(),
                            )))),
                        ),
                        route(
                            "/",
                            RouteAction::DirectResponse(DirectResponseAction {
                                status: 200,
                                body: Some("ok".into()),
                            }),
                        ),
                    ],
                    headers: HeaderMutations::default(),
                    require_tls: RequireTls::None,
                    retry_policy: None,
                },
                VirtualHost {
                    name: "foo".into(),
                    domains: vec!["foo.com".into()],
                    routes: vec![route(
                        "/",
                        RouteAction::Forward(Box::new(forward(ClusterSpecifier::Cluster(
                            "local_service".into(),
                        )))),
                    )],
                    headers: HeaderMutations::default(),
                    require_tls: RequireTls::None,
                    retry_policy: None,
                },
            ],
            headers: HeaderMutations::default(),
        })
        .unwrap()
    }

    fn view<'a>(authority: &'a str, path: &'a str, h: &'a http::HeaderMap) -> RequestView<'a> {
        RequestView {
            method: "GET",
            path,
            query: None,
            authority,
            scheme: "http",
            headers: h,
        }
    }

    fn cluster_of(t: &RouteTable, authority: &str, path: &str) -> Option<String> {
        let h = http::HeaderMap::new();
        let (_, r) = t.route(&view(authority, path, &h))?;
        match &r.action {
            Action::Forward(f) => Some(f.choose_cluster(&h, 0).unwrap().0.to_string()),
            Action::Direct { .. } => Some("<direct>".into()),
            Action::Redirect(_) => Some("<redirect>".into()),
        }
    }

    #[test]
    fn first_matching_route_in_the_selected_vhost_wins() {
        let t = table();
        assert_eq!(
            cluster_of(&t, "localhost:8080", "/service/1").as_deref(),
            Some("service1")
        );
        assert_eq!(
            cluster_of(&t, "localhost:8080", "/service/2/x").as_deref(),
            Some("service2")
        );
        assert_eq!(
            cluster_of(&t, "localhost:8080", "/other").as_deref(),
            Some("<direct>")
        );
        assert_eq!(
            cluster_of(&t, "foo.com", "/service/1").as_deref(),
            Some("local_service")
        );
    }

    #[test]
    fn prefix_and_regex_rewrites_keep_the_query() {
        let mut f = forward(ClusterSpecifier::Cluster("c".into()));
        f.prefix_rewrite = Some("/v2/".into());
        let entry = compile_forward(&f).ok().unwrap();
        let m = CompiledMatch::compile(&RouteMatch {
            path: PathSpecifier::Prefix("/api/".into()),
            case_sensitive: true,
            headers: vec![],
            query_parameters: vec![],
            grpc: false,
        })
        .unwrap();
        assert_eq!(
            entry.rewrite_path(&m, "/api/users", Some("a=1")).as_deref(),
            Some("/v2/users?a=1")
        );

        let mut f = forward(ClusterSpecifier::Cluster("c".into()));
        f.regex_rewrite = Some(RegexRewrite {
            pattern: "^/service/([^/]+)(/.*)$".into(),
            substitution: "\\2/instance/\\1".into(),
        });
        let entry = compile_forward(&f).ok().unwrap();
        assert_eq!(
            entry
                .rewrite_path(&m, "/service/foo/v1/api", None)
                .as_deref(),
            Some("/v1/api/instance/foo")
        );
    }

    #[test]
    fn weighted_clusters_split_by_draw() {
        let f = forward(ClusterSpecifier::Weighted(WeightedClusters {
            clusters: vec![
                WeightedCluster {
                    name: "a".into(),
                    weight: 90,
                    headers: HeaderMutations::default(),
                },
                WeightedCluster {
                    name: "b".into(),
                    weight: 10,
                    headers: HeaderMutations::default(),
                },
            ],
            total_weight: 100,
        }));
        let entry = compile_forward(&f).ok().unwrap();
        let h = http::HeaderMap::new();
        let picks: Vec<String> = (0..100)
            .map(|d| entry.choose_cluster(&h, d).unwrap().0.into_owned())
            .collect();
        assert_eq!(picks.iter().filter(|n| **n == "a").count(), 90);
        assert_eq!(picks.iter().filter(|n| **n == "b").count(), 10);
    }

    #[test]
    fn cluster_header_picks_from_the_request() {
        let entry = compile_forward(&forward(ClusterSpecifier::Header("x-cluster".into())))
            .ok()
            .unwrap();
        let mut h = http::HeaderMap::new();
        assert!(entry.choose_cluster(&h, 0).is_none());
        h.insert("x-cluster", http::HeaderValue::from_static("blue"));
        assert_eq!(entry.choose_cluster(&h, 0).unwrap().0, "blue");
    }
}

//! Envoy's default tag extraction (`TagProducerImpl` with the built-in `TagNameValues`).
//!
//! Prometheus metric names and label order come straight out of this, so the extractor table,
//! the order extractors run in and the way matched text is cut out all follow Envoy's
//! `well_known_names.cc`, `tag_extractor_impl.cc` and `tag_producer_impl.cc`. Extraction is
//! run once per stat at registration; rendering only reads the cached result.

use regex::Regex;

/// A dimension pulled out of a stat name, e.g. `envoy.cluster_name = "service1"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub name: String,
    pub value: String,
}

/// Envoy's `TagNames` constants (the subset with default extractors).
pub mod names {
    pub const CLUSTER_NAME: &str = "envoy.cluster_name";
    pub const LISTENER_ADDRESS: &str = "envoy.listener_address";
    pub const HTTP_CONN_MANAGER_PREFIX: &str = "envoy.http_conn_manager_prefix";
    pub const HTTP_USER_AGENT: &str = "envoy.http_user_agent";
    pub const SSL_CIPHER: &str = "envoy.ssl_cipher";
    pub const SSL_CURVE: &str = "envoy.ssl_curve";
    pub const SSL_SIGALG: &str = "envoy.ssl_sigalg";
    pub const SSL_VERSION: &str = "envoy.ssl_version";
    /// Not namespaced in Envoy either, kept for backwards compatibility there.
    pub const SSL_CIPHER_SUITE: &str = "cipher_suite";
    pub const CLIENTSSL_PREFIX: &str = "envoy.clientssl_prefix";
    pub const MONGO_PREFIX: &str = "envoy.mongo_prefix";
    pub const MONGO_CMD: &str = "envoy.mongo_cmd";
    pub const MONGO_COLLECTION: &str = "envoy.mongo_collection";
    pub const MONGO_CALLSITE: &str = "envoy.mongo_callsite";
    pub const RATELIMIT_PREFIX: &str = "envoy.ratelimit_prefix";
    pub const LOCAL_HTTP_RATELIMIT_PREFIX: &str = "envoy.local_http_ratelimit_prefix";
    pub const LOCAL_NETWORK_RATELIMIT_PREFIX: &str = "envoy.local_network_ratelimit_prefix";
    pub const LOCAL_LISTENER_RATELIMIT_PREFIX: &str = "envoy.local_listener_ratelimit_prefix";
    pub const DNS_FILTER_PREFIX: &str = "envoy.dns_filter_prefix";
    pub const TCP_PREFIX: &str = "envoy.tcp_prefix";
    pub const UDP_PREFIX: &str = "envoy.udp_prefix";
    pub const FAULT_DOWNSTREAM_CLUSTER: &str = "envoy.fault_downstream_cluster";
    pub const DYNAMO_OPERATION: &str = "envoy.dynamo_operation";
    pub const DYNAMO_TABLE: &str = "envoy.dynamo_table";
    pub const DYNAMO_PARTITION_ID: &str = "envoy.dynamo_partition_id";
    pub const GRPC_BRIDGE_SERVICE: &str = "envoy.grpc_bridge_service";
    pub const GRPC_BRIDGE_METHOD: &str = "envoy.grpc_bridge_method";
    pub const VIRTUAL_HOST: &str = "envoy.virtual_host";
    pub const VIRTUAL_CLUSTER: &str = "envoy.virtual_cluster";
    pub const RESPONSE_CODE: &str = "envoy.response_code";
    pub const RESPONSE_CODE_CLASS: &str = "envoy.response_code_class";
    pub const RDS_ROUTE_CONFIG: &str = "envoy.rds_route_config";
    pub const ROUTE: &str = "envoy.route";
    pub const EXT_AUTHZ_PREFIX: &str = "envoy.ext_authz_prefix";
    pub const WORKER_ID: &str = "envoy.worker_id";
    pub const THRIFT_PREFIX: &str = "envoy.thrift_prefix";
    pub const REDIS_PREFIX: &str = "envoy.redis_prefix";
}

// Envoy's regex building blocks (`expandRegex`), rewritten with ASCII classes because RE2's
// `\d`/`\w` are ASCII-only while the `regex` crate's are Unicode-aware.
const ADDRESS: &str =
    r"(?:(?:[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[[a-fA-F_0-9]+\])_[0-9]+)";
const CIPHER: &str = r"[0-9A-Za-z_-]+";
const TLS_VERSION: &str = r"TLSv[0-9]\.[0-9]";
const TAG_VALUE: &str = r"[^\.]+";
/// Envoy's own tests expect route config names like `agg/route_config.1-23`, so `/` is accepted.
const ROUTE_CONFIG_NAME: &str = r"[0-9A-Za-z_\-./]+";
const LISTENER_OR_CLUSTER_WITH_NAME: &str = r"(?:listener|cluster)\..*?";

fn expand(regex: &str) -> String {
    regex
        .replace("<ADDRESS>", ADDRESS)
        .replace("<CIPHER>", CIPHER)
        .replace("<TLS_VERSION>", TLS_VERSION)
        .replace("<TAG_VALUE>", TAG_VALUE)
        .replace("<ROUTE_CONFIG_NAME>", ROUTE_CONFIG_NAME)
        .replace(
            "<LISTENER_OR_CLUSTER_WITH_NAME>",
            LISTENER_OR_CLUSTER_WITH_NAME,
        )
}

/// `(tag name, regex, substring pre-filter, value that must not be extracted)`, in Envoy's order.
const REGEX_DESCRIPTORS: &[(&str, &str, &str, &str)] = &[
    (names::RESPONSE_CODE, r"_rq(_([0-9]{3}))$", "_rq_", ""),
    (names::RESPONSE_CODE_CLASS, r"_rq_(([0-9]))xx$", "_rq_", ""),
    (
        names::DYNAMO_PARTITION_ID,
        r"^http\.<TAG_VALUE>\.dynamodb\.table\.<TAG_VALUE>\.capacity\.<TAG_VALUE>(\.__partition_id=([0-9A-Za-z_]{7}))$",
        ".dynamodb.table.",
        "",
    ),
    (
        names::DYNAMO_OPERATION,
        r"^http\.<TAG_VALUE>\.dynamodb.(?:operation|table\.<TAG_VALUE>\.capacity)(\.(<TAG_VALUE>))(?:\.|$)",
        ".dynamodb.",
        "",
    ),
    (
        names::DYNAMO_TABLE,
        r"^http\.<TAG_VALUE>\.dynamodb.(?:table|error)\.((<TAG_VALUE>)\.)",
        ".dynamodb.",
        "",
    ),
    (
        names::SSL_CIPHER,
        r"^listener\..*?\.ssl\.ciphers(\.(<CIPHER>))$",
        ".ssl.ciphers.",
        "",
    ),
    (
        names::SSL_CURVE,
        r"^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.curves(\.(<CIPHER>))$",
        ".ssl.curves.",
        "",
    ),
    (
        names::SSL_SIGALG,
        r"^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.sigalgs(\.(<CIPHER>))$",
        ".ssl.sigalgs.",
        "",
    ),
    (
        names::SSL_VERSION,
        r"^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.versions(\.(<TLS_VERSION>))$",
        ".ssl.versions.",
        "",
    ),
    (
        names::SSL_CIPHER_SUITE,
        r"^cluster\.<TAG_VALUE>\.ssl\.ciphers(\.(<CIPHER>))$",
        ".ssl.ciphers.",
        "",
    ),
    (
        names::HTTP_CONN_MANAGER_PREFIX,
        r"^listener\..*?\.http\.((<TAG_VALUE>)\.)",
        ".http.",
        "",
    ),
    (
        names::WORKER_ID,
        r"^(?:listener\.(?:<ADDRESS>|<TAG_VALUE>)\.|server\.|listener_manager\.)worker_(([0-9]+)\.)",
        "",
        "",
    ),
    (
        names::LISTENER_ADDRESS,
        r"^listener\.((<ADDRESS>|<TAG_VALUE>)\.)",
        "",
        "admin",
    ),
    (
        names::RDS_ROUTE_CONFIG,
        r"^http\.<TAG_VALUE>\.rds\.((<ROUTE_CONFIG_NAME>)\.)[0-9A-Za-z_]+?$",
        ".rds.",
        "",
    ),
];

/// `(tag name, token pattern)` in Envoy's order; `$` is the captured token, `*` any one token,
/// `**` any number of tokens.
const TOKENIZED_DESCRIPTORS: &[(&str, &str)] = &[
    (
        names::MONGO_CALLSITE,
        "mongo.*.collection.*.callsite.$.query.**",
    ),
    (names::MONGO_COLLECTION, "mongo.*.collection.$.**.query.*"),
    (names::MONGO_CMD, "mongo.*.cmd.$.**"),
    (names::GRPC_BRIDGE_METHOD, "cluster.*.grpc.*.$.**"),
    (names::HTTP_USER_AGENT, "http.*.user_agent.$.**"),
    (names::VIRTUAL_CLUSTER, "vhost.*.vcluster.$.**"),
    (names::FAULT_DOWNSTREAM_CLUSTER, "http.*.fault.$.**"),
    (names::GRPC_BRIDGE_SERVICE, "cluster.*.grpc.$.**"),
    (names::TCP_PREFIX, "tcp.$.**"),
    (names::UDP_PREFIX, "udp.$.**"),
    (names::CLIENTSSL_PREFIX, "auth.clientssl.$.**"),
    (names::RATELIMIT_PREFIX, "ratelimit.$.**"),
    (names::CLUSTER_NAME, "cluster.$.**"),
    (names::EXT_AUTHZ_PREFIX, "cluster.*.ext_authz.$.**"),
    (names::EXT_AUTHZ_PREFIX, "http.*.ext_authz.$.**"),
    (names::HTTP_CONN_MANAGER_PREFIX, "http.$.**"),
    (names::VIRTUAL_HOST, "vhost.$.**"),
    (names::MONGO_PREFIX, "mongo.$.**"),
    (names::ROUTE, "vhost.*.route.$.**"),
    (names::THRIFT_PREFIX, "thrift.$.**"),
    (names::REDIS_PREFIX, "redis.$.**"),
    (
        names::LOCAL_HTTP_RATELIMIT_PREFIX,
        "$.http_local_rate_limit.**",
    ),
    (
        names::LOCAL_NETWORK_RATELIMIT_PREFIX,
        "local_rate_limit.$.**",
    ),
    (
        names::LOCAL_LISTENER_RATELIMIT_PREFIX,
        "listener_local_ratelimit.$.**",
    ),
    (names::DNS_FILTER_PREFIX, "dns_filter.$.**"),
];

enum Matcher {
    Regex {
        regex: Regex,
        substr: &'static str,
        negative_match: &'static str,
    },
    Tokens {
        tokens: Vec<&'static str>,
        match_index: usize,
    },
}

struct Extractor {
    name: &'static str,
    matcher: Matcher,
    /// Set when another extractor produces the same tag, so only the first match is kept.
    shares_name: bool,
}

/// Envoy's `TagExtractorImplBase::extractRegexPrefix`: the literal first token of an anchored
/// regex, which lets the producer skip extractors that cannot match a stat's first token.
fn regex_prefix(regex: &str) -> &str {
    let Some(rest) = regex.strip_prefix('^') else {
        return "";
    };
    let bytes = regex.as_bytes();
    for i in 1..bytes.len() {
        let c = bytes[i];
        if !(c.is_ascii_alphanumeric() || c == b'_') {
            if i > 1 {
                let last_char = i == bytes.len() - 1;
                let tail = &regex[i..];
                if (!last_char && (tail.starts_with(r"\.") || tail.starts_with(r"(?=\.)")))
                    || (last_char && c == b'$')
                {
                    return &rest[..i - 1];
                }
            }
            return "";
        }
    }
    ""
}

impl Extractor {
    fn prefix(&self, regex_source: Option<&str>) -> String {
        match (&self.matcher, regex_source) {
            (Matcher::Regex { .. }, Some(src)) => regex_prefix(src).to_string(),
            (Matcher::Tokens { tokens, .. }, _) => match tokens.first() {
                Some(&t) if t != "$" && t != "*" && t != "**" => t.to_string(),
                _ => String::new(),
            },
            _ => String::new(),
        }
    }

    /// Adds the tag and the byte range to cut from the name, or returns false.
    fn extract(
        &self,
        name: &str,
        tokens: &[&str],
        tags: &mut Vec<Tag>,
        remove: &mut Vec<(usize, usize)>,
    ) -> bool {
        match &self.matcher {
            Matcher::Regex {
                regex,
                substr,
                negative_match,
            } => {
                if !substr.is_empty() && !name.contains(substr) {
                    return false;
                }
                let Some(caps) = regex.captures(name) else {
                    return false;
                };
                let Some(removed) = caps.get(1).filter(|m| !m.as_str().is_empty()) else {
                    return false;
                };
                let value = caps
                    .get(2)
                    .map(|m| m.as_str())
                    .filter(|v| !v.is_empty())
                    .unwrap_or(removed.as_str());
                if !negative_match.is_empty() && *negative_match == value {
                    return false;
                }
                tags.push(Tag {
                    name: self.name.to_string(),
                    value: value.to_string(),
                });
                remove.push((removed.start(), removed.end()));
                true
            }
            Matcher::Tokens {
                tokens: pattern,
                match_index,
            } => {
                let mut start = 0usize;
                let mut matched = tokens.len();
                if !search_tokens(
                    pattern,
                    *match_index,
                    tokens,
                    0,
                    0,
                    0,
                    &mut start,
                    &mut matched,
                ) {
                    return false;
                }
                let value = tokens[matched];
                let mut end = start + value.len();
                // Cut the dot that joins the token to its neighbour, as Envoy does.
                if matched + 1 < tokens.len() {
                    end += 1;
                } else {
                    start = start.saturating_sub(1);
                }
                tags.push(Tag {
                    name: self.name.to_string(),
                    value: value.to_string(),
                });
                remove.push((start, end));
                true
            }
        }
    }
}

/// `TagExtractorTokensImpl::searchTags`, including its backtracking over `**`.
#[allow(clippy::too_many_arguments)]
fn search_tokens(
    pattern: &[&str],
    match_index: usize,
    input: &[&str],
    mut input_index: usize,
    mut pattern_index: usize,
    mut char_index: usize,
    start: &mut usize,
    matched: &mut usize,
) -> bool {
    while input_index < input.len() && pattern_index < pattern.len() {
        if pattern_index == match_index {
            *start = char_index;
            *matched = input_index;
        } else {
            let expected = pattern[pattern_index];
            if expected == "**" {
                if pattern_index == pattern.len() - 1 {
                    return true;
                }
                pattern_index += 1;
                while input_index < input.len() {
                    if search_tokens(
                        pattern,
                        match_index,
                        input,
                        input_index,
                        pattern_index,
                        char_index,
                        start,
                        matched,
                    ) {
                        return true;
                    }
                    char_index += input[input_index].len() + 1;
                    input_index += 1;
                }
                return false;
            }
            let token = input[input_index];
            if expected != "*" && expected != token {
                return false;
            }
            char_index += token.len() + 1;
        }
        input_index += 1;
        pattern_index += 1;
    }
    pattern_index == pattern.len() && input_index == input.len()
}

/// The result of running all extractors over one stat name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extracted {
    /// The name with every extracted piece cut out, e.g. `cluster.upstream_rq`.
    pub tag_extracted_name: String,
    /// Tags in the order Envoy produces them, which is Prometheus' label order.
    pub tags: Vec<Tag>,
}

/// Runs Envoy's default extractors over stat names.
pub struct TagProducer {
    extractors: Vec<Extractor>,
    /// Extractors whose pattern does not start with a literal token; always tried, first.
    without_prefix: Vec<usize>,
    /// Extractors keyed by the literal first token of their pattern, tried in order afterwards.
    by_prefix: std::collections::HashMap<String, Vec<usize>>,
}

impl Default for TagProducer {
    fn default() -> Self {
        Self::envoy_defaults()
    }
}

impl TagProducer {
    /// The extractors Envoy enables when `use_all_default_tags` is unset.
    pub fn envoy_defaults() -> Self {
        let mut producer = TagProducer {
            extractors: Vec::new(),
            without_prefix: Vec::new(),
            by_prefix: Default::default(),
        };
        for &(name, regex, substr, negative_match) in REGEX_DESCRIPTORS {
            let source = expand(regex);
            let compiled = Regex::new(&source).expect("built-in tag regex");
            producer.add(
                Extractor {
                    name,
                    matcher: Matcher::Regex {
                        regex: compiled,
                        substr,
                        negative_match,
                    },
                    shares_name: false,
                },
                Some(&source),
            );
        }
        for &(name, pattern) in TOKENIZED_DESCRIPTORS {
            let tokens: Vec<&'static str> = pattern.split('.').collect();
            let match_index = tokens
                .iter()
                .position(|t| *t == "$")
                .expect("token pattern has a $");
            producer.add(
                Extractor {
                    name,
                    matcher: Matcher::Tokens {
                        tokens,
                        match_index,
                    },
                    shares_name: false,
                },
                None,
            );
        }
        producer
    }

    fn add(&mut self, mut extractor: Extractor, regex_source: Option<&str>) {
        for other in &mut self.extractors {
            if other.name == extractor.name {
                other.shares_name = true;
                extractor.shares_name = true;
            }
        }
        let prefix = extractor.prefix(regex_source);
        let index = self.extractors.len();
        self.extractors.push(extractor);
        if prefix.is_empty() {
            self.without_prefix.push(index);
        } else {
            self.by_prefix.entry(prefix).or_default().push(index);
        }
    }

    /// `TagProducerImpl::produceTags`.
    pub fn produce(&self, name: &str) -> Extracted {
        let tokens: Vec<&str> = name.split('.').collect();
        let mut tags = Vec::new();
        let mut remove: Vec<(usize, usize)> = Vec::new();
        let mut seen_shared: Vec<&str> = Vec::new();

        let first_token = name.find('.').map(|dot| &name[..dot]);
        let prefixed = first_token
            .and_then(|t| self.by_prefix.get(t))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for &index in self.without_prefix.iter().chain(prefixed) {
            let extractor = &self.extractors[index];
            if extractor.shares_name && seen_shared.contains(&extractor.name) {
                continue;
            }
            if extractor.extract(name, &tokens, &mut tags, &mut remove) && extractor.shares_name {
                seen_shared.push(extractor.name);
            }
        }

        Extracted {
            tag_extracted_name: remove_ranges(name, &mut remove),
            tags,
        }
    }
}

/// `StringUtil::removeCharacters` over the union of the half-open ranges.
fn remove_ranges(name: &str, ranges: &mut [(usize, usize)]) -> String {
    if ranges.is_empty() {
        return name.to_string();
    }
    ranges.sort_unstable();
    let mut out = String::with_capacity(name.len());
    let mut pos = 0usize;
    for &(start, end) in ranges.iter() {
        if start > pos {
            out.push_str(&name[pos..start]);
        }
        pos = pos.max(end);
    }
    out.push_str(&name[pos.min(name.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::names::*;
    use super::*;

    fn check(producer: &TagProducer, stat: &str, expected_name: &str, expected: &[(&str, &str)]) {
        let got = producer.produce(stat);
        assert_eq!(got.tag_extracted_name, expected_name, "name for {stat}");
        let got_tags: Vec<(&str, &str)> = got
            .tags
            .iter()
            .map(|t| (t.name.as_str(), t.value.as_str()))
            .collect();
        assert_eq!(got_tags, expected, "tags for {stat}");
    }

    #[test]
    fn prefixes_follow_envoy_rules() {
        assert_eq!(regex_prefix(r"^prefix(foo)."), "");
        assert_eq!(regex_prefix(r"^prefix\.foo"), "prefix");
        assert_eq!(regex_prefix(r"^prefix_optional(?=\.)"), "prefix_optional");
        assert_eq!(regex_prefix(r"^notACompleteToken"), "");
        assert_eq!(regex_prefix(r"^onlyToken$"), "onlyToken");
        assert_eq!(regex_prefix(r"(prefix)"), "");
        assert_eq!(regex_prefix(r"^(prefix)"), "");
        assert_eq!(regex_prefix(r"_rq(_([0-9]{3}))$"), "");
    }

    #[test]
    fn cluster_and_response_codes() {
        let p = TagProducer::envoy_defaults();
        check(
            &p,
            "cluster.service1.upstream_rq_200",
            "cluster.upstream_rq",
            &[(RESPONSE_CODE, "200"), (CLUSTER_NAME, "service1")],
        );
        check(
            &p,
            "cluster.service1.upstream_rq_2xx",
            "cluster.upstream_rq_xx",
            &[(RESPONSE_CODE_CLASS, "2"), (CLUSTER_NAME, "service1")],
        );
        check(
            &p,
            "cluster.service1.upstream_rq_total",
            "cluster.upstream_rq_total",
            &[(CLUSTER_NAME, "service1")],
        );
        // Envoy has no circuit-breaker priority extractor: only the cluster is a label.
        check(
            &p,
            "cluster.service1.circuit_breakers.default.cx_open",
            "cluster.circuit_breakers.default.cx_open",
            &[(CLUSTER_NAME, "service1")],
        );
        check(
            &p,
            "cluster.grpc_cluster.grpc.grpc_service_1.grpc_method_1.success",
            "cluster.grpc.success",
            &[
                (GRPC_BRIDGE_METHOD, "grpc_method_1"),
                (GRPC_BRIDGE_SERVICE, "grpc_service_1"),
                (CLUSTER_NAME, "grpc_cluster"),
            ],
        );
        check(
            &p,
            "cluster.ratelimit.ssl.ciphers.ECDHE-RSA-AES128-GCM-SHA256",
            "cluster.ssl.ciphers",
            &[
                (SSL_CIPHER_SUITE, "ECDHE-RSA-AES128-GCM-SHA256"),
                (CLUSTER_NAME, "ratelimit"),
            ],
        );
    }

    #[test]
    fn http_connection_manager_prefix() {
        let p = TagProducer::envoy_defaults();
        check(
            &p,
            "http.ingress_http.downstream_rq_total",
            "http.downstream_rq_total",
            &[(HTTP_CONN_MANAGER_PREFIX, "ingress_http")],
        );
        check(
            &p,
            "http.ingress_http.downstream_rq_5xx",
            "http.downstream_rq_xx",
            &[
                (RESPONSE_CODE_CLASS, "5"),
                (HTTP_CONN_MANAGER_PREFIX, "ingress_http"),
            ],
        );
        check(
            &p,
            "listener.127.0.0.1_3012.http.http_prefix.downstream_rq_5xx",
            "listener.http.downstream_rq_xx",
            &[
                (RESPONSE_CODE_CLASS, "5"),
                (HTTP_CONN_MANAGER_PREFIX, "http_prefix"),
                (LISTENER_ADDRESS, "127.0.0.1_3012"),
            ],
        );
        check(
            &p,
            "http.fault_connection_manager.fault.fault_cluster.aborts_injected",
            "http.fault.aborts_injected",
            &[
                (FAULT_DOWNSTREAM_CLUSTER, "fault_cluster"),
                (HTTP_CONN_MANAGER_PREFIX, "fault_connection_manager"),
            ],
        );
        check(
            &p,
            "http.egress.user_agent.ios.downstream_cx_total",
            "http.user_agent.downstream_cx_total",
            &[
                (HTTP_USER_AGENT, "ios"),
                (HTTP_CONN_MANAGER_PREFIX, "egress"),
            ],
        );
        check(
            &p,
            "http.rds_connection_manager.rds.agg/route_config.1-23.update_success",
            "http.rds.update_success",
            &[
                (RDS_ROUTE_CONFIG, "agg/route_config.1-23"),
                (HTTP_CONN_MANAGER_PREFIX, "rds_connection_manager"),
            ],
        );
        check(
            &p,
            "http.egress_dynamodb_iad.dynamodb.table.bar_table.capacity.Query.__partition_id=ABC1234",
            "http.dynamodb.table.capacity",
            &[
                (DYNAMO_PARTITION_ID, "ABC1234"),
                (DYNAMO_OPERATION, "Query"),
                (DYNAMO_TABLE, "bar_table"),
                (HTTP_CONN_MANAGER_PREFIX, "egress_dynamodb_iad"),
            ],
        );
    }

    #[test]
    fn listener_address_and_workers() {
        let p = TagProducer::envoy_defaults();
        check(
            &p,
            "listener.0.0.0.0_8080.downstream_cx_total",
            "listener.downstream_cx_total",
            &[(LISTENER_ADDRESS, "0.0.0.0_8080")],
        );
        check(
            &p,
            "listener.[__1]_0.ssl.ciphers.AES256-SHA",
            "listener.ssl.ciphers",
            &[(SSL_CIPHER, "AES256-SHA"), (LISTENER_ADDRESS, "[__1]_0")],
        );
        check(
            &p,
            "listener.prefix.notmatching.ssl.ciphers.AES256-SHA",
            "listener.notmatching.ssl.ciphers",
            &[(SSL_CIPHER, "AES256-SHA"), (LISTENER_ADDRESS, "prefix")],
        );
        // "admin" is never a listener address tag.
        check(
            &p,
            "listener.admin.downstream_cx_total",
            "listener.admin.downstream_cx_total",
            &[],
        );
        check(
            &p,
            "listener_manager.worker_123.dispatcher.loop_duration_us",
            "listener_manager.worker_dispatcher.loop_duration_us",
            &[(WORKER_ID, "123")],
        );
        check(
            &p,
            "listener.127.0.0.1_3012.worker_123.downstream_cx_active",
            "listener.worker_downstream_cx_active",
            &[(WORKER_ID, "123"), (LISTENER_ADDRESS, "127.0.0.1_3012")],
        );
        check(
            &p,
            "server.worker_7.watchdog_miss",
            "server.worker_watchdog_miss",
            &[(WORKER_ID, "7")],
        );
    }

    #[test]
    fn vhost_and_rate_limits() {
        let p = TagProducer::envoy_defaults();
        check(
            &p,
            "vhost.vhost_1.vcluster.vcluster_1.upstream_rq_2xx",
            "vhost.vcluster.upstream_rq_xx",
            &[
                (RESPONSE_CODE_CLASS, "2"),
                (VIRTUAL_CLUSTER, "vcluster_1"),
                (VIRTUAL_HOST, "vhost_1"),
            ],
        );
        check(
            &p,
            "vhost.vh.route.r1.upstream_rq_total",
            "vhost.route.upstream_rq_total",
            &[(VIRTUAL_HOST, "vh"), (ROUTE, "r1")],
        );
        check(
            &p,
            "foo_ratelimiter.http_local_rate_limit.ok",
            "http_local_rate_limit.ok",
            &[(LOCAL_HTTP_RATELIMIT_PREFIX, "foo_ratelimiter")],
        );
        check(
            &p,
            "local_rate_limit.foo.rate_limited",
            "local_rate_limit.rate_limited",
            &[(LOCAL_NETWORK_RATELIMIT_PREFIX, "foo")],
        );
        check(
            &p,
            "tcp.tcp_prefix.downstream_cx_total",
            "tcp.downstream_cx_total",
            &[(TCP_PREFIX, "tcp_prefix")],
        );
        check(
            &p,
            "mongo.mongo_filter.collection.bar_collection.callsite.baz_callsite.query.scatter_get",
            "mongo.collection.callsite.query.scatter_get",
            &[
                (MONGO_CALLSITE, "baz_callsite"),
                (MONGO_COLLECTION, "bar_collection"),
                (MONGO_PREFIX, "mongo_filter"),
            ],
        );
        check(
            &p,
            "http.http_prefix.ext_authz.authpfx.denied",
            "http.ext_authz.denied",
            &[
                (EXT_AUTHZ_PREFIX, "authpfx"),
                (HTTP_CONN_MANAGER_PREFIX, "http_prefix"),
            ],
        );
        check(&p, "server.live", "server.live", &[]);
        check(&p, "nodots", "nodots", &[]);
    }

    #[test]
    fn token_matching_backtracks_like_envoy() {
        let pattern: Vec<&str> = "now.**.aid.$.of.their".split('.').collect();
        let input: Vec<&str> = "now.is.the.time.to.come.to.the.aid.fake.aid.real.of.their"
            .split('.')
            .collect();
        let (mut start, mut matched) = (0, input.len());
        assert!(search_tokens(
            &pattern,
            3,
            &input,
            0,
            0,
            0,
            &mut start,
            &mut matched
        ));
        assert_eq!(input[matched], "real");
        let short: Vec<&str> = "now.is.the.time".split('.').collect();
        let long: Vec<&str> = "now.$.the.time.to".split('.').collect();
        assert!(!search_tokens(
            &long,
            1,
            &short,
            0,
            0,
            0,
            &mut start,
            &mut matched
        ));
    }
}

//! The one normalised config model. v3, v2 and v1 inputs all decode into these types, with every
//! default already applied, so the data plane never needs to know which generation a user wrote.
//!
//! Names follow Envoy's v3 protos so `/config_dump` can print the model back in v3 form.

use std::time::Duration;

/// `envoy.config.bootstrap.v3.Bootstrap`, the parts meshsim simulates.
#[derive(Debug, Clone, PartialEq)]
pub struct Bootstrap {
    pub node: NodeInfo,
    /// None when the file has no `admin:` (Envoy then runs without an admin listener).
    pub admin: Option<Admin>,
    pub listeners: Vec<Listener>,
    pub clusters: Vec<Cluster>,
    /// Default 5 s; drives histogram intervals.
    pub stats_flush_interval: Duration,
    /// Static runtime layers, kept as JSON for `/runtime` and `/config_dump`.
    pub runtime_layers: Vec<RuntimeLayer>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeInfo {
    pub id: String,
    pub cluster: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeLayer {
    pub name: String,
    /// The `static_layer` value (a JSON object); `None` for layer kinds meshsim does not load
    /// (disk, admin, rtds), which are listed but empty.
    pub static_layer: Option<serde_json::Value>,
    /// `admin_layer`, `disk_layer` or `static_layer`, for `/runtime`'s layer list.
    pub kind: RuntimeLayerKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeLayerKind {
    Static,
    Disk,
    Admin,
    Rtds,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Admin {
    pub address: SocketAddress,
    /// From v3 `access_log` or the deprecated `access_log_path` (which becomes a file logger).
    pub access_log: Vec<AccessLog>,
}

/// `envoy.config.core.v3.SocketAddress` (TCP). `address` is an IP for listeners and may be a DNS
/// name for cluster endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SocketAddress {
    pub address: String,
    pub port: u16,
}

impl std::fmt::Display for SocketAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.address.contains(':') {
            write!(f, "[{}]:{}", self.address, self.port)
        } else {
            write!(f, "{}:{}", self.address, self.port)
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    /// The configured name, or Envoy's generated one (the address, e.g. `0.0.0.0_8080`) when absent.
    pub name: String,
    pub address: SocketAddress,
    pub filter_chains: Vec<FilterChain>,
    /// Default 1 MiB.
    pub per_connection_buffer_limit_bytes: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FilterChain {
    pub name: Option<String>,
    pub filters: Vec<NetworkFilter>,
    /// Downstream TLS (v3 `transport_socket` or v2 `tls_context`).
    pub tls: Option<DownstreamTls>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NetworkFilter {
    HttpConnectionManager(Box<HttpConnectionManager>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecType {
    Auto,
    Http1,
    Http2,
}

/// What to do with the `server` response header (`server_header_transformation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerHeaderTransformation {
    Overwrite,
    AppendIfAbsent,
    PassThrough,
}

/// `envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConnectionManager {
    /// Required; names the `http.<stat_prefix>.` stats.
    pub stat_prefix: String,
    pub codec_type: CodecType,
    pub route_config: RouteConfiguration,
    /// When the routes came from RDS (resolved from the same xDS file), the name used, for dumps.
    pub rds_route_config_name: Option<String>,
    /// Ordered; the router is always present and last (validated).
    pub http_filters: Vec<HttpFilter>,
    pub access_log: Vec<AccessLog>,
    /// Default true.
    pub generate_request_id: bool,
    /// Default false.
    pub preserve_external_request_id: bool,
    /// Default false.
    pub use_remote_address: bool,
    pub xff_num_trusted_hops: u32,
    pub skip_xff_append: bool,
    /// Default "envoy".
    pub server_name: String,
    pub server_header_transformation: ServerHeaderTransformation,
    pub via: Option<String>,
    /// `upgrade_configs[].upgrade_type` that are enabled, lower-case (e.g. "websocket").
    pub upgrade_types: Vec<String>,
    /// Default 5 min; `None` = disabled (configured 0).
    pub stream_idle_timeout: Option<Duration>,
    /// Default disabled.
    pub request_timeout: Option<Duration>,
    /// Default disabled.
    pub request_headers_timeout: Option<Duration>,
    /// `common_http_protocol_options.idle_timeout`, default 1 h; `None` = disabled.
    pub idle_timeout: Option<Duration>,
    /// Default 60.
    pub max_request_headers_kb: u32,
    /// Default 100.
    pub max_headers_count: u32,
    /// `normalize_path` (default false) and `merge_slashes` (default false).
    pub normalize_path: bool,
    pub merge_slashes: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpFilter {
    /// The name as configured (v2 names are rewritten to their v3 names).
    pub name: String,
    pub kind: HttpFilterKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HttpFilterKind {
    Router(RouterConfig),
    Fault(FaultConfig),
    LocalRateLimit(LocalRateLimitConfig),
    HealthCheck(HealthCheckFilterConfig),
}

/// `envoy.extensions.filters.http.fault.v3.HTTPFault`.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    pub delay: Option<FaultDelay>,
    pub abort: Option<FaultAbort>,
    /// Only requests routed to this cluster are faulted.
    pub upstream_cluster: Option<String>,
    /// Only requests whose headers all match.
    pub headers: Vec<HeaderMatcher>,
    pub max_active_faults: Option<u64>,
    /// The config as written, for `/config_dump`.
    pub dump: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FaultDelay {
    /// `fixed_delay`, or `None` for `header_delay` (the `x-envoy-fault-delay-request` header).
    pub fixed: Option<Duration>,
    /// 0–100.
    pub percent: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FaultAbort {
    pub kind: FaultAbortKind,
    /// 0–100.
    pub percent: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaultAbortKind {
    Http(u16),
    Grpc(u32),
    /// `header_abort`: the status comes from `x-envoy-fault-abort-request` (or
    /// `x-envoy-fault-abort-grpc-request`).
    Header,
}

/// `envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit`.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalRateLimitConfig {
    pub stat_prefix: String,
    pub max_tokens: u32,
    pub tokens_per_fill: u32,
    pub fill_interval: Duration,
    /// Percent of requests the filter looks at (default 0: disabled).
    pub enabled: f64,
    /// Percent of those it really limits (default 0: counts only).
    pub enforced: f64,
    pub status: u16,
    pub response_headers_to_add: Vec<HeaderValueOption>,
    pub dump: serde_json::Value,
}

/// `envoy.extensions.filters.http.health_check.v3.HealthCheck`.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheckFilterConfig {
    pub pass_through_mode: bool,
    /// Which requests are health checks (all must match).
    pub headers: Vec<HeaderMatcher>,
    /// Cluster → minimum healthy percent for a 200 (non-pass-through mode).
    pub cluster_min_healthy_percentages: Vec<(String, f64)>,
    pub dump: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouterConfig {
    /// Default true.
    pub dynamic_stats: bool,
    /// Default false: `x-envoy-*` response headers are added.
    pub suppress_envoy_headers: bool,
}

/// `envoy.config.route.v3.RouteConfiguration`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteConfiguration {
    pub name: String,
    pub virtual_hosts: Vec<VirtualHost>,
    pub headers: HeaderMutations,
}

/// Header additions/removals, identical at route-config, virtual-host, route and weighted-cluster
/// level.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeaderMutations {
    pub request_headers_to_add: Vec<HeaderValueOption>,
    pub request_headers_to_remove: Vec<String>,
    pub response_headers_to_add: Vec<HeaderValueOption>,
    pub response_headers_to_remove: Vec<String>,
}

impl HeaderMutations {
    pub fn is_empty(&self) -> bool {
        self.request_headers_to_add.is_empty()
            && self.request_headers_to_remove.is_empty()
            && self.response_headers_to_add.is_empty()
            && self.response_headers_to_remove.is_empty()
    }
}

/// `envoy.config.core.v3.HeaderValueOption`. The legacy `append: bool` (default true) maps to
/// `AppendIfExistsOrAdd` / `OverwriteIfExistsOrAdd`.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderValueOption {
    /// Lower-cased header name.
    pub key: String,
    pub value: String,
    pub append_action: AppendAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendAction {
    AppendIfExistsOrAdd,
    AddIfAbsent,
    OverwriteIfExistsOrAdd,
    OverwriteIfExists,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VirtualHost {
    pub name: String,
    /// As configured; matching is case-insensitive (values are lower-cased here).
    pub domains: Vec<String>,
    pub routes: Vec<Route>,
    pub headers: HeaderMutations,
    pub require_tls: RequireTls,
    /// Applies to the routes that have none of their own.
    pub retry_policy: Option<RetryPolicy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequireTls {
    None,
    ExternalOnly,
    All,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub name: Option<String>,
    pub matcher: RouteMatch,
    pub action: RouteAction,
    pub headers: HeaderMutations,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteMatch {
    pub path: PathSpecifier,
    /// Default true; applies to prefix and path.
    pub case_sensitive: bool,
    pub headers: Vec<HeaderMatcher>,
    pub query_parameters: Vec<QueryParameterMatcher>,
    /// `grpc: {}`: only requests with content-type application/grpc*.
    pub grpc: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PathSpecifier {
    Prefix(String),
    Path(String),
    /// Full-path RE2 match (v3 `safe_regex`, legacy v2 `regex`), validated at load.
    SafeRegex(String),
    PathSeparatedPrefix(String),
}

/// `envoy.config.route.v3.HeaderMatcher`; the legacy `exact_match`/`prefix_match`/… forms are
/// normalised to `String`.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderMatcher {
    /// Lower-cased; `:authority`, `:method`, `:path`, `:scheme` address the pseudo-headers.
    pub name: String,
    pub spec: HeaderMatchSpec,
    pub invert: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HeaderMatchSpec {
    /// `present_match: true` (also the default when no specifier is given) or `false`.
    Present(bool),
    /// `range_match` on the header parsed as an integer: start inclusive, end exclusive.
    Range {
        start: i64,
        end: i64,
    },
    String(StringMatcher),
}

#[derive(Debug, Clone, PartialEq)]
pub struct StringMatcher {
    pub pattern: StringPattern,
    pub ignore_case: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StringPattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    /// RE2 syntax, full match, validated at load.
    Regex(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueryParameterMatcher {
    pub name: String,
    /// `None` = `present_match`.
    pub string_match: Option<StringMatcher>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RouteAction {
    Forward(Box<ForwardAction>),
    Redirect(RedirectAction),
    DirectResponse(DirectResponseAction),
}

/// `envoy.config.route.v3.RouteAction`.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardAction {
    pub cluster: ClusterSpecifier,
    /// 503 (default) or 404.
    pub cluster_not_found_response_code: u16,
    pub prefix_rewrite: Option<String>,
    pub regex_rewrite: Option<RegexRewrite>,
    pub host_rewrite: HostRewrite,
    /// Default 15 s; `None` = disabled (configured 0).
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub hash_policy: Vec<HashPolicy>,
    /// The route's own policy; it replaces (not merges with) the virtual host's.
    pub retry_policy: Option<RetryPolicy>,
}

/// `envoy.config.route.v3.RetryPolicy`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub retry_on: RetryOn,
    /// Default 1.
    pub num_retries: u32,
    /// `None` = the route timeout bounds each try.
    pub per_try_timeout: Option<Duration>,
    /// Fully jittered exponential back-off: base (default 25 ms) and cap (default 10 × base).
    pub back_off_base: Duration,
    pub back_off_max: Duration,
    pub retriable_status_codes: Vec<u16>,
    /// Response headers that make an answer retriable (`retriable-headers`): Envoy's
    /// `HeaderMatcher`s, matched against the response.
    pub retriable_headers: Vec<HeaderMatcher>,
    /// `retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts}]`.
    pub avoid_previous_hosts: bool,
    /// Default 1.
    pub host_selection_retry_max_attempts: u32,
}

/// The `retry_on` conditions (comma-separated in configs and in `x-envoy-retry-on`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryOn {
    /// Any 5xx, a reset, a connect failure, a refused stream, a per-try timeout.
    pub five_xx: bool,
    /// 502, 503, 504, a reset or a connect failure.
    pub gateway_error: bool,
    /// A reset or no response at all (includes connect failures).
    pub reset: bool,
    pub connect_failure: bool,
    pub refused_stream: bool,
    /// 409.
    pub retriable_4xx: bool,
    pub retriable_status_codes: bool,
    pub retriable_headers: bool,
    /// 429 with `x-envoy-ratelimited`.
    pub envoy_ratelimited: bool,
    /// gRPC statuses in `grpc-status`: cancelled (1), deadline-exceeded (4), resource-exhausted
    /// (8), internal (13), unavailable (14).
    pub grpc: [bool; 5],
}

impl RetryOn {
    /// Every name Envoy accepts, in its documentation's order.
    pub const NAMES: [&'static str; 15] = [
        "5xx",
        "gateway-error",
        "reset",
        "connect-failure",
        "envoy-ratelimited",
        "retriable-4xx",
        "refused-stream",
        "retriable-status-codes",
        "retriable-headers",
        "http3-post-connect-failure",
        "cancelled",
        "deadline-exceeded",
        "internal",
        "resource-exhausted",
        "unavailable",
    ];

    /// Parses `5xx,reset`; an unknown name is the error.
    pub fn parse(text: &str) -> Result<RetryOn, String> {
        let mut on = RetryOn::default();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "5xx" => on.five_xx = true,
                "gateway-error" => on.gateway_error = true,
                "reset" => on.reset = true,
                "connect-failure" => on.connect_failure = true,
                "envoy-ratelimited" => on.envoy_ratelimited = true,
                "retriable-4xx" => on.retriable_4xx = true,
                "refused-stream" => on.refused_stream = true,
                "retriable-status-codes" => on.retriable_status_codes = true,
                "retriable-headers" => on.retriable_headers = true,
                // HTTP/3 is not simulated: nothing can fail that way.
                "http3-post-connect-failure" => {}
                "cancelled" => on.grpc[0] = true,
                "deadline-exceeded" => on.grpc[1] = true,
                "resource-exhausted" => on.grpc[2] = true,
                "internal" => on.grpc[3] = true,
                "unavailable" => on.grpc[4] = true,
                other => return Err(other.to_string()),
            }
        }
        Ok(on)
    }

    /// Back to Envoy's comma-separated form (for `/config_dump`).
    pub fn names(&self) -> String {
        let flags = [
            self.five_xx,
            self.gateway_error,
            self.reset,
            self.connect_failure,
            self.envoy_ratelimited,
            self.retriable_4xx,
            self.refused_stream,
            self.retriable_status_codes,
            self.retriable_headers,
            false,
            self.grpc[0],
            self.grpc[1],
            self.grpc[3],
            self.grpc[2],
            self.grpc[4],
        ];
        RetryOn::NAMES
            .iter()
            .zip(flags)
            .filter_map(|(n, on)| on.then_some(*n))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn union(self, other: RetryOn) -> RetryOn {
        let mut grpc = self.grpc;
        for (g, o) in grpc.iter_mut().zip(other.grpc) {
            *g |= o;
        }
        RetryOn {
            five_xx: self.five_xx | other.five_xx,
            gateway_error: self.gateway_error | other.gateway_error,
            reset: self.reset | other.reset,
            connect_failure: self.connect_failure | other.connect_failure,
            refused_stream: self.refused_stream | other.refused_stream,
            retriable_4xx: self.retriable_4xx | other.retriable_4xx,
            retriable_status_codes: self.retriable_status_codes | other.retriable_status_codes,
            retriable_headers: self.retriable_headers | other.retriable_headers,
            envoy_ratelimited: self.envoy_ratelimited | other.envoy_ratelimited,
            grpc,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClusterSpecifier {
    Cluster(String),
    /// `cluster_header`: the cluster named by this request header.
    Header(String),
    Weighted(WeightedClusters),
}

#[derive(Debug, Clone, PartialEq)]
pub struct WeightedClusters {
    pub clusters: Vec<WeightedCluster>,
    /// Sum of weights (v3 drops `total_weight`; when given it must equal the sum).
    pub total_weight: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WeightedCluster {
    pub name: String,
    pub weight: u32,
    pub headers: HeaderMutations,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RegexRewrite {
    pub pattern: String,
    pub substitution: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HostRewrite {
    None,
    /// `host_rewrite_literal` (legacy `host_rewrite`).
    Literal(String),
    /// `auto_host_rewrite`: the upstream host's hostname (DNS clusters).
    Auto,
    /// `host_rewrite_header`.
    Header(String),
    /// `host_rewrite_path_regex`.
    PathRegex(RegexRewrite),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HashPolicy {
    pub kind: HashPolicyKind,
    /// `terminal`: stop evaluating later policies once this one produced a hash.
    pub terminal: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HashPolicyKind {
    Header { name: String },
    Cookie { name: String },
    SourceIp,
    QueryParameter { name: String },
}

/// `envoy.config.route.v3.RedirectAction`.
#[derive(Debug, Clone, PartialEq)]
pub struct RedirectAction {
    /// `https_redirect: true` becomes `Some("https")`.
    pub scheme: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: RedirectPath,
    /// 301 (default), 302, 303, 307, 308.
    pub response_code: u16,
    pub strip_query: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RedirectPath {
    Keep,
    Path(String),
    PrefixRewrite(String),
    RegexRewrite(RegexRewrite),
}

/// `envoy.config.route.v3.DirectResponseAction`; a `filename` body is read at load time.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectResponseAction {
    pub status: u16,
    pub body: Option<String>,
}

/// `envoy.config.cluster.v3.Cluster`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub name: String,
    /// Stats use this instead of the name when set.
    pub alt_stat_name: Option<String>,
    pub discovery: DiscoveryType,
    /// Default 5 s.
    pub connect_timeout: Duration,
    pub lb_policy: LbPolicy,
    pub endpoints: Vec<LbEndpoint>,
    /// Default 5 s.
    pub dns_refresh_rate: Duration,
    /// Defaults to `dns_refresh_rate`.
    pub dns_failure_refresh_rate: Duration,
    pub respect_dns_ttl: bool,
    pub dns_lookup_family: DnsLookupFamily,
    pub upstream_protocol: UpstreamProtocol,
    pub per_connection_buffer_limit_bytes: u32,
    pub max_requests_per_connection: Option<u32>,
    /// `common_http_protocol_options.idle_timeout`: an upstream connection that has carried no
    /// request for this long is closed. Envoy's default is 1 h; 0 disables it (`None`).
    pub idle_timeout: Option<Duration>,
    /// Upstream TLS (v3 `transport_socket` or v2 `tls_context`).
    pub tls: Option<UpstreamTls>,
    /// `circuit_breakers.thresholds`, per priority.
    pub circuit_breakers: CircuitBreakers,
    pub outlier_detection: Option<OutlierDetection>,
    pub health_checks: Vec<HealthCheck>,
    /// `common_lb_config.healthy_panic_threshold`, percent; default 50. Below it the balancer
    /// ignores health and uses every host.
    pub healthy_panic_threshold: f64,
}

/// `envoy.config.cluster.v3.OutlierDetection`, with Envoy's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierDetection {
    pub consecutive_5xx: u32,
    pub consecutive_gateway_failure: u32,
    pub interval: Duration,
    pub base_ejection_time: Duration,
    pub max_ejection_time: Duration,
    pub max_ejection_percent: u32,
    pub enforcing_consecutive_5xx: u32,
    pub enforcing_consecutive_gateway_failure: u32,
    pub enforcing_success_rate: u32,
    pub success_rate_minimum_hosts: u32,
    pub success_rate_request_volume: u32,
    pub success_rate_stdev_factor: u32,
    pub failure_percentage_threshold: u32,
    pub enforcing_failure_percentage: u32,
    pub failure_percentage_minimum_hosts: u32,
    pub failure_percentage_request_volume: u32,
}

impl Default for OutlierDetection {
    fn default() -> Self {
        OutlierDetection {
            consecutive_5xx: 5,
            consecutive_gateway_failure: 5,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
            enforcing_consecutive_5xx: 100,
            enforcing_consecutive_gateway_failure: 0,
            enforcing_success_rate: 100,
            success_rate_minimum_hosts: 5,
            success_rate_request_volume: 100,
            success_rate_stdev_factor: 1900,
            failure_percentage_threshold: 85,
            enforcing_failure_percentage: 0,
            failure_percentage_minimum_hosts: 5,
            failure_percentage_request_volume: 50,
        }
    }
}

/// `envoy.config.core.v3.HealthCheck` (HTTP or TCP).
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    pub timeout: Duration,
    pub interval: Duration,
    pub interval_jitter: Duration,
    pub unhealthy_threshold: u32,
    pub healthy_threshold: u32,
    /// Until the cluster has routed a request; Envoy's default 60 s.
    pub no_traffic_interval: Duration,
    /// Interval for hosts marked unhealthy; defaults to `interval`.
    pub unhealthy_interval: Option<Duration>,
    pub kind: HealthCheckKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HealthCheckKind {
    Http {
        path: String,
        /// `host` header; default: the cluster name.
        host: Option<String>,
        /// Half-open ranges [start, end); default [200, 201).
        expected_statuses: Vec<(u16, u16)>,
    },
    Tcp {
        /// Bytes to send (hex in the config); empty = connect only.
        send: Vec<u8>,
        /// Byte strings the answer must contain, in order.
        receive: Vec<Vec<u8>>,
    },
}

/// `circuit_breakers`: the DEFAULT priority's thresholds govern every request (meshsim routes
/// have no priorities); HIGH's are kept for `/clusters` and `/config_dump`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CircuitBreakers {
    pub default: Thresholds,
    pub high: Thresholds,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub max_connections: u32,
    pub max_pending_requests: u32,
    pub max_requests: u32,
    pub max_retries: u32,
}

impl Default for Thresholds {
    /// Envoy's defaults (circuit_breaker.proto).
    fn default() -> Self {
        Thresholds {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            max_retries: 3,
        }
    }
}

impl Cluster {
    /// The name used in stats (`cluster.<stat_name>.`).
    pub fn stat_name(&self) -> &str {
        self.alt_stat_name.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryType {
    Static,
    StrictDns,
    LogicalDns,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LbPolicy {
    RoundRobin,
    /// `least_request_lb_config`: choice_count default 2, active_request_bias default 1.0.
    LeastRequest {
        choice_count: u32,
        active_request_bias: f64,
    },
    Random,
    /// `ring_hash_lb_config`: minimum 1024, maximum 8M.
    RingHash {
        minimum_ring_size: u64,
        maximum_ring_size: u64,
    },
    /// `maglev_lb_config.table_size`, default 65537.
    Maglev {
        table_size: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsLookupFamily {
    Auto,
    V4Only,
    V6Only,
    V4Preferred,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// The default.
    Http1,
    /// `http2_protocol_options` (legacy) or `explicit_http_config.http2_protocol_options`.
    Http2,
    /// `use_downstream_protocol_config`.
    UseDownstream,
}

/// One `lb_endpoints` entry (legacy `hosts:` entries become one each).
#[derive(Debug, Clone, PartialEq)]
pub struct LbEndpoint {
    pub address: SocketAddress,
    /// `endpoint.hostname` (used by auto_host_rewrite and `/clusters`).
    pub hostname: Option<String>,
    /// `load_balancing_weight`, default 1.
    pub weight: u32,
    /// The locality's priority, default 0.
    pub priority: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccessLog {
    /// As configured, v2 names rewritten (`envoy.file_access_log` → `envoy.access_loggers.file`).
    pub name: String,
    pub sink: AccessLogSink,
    pub format: AccessLogFormat,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AccessLogSink {
    File(String),
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AccessLogFormat {
    /// Envoy's default text format.
    Default,
    /// `text_format_source.inline_string`, `text_format` or legacy `format`.
    Text(String),
    /// `json_format`.
    Json(serde_json::Map<String, serde_json::Value>),
}

/// A data source (`inline_string`, `inline_bytes` or `filename`), resolved at load time.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSource {
    /// Where it came from, for dumps and errors: `inline` or the file name.
    pub origin: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CommonTls {
    /// (certificate chain, private key) pairs.
    pub certificates: Vec<(DataSource, DataSource)>,
    pub trusted_ca: Option<DataSource>,
    pub alpn_protocols: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DownstreamTls {
    pub common: CommonTls,
    pub require_client_certificate: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamTls {
    pub common: CommonTls,
    pub sni: Option<String>,
}

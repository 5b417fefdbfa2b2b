//! Deprecated v2 forms produce exactly one warning per distinct form per file (with a count
//! when the form occurs more than once), each naming the v3 replacement; a real Envoy field
//! that meshsim does not simulate produces one "ignored" warning.

use std::path::{Path, PathBuf};

use meshsim::config::model::{NetworkFilter, RouteAction};
use meshsim::config::{load_file, load_str};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

#[test]
fn one_warning_per_deprecated_form_with_counts() {
    let loaded = load_file(&fixture("warnings/v2-everything.yaml")).unwrap();
    let got: Vec<(usize, usize, &str)> = loaded
        .report
        .warnings()
        .map(|d| (d.span.line, d.span.col, d.message.as_str()))
        .collect();
    let want: &[(usize, usize, &str)] = &[
        (3, 1, "deprecated v2 field `runtime` in Bootstrap; loaded as `layered_runtime`"),
        (3, 1, "disk runtime layers are not loaded by meshsim; they are listed but empty"),
        (13, 9, "deprecated extension name `envoy.http_connection_manager`; loaded as `envoy.filters.network.http_connection_manager` (2 occurrences; the first is shown)"),
        (14, 9, "deprecated v2 field `config`; loaded as `typed_config` (3 occurrences; the first is shown)"),
        (17, 11, "deprecated v2 field `idle_timeout` in HttpConnectionManager; loaded as `common_http_protocol_options.idle_timeout`"),
        (19, 13, "deprecated extension name `envoy.file_access_log`; loaded as `envoy.access_loggers.file`"),
        (20, 41, "deprecated field `format` in FileAccessLog; loaded as `log_format.text_format_source`"),
        (29, 44, "deprecated v2 field `use_websocket`; loaded as an HCM `upgrade_configs` entry for `websocket`"),
        (31, 19, "deprecated v2 field `regex` in RouteMatch; loaded as `safe_regex`"),
        (33, 38, "deprecated field `exact_match` in HeaderMatcher; loaded as `string_match` (2 occurrences; the first is shown)"),
        (34, 36, "deprecated field `regex_match` in HeaderMatcher; loaded as `string_match`"),
        (35, 44, "deprecated v2 field `host_rewrite`; loaded as `host_rewrite_literal` (2 occurrences; the first is shown)"),
        (42, 13, "deprecated extension name `envoy.router`; loaded as `envoy.filters.http.router` (2 occurrences; the first is shown)"),
        (44, 7, "deprecated v2 field `tls_context` in FilterChain; loaded as `transport_socket`"),
        (55, 9, "deprecated v2 type `envoy.config.filter.network.http_connection_manager.v2.HttpConnectionManager`; loaded as `envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`"),
        (72, 5, "deprecated field `http2_protocol_options` in Cluster; loaded as `typed_extension_protocol_options` (HttpProtocolOptions explicit_http_config.http2_protocol_options) (2 occurrences; the first is shown)"),
        (75, 5, "deprecated v2 field `hosts` in Cluster; loaded as `load_assignment` (2 occurrences; the first is shown)"),
        (86, 5, "deprecated v2 field `tls_context` in Cluster; loaded as `transport_socket`"),
        (88, 3, "deprecated field `access_log_path` in Admin; loaded as `admin.access_log` with a file logger"),
    ];
    assert_eq!(got, want);
    // Every deprecation names what to write instead.
    for d in loaded.report.warnings() {
        if d.message.starts_with("deprecated") {
            assert!(d.help.is_some(), "{}", d.message);
        }
    }
    // And the translations took effect.
    let b = &loaded.bootstrap;
    let NetworkFilter::HttpConnectionManager(h) = &b.listeners[0].filter_chains[0].filters[0];
    assert_eq!(h.upgrade_types, ["websocket"]);
    assert_eq!(h.idle_timeout, Some(std::time::Duration::from_secs(30)));
    assert_eq!(h.access_log[0].name, "envoy.access_loggers.file");
    let RouteAction::Forward(f) = &h.route_config.virtual_hosts[0].routes[1].action else {
        panic!()
    };
    assert_eq!(
        f.host_rewrite,
        meshsim::config::model::HostRewrite::Literal("api.internal".into())
    );
    assert!(b.listeners[0].filter_chains[0].tls.is_some());
    assert_eq!(
        b.clusters[1].tls.as_ref().unwrap().sni.as_deref(),
        Some("service2.internal")
    );
    let layers: Vec<&str> = b.runtime_layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(layers, ["base", "root", "admin"]);
}

#[test]
fn ignored_real_fields_warn_once_and_load() {
    let yaml = r#"
static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 0.0.0.0, port_value: 8080}}
    per_connection_buffer_limit_bytes: 32768
    listener_filters:
    - name: envoy.filters.listener.tls_inspector
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          tracing: {}
          internal_address_config: {unix_sockets: true}
          route_config:
            virtual_hosts:
            - name: backend
              domains: ["*"]
              cors: {allow_methods: GET}
              routes:
              - match: {prefix: "/"}
                route:
                  cluster: service1
                  retry_policy: {retry_on: 5xx, num_retries: 3}
                  max_stream_duration: {max_stream_duration: 10s}
                typed_per_filter_config: {}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: service1
    type: STRICT_DNS
    outlier_detection: {consecutive_5xx: 5}
    health_checks: []
    common_lb_config: {healthy_panic_threshold: {value: 50}}
    upstream_connection_options: {tcp_keepalive: {}}
    load_assignment:
      cluster_name: service1
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: service1, port_value: 80}}}}]}]
overload_manager: {}
stats_sinks: []
"#;
    let loaded = load_str("ignored.yaml", yaml, Path::new(".")).unwrap();
    let got: Vec<&str> = loaded
        .report
        .warnings()
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        got,
        [
            "`listener_filters` in Listener is not simulated by meshsim; ignored",
            "`tracing` in HttpConnectionManager is not simulated by meshsim; ignored",
            "`internal_address_config` in HttpConnectionManager is not simulated by meshsim; ignored",
            "`cors` in VirtualHost is not simulated by meshsim; ignored",
            "`max_stream_duration` in RouteAction is not simulated by meshsim; ignored",
            "`typed_per_filter_config` in Route is not simulated by meshsim; ignored",
            "`upstream_connection_options` in Cluster is not simulated by meshsim; ignored",
            "`overload_manager` in Bootstrap is not simulated by meshsim; ignored",
            "`stats_sinks` in Bootstrap is not simulated by meshsim; ignored",
        ]
    );
    assert_eq!(
        loaded.bootstrap.listeners[0].per_connection_buffer_limit_bytes,
        32768
    );
}

#[test]
fn clean_v3_has_no_warnings() {
    let loaded = load_file(&fixture("v3/front-proxy-envoy.yaml")).unwrap();
    assert_eq!(loaded.report.warnings().count(), 0);
    assert_eq!(loaded.report.diagnostics.len(), 0);
}

//! Model values for unit tests, with Envoy's defaults, and small builders they share.

use std::time::Duration;

use crate::config::model::*;

pub fn hcm_config(use_remote_address: bool) -> HttpConnectionManager {
    HttpConnectionManager {
        stat_prefix: "ingress_http".into(),
        codec_type: CodecType::Auto,
        route_config: RouteConfiguration::default(),
        rds_route_config_name: None,
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".into(),
            kind: HttpFilterKind::Router(RouterConfig {
                dynamic_stats: true,
                suppress_envoy_headers: false,
            }),
        }],
        access_log: vec![],
        generate_request_id: true,
        preserve_external_request_id: false,
        use_remote_address,
        xff_num_trusted_hops: 0,
        skip_xff_append: false,
        server_name: "envoy".into(),
        server_header_transformation: ServerHeaderTransformation::Overwrite,
        via: None,
        upgrade_types: vec![],
        stream_idle_timeout: Some(Duration::from_secs(300)),
        request_timeout: None,
        request_headers_timeout: None,
        idle_timeout: Some(Duration::from_secs(3600)),
        max_request_headers_kb: 60,
        max_headers_count: 100,
        normalize_path: false,
        merge_slashes: false,
    }
}

/// A header map from `(name, value)` pairs, repeats kept in order.
pub fn header_map(pairs: &[(&str, &str)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

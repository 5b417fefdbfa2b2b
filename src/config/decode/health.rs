//! A cluster's view of its hosts' health: `outlier_detection` (passive, from answers),
//! `health_checks` (active HTTP or TCP probes) and `common_lb_config.healthy_panic_threshold`.

use std::time::Duration;

use super::super::model::{HealthCheck, HealthCheckKind, OutlierDetection};
use super::scalars;
use super::{Decoder, Field, Message, Obj};

const OUTLIER_DETECTION: Message = Message {
    name: "OutlierDetection",
    fields: &[
        "consecutive_5xx",
        "consecutive_gateway_failure",
        "interval",
        "base_ejection_time",
        "max_ejection_time",
        "max_ejection_percent",
        "enforcing_consecutive_5xx",
        "enforcing_consecutive_gateway_failure",
        "enforcing_success_rate",
        "success_rate_minimum_hosts",
        "success_rate_request_volume",
        "success_rate_stdev_factor",
        "failure_percentage_threshold",
        "enforcing_failure_percentage",
        "failure_percentage_minimum_hosts",
        "failure_percentage_request_volume",
    ],
    ignored: &[
        "split_external_local_origin_errors",
        "consecutive_local_origin_failure",
        "enforcing_consecutive_local_origin_failure",
        "enforcing_local_origin_success_rate",
        "enforcing_failure_percentage_local_origin",
        "max_ejection_time_jitter",
        "successful_active_health_check_uneject_host",
        "monitors",
        "always_eject_one_host",
    ],
};

const HEALTH_CHECK: Message = Message {
    name: "HealthCheck",
    fields: &[
        "timeout",
        "interval",
        "interval_jitter",
        "unhealthy_threshold",
        "healthy_threshold",
        "no_traffic_interval",
        "unhealthy_interval",
        "http_health_check",
        "tcp_health_check",
        "grpc_health_check",
        "custom_health_check",
    ],
    ignored: &[
        "initial_jitter",
        "interval_jitter_percent",
        "alt_port",
        "reuse_connection",
        "no_traffic_healthy_interval",
        "unhealthy_edge_interval",
        "healthy_edge_interval",
        "event_log_path",
        "event_logger",
        "event_service",
        "always_log_health_check_failures",
        "always_log_health_check_success",
        "tls_options",
        "transport_socket_match_criteria",
    ],
};

const HTTP_HEALTH_CHECK: Message = Message {
    name: "HealthCheck.HttpHealthCheck",
    fields: &["path", "host", "expected_statuses"],
    ignored: &[
        "request_headers_to_add",
        "request_headers_to_remove",
        "retriable_statuses",
        "codec_client_type",
        "service_name_matcher",
        "send",
        "receive",
        "response_buffer_size",
        "method",
    ],
};

const TCP_HEALTH_CHECK: Message = Message {
    name: "HealthCheck.TcpHealthCheck",
    fields: &["send", "receive"],
    ignored: &["proxy_protocol_config"],
};

const PAYLOAD: Message = Message {
    name: "HealthCheck.Payload",
    fields: &["text", "binary"],
    ignored: &[],
};

const INT64_RANGE: Message = Message {
    name: "Int64Range",
    fields: &["start", "end"],
    ignored: &[],
};

const COMMON_LB_CONFIG: Message = Message {
    name: "CommonLbConfig",
    fields: &["healthy_panic_threshold"],
    ignored: &[
        "zone_aware_lb_config",
        "locality_weighted_lb_config",
        "update_merge_window",
        "ignore_new_hosts_until_first_hc",
        "close_connections_on_host_set_change",
        "consistent_hashing_lb_config",
        "override_host_status",
    ],
};

/// Envoy's default `healthy_panic_threshold`.
pub const DEFAULT_PANIC_THRESHOLD: f64 = 50.0;

pub fn outlier_detection(d: &mut Decoder, f: &Field) -> Option<OutlierDetection> {
    let o = d.obj(f, &OUTLIER_DETECTION)?;
    let mut od = OutlierDetection::default();
    let number = |d: &mut Decoder, key: &str, into: &mut u32, percent: bool| {
        if let Some(v) = o.get(key) {
            if let Some(n) = scalars::u32(d, &v) {
                if percent && n > 100 {
                    d.error_at_value(&v, format!("`{key}` is a percentage: 0 to 100"), None);
                } else {
                    *into = n;
                }
            }
        }
    };
    number(d, "consecutive_5xx", &mut od.consecutive_5xx, false);
    number(
        d,
        "consecutive_gateway_failure",
        &mut od.consecutive_gateway_failure,
        false,
    );
    number(
        d,
        "max_ejection_percent",
        &mut od.max_ejection_percent,
        true,
    );
    number(
        d,
        "enforcing_consecutive_5xx",
        &mut od.enforcing_consecutive_5xx,
        true,
    );
    number(
        d,
        "enforcing_consecutive_gateway_failure",
        &mut od.enforcing_consecutive_gateway_failure,
        true,
    );
    number(
        d,
        "enforcing_success_rate",
        &mut od.enforcing_success_rate,
        true,
    );
    number(
        d,
        "success_rate_minimum_hosts",
        &mut od.success_rate_minimum_hosts,
        false,
    );
    number(
        d,
        "success_rate_request_volume",
        &mut od.success_rate_request_volume,
        false,
    );
    number(
        d,
        "success_rate_stdev_factor",
        &mut od.success_rate_stdev_factor,
        false,
    );
    number(
        d,
        "failure_percentage_threshold",
        &mut od.failure_percentage_threshold,
        true,
    );
    number(
        d,
        "enforcing_failure_percentage",
        &mut od.enforcing_failure_percentage,
        true,
    );
    number(
        d,
        "failure_percentage_minimum_hosts",
        &mut od.failure_percentage_minimum_hosts,
        false,
    );
    number(
        d,
        "failure_percentage_request_volume",
        &mut od.failure_percentage_request_volume,
        false,
    );
    let time = |d: &mut Decoder, key: &str, into: &mut Duration| {
        if let Some(v) = o.get(key) {
            match scalars::duration(d, &v) {
                Some(t) if !t.is_zero() => *into = t,
                Some(_) => d.error_at_value(&v, format!("`{key}` must be above zero"), None),
                None => {}
            }
        }
    };
    time(d, "interval", &mut od.interval);
    time(d, "base_ejection_time", &mut od.base_ejection_time);
    let explicit_max = o.get("max_ejection_time").is_some();
    time(d, "max_ejection_time", &mut od.max_ejection_time);
    // Envoy's default cap is 300 s or the base time, whichever is larger.
    if !explicit_max {
        od.max_ejection_time = od.max_ejection_time.max(od.base_ejection_time);
    }
    Some(od)
}

pub fn health_check(d: &mut Decoder, f: &Field) -> Option<HealthCheck> {
    let o = d.obj(f, &HEALTH_CHECK)?;
    let required = |d: &mut Decoder, key: &str| -> Option<Duration> {
        match o.get(key) {
            Some(v) => scalars::duration(d, &v),
            None => {
                d.missing(&o, key);
                None
            }
        }
    };
    let timeout = required(d, "timeout");
    let interval = required(d, "interval");
    let threshold = |d: &mut Decoder, key: &str| -> Option<u32> {
        match o.get(key) {
            Some(v) => scalars::u32(d, &v),
            None => {
                d.missing(&o, key);
                None
            }
        }
    };
    let unhealthy_threshold = threshold(d, "unhealthy_threshold");
    let healthy_threshold = threshold(d, "healthy_threshold");
    let optional = |d: &mut Decoder, key: &str| o.get(key).and_then(|v| scalars::duration(d, &v));
    let interval_jitter = optional(d, "interval_jitter").unwrap_or_default();
    let no_traffic_interval = optional(d, "no_traffic_interval").unwrap_or(Duration::from_secs(60));
    let unhealthy_interval = optional(d, "unhealthy_interval");
    for unsupported in ["grpc_health_check", "custom_health_check"] {
        if let Some(v) = o.get(unsupported) {
            d.error_help(
                &v,
                format!("`{unsupported}` is not supported by meshsim"),
                "use `http_health_check` or `tcp_health_check`",
            );
            return None;
        }
    }
    let kind = match (o.get("http_health_check"), o.get("tcp_health_check")) {
        (Some(h), None) => http_health_check(d, &h)?,
        (None, Some(t)) => tcp_health_check(d, &t)?,
        (Some(_), Some(t)) => {
            d.oneof_conflict(&t, "http_health_check");
            return None;
        }
        (None, None) => {
            d.error_help(
                o.field_ref(),
                "health check names no checker",
                "add `http_health_check: {path: /healthz}` or `tcp_health_check: {}`",
            );
            return None;
        }
    };
    Some(HealthCheck {
        timeout: timeout?,
        interval: interval?,
        interval_jitter,
        unhealthy_threshold: unhealthy_threshold?.max(1),
        healthy_threshold: healthy_threshold?.max(1),
        no_traffic_interval,
        unhealthy_interval,
        kind,
    })
}

fn http_health_check(d: &mut Decoder, f: &Field) -> Option<HealthCheckKind> {
    let o = d.obj(f, &HTTP_HEALTH_CHECK)?;
    let path = match o.get("path") {
        Some(p) => scalars::string(d, &p)?,
        None => {
            d.missing(&o, "path");
            return None;
        }
    };
    if !path.starts_with('/') {
        d.error_help(
            o.field_ref(),
            format!("health check path `{path}` does not start with /"),
            format!("write `/{path}`"),
        );
    }
    let host = o
        .get("host")
        .and_then(|h| scalars::string(d, &h))
        .filter(|h| !h.is_empty());
    let mut expected_statuses = Vec::new();
    if let Some(list) = o.get("expected_statuses") {
        for item in d.seq(&list) {
            let Some(r) = d.obj(&item, &INT64_RANGE) else {
                continue;
            };
            let bound = |d: &mut Decoder, r: &Obj, key: &str| {
                r.get(key)
                    .and_then(|v| scalars::i64(d, &v))
                    .and_then(|n| u16::try_from(n).ok())
            };
            match (bound(d, &r, "start"), bound(d, &r, "end")) {
                (Some(start), Some(end))
                    if (100..=600).contains(&start) && start < end && end <= 600 =>
                {
                    expected_statuses.push((start, end))
                }
                _ => d.error_help(
                    &item,
                    "expected_statuses range must be [start, end) within 100–600 with start < end",
                    "e.g. `{start: 200, end: 300}` for every 2xx",
                ),
            }
        }
    }
    if expected_statuses.is_empty() {
        expected_statuses.push((200, 201));
    }
    Some(HealthCheckKind::Http {
        path,
        host,
        expected_statuses,
    })
}

fn tcp_health_check(d: &mut Decoder, f: &Field) -> Option<HealthCheckKind> {
    let o = d.obj(f, &TCP_HEALTH_CHECK)?;
    let send = match o.get("send") {
        Some(p) => payload(d, &p)?,
        None => Vec::new(),
    };
    let mut receive = Vec::new();
    if let Some(list) = o.get("receive") {
        for item in d.seq(&list) {
            if let Some(bytes) = payload(d, &item) {
                receive.push(bytes);
            }
        }
    }
    Some(HealthCheckKind::Tcp { send, receive })
}

/// `{text: "hex"}` (Envoy's `text` is hex-encoded) or `{binary: base64}`.
fn payload(d: &mut Decoder, f: &Field) -> Option<Vec<u8>> {
    let o = d.obj(f, &PAYLOAD)?;
    if let Some(t) = o.get("text") {
        let text = scalars::string(d, &t)?;
        let bytes: Option<Vec<u8>> = (text.len() % 2 == 0)
            .then(|| {
                (0..text.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
                    .collect()
            })
            .flatten();
        if bytes.is_none() {
            d.error_help(
                &t,
                "health check payload `text` is hex-encoded and this is not hex",
                "write the bytes in hex, e.g. `text: \"50494e47\"` for PING",
            );
        }
        return bytes;
    }
    if let Some(b) = o.get("binary") {
        let text = scalars::string(d, &b)?;
        return match super::tls::base64_decode(text.trim()) {
            Some(bytes) => Some(bytes),
            None => {
                d.error_at_value(&b, "`binary` is not base64", None);
                None
            }
        };
    }
    Some(Vec::new())
}

pub fn healthy_panic_threshold(d: &mut Decoder, f: &Field) -> f64 {
    let Some(o) = d.obj(f, &COMMON_LB_CONFIG) else {
        return DEFAULT_PANIC_THRESHOLD;
    };
    o.get("healthy_panic_threshold")
        .and_then(|p| scalars::percent(d, &p))
        .unwrap_or(DEFAULT_PANIC_THRESHOLD)
}

//! The HTTP filters before the router: `envoy.filters.http.fault`,
//! `envoy.filters.http.local_ratelimit` and `envoy.filters.http.health_check`.

use std::time::Duration;

use super::super::model::{
    FaultAbort, FaultAbortKind, FaultConfig, FaultDelay, HealthCheckFilterConfig, HttpFilterKind,
    LocalRateLimitConfig,
};
use super::headers::header_value_options;
use super::matchers::header_matchers;
use super::scalars;
use super::{Decoder, Field, Message, Obj};

const HTTP_FAULT: Message = Message {
    name: "HTTPFault",
    fields: &[
        "delay",
        "abort",
        "upstream_cluster",
        "headers",
        "max_active_faults",
    ],
    ignored: &[
        "downstream_nodes",
        "response_rate_limit",
        "delay_percent_runtime",
        "abort_percent_runtime",
        "delay_duration_runtime",
        "abort_http_status_runtime",
        "max_active_faults_runtime",
        "response_rate_limit_percent_runtime",
        "abort_grpc_status_runtime",
        "disable_downstream_cluster_stats",
        "filter_metadata",
    ],
};

const FAULT_DELAY: Message = Message {
    name: "FaultDelay",
    fields: &["fixed_delay", "header_delay", "percentage", "type"],
    ignored: &[],
};

const FAULT_ABORT: Message = Message {
    name: "FaultAbort",
    fields: &["http_status", "grpc_status", "header_abort", "percentage"],
    ignored: &[],
};

const EMPTY: Message = Message {
    name: "HeaderDelay",
    fields: &[],
    ignored: &[],
};

const LOCAL_RATE_LIMIT: Message = Message {
    name: "LocalRateLimit",
    fields: &[
        "stat_prefix",
        "token_bucket",
        "filter_enabled",
        "filter_enforced",
        "status",
        "response_headers_to_add",
    ],
    ignored: &[
        "request_headers_to_add_when_not_enforced",
        "descriptors",
        "stage",
        "local_rate_limit_per_downstream_connection",
        "enable_x_ratelimit_headers",
        "vh_rate_limits",
        "always_consume_default_token_bucket",
        "rate_limited_as_resource_exhausted",
        "local_cluster_rate_limit",
    ],
};

const TOKEN_BUCKET: Message = Message {
    name: "TokenBucket",
    fields: &["max_tokens", "tokens_per_fill", "fill_interval"],
    ignored: &[],
};

const RUNTIME_FRACTIONAL: Message = Message {
    name: "RuntimeFractionalPercent",
    fields: &["default_value", "runtime_key"],
    ignored: &[],
};

const HTTP_STATUS: Message = Message {
    name: "HttpStatus",
    fields: &["code"],
    ignored: &[],
};

const HEALTH_CHECK_FILTER: Message = Message {
    name: "HealthCheck (filter)",
    fields: &[
        "pass_through_mode",
        "headers",
        "cluster_min_healthy_percentages",
        "endpoint",
    ],
    ignored: &["cache_time"],
};

fn open<'n>(d: &mut Decoder, f: &Field<'n>, any: bool, msg: &'static Message) -> Option<Obj<'n>> {
    if any {
        d.obj_any(f, msg)
    } else {
        d.obj(f, msg)
    }
}

fn dump(f: Option<&Field>) -> serde_json::Value {
    f.map(|f| f.node.to_json())
        .unwrap_or(serde_json::Value::Null)
}

/// A `percentage` (FractionalPercent); Envoy's default when absent is 100 %.
fn percentage(d: &mut Decoder, o: &Obj) -> f64 {
    o.get("percentage")
        .and_then(|p| scalars::fractional_percent(d, &p))
        .unwrap_or(100.0)
}

pub fn fault(d: &mut Decoder, f: Option<&Field>, any: bool, _at: &Field) -> Option<HttpFilterKind> {
    let mut config = FaultConfig {
        delay: None,
        abort: None,
        upstream_cluster: None,
        headers: Vec::new(),
        max_active_faults: None,
        dump: dump(f),
    };
    let Some(f) = f else {
        return Some(HttpFilterKind::Fault(config));
    };
    let o = open(d, f, any, &HTTP_FAULT)?;
    if let Some(df) = o.get("delay") {
        let delay = d.obj(&df, &FAULT_DELAY)?;
        let fixed = match (delay.get("fixed_delay"), delay.get("header_delay")) {
            (Some(t), None) => scalars::duration(d, &t),
            (None, Some(h)) => {
                d.obj(&h, &EMPTY);
                None
            }
            (Some(_), Some(h)) => {
                d.oneof_conflict(&h, "fixed_delay");
                None
            }
            (None, None) => {
                d.error_help(
                    &df,
                    "fault delay has neither `fixed_delay` nor `header_delay`",
                    "add e.g. `fixed_delay: 2s`",
                );
                None
            }
        };
        config.delay = Some(FaultDelay {
            fixed,
            percent: percentage(d, &delay),
        });
    }
    if let Some(af) = o.get("abort") {
        let abort = d.obj(&af, &FAULT_ABORT)?;
        let kind = match (
            abort.get("http_status"),
            abort.get("grpc_status"),
            abort.get("header_abort"),
        ) {
            (Some(s), None, None) => match scalars::u32(d, &s) {
                Some(code) if (200..600).contains(&code) => Some(FaultAbortKind::Http(code as u16)),
                Some(code) => {
                    d.error_at_value(
                        &s,
                        format!("abort http_status {code} is not between 200 and 599"),
                        None,
                    );
                    None
                }
                None => None,
            },
            (None, Some(g), None) => scalars::u32(d, &g).map(FaultAbortKind::Grpc),
            (None, None, Some(h)) => {
                d.obj(&h, &EMPTY);
                Some(FaultAbortKind::Header)
            }
            (None, None, None) => {
                d.error_help(
                    &af,
                    "fault abort names no status",
                    "add `http_status: 503` (or `grpc_status`, or `header_abort: {}`)",
                );
                None
            }
            _ => {
                d.error_help(
                    &af,
                    "fault abort gives more than one of `http_status`, `grpc_status`, `header_abort`",
                    "keep one",
                );
                None
            }
        };
        if let Some(kind) = kind {
            config.abort = Some(FaultAbort {
                kind,
                percent: percentage(d, &abort),
            });
        }
    }
    config.upstream_cluster = o
        .get("upstream_cluster")
        .and_then(|c| scalars::string(d, &c))
        .filter(|c| !c.is_empty());
    if let Some(h) = o.get("headers") {
        config.headers = header_matchers(d, &h);
    }
    config.max_active_faults = o
        .get("max_active_faults")
        .and_then(|m| scalars::u32(d, &m))
        .map(u64::from);
    Some(HttpFilterKind::Fault(config))
}

/// `filter_enabled` / `filter_enforced`: a RuntimeFractionalPercent's default value; absent
/// means 0 %, as in Envoy (the filter then does nothing).
fn runtime_percent(d: &mut Decoder, o: &Obj, key: &str) -> f64 {
    let Some(f) = o.get(key) else { return 0.0 };
    let Some(r) = d.obj(&f, &RUNTIME_FRACTIONAL) else {
        return 0.0;
    };
    r.get("default_value")
        .and_then(|v| scalars::fractional_percent(d, &v))
        .unwrap_or(0.0)
}

/// A filter that cannot run on defaults: its config, or an error on the filter entry saying
/// what it needs.
fn required<'a, 'n>(
    d: &mut Decoder,
    f: Option<&'a Field<'n>>,
    at: &Field,
    filter: &str,
    help: &str,
) -> Option<&'a Field<'n>> {
    if f.is_none() {
        d.error_help(at, format!("{filter} needs a typed_config"), help);
    }
    f
}

pub fn local_ratelimit(
    d: &mut Decoder,
    f: Option<&Field>,
    any: bool,
    at: &Field,
) -> Option<HttpFilterKind> {
    let f = required(
        d,
        f,
        at,
        "envoy.filters.http.local_ratelimit",
        "add `stat_prefix` and a `token_bucket`",
    )?;
    let o = open(d, f, any, &LOCAL_RATE_LIMIT)?;
    let stat_prefix = match o.get("stat_prefix") {
        Some(s) => scalars::string(d, &s)?,
        None => {
            d.missing_help(
                &o,
                "stat_prefix",
                "it names the `<stat_prefix>.http_local_rate_limit.*` stats",
            );
            return None;
        }
    };
    let (mut max_tokens, mut tokens_per_fill, mut fill_interval) = (0, 1, Duration::ZERO);
    match o.get("token_bucket") {
        Some(tb) => {
            let b = d.obj(&tb, &TOKEN_BUCKET)?;
            match b.get("max_tokens").and_then(|m| scalars::u32(d, &m)) {
                Some(m) if m > 0 => max_tokens = m,
                _ => d.error_help(
                    &tb,
                    "token_bucket needs `max_tokens` above 0",
                    "add e.g. `max_tokens: 10`",
                ),
            }
            if let Some(t) = b.get("tokens_per_fill").and_then(|t| scalars::u32(d, &t)) {
                tokens_per_fill = t;
            }
            match b
                .get("fill_interval")
                .and_then(|t| scalars::duration(d, &t))
            {
                Some(t) if t >= Duration::from_millis(50) => fill_interval = t,
                Some(_) => d.error_help(
                    &tb,
                    "token_bucket `fill_interval` is below 50ms",
                    "Envoy requires at least 50ms",
                ),
                None => d.missing_help(&b, "fill_interval", "add e.g. `fill_interval: 1s`"),
            }
        }
        None => {
            // Without a bucket Envoy's filter limits nothing; say so, it is surely a mistake.
            d.missing_help(
                &o,
                "token_bucket",
                "add `token_bucket: {max_tokens: 10, tokens_per_fill: 10, fill_interval: 1s}`",
            );
            return None;
        }
    }
    let status = match o.get("status") {
        Some(s) => d
            .obj(&s, &HTTP_STATUS)
            .and_then(|so| so.get("code"))
            .and_then(|c| match &c.node.value {
                super::super::node::Value::Scalar { text, .. }
                    if !text.chars().all(|c| c.is_ascii_digit()) =>
                {
                    http_status_name(text)
                }
                _ => scalars::u32(d, &c).and_then(|n| u16::try_from(n).ok()),
            })
            .unwrap_or(429),
        None => 429,
    };
    let response_headers_to_add = match o.get("response_headers_to_add") {
        Some(h) => header_value_options(d, &h),
        None => Vec::new(),
    };
    Some(HttpFilterKind::LocalRateLimit(LocalRateLimitConfig {
        stat_prefix,
        max_tokens,
        tokens_per_fill,
        fill_interval,
        enabled: runtime_percent(d, &o, "filter_enabled"),
        enforced: runtime_percent(d, &o, "filter_enforced"),
        status,
        response_headers_to_add,
        dump: dump(Some(f)),
    }))
}

/// `type.v3.StatusCode` names Envoy configs use (`TooManyRequests`, `ServiceUnavailable`…).
fn http_status_name(name: &str) -> Option<u16> {
    Some(match name {
        "TooManyRequests" => 429,
        "ServiceUnavailable" => 503,
        "BadRequest" => 400,
        "Forbidden" => 403,
        "NotFound" => 404,
        "InternalServerError" => 500,
        "BadGateway" => 502,
        "GatewayTimeout" => 504,
        "OK" => 200,
        other => return other.parse().ok(),
    })
}

pub fn health_check(
    d: &mut Decoder,
    f: Option<&Field>,
    any: bool,
    at: &Field,
) -> Option<HttpFilterKind> {
    let f = required(
        d,
        f,
        at,
        "envoy.filters.http.health_check",
        "add `pass_through_mode: false` and `headers: [{name: \":path\", string_match: {exact: /healthz}}]`",
    )?;
    let o = open(d, f, any, &HEALTH_CHECK_FILTER)?;
    let pass_through_mode = match o.get("pass_through_mode") {
        Some(p) => scalars::bool(d, &p).unwrap_or(false),
        None => {
            d.missing_help(
                &o,
                "pass_through_mode",
                "Envoy requires it: `pass_through_mode: false` answers health checks here",
            );
            return None;
        }
    };
    let mut headers = match o.get("headers") {
        Some(h) => header_matchers(d, &h),
        None => Vec::new(),
    };
    // v2's `endpoint: /healthz` is a `:path` match.
    if let Some(e) = o.get("endpoint") {
        if let Some(path) = scalars::string(d, &e) {
            headers.push(super::super::model::HeaderMatcher {
                name: ":path".into(),
                spec: super::super::model::HeaderMatchSpec::String(
                    super::super::model::StringMatcher {
                        pattern: super::super::model::StringPattern::Exact(path),
                        ignore_case: false,
                    },
                ),
                invert: false,
            });
        }
    }
    if headers.is_empty() {
        d.error_help(
            f,
            "health_check filter names no `headers` to recognise health checks by",
            "add `headers: [{name: \":path\", string_match: {exact: /healthz}}]`",
        );
        return None;
    }
    let mut cluster_min_healthy_percentages = Vec::new();
    if let Some(m) = o.get("cluster_min_healthy_percentages") {
        if let super::super::node::Value::Map(entries) = &m.node.value {
            for (key, value) in entries {
                let field = m.child(key, value);
                if let Some(p) = scalars::percent(d, &field) {
                    cluster_min_healthy_percentages.push((key.name.clone(), p));
                }
            }
        }
    }
    Some(HttpFilterKind::HealthCheck(HealthCheckFilterConfig {
        pass_through_mode,
        headers,
        cluster_min_healthy_percentages,
        dump: dump(Some(f)),
    }))
}

//! `RetryPolicy` (route and virtual host): the `retry_on` conditions, how many retries, the
//! per-try timeout, the back-off, and which responses and hosts count.

use std::time::Duration;

use super::super::diagnostics::did_you_mean;
use super::super::model::{RetryOn, RetryPolicy};
use super::matchers::header_matchers;
use super::scalars;
use super::{Decoder, Field, Message};

/// Envoy's default back-off base (runtime `upstream.base_retry_backoff_ms`).
pub const DEFAULT_BACK_OFF_BASE: Duration = Duration::from_millis(25);

const RETRY_POLICY: Message = Message {
    name: "RetryPolicy",
    fields: &[
        "retry_on",
        "num_retries",
        "per_try_timeout",
        "retry_back_off",
        "retriable_status_codes",
        "retriable_headers",
        "retry_host_predicate",
        "host_selection_retry_max_attempts",
    ],
    ignored: &[
        "retriable_request_headers",
        "per_try_idle_timeout",
        "retry_priority",
        "retry_options_predicates",
        "rate_limited_retry_back_off",
    ],
};

const BACK_OFF: Message = Message {
    name: "RetryPolicy.RetryBackOff",
    fields: &["base_interval", "max_interval"],
    ignored: &[],
};

const HOST_PREDICATE: Message = Message {
    name: "RetryPolicy.RetryHostPredicate",
    fields: &["name", "typed_config", "config"],
    ignored: &[],
};

const PREVIOUS_HOSTS: &str = "envoy.retry_host_predicates.previous_hosts";

pub fn retry_policy(d: &mut Decoder, f: &Field) -> Option<RetryPolicy> {
    let o = d.obj(f, &RETRY_POLICY)?;
    let retry_on = match o.get("retry_on") {
        Some(v) => {
            let text = scalars::string(d, &v)?;
            match RetryOn::parse(&text) {
                Ok(on) => on,
                Err(unknown) => {
                    let help = match did_you_mean(&unknown, &RetryOn::NAMES) {
                        Some(near) => format!("did you mean `{near}`?"),
                        None => format!(
                            "use a comma-separated list of: {}",
                            RetryOn::NAMES.join(", ")
                        ),
                    };
                    d.error_at_value(
                        &v,
                        format!("unknown retry condition `{unknown}`"),
                        Some(help),
                    );
                    return None;
                }
            }
        }
        // Envoy retries nothing without conditions; say so rather than silently do nothing.
        None => {
            d.error_help(
                o.field_ref(),
                "retry_policy without `retry_on` never retries",
                "add e.g. `retry_on: 5xx,reset,connect-failure`",
            );
            return None;
        }
    };
    let num_retries = o
        .get("num_retries")
        .and_then(|n| scalars::u32(d, &n))
        .unwrap_or(1);
    let per_try_timeout = o
        .get("per_try_timeout")
        .and_then(|t| scalars::duration(d, &t))
        .filter(|t| !t.is_zero());
    let (mut back_off_base, mut back_off_max) = (DEFAULT_BACK_OFF_BASE, DEFAULT_BACK_OFF_BASE * 10);
    if let Some(b) = o.get("retry_back_off") {
        if let Some(bo) = d.obj(&b, &BACK_OFF) {
            match bo
                .get("base_interval")
                .and_then(|v| scalars::duration(d, &v))
            {
                Some(base) if !base.is_zero() => {
                    back_off_base = base;
                    back_off_max = base * 10;
                }
                _ => d.error_help(
                    &b,
                    "`retry_back_off` needs a `base_interval` above zero",
                    "add e.g. `base_interval: 0.025s`",
                ),
            }
            if let Some(max) = bo.get("max_interval") {
                if let Some(m) = scalars::duration(d, &max) {
                    if m < back_off_base {
                        d.error_at_value(
                            &max,
                            "`max_interval` is below `base_interval`",
                            Some("make it at least the base interval".into()),
                        );
                    } else {
                        back_off_max = m;
                    }
                }
            }
        }
    }
    let retriable_status_codes = match o.get("retriable_status_codes") {
        Some(codes) => d
            .seq(&codes)
            .iter()
            .filter_map(|c| {
                let code = scalars::u32(d, c)?;
                if (100..=599).contains(&code) {
                    Some(code as u16)
                } else {
                    d.error_at_value(c, format!("{code} is not an HTTP status"), None);
                    None
                }
            })
            .collect(),
        None => Vec::new(),
    };
    let retriable_headers = match o.get("retriable_headers") {
        Some(h) => header_matchers(d, &h),
        None => Vec::new(),
    };
    let mut avoid_previous_hosts = false;
    if let Some(preds) = o.get("retry_host_predicate") {
        for p in d.seq(&preds) {
            let Some(po) = d.obj(&p, &HOST_PREDICATE) else {
                continue;
            };
            let Some(name_field) = po.get("name") else {
                continue;
            };
            match scalars::string(d, &name_field).as_deref() {
                Some(PREVIOUS_HOSTS) => avoid_previous_hosts = true,
                Some(other) => d.error_at_value(
                    &name_field,
                    format!("retry host predicate `{other}` is not supported by meshsim"),
                    Some(format!("use `{PREVIOUS_HOSTS}`")),
                ),
                None => {}
            }
        }
    }
    let host_selection_retry_max_attempts = o
        .get("host_selection_retry_max_attempts")
        .and_then(|n| scalars::u32(d, &n))
        .unwrap_or(1)
        .max(1);
    Some(RetryPolicy {
        retry_on,
        num_retries,
        per_try_timeout,
        back_off_base,
        back_off_max,
        retriable_status_codes,
        retriable_headers,
        avoid_previous_hosts,
        host_selection_retry_max_attempts,
    })
}

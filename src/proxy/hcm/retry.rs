//! Retries as Envoy's router does them: which outcomes a policy retries, how long to back off,
//! and the per-request overrides (`x-envoy-retry-on`, `x-envoy-max-retries`,
//! `x-envoy-upstream-rq-per-try-timeout-ms`, `x-envoy-retriable-status-codes`).

use std::time::Duration;

use http::header::HeaderName;
use http::HeaderMap;

use crate::config::decode::retry::DEFAULT_BACK_OFF_BASE;
use std::borrow::Cow;

use crate::config::model::{RetryOn, RetryPolicy};
use crate::proxy::headers::has_envoy_headers;
use crate::proxy::router::matcher::{CompiledHeaderMatcher, RequestView};
use crate::proxy::router::RetryRule;

const X_ENVOY_RETRY_ON: HeaderName = HeaderName::from_static("x-envoy-retry-on");
const X_ENVOY_RETRY_GRPC_ON: HeaderName = HeaderName::from_static("x-envoy-retry-grpc-on");
const X_ENVOY_MAX_RETRIES: HeaderName = HeaderName::from_static("x-envoy-max-retries");
const X_ENVOY_PER_TRY_TIMEOUT_MS: HeaderName =
    HeaderName::from_static("x-envoy-upstream-rq-per-try-timeout-ms");
const X_ENVOY_RETRIABLE_STATUS_CODES: HeaderName =
    HeaderName::from_static("x-envoy-retriable-status-codes");
const X_ENVOY_RATELIMITED: HeaderName = HeaderName::from_static("x-envoy-ratelimited");
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// The policy one request runs under: the route's (or virtual host's), with the request's own
/// `x-envoy-*` overrides. The headers are consumed (removed) either way, as Envoy's router
/// does; they are honoured only from internal clients.
pub fn effective<'a>(
    configured: Option<&'a RetryRule>,
    headers: &mut HeaderMap,
    internal: bool,
) -> Option<Effective<'a>> {
    let rule = |policy: Cow<'a, RetryPolicy>| Effective {
        policy,
        retriable_headers: configured.map_or(&[][..], |r| &r.retriable_headers),
    };
    let unchanged = || configured.map(|r| rule(Cow::Borrowed(&r.policy)));
    if !has_envoy_headers(headers) {
        return unchanged();
    }
    let text = |h: Option<http::HeaderValue>| h.and_then(|v| v.to_str().ok().map(str::to_string));
    let on = text(headers.remove(X_ENVOY_RETRY_ON));
    let grpc_on = text(headers.remove(X_ENVOY_RETRY_GRPC_ON));
    let max = text(headers.remove(X_ENVOY_MAX_RETRIES));
    let per_try = text(headers.remove(X_ENVOY_PER_TRY_TIMEOUT_MS));
    let codes = text(headers.remove(X_ENVOY_RETRIABLE_STATUS_CODES));
    if !internal
        || (on.is_none()
            && grpc_on.is_none()
            && max.is_none()
            && per_try.is_none()
            && codes.is_none())
    {
        return unchanged();
    }
    // Unknown names in a header are ignored, as Envoy ignores them.
    let from_headers = [on, grpc_on]
        .into_iter()
        .flatten()
        .flat_map(|t| {
            t.split(',')
                .filter_map(|n| RetryOn::parse(n).ok())
                .collect::<Vec<_>>()
        })
        .fold(RetryOn::default(), RetryOn::union);
    let mut policy = match configured {
        Some(r) => r.policy.clone(),
        None if from_headers != RetryOn::default() => RetryPolicy {
            retry_on: RetryOn::default(),
            num_retries: 1,
            per_try_timeout: None,
            back_off_base: DEFAULT_BACK_OFF_BASE,
            back_off_max: DEFAULT_BACK_OFF_BASE * 10,
            retriable_status_codes: Vec::new(),
            retriable_headers: Vec::new(),
            avoid_previous_hosts: false,
            host_selection_retry_max_attempts: 1,
        },
        None => return None,
    };
    policy.retry_on = policy.retry_on.union(from_headers);
    if let Some(n) = max.and_then(|m| m.trim().parse().ok()) {
        policy.num_retries = n;
    }
    if let Some(ms) = per_try.and_then(|m| m.trim().parse::<u64>().ok()) {
        policy.per_try_timeout = (ms > 0).then(|| Duration::from_millis(ms));
    }
    if let Some(codes) = codes {
        policy.retriable_status_codes.extend(
            codes
                .split(',')
                .filter_map(|c| c.trim().parse::<u16>().ok()),
        );
    }
    Some(rule(Cow::Owned(policy)))
}

/// The policy a request runs under: borrowed from the route when the request changes nothing
/// (no copy per request), owned when its headers override some of it.
pub struct Effective<'a> {
    policy: Cow<'a, RetryPolicy>,
    retriable_headers: &'a [CompiledHeaderMatcher],
}

impl std::ops::Deref for Effective<'_> {
    type Target = RetryPolicy;

    fn deref(&self) -> &RetryPolicy {
        &self.policy
    }
}

/// How an attempt ended, for the retry decision.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    Response { code: u16, headers: &'a HeaderMap },
    ConnectFailure,
    Reset,
    PerTryTimeout,
}

/// Whether `policy` retries `outcome`.
pub fn retriable(policy: &Effective<'_>, outcome: Outcome<'_>) -> bool {
    let on = &policy.retry_on;
    match outcome {
        Outcome::ConnectFailure => on.five_xx || on.gateway_error || on.reset || on.connect_failure,
        Outcome::Reset | Outcome::PerTryTimeout => on.five_xx || on.gateway_error || on.reset,
        Outcome::Response { code, headers } => {
            (on.five_xx && code >= 500)
                || (on.gateway_error && (502..=504).contains(&code))
                || (on.retriable_4xx && code == 409)
                || (on.retriable_status_codes && policy.retriable_status_codes.contains(&code))
                || (on.envoy_ratelimited
                    && code == 429
                    && headers.contains_key(X_ENVOY_RATELIMITED))
                || (on.retriable_headers && matches_any(policy.retriable_headers, headers))
                || grpc_retriable(on, headers)
        }
    }
}

/// Whether any of the route's `retriable_headers` matchers matches the response's headers.
fn matches_any(matchers: &[CompiledHeaderMatcher], headers: &HeaderMap) -> bool {
    let response = RequestView {
        method: "",
        path: "",
        query: None,
        authority: "",
        scheme: "",
        headers,
    };
    matchers.iter().any(|m| m.matches(&response))
}

/// gRPC answers 200 with the status in `grpc-status`: cancelled (1), deadline-exceeded (4),
/// resource-exhausted (8), internal (13), unavailable (14).
fn grpc_retriable(on: &RetryOn, headers: &HeaderMap) -> bool {
    let Some(status) = headers
        .get(GRPC_STATUS)
        .and_then(|v| v.to_str().ok()?.parse::<u8>().ok())
    else {
        return false;
    };
    match status {
        1 => on.grpc[0],
        4 => on.grpc[1],
        8 => on.grpc[2],
        13 => on.grpc[3],
        14 => on.grpc[4],
        _ => false,
    }
}

/// Envoy's fully jittered exponential back-off before retry `n` (1-based): uniform in
/// [0, min((2ⁿ − 1) · base, max)).
pub fn back_off(policy: &RetryPolicy, n: u32, draw: f64) -> Duration {
    let factor = (1u64 << n.min(30)) - 1;
    let ceiling = policy
        .back_off_base
        .saturating_mul(factor as u32)
        .min(policy.back_off_max);
    ceiling.mul_f64(draw.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A route's rule for `on`, as the router compiles it.
    fn rule(on: &str) -> RetryRule {
        RetryRule::compile(&policy(on)).unwrap()
    }

    /// The rule as a request without overrides runs under it.
    fn as_run(rule: &RetryRule) -> Effective<'_> {
        effective(Some(rule), &mut HeaderMap::new(), false).unwrap()
    }

    fn policy(on: &str) -> RetryPolicy {
        RetryPolicy {
            retry_on: RetryOn::parse(on).unwrap(),
            num_retries: 2,
            per_try_timeout: None,
            back_off_base: DEFAULT_BACK_OFF_BASE,
            back_off_max: DEFAULT_BACK_OFF_BASE * 10,
            retriable_status_codes: vec![418],
            retriable_headers: vec![crate::config::model::HeaderMatcher {
                name: "x-retry-me".into(),
                spec: crate::config::model::HeaderMatchSpec::Present(true),
                invert: false,
            }],
            avoid_previous_hosts: false,
            host_selection_retry_max_attempts: 1,
        }
    }

    fn response(code: u16, headers: &HeaderMap) -> Outcome<'_> {
        Outcome::Response { code, headers }
    }

    #[test]
    fn each_condition_retries_what_envoy_documents() {
        let none = HeaderMap::new();
        let r = rule("5xx");
        let p = as_run(&r);
        assert!(retriable(&p, response(500, &none)));
        assert!(retriable(&p, Outcome::ConnectFailure));
        assert!(retriable(&p, Outcome::PerTryTimeout));
        assert!(!retriable(&p, response(404, &none)));
        let r = rule("gateway-error");
        let p = as_run(&r);
        assert!(retriable(&p, response(503, &none)));
        assert!(!retriable(&p, response(500, &none)));
        let r = rule("connect-failure");
        let p = as_run(&r);
        assert!(retriable(&p, Outcome::ConnectFailure));
        assert!(!retriable(&p, Outcome::Reset));
        assert!(!retriable(&p, response(503, &none)));
        let r = rule("retriable-4xx,retriable-status-codes,retriable-headers");
        let p = as_run(&r);
        assert!(retriable(&p, response(409, &none)));
        assert!(retriable(&p, response(418, &none)));
        let mut marked = HeaderMap::new();
        marked.insert("x-retry-me", "1".parse().unwrap());
        assert!(retriable(&p, response(200, &marked)));
        assert!(!retriable(&p, response(200, &none)));
        let mut grpc = HeaderMap::new();
        grpc.insert("grpc-status", "14".parse().unwrap());
        assert!(retriable(
            &as_run(&rule("unavailable")),
            response(200, &grpc)
        ));
        assert!(!retriable(
            &as_run(&rule("cancelled")),
            response(200, &grpc)
        ));
    }

    #[test]
    fn back_off_is_jittered_exponential_and_capped() {
        let p = policy("5xx");
        assert_eq!(back_off(&p, 1, 1.0), Duration::from_millis(25));
        assert_eq!(back_off(&p, 2, 1.0), Duration::from_millis(75));
        assert_eq!(back_off(&p, 10, 1.0), Duration::from_millis(250));
        assert_eq!(back_off(&p, 3, 0.0), Duration::ZERO);
    }

    #[test]
    fn headers_override_internal_requests_only_and_are_always_consumed() {
        let mut h = HeaderMap::new();
        h.insert("x-envoy-retry-on", "5xx".parse().unwrap());
        h.insert("x-envoy-max-retries", "4".parse().unwrap());
        let p = effective(None, &mut h.clone(), true).unwrap();
        assert!(p.retry_on.five_xx);
        assert_eq!(p.num_retries, 4);
        assert!(effective(None, &mut h, false).is_none());
        assert!(h.is_empty(), "consumed");
        let configured = rule("reset");
        let mut h = HeaderMap::new();
        h.insert(
            "x-envoy-upstream-rq-per-try-timeout-ms",
            "150".parse().unwrap(),
        );
        let p = effective(Some(&configured), &mut h, true).unwrap();
        assert_eq!(p.per_try_timeout, Some(Duration::from_millis(150)));
        assert_eq!(p.num_retries, 2);
        assert!(
            matches!(as_run(&configured).policy, Cow::Borrowed(_)),
            "without overrides the route's policy is used as it is, not copied"
        );
    }
}

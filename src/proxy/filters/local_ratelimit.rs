//! `envoy.filters.http.local_ratelimit`: a token bucket per filter. `filter_enabled` % of
//! requests are looked at; without a token they are counted `rate_limited`, and
//! `filter_enforced` % of those get the configured status (429) with `x-envoy-ratelimited`.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::header::{HeaderName, HeaderValue};

use crate::config::model::LocalRateLimitConfig;
use crate::proxy::access_log::ResponseFlags;
use crate::proxy::headers::{self, CompiledHeader, InvalidHeader};
use crate::proxy::local_reply;
use crate::proxy::stats::{Counter, Store};

use super::{Decision, Request};

const X_ENVOY_RATELIMITED: HeaderName = HeaderName::from_static("x-envoy-ratelimited");

pub struct LocalRateLimit {
    config: LocalRateLimitConfig,
    bucket: Bucket,
    headers: Vec<CompiledHeader>,
    enabled: Counter,
    enforced: Counter,
    rate_limited: Counter,
    ok: Counter,
}

/// Tokens, refilled lazily: as many fills as intervals passed since the last one. Atomics
/// only — the request path takes no lock: whoever moves `last_fill` on adds the tokens.
struct Bucket {
    tokens: AtomicU32,
    /// Nanoseconds since `epoch` of the last fill.
    last_fill: AtomicU64,
    epoch: Instant,
}

impl LocalRateLimit {
    pub fn new(config: &LocalRateLimitConfig, store: &Store) -> Result<Self, InvalidHeader> {
        let c =
            |n: &str| store.counter(&format!("{}.http_local_rate_limit.{n}", config.stat_prefix));
        Ok(LocalRateLimit {
            bucket: Bucket {
                tokens: AtomicU32::new(config.max_tokens),
                last_fill: AtomicU64::new(0),
                epoch: Instant::now(),
            },
            headers: headers::compile_additions(&config.response_headers_to_add)?,
            enabled: c("enabled"),
            enforced: c("enforced"),
            rate_limited: c("rate_limited"),
            ok: c("ok"),
            config: config.clone(),
        })
    }

    fn take_token(&self, now: Instant) -> bool {
        let b = &self.bucket;
        let interval = self
            .config
            .fill_interval
            .max(Duration::from_millis(1))
            .as_nanos() as u64;
        let now = now.saturating_duration_since(b.epoch).as_nanos() as u64;
        let last = b.last_fill.load(Ordering::Acquire);
        let fills = now.saturating_sub(last) / interval;
        if fills > 0
            && b.last_fill
                .compare_exchange(
                    last,
                    last + fills * interval,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
        {
            let added = fills.saturating_mul(u64::from(self.config.tokens_per_fill));
            let max = u64::from(self.config.max_tokens);
            let _ = b
                .tokens
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                    Some((u64::from(t) + added).min(max) as u32)
                });
        }
        b.tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| t.checked_sub(1))
            .is_ok()
    }

    pub fn decode(&self, req: &Request<'_>) -> Decision {
        if !draw(self.config.enabled) {
            return Decision::Continue;
        }
        self.enabled.inc();
        if self.take_token(Instant::now()) {
            self.ok.inc();
            return Decision::Continue;
        }
        self.rate_limited.inc();
        if !draw(self.config.enforced) {
            return Decision::Continue;
        }
        self.enforced.inc();
        let mut reply = local_reply::reply(self.config.status, "local_rate_limited", req.head);
        reply
            .headers_mut()
            .insert(X_ENVOY_RATELIMITED, HeaderValue::from_static("true"));
        headers::apply_additions(reply.headers_mut(), &self.headers);
        Decision::Respond(reply, ResponseFlags::RATE_LIMITED, "local_rate_limited")
    }
}

/// True for `percent` % of calls.
fn draw(percent: f64) -> bool {
    percent >= 100.0 || (percent > 0.0 && fastrand::f64() * 100.0 < percent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_refills_per_interval_up_to_max() {
        let config = LocalRateLimitConfig {
            stat_prefix: "t".into(),
            max_tokens: 2,
            tokens_per_fill: 1,
            fill_interval: Duration::from_millis(100),
            enabled: 100.0,
            enforced: 100.0,
            status: 429,
            response_headers_to_add: Vec::new(),
            dump: serde_json::Value::Null,
        };
        let limit = LocalRateLimit::new(&config, &Store::default()).unwrap();
        let t0 = limit.bucket.epoch;
        assert!(limit.take_token(t0));
        assert!(limit.take_token(t0));
        assert!(!limit.take_token(t0));
        assert!(limit.take_token(t0 + Duration::from_millis(150)));
        assert!(!limit.take_token(t0 + Duration::from_millis(150)));
        // A long pause refills to max_tokens, no more.
        let later = t0 + Duration::from_secs(10);
        assert!(limit.take_token(later) && limit.take_token(later) && !limit.take_token(later));
    }
}

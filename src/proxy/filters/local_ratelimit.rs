//! `envoy.filters.http.local_ratelimit`: a token bucket per filter. `filter_enabled` % of
//! requests are looked at; without a token they are counted `rate_limited`, and
//! `filter_enforced` % of those get the configured status (429) with `x-envoy-ratelimited`.

use std::sync::Mutex;
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
    bucket: Mutex<Bucket>,
    headers: Vec<CompiledHeader>,
    enabled: Counter,
    enforced: Counter,
    rate_limited: Counter,
    ok: Counter,
}

/// Tokens, refilled lazily: as many fills as intervals passed since the last one.
struct Bucket {
    tokens: u32,
    last_fill: Instant,
}

impl LocalRateLimit {
    pub fn new(config: &LocalRateLimitConfig, store: &Store) -> Result<Self, InvalidHeader> {
        let c =
            |n: &str| store.counter(&format!("{}.http_local_rate_limit.{n}", config.stat_prefix));
        Ok(LocalRateLimit {
            bucket: Mutex::new(Bucket {
                tokens: config.max_tokens,
                last_fill: Instant::now(),
            }),
            headers: headers::compile_additions(&config.response_headers_to_add)?,
            enabled: c("enabled"),
            enforced: c("enforced"),
            rate_limited: c("rate_limited"),
            ok: c("ok"),
            config: config.clone(),
        })
    }

    fn take_token(&self, now: Instant) -> bool {
        let mut b = self.bucket.lock().expect("bucket lock");
        let interval = self.config.fill_interval.max(Duration::from_millis(1));
        let fills = now.duration_since(b.last_fill).as_nanos() / interval.as_nanos();
        if fills > 0 {
            let added = (fills as u64).saturating_mul(u64::from(self.config.tokens_per_fill));
            b.tokens = (u64::from(b.tokens) + added).min(u64::from(self.config.max_tokens)) as u32;
            b.last_fill += interval * fills.min(u128::from(u32::MAX)) as u32;
        }
        if b.tokens > 0 {
            b.tokens -= 1;
            true
        } else {
            false
        }
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
        let t0 = limit.bucket.lock().unwrap().last_fill;
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

//! `envoy.filters.http.health_check`: requests whose headers match are health checks. Without
//! pass-through the proxy answers them itself — 200, or 503 with
//! `x-envoy-immediate-health-check-fail` once `POST /healthcheck/fail` was called or a listed
//! cluster has too few healthy hosts. With pass-through they go upstream unless failing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http::header::HeaderValue;

use crate::config::model::HealthCheckFilterConfig;
use crate::proxy::access_log::ResponseFlags;
use crate::proxy::cluster::health_check::IMMEDIATE_FAIL;
use crate::proxy::cluster::ClusterManager;
use crate::proxy::local_reply;
use crate::proxy::router::matcher::{compile_header, BadRegex, CompiledHeaderMatcher};

use super::{Decision, FilterContext, Request};

pub struct HealthCheckFilter {
    pass_through: bool,
    headers: Vec<CompiledHeaderMatcher>,
    min_healthy: Vec<(String, f64)>,
    failing: Arc<AtomicBool>,
    clusters: Arc<ClusterManager>,
}

impl HealthCheckFilter {
    pub fn new(config: &HealthCheckFilterConfig, ctx: &FilterContext) -> Result<Self, BadRegex> {
        Ok(HealthCheckFilter {
            pass_through: config.pass_through_mode,
            headers: config
                .headers
                .iter()
                .map(compile_header)
                .collect::<Result<_, _>>()?,
            min_healthy: config.cluster_min_healthy_percentages.clone(),
            failing: ctx.failing.clone(),
            clusters: ctx.clusters.clone(),
        })
    }

    /// Every listed cluster has at least its minimum share of healthy hosts.
    fn clusters_healthy(&self) -> bool {
        self.min_healthy.iter().all(|(name, min)| {
            let Some(cluster) = self.clusters.get(name) else {
                return false;
            };
            let set = cluster.core.hosts.load();
            let total = set.hosts.len();
            let healthy = set.hosts.iter().filter(|h| h.is_healthy()).count();
            total > 0 && healthy as f64 * 100.0 / total as f64 >= *min
        })
    }

    pub fn decode(&self, req: &Request<'_>) -> Decision {
        if !self.headers.iter().all(|h| h.matches(&req.view)) {
            return Decision::Continue;
        }
        let failing = self.failing.load(Ordering::Relaxed);
        if self.pass_through && !failing {
            return Decision::Continue;
        }
        let healthy = !failing && (self.pass_through || self.clusters_healthy());
        let mut reply = local_reply::reply(if healthy { 200 } else { 503 }, "", req.head);
        if !healthy {
            reply
                .headers_mut()
                .insert(IMMEDIATE_FAIL, HeaderValue::from_static("true"));
        }
        let flags = if healthy {
            ResponseFlags::empty()
        } else {
            ResponseFlags::FAILED_LOCAL_HEALTH_CHECK
        };
        Decision::Respond(
            reply,
            flags,
            if healthy {
                "health_check_ok"
            } else {
                "health_check_failed"
            },
        )
    }
}

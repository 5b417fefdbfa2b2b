//! The HTTP filters that run before the router, in the order the HCM lists them: each looks at
//! the request (and the route it matched) and either lets it through, after a delay perhaps, or
//! answers it. `fault` injects delays and aborts, `local_ratelimit` is a token bucket,
//! `health_check` answers (or vets) health-check requests.

pub mod fault;
mod health_check;
mod local_ratelimit;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use http::Response;

use crate::config::model::{HttpFilter, HttpFilterKind};
use crate::proxy::access_log::ResponseFlags;
use crate::proxy::body::Body;
use crate::proxy::cluster::ClusterManager;
use crate::proxy::headers::InvalidHeader;
use crate::proxy::router::matcher::{BadRegex, RequestView};
use crate::proxy::runtime::Runtime;
use crate::proxy::stats::Store;

/// What the filters share with the rest of the server.
#[derive(Clone)]
pub struct FilterContext {
    pub runtime: Arc<Runtime>,
    /// `POST /healthcheck/fail` sets it.
    pub failing: Arc<AtomicBool>,
    pub clusters: Arc<ClusterManager>,
}

/// What a filter decided.
pub enum Decision {
    Continue,
    /// Answer now, with these response flags and details.
    Respond(Response<Body>, ResponseFlags, &'static str),
}

/// The request as the filters see it.
pub struct Request<'a> {
    pub view: RequestView<'a>,
    /// The cluster the matched route sends to, if any.
    pub cluster: Option<&'a str>,
    pub head: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error(transparent)]
    Regex(#[from] BadRegex),
    #[error(transparent)]
    Header(#[from] InvalidHeader),
}

enum Filter {
    Fault(fault::Fault),
    RateLimit(local_ratelimit::LocalRateLimit),
    HealthCheck(health_check::HealthCheckFilter),
}

#[derive(Default)]
pub struct Filters {
    list: Vec<Filter>,
}

impl Filters {
    pub fn build(
        configs: &[HttpFilter],
        ctx: &FilterContext,
        store: &Store,
        stat_prefix: &str,
    ) -> Result<Filters, FilterError> {
        let mut list = Vec::new();
        for f in configs {
            list.push(match &f.kind {
                HttpFilterKind::Router(_) => continue,
                HttpFilterKind::Fault(c) => {
                    Filter::Fault(fault::Fault::new(c, ctx, store, stat_prefix)?)
                }
                HttpFilterKind::LocalRateLimit(c) => {
                    Filter::RateLimit(local_ratelimit::LocalRateLimit::new(c, store)?)
                }
                HttpFilterKind::HealthCheck(c) => {
                    Filter::HealthCheck(health_check::HealthCheckFilter::new(c, ctx)?)
                }
            });
        }
        Ok(Filters { list })
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Runs the filters in order until one answers. `flags` gathers what they did (a delay
    /// is DI even when the request then goes on).
    pub async fn decode(&self, req: &Request<'_>, flags: &mut ResponseFlags) -> Decision {
        for filter in &self.list {
            let decision = match filter {
                Filter::Fault(f) => f.decode(req, flags).await,
                Filter::RateLimit(f) => f.decode(req),
                Filter::HealthCheck(f) => f.decode(req),
            };
            if let Decision::Respond(..) = decision {
                return decision;
            }
        }
        Decision::Continue
    }
}

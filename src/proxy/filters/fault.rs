//! `envoy.filters.http.fault`: delay and/or abort a share of matching requests. Percentages,
//! durations and statuses come from the config, overridable live through the runtime keys
//! Envoy reads (`fault.http.delay.fixed_delay_percent`, `fault.http.delay.fixed_duration_ms`,
//! `fault.http.abort.abort_percent`, `fault.http.abort.http_status`,
//! `fault.http.abort.grpc_status`, `fault.http.max_active_faults`) — `POST /runtime_modify`
//! switches a fault on and off while traffic runs — and, for `header_delay`/`header_abort`,
//! from the request's `x-envoy-fault-*` headers. Stats `http.<prefix>.fault.*`, flags DI / FI.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderValue, CONTENT_TYPE};
use http::Response;

use crate::config::model::{FaultAbortKind, FaultConfig};
use crate::proxy::access_log::ResponseFlags;
use crate::proxy::body::{self, Body};
use crate::proxy::local_reply;
use crate::proxy::router::matcher::{compile_header, BadRegex, CompiledHeaderMatcher};
use crate::proxy::runtime::Runtime;
use crate::proxy::stats::{Counter, Gauge, Store};

use super::{Decision, FilterContext, Request};

pub const DELAY_PERCENT: &str = "fault.http.delay.fixed_delay_percent";
pub const DELAY_MS: &str = "fault.http.delay.fixed_duration_ms";
pub const ABORT_PERCENT: &str = "fault.http.abort.abort_percent";
pub const ABORT_STATUS: &str = "fault.http.abort.http_status";
const ABORT_GRPC_STATUS: &str = "fault.http.abort.grpc_status";
const MAX_ACTIVE: &str = "fault.http.max_active_faults";

pub struct Fault {
    config: FaultConfig,
    headers: Vec<CompiledHeaderMatcher>,
    runtime: Arc<Runtime>,
    active: AtomicU64,
    delays_injected: Counter,
    aborts_injected: Counter,
    faults_overflow: Counter,
    active_faults: Gauge,
}

/// Lowers the active-faults count when the faulted request is done with the filter.
struct ActiveFault<'a>(&'a Fault);

impl Drop for ActiveFault<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
        self.0.active_faults.dec();
    }
}

impl Fault {
    pub fn new(
        config: &FaultConfig,
        ctx: &FilterContext,
        store: &Store,
        stat_prefix: &str,
    ) -> Result<Fault, BadRegex> {
        let c = |n: &str| store.counter(&format!("http.{stat_prefix}.fault.{n}"));
        Ok(Fault {
            headers: config
                .headers
                .iter()
                .map(compile_header)
                .collect::<Result<_, _>>()?,
            runtime: ctx.runtime.clone(),
            active: AtomicU64::new(0),
            delays_injected: c("delays_injected"),
            aborts_injected: c("aborts_injected"),
            faults_overflow: c("faults_overflow"),
            active_faults: store.gauge(&format!("http.{stat_prefix}.fault.active_faults")),
            config: config.clone(),
        })
    }

    fn header_number(req: &Request<'_>, name: &str) -> Option<f64> {
        req.view
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok()?.trim().parse().ok())
    }

    /// Draws against a percentage: `percent` % of calls are true.
    fn hit(percent: f64) -> bool {
        percent >= 100.0 || (percent > 0.0 && fastrand::f64() * 100.0 < percent)
    }

    /// The delay this request gets, if any.
    fn delay(&self, req: &Request<'_>) -> Option<Duration> {
        let d = self.config.delay.as_ref()?;
        let (duration, percent) = match d.fixed {
            Some(fixed) => (
                Duration::from_millis(
                    self.runtime
                        .number(DELAY_MS, fixed.as_millis() as f64)
                        .max(0.0) as u64,
                ),
                self.runtime.number(DELAY_PERCENT, d.percent),
            ),
            None => {
                let ms = Self::header_number(req, "x-envoy-fault-delay-request")?;
                // The request may lower the share, never raise it above the config's.
                let asked = Self::header_number(req, "x-envoy-fault-delay-request-percentage")
                    .unwrap_or(d.percent);
                (
                    Duration::from_millis(ms.max(0.0) as u64),
                    asked.min(self.runtime.number(DELAY_PERCENT, d.percent)),
                )
            }
        };
        (Self::hit(percent) && !duration.is_zero()).then_some(duration)
    }

    /// The abort this request gets, if any: an HTTP status or a gRPC status.
    fn abort(&self, req: &Request<'_>) -> Option<FaultAbortKind> {
        let a = self.config.abort.as_ref()?;
        let percent = self.runtime.number(ABORT_PERCENT, a.percent);
        let kind = match a.kind {
            FaultAbortKind::Http(code) => {
                FaultAbortKind::Http(self.runtime.number(ABORT_STATUS, f64::from(code)) as u16)
            }
            FaultAbortKind::Grpc(code) => {
                FaultAbortKind::Grpc(self.runtime.number(ABORT_GRPC_STATUS, f64::from(code)) as u32)
            }
            FaultAbortKind::Header => {
                let percent = Self::header_number(req, "x-envoy-fault-abort-request-percentage")
                    .unwrap_or(percent)
                    .min(percent);
                if !Self::hit(percent) {
                    return None;
                }
                if let Some(code) = Self::header_number(req, "x-envoy-fault-abort-request") {
                    return Some(FaultAbortKind::Http(code as u16));
                }
                return Self::header_number(req, "x-envoy-fault-abort-grpc-request")
                    .map(|g| FaultAbortKind::Grpc(g as u32));
            }
        };
        Self::hit(percent).then_some(kind)
    }

    pub async fn decode(&self, req: &Request<'_>, flags: &mut ResponseFlags) -> Decision {
        if let Some(cluster) = &self.config.upstream_cluster {
            if req.cluster != Some(cluster.as_str()) {
                return Decision::Continue;
            }
        }
        if !self.headers.iter().all(|h| h.matches(&req.view)) {
            return Decision::Continue;
        }
        let delay = self.delay(req);
        let abort = self.abort(req);
        if delay.is_none() && abort.is_none() {
            return Decision::Continue;
        }
        let max = self
            .config
            .max_active_faults
            .map(|m| self.runtime.number(MAX_ACTIVE, m as f64) as u64);
        if max.is_some_and(|m| self.active.load(Ordering::Acquire) >= m) {
            self.faults_overflow.inc();
            return Decision::Continue;
        }
        self.active.fetch_add(1, Ordering::AcqRel);
        self.active_faults.inc();
        let _active = ActiveFault(self);
        if let Some(delay) = delay {
            self.delays_injected.inc();
            flags.insert(ResponseFlags::DELAY_INJECTED);
            tokio::time::sleep(delay).await;
        }
        let Some(abort) = abort.filter(valid) else {
            return Decision::Continue;
        };
        self.aborts_injected.inc();
        let reply = match abort {
            FaultAbortKind::Http(code) => local_reply::reply(code, "fault filter abort", req.head),
            FaultAbortKind::Grpc(status) => grpc_abort(status),
            FaultAbortKind::Header => unreachable!("resolved to a status above"),
        };
        Decision::Respond(reply, ResponseFlags::FAULT_INJECTED, "fault_filter_abort")
    }
}

/// An HTTP status must be 200–599 to be sent; a bad runtime value or header aborts nothing.
fn valid(kind: &FaultAbortKind) -> bool {
    match kind {
        FaultAbortKind::Http(code) => (200..600).contains(code),
        _ => true,
    }
}

/// A gRPC abort is a trailers-only answer: HTTP 200 with `grpc-status`.
fn grpc_abort(status: u32) -> Response<Body> {
    let mut r = Response::new(body::empty());
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert("grpc-status", HeaderValue::from(status));
    h.insert(
        "grpc-message",
        HeaderValue::from_static("fault filter abort"),
    );
    r
}

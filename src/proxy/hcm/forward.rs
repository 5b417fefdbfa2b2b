//! The upstream leg of a routed request: pick the cluster and host, rewrite the request, send it
//! through the cluster's pool under the route timeout, and turn failures into Envoy's local
//! replies, response flags and stats.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use http::header::{HeaderName, HeaderValue, CONNECTION, COOKIE, HOST, UPGRADE};
use http::request::Parts;
use http::{Request, Response, Uri};
use hyper::upgrade::OnUpgrade;

use crate::config::model::HashPolicyKind;
use crate::proxy::access_log::ResponseFlags;
use crate::proxy::body::{self, Body};
use crate::proxy::cluster::circuit_breaker::{RequestSlot, RetrySlot};
use crate::proxy::cluster::{health_check, lb, outlier, ClusterCore, Host};
use crate::proxy::headers::{has_envoy_headers, number_value, strip_hop_by_hop};
use crate::proxy::local_reply;
use crate::proxy::router::{ForwardEntry, HostRewriteEntry, Mutations, RouteEntry};
use crate::proxy::upstream::http1::UpgradedUpstream;
use crate::proxy::upstream::UpstreamError;

use super::exchange::{Exchange, UpstreamLeg};
use super::retry;
use super::timeouts::{self, Cause};
use super::Shared;

/// The most request body kept for replaying on a retry (Envoy's default buffer limit).
const REPLAY_LIMIT: usize = 1 << 20;

const X_ENVOY_ORIGINAL_PATH: HeaderName = HeaderName::from_static("x-envoy-original-path");
const X_ENVOY_UPSTREAM_SERVICE_TIME: HeaderName =
    HeaderName::from_static("x-envoy-upstream-service-time");
const X_ENVOY_EXPECTED_RQ_TIMEOUT_MS: HeaderName =
    HeaderName::from_static("x-envoy-expected-rq-timeout-ms");
const X_ENVOY_UPSTREAM_RQ_TIMEOUT_MS: HeaderName =
    HeaderName::from_static("x-envoy-upstream-rq-timeout-ms");
const X_ENVOY_TIMEOUT_ALT_RESPONSE: HeaderName =
    HeaderName::from_static("x-envoy-upstream-rq-timeout-alt-response");
const X_ENVOY_OVERLOADED: HeaderName = HeaderName::from_static("x-envoy-overloaded");
const X_ENVOY_DOWNSTREAM_SERVICE_CLUSTER: HeaderName =
    HeaderName::from_static("x-envoy-downstream-service-cluster");

pub struct Leg<'a> {
    /// The stream idle timeout (the route's, else the HCM's).
    pub idle: Option<Duration>,
    /// Set when a stream timeout ended the request body (`None`: the body is not watched).
    pub fired: Option<&'a timeouts::Fired>,
    pub shared: &'a Arc<Shared>,
    pub route: &'a RouteEntry,
    pub forward: &'a ForwardEntry,
    /// Route, virtual host and route-config header edits, innermost first.
    pub mutations: [&'a Mutations; 3],
    pub internal: bool,
    /// The protocol the client asked to upgrade to (already removed from the headers).
    pub upgrade: Option<String>,
    pub authority: Option<&'a str>,
    pub path: &'a str,
    pub query: Option<&'a str>,
}

impl Leg<'_> {
    pub async fn run(self, ex: &mut Exchange, mut parts: Parts, body: Body) -> Response<Body> {
        let shared = self.shared;
        let head = parts.method == http::Method::HEAD;
        let downstream_upgrade = match &self.upgrade {
            None => None,
            Some(kind) if shared.config.upgrade_types.iter().any(|t| t == kind) => parts
                .extensions
                .remove::<OnUpgrade>()
                .map(|on| (on, kind.clone())),
            Some(_) => {
                // Envoy refuses upgrades the HCM is not configured for.
                shared.stats.downstream_rq_ws_on_non_ws_route.inc();
                ex.response_code_details = "upgrade_failed";
                return local_reply::reply(403, "", head);
            }
        };
        let draw = fastrand::u32(..);
        let Some((name, weighted)) = self.forward.choose_cluster(&parts.headers, draw) else {
            shared.stats.no_cluster.inc();
            ex.response_flags.insert(ResponseFlags::NO_CLUSTER_FOUND);
            ex.response_code_details = "cluster_not_found";
            return local_reply::reply(self.forward.cluster_not_found_response_code, "", head);
        };
        if ex.logged() {
            ex.cluster_name = Some(name.to_string());
        }
        let Some(cluster) = shared.clusters.get(&name) else {
            shared.stats.no_cluster.inc();
            ex.response_flags.insert(ResponseFlags::NO_CLUSTER_FOUND);
            ex.response_code_details = "cluster_not_found";
            return local_reply::reply(self.forward.cluster_not_found_response_code, "", head);
        };
        let core = &cluster.core;
        let Some(host) = core.choose_host(self.hash(&parts, ex)) else {
            core.stats.upstream_cx_none_healthy.inc();
            ex.response_flags.insert(ResponseFlags::NO_HEALTHY_UPSTREAM);
            ex.response_code_details = "no_healthy_upstream";
            self.charge_upstream_code(core, None, 503);
            return local_reply::reply(503, local_reply::NO_HEALTHY_UPSTREAM, head);
        };
        ex.upstream_host = Some(host.address);

        if let Some(new_path) =
            self.forward
                .rewrite_path(&self.route.matcher, self.path, self.query)
        {
            if let Ok(v) = HeaderValue::from_str(ex.path()) {
                parts.headers.insert(X_ENVOY_ORIGINAL_PATH, v);
            }
            if ex.logged() {
                ex.original_path = Some(ex.path().to_string());
            }
            if let Ok(uri) = new_path.parse() {
                parts.uri = uri;
            }
        }
        if let Some((_, kind)) = &downstream_upgrade {
            parts
                .headers
                .insert(CONNECTION, HeaderValue::from_static("upgrade"));
            if let Ok(v) = HeaderValue::from_str(kind) {
                parts.headers.insert(UPGRADE, v);
            }
        }
        self.rewrite_host(&mut parts, &host.hostname);

        // `x-envoy-upstream-rq-timeout-alt-response`: a timeout answers 204 instead of 504.
        let envoy_headers = has_envoy_headers(&parts.headers);
        let alt_timeout_response = envoy_headers
            && parts.headers.remove(X_ENVOY_TIMEOUT_ALT_RESPONSE).is_some()
            && self.internal;
        let asked = envoy_headers
            .then(|| parts.headers.remove(X_ENVOY_UPSTREAM_RQ_TIMEOUT_MS))
            .flatten()
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .map(|ms| (ms > 0).then(|| Duration::from_millis(ms)));
        let timeout = asked.unwrap_or(self.forward.timeout);
        if let Some(c) = shared.service_cluster.as_ref().filter(|_| self.internal) {
            parts
                .headers
                .insert(X_ENVOY_DOWNSTREAM_SERVICE_CLUSTER, c.clone());
        }
        if let Some(w) = weighted {
            w.mutations.apply_request(&mut parts.headers);
        }
        for m in self.mutations {
            m.apply_request(&mut parts.headers);
        }

        let http2 = downstream_upgrade.is_none() && cluster.upstream.uses_http2(parts.version);
        // Upgrades are never retried: their connection is handed over, not replayed.
        let policy = retry::effective(
            self.forward.retry.as_deref(),
            &mut parts.headers,
            self.internal,
        )
        .filter(|p| p.num_retries > 0 && downstream_upgrade.is_none());
        // Added after the retry headers are read: an `x-envoy-` header present would make that
        // reading look them all up.
        if !shared.suppress_envoy_headers {
            // The route's own timeout has its header value built once, with the route table.
            let expected = match asked {
                None => self.forward.timeout_header.clone(),
                Some(t) => t.map(|t| number_value(t.as_millis() as u64)),
            };
            if let Some(v) = expected {
                parts.headers.insert(X_ENVOY_EXPECTED_RQ_TIMEOUT_MS, v);
            }
        }
        // A retry resends the body: keep a copy, up to a limit (a bigger body is not retried).
        let (mut template, replay, mut single) = match &policy {
            Some(_) => match buffer_for_replay(body, REPLAY_LIMIT).await {
                Ok(bytes) => (Some(parts), Some(bytes), None),
                Err(body) => (None, None, Some(Request::from_parts(parts, body))),
            },
            None => (None, None, Some(Request::from_parts(parts, body))),
        };
        let policy = policy.filter(|_| replay.is_some());
        // `max_requests`: over the limit the request is not sent at all.
        match RequestSlot::take(core) {
            Some(slot) => ex.request_slot = Some(slot),
            None => return self.overflow(ex, core, head),
        }
        let first_attempt = Instant::now();
        let deadline = timeout.map(|t| first_attempt + t);
        let mut host = host;
        let mut tried: Vec<std::net::SocketAddr> = Vec::new();
        let mut retries = 0u32;
        let mut _retry_slot: Option<RetrySlot> = None;
        let (response, started) = loop {
            let request = match (&mut template, &replay) {
                (Some(parts), Some(bytes)) => rebuild(parts, bytes.clone()),
                _ => match single.take() {
                    Some(r) => r,
                    None => unreachable!("a request without a replay copy is sent once"),
                },
            };
            ex.upstream_host = Some(host.address);
            ex.attempts += 1;
            core.stats.upstream_rq_total.inc();
            core.stats.upstream_rq_active.inc();
            host.stats.rq_total.fetch_add(1, Ordering::Relaxed);
            host.stats.rq_active.fetch_add(1, Ordering::Relaxed);
            let started = match retries {
                0 => first_attempt,
                _ => Instant::now(),
            };
            // Recorded before sending: whichever way the attempt ends (an answer, a timeout,
            // the client resetting its stream and dropping this future) the exchange finishes
            // its accounting; a retried attempt is finished here, below.
            ex.upstream = Some(UpstreamLeg {
                cluster: core.clone(),
                host: host.clone(),
                started,
                internal: self.internal,
            });
            let remaining = deadline.map(|d| d.saturating_duration_since(started));
            let per_try = policy.as_ref().and_then(|p| p.per_try_timeout);
            let try_limit = match (remaining, per_try) {
                (Some(r), Some(p)) => Some(r.min(p)),
                (r, p) => r.or(p),
            };
            // With nothing flowing while the upstream thinks, the stream idle timeout may be
            // the first to end the wait.
            let idle_first = self.idle.is_some_and(|i| try_limit.is_none_or(|l| i < l));
            let limit = if idle_first { self.idle } else { try_limit };
            // Polled where it is built: `timeout_at` would move it twice (into the wrapper,
            // then into this future's state), writing kilobytes of cold memory per request.
            let result = {
                let mut send = pin!(cluster.upstream.send(&host, http2, request));
                match limit {
                    Some(t) => {
                        // From `started`, already read: the timer needs no clock read of its own.
                        let mut timer = pin!(tokio::time::sleep_until((started + t).into()));
                        poll_fn(|cx| match send.as_mut().poll(cx) {
                            Poll::Ready(answer) => Poll::Ready(Ok(answer)),
                            Poll::Pending => timer.as_mut().poll(cx).map(|()| Err(())),
                        })
                        .await
                    }
                    None => Ok(send.await),
                }
            };
            // Only a timed-out attempt asks whether the route's whole timeout has passed.
            let overall_expired = result.is_err() && deadline.is_some_and(|d| Instant::now() >= d);
            // Passive health: outlier detection sees every attempt's answer (a local failure as
            // Envoy maps it), and an upstream may ask to be failed now.
            let observed = match &result {
                Err(()) => Some(504),
                Ok(Err(UpstreamError::Overflow)) => None,
                Ok(Err(_)) => Some(503),
                Ok(Ok(response)) => {
                    // Looked up only when some `x-envoy-` header came back: hashing the long
                    // name on every response cost more than scanning the few names there are.
                    let headers = response.headers();
                    if has_envoy_headers(headers)
                        && headers.contains_key(health_check::IMMEDIATE_FAIL)
                    {
                        health_check::passive_failure(core, &host);
                    }
                    Some(response.status().as_u16())
                }
            };
            if let Some(code) = observed {
                outlier::record(core, &host, code);
            }
            if let Some(cause) = self.fired.and_then(timeouts::Fired::get) {
                // The request body stopped (idle) or came too slowly: the client's fault.
                return self.downstream_timeout(ex, cause, head);
            }
            if matches!(result, Err(())) && idle_first {
                return self.downstream_timeout(ex, Cause::StreamIdle, head);
            }
            let outcome = match &result {
                Err(()) if overall_expired => None,
                Err(()) => {
                    core.stats.upstream_rq_per_try_timeout.inc();
                    Some(retry::Outcome::PerTryTimeout)
                }
                Ok(Err(UpstreamError::Reset(_))) => Some(retry::Outcome::Reset),
                // Envoy never retries an overflow: that would add to the overload.
                Ok(Err(UpstreamError::Overflow)) => None,
                Ok(Err(_)) => Some(retry::Outcome::ConnectFailure),
                Ok(Ok(response)) => Some(retry::Outcome::Response {
                    code: response.status().as_u16(),
                    headers: response.headers(),
                }),
            };
            let retry_wanted = match (&policy, outcome) {
                (Some(p), Some(o)) => retry::retriable(p, o),
                _ => false,
            };
            if retry_wanted {
                let p = policy.as_ref().expect("a retry needs a policy");
                let slot = (retries < p.num_retries)
                    .then(|| RetrySlot::take(core))
                    .flatten();
                if retries >= p.num_retries {
                    core.stats.upstream_rq_retry_limit_exceeded.inc();
                    ex.response_flags
                        .insert(ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED);
                } else if slot.is_none() {
                    core.stats.upstream_rq_retry_overflow.inc();
                } else {
                    // This attempt is over: it is counted as retried, not as the answer.
                    let code = match &result {
                        Ok(Ok(response)) => response.status().as_u16(),
                        Err(()) => 504,
                        Ok(Err(_)) => 503,
                    };
                    if code >= 500 {
                        host.stats.rq_error.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Ok(Err(UpstreamError::Reset(_))) = &result {
                        core.stats.upstream_rq_rx_reset.inc();
                    }
                    core.stats.retry_upstream_rq.record(code);
                    core.stats.upstream_rq_active.dec();
                    host.stats.rq_active.fetch_sub(1, Ordering::Relaxed);
                    ex.upstream = None;
                    drop(result);
                    retries += 1;
                    core.stats.upstream_rq_retry.inc();
                    _retry_slot = slot;
                    tried.push(host.address);
                    let pause = retry::back_off(p, retries, fastrand::f64());
                    if let Some(d) = deadline.filter(|d| Instant::now() + pause >= *d) {
                        // The route timeout ends during the back-off: it is the answer.
                        tokio::time::sleep_until(d.into()).await;
                        return self.timed_out(ex, core, &host, head);
                    }
                    tokio::time::sleep(pause).await;
                    let avoid = p.avoid_previous_hosts.then_some(tried.as_slice());
                    match core.choose_retry_host(
                        self.hash_of(ex, template.as_ref()),
                        avoid,
                        p.host_selection_retry_max_attempts,
                    ) {
                        Some(next) => host = next,
                        None => {
                            core.stats.upstream_cx_none_healthy.inc();
                            ex.response_flags.insert(ResponseFlags::NO_HEALTHY_UPSTREAM);
                            ex.response_code_details = "no_healthy_upstream";
                            self.charge_upstream_code(core, None, 503);
                            return local_reply::reply(503, local_reply::NO_HEALTHY_UPSTREAM, head);
                        }
                    }
                    continue;
                }
            } else if retries > 0 {
                core.stats.upstream_rq_retry_success.inc();
            }
            match result {
                Err(()) if alt_timeout_response => {
                    core.stats.upstream_rq_timeout.inc();
                    ex.response_flags
                        .insert(ResponseFlags::UPSTREAM_REQUEST_TIMEOUT);
                    ex.response_code_details = "upstream_response_timeout";
                    return local_reply::reply(204, "", head);
                }
                Err(()) => return self.timed_out(ex, core, &host, head),
                Ok(Err(error)) => return self.failed(ex, core, &host, error, head),
                Ok(Ok(response)) => break (response, started),
            }
        };

        let answered = Instant::now();
        let service_time = answered - started;
        ex.response_duration = Some(answered - ex.start);
        let code = response.status().as_u16();
        self.charge_upstream_code(core, Some(&host), code);
        if code < 500 {
            host.stats.rq_success.fetch_add(1, Ordering::Relaxed);
        }
        let (mut rparts, rbody) = response.into_parts();
        let tunnel = match (code, downstream_upgrade) {
            (101, Some((down, _))) => rparts
                .extensions
                .remove::<UpgradedUpstream>()
                .map(|up| (down, up)),
            _ => None,
        };
        strip_hop_by_hop(&mut rparts.headers, tunnel.is_some());
        if let Some((down, up)) = tunnel {
            spawn_tunnel(down, up);
        }
        if !shared.suppress_envoy_headers {
            rparts.headers.insert(
                X_ENVOY_UPSTREAM_SERVICE_TIME,
                number_value(service_time.as_millis() as u64),
            );
        }
        // The body holds the upstream connection (an HTTP/1.1 one goes back to the pool when
        // the body has been read to its end; an HTTP/2 stream ends).
        let rbody = match self.idle {
            // A response that stalls mid-body is reset after the idle timeout, as in Envoy.
            // (Boxed once, around the watch: every proxied response takes this path.)
            Some(idle) if code != 101 => {
                body::boxed(timeouts::Watched::new(rbody, Some(idle), None, None))
            }
            _ => body::boxed(rbody),
        };
        Response::from_parts(rparts, rbody)
    }

    /// A stream timeout of the downstream side: 408 `stream timeout` (flag SI) or 408
    /// `request timeout`.
    fn downstream_timeout(&self, ex: &mut Exchange, cause: Cause, head: bool) -> Response<Body> {
        let stats = &self.shared.stats;
        let body = match cause {
            Cause::StreamIdle => {
                stats.downstream_rq_idle_timeout.inc();
                ex.response_flags.insert(ResponseFlags::STREAM_IDLE_TIMEOUT);
                ex.response_code_details = "stream_idle_timeout";
                "stream timeout"
            }
            Cause::Request => {
                stats.downstream_rq_timeout.inc();
                ex.response_code_details = "request_overall_timeout";
                "request timeout"
            }
        };
        local_reply::reply(408, body, head)
    }

    /// The route timeout expired: 504, flag UT.
    fn timed_out(
        &self,
        ex: &mut Exchange,
        core: &ClusterCore,
        host: &Host,
        head: bool,
    ) -> Response<Body> {
        core.stats.upstream_rq_timeout.inc();
        host.stats.rq_timeout.fetch_add(1, Ordering::Relaxed);
        ex.response_flags
            .insert(ResponseFlags::UPSTREAM_REQUEST_TIMEOUT);
        ex.response_code_details = "upstream_response_timeout";
        self.charge_upstream_code(core, Some(host), 504);
        local_reply::reply(504, local_reply::UPSTREAM_TIMEOUT, head)
    }

    /// No response: a connect failure (UF) or a reset (UC), 503 with Envoy's body.
    fn failed(
        &self,
        ex: &mut Exchange,
        core: &ClusterCore,
        host: &Host,
        error: UpstreamError,
        head: bool,
    ) -> Response<Body> {
        let (flag, details) = match &error {
            UpstreamError::ConnectTimeout | UpstreamError::ConnectFailure(_) => (
                ResponseFlags::UPSTREAM_CONNECTION_FAILURE,
                "upstream_reset_before_response_started{connection_failure}",
            ),
            UpstreamError::Reset(_) => {
                core.stats.upstream_rq_rx_reset.inc();
                (
                    ResponseFlags::UPSTREAM_CONNECTION_TERMINATION,
                    "upstream_reset_before_response_started{connection_termination}",
                )
            }
            UpstreamError::Overflow => return self.overflow(ex, core, head),
        };
        tracing::debug!(cluster = %core.config.name, host = %host.address, %error, "upstream request failed");
        ex.response_flags.insert(flag);
        ex.response_code_details = details;
        self.charge_upstream_code(core, Some(host), 503);
        local_reply::reply(
            503,
            local_reply::upstream_reset_body(error.reset_reason()),
            head,
        )
    }

    /// Counts an upstream response code, received or local, as Envoy's router does: the
    /// cluster's code stats, and a 5xx as the host's `rq_error`; none of it without
    /// `dynamic_stats`.
    fn charge_upstream_code(&self, core: &ClusterCore, host: Option<&Host>, code: u16) {
        if !self.shared.dynamic_stats {
            return;
        }
        core.stats.record_response(code, self.internal);
        if let Some(host) = host.filter(|_| code >= 500) {
            host.stats.rq_error.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A circuit breaker is open: 503, flag UO, `x-envoy-overloaded: true`.
    fn overflow(&self, ex: &mut Exchange, core: &ClusterCore, head: bool) -> Response<Body> {
        ex.response_flags.insert(ResponseFlags::UPSTREAM_OVERFLOW);
        ex.response_code_details = "upstream_reset_before_response_started{overflow}";
        self.charge_upstream_code(core, None, 503);
        let mut reply = local_reply::reply(503, local_reply::upstream_reset_body("overflow"), head);
        reply
            .headers_mut()
            .insert(X_ENVOY_OVERLOADED, HeaderValue::from_static("true"));
        reply
    }

    /// The hash for a retry's host pick: the same request hash as the first pick.
    fn hash_of(&self, ex: &Exchange, parts: Option<&Parts>) -> Option<u64> {
        parts.and_then(|p| self.hash(p, ex))
    }

    /// The `Host` header the upstream sees: rewritten per the route, else the authority as
    /// received (HTTP/2 downstream requests carry it only as `:authority`).
    fn rewrite_host(&self, parts: &mut Parts, upstream_hostname: &str) {
        let rewritten = match &self.forward.host_rewrite {
            HostRewriteEntry::None => None,
            HostRewriteEntry::Literal(v) => Some(v.clone()),
            HostRewriteEntry::Auto => (!upstream_hostname.is_empty())
                .then(|| HeaderValue::from_str(upstream_hostname).ok())
                .flatten(),
            HostRewriteEntry::Header(h) => parts.headers.get(h).cloned(),
            HostRewriteEntry::PathRegex(re, sub) => {
                HeaderValue::from_str(&re.replace_all(self.path, sub.as_str())).ok()
            }
        };
        match rewritten {
            Some(h) => {
                parts.headers.insert(HOST, h);
            }
            // An HTTP/1 request's authority is its `Host` header, already in place; only an
            // HTTP/2 `:authority` or an absolute-form URI has to be copied into one.
            None => {
                let present = parts.headers.get(HOST).map(HeaderValue::as_bytes);
                if let Some(a) = self.authority.filter(|a| present != Some(a.as_bytes())) {
                    if let Ok(h) = HeaderValue::from_str(a) {
                        parts.headers.insert(HOST, h);
                    }
                }
            }
        }
        // The URI carries only the path from here on; the pool adds the host address. (Its
        // path is moved, not parsed again: every HTTP/2 request comes this way.)
        if parts.uri.authority().is_some() && parts.uri.path_and_query().is_some() {
            let mut origin_form = http::uri::Parts::default();
            origin_form.path_and_query = std::mem::take(&mut parts.uri).into_parts().path_and_query;
            parts.uri = Uri::from_parts(origin_form).expect("a path alone is a valid URI");
        }
    }

    /// The request hash for RING_HASH/MAGLEV from the route's `hash_policy`.
    fn hash(&self, parts: &Parts, ex: &Exchange) -> Option<u64> {
        let mut hash: Option<u64> = None;
        for policy in &self.forward.hash_policy {
            let value = match &policy.kind {
                HashPolicyKind::Header { name } => parts
                    .headers
                    .get(name.as_str())
                    .map(|v| lb::hash_bytes(v.as_bytes())),
                HashPolicyKind::Cookie { name } => {
                    cookie(&parts.headers, name).map(|v| lb::hash_bytes(v.as_bytes()))
                }
                HashPolicyKind::SourceIp => Some(lb::hash_source_ip(ex.conn.remote.ip())),
                HashPolicyKind::QueryParameter { name } => self.query.and_then(|q| {
                    q.split('&').find_map(|pair| {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        (k == name).then(|| lb::hash_bytes(v.as_bytes()))
                    })
                }),
            };
            if let Some(v) = value {
                hash = Some(match hash {
                    Some(prev) => lb::combine(prev, v),
                    None => v,
                });
                if policy.terminal {
                    break;
                }
            }
        }
        hash
    }
}

/// Reads the whole body if it is at most `limit` bytes; otherwise gives back a body that
/// streams what was read followed by the rest, to be sent once.
async fn buffer_for_replay(body: Body, limit: usize) -> Result<bytes::Bytes, Body> {
    use http_body_util::BodyExt;
    if http_body::Body::is_end_stream(&body) {
        return Ok(bytes::Bytes::new());
    }
    let mut body = body;
    let mut kept = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    kept.extend_from_slice(&data);
                }
                if kept.len() > limit {
                    let head =
                        http_body_util::Full::new(kept.freeze()).map_err(|never| match never {});
                    let rest = Chain::new(head, body);
                    return Err(body::boxed(rest));
                }
            }
            Err(error) => {
                // The client's body broke: send what there is and let the upstream see it end.
                tracing::debug!(%error, "request body failed while buffering for retries");
                return Err(body::full(kept.freeze()));
            }
        }
    }
    Ok(kept.freeze())
}

pin_project_lite::pin_project! {
    /// One body after another.
    struct Chain<A, B> {
        #[pin]
        first: A,
        #[pin]
        second: B,
        first_done: bool,
    }
}

impl<A, B> Chain<A, B> {
    fn new(first: A, second: B) -> Self {
        Chain {
            first,
            second,
            first_done: false,
        }
    }
}

impl<A, B> http_body::Body for Chain<A, B>
where
    A: http_body::Body<Data = bytes::Bytes, Error = body::BoxError>,
    B: http_body::Body<Data = bytes::Bytes, Error = body::BoxError>,
{
    type Data = bytes::Bytes;
    type Error = body::BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, body::BoxError>>> {
        let mut this = self.project();
        if !*this.first_done {
            match this.first.as_mut().poll_frame(cx) {
                std::task::Poll::Ready(None) => *this.first_done = true,
                other => return other,
            }
        }
        this.second.poll_frame(cx)
    }
}

/// A fresh copy of the request for one attempt.
fn rebuild(parts: &Parts, body_bytes: bytes::Bytes) -> Request<Body> {
    let mut request = Request::new(body::full(body_bytes));
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.version_mut() = parts.version;
    *request.headers_mut() = parts.headers.clone();
    request
}

fn cookie<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// Joins the two upgraded connections (WebSocket) and copies bytes both ways until either closes;
/// what the upstream sent right after its `101` goes to the client first.
fn spawn_tunnel(downstream: OnUpgrade, upstream: UpgradedUpstream) {
    tokio::spawn(async move {
        let Some((mut up, early)) = upstream.take() else {
            return;
        };
        let down = match downstream.await {
            Ok(down) => down,
            Err(error) => {
                tracing::debug!(%error, "upgrade failed");
                return;
            }
        };
        let mut down = hyper_util::rt::TokioIo::new(down);
        if !early.is_empty() {
            if let Err(error) = tokio::io::AsyncWriteExt::write_all(&mut down, &early).await {
                tracing::debug!(%error, "upgraded connection closed with an error");
                return;
            }
        }
        if let Err(error) = tokio::io::copy_bidirectional(&mut down, &mut up).await {
            tracing::debug!(%error, "upgraded connection closed with an error");
        }
    });
}

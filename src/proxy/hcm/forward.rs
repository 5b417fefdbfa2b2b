//! The upstream leg of a routed request: pick the cluster and host, rewrite the request, send it
//! through the cluster's pool under the route timeout, and turn failures into Envoy's local
//! replies, response flags and stats.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{HeaderName, HeaderValue, CONNECTION, COOKIE, HOST, UPGRADE};
use http::request::Parts;
use http::{Request, Response};
use hyper::upgrade::OnUpgrade;

use crate::config::model::HashPolicyKind;
use crate::proxy::access_log::ResponseFlags;
use crate::proxy::body::{self, Body};
use crate::proxy::cluster::lb;
use crate::proxy::headers::strip_hop_by_hop;
use crate::proxy::local_reply;
use crate::proxy::router::{ForwardEntry, HostRewriteEntry, Mutations, RouteEntry};
use crate::proxy::upstream::UpstreamError;

use super::exchange::{Exchange, UpstreamLeg};
use super::Shared;

const X_ENVOY_ORIGINAL_PATH: HeaderName = HeaderName::from_static("x-envoy-original-path");
const X_ENVOY_UPSTREAM_SERVICE_TIME: HeaderName =
    HeaderName::from_static("x-envoy-upstream-service-time");
const X_ENVOY_EXPECTED_RQ_TIMEOUT_MS: HeaderName =
    HeaderName::from_static("x-envoy-expected-rq-timeout-ms");
const X_ENVOY_UPSTREAM_RQ_TIMEOUT_MS: HeaderName =
    HeaderName::from_static("x-envoy-upstream-rq-timeout-ms");
const X_ENVOY_DOWNSTREAM_SERVICE_CLUSTER: HeaderName =
    HeaderName::from_static("x-envoy-downstream-service-cluster");

pub struct Leg<'a> {
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
            core.stats.record_response(503, self.internal);
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

        let timeout = parts
            .headers
            .remove(X_ENVOY_UPSTREAM_RQ_TIMEOUT_MS)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .map(|ms| (ms > 0).then(|| Duration::from_millis(ms)))
            .unwrap_or(self.forward.timeout);
        if !shared.suppress_envoy_headers {
            if let Some(t) = timeout {
                parts.headers.insert(
                    X_ENVOY_EXPECTED_RQ_TIMEOUT_MS,
                    HeaderValue::from(t.as_millis() as u64),
                );
            }
        }
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

        core.stats.upstream_rq_total.inc();
        core.stats.upstream_rq_active.inc();
        host.stats.rq_total.fetch_add(1, Ordering::Relaxed);
        host.stats.rq_active.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        ex.upstream = Some(UpstreamLeg {
            cluster: core.clone(),
            host: host.clone(),
            started,
            internal: self.internal,
        });

        let http2 = downstream_upgrade.is_none() && cluster.upstream.uses_http2(parts.version);
        let send = cluster
            .upstream
            .send(&host, http2, Request::from_parts(parts, body));
        let result = match timeout {
            Some(t) => tokio::time::timeout(t, send).await,
            None => Ok(send.await),
        };
        let fail = |code: u16| {
            host.stats.rq_error.fetch_add(1, Ordering::Relaxed);
            core.stats.record_response(code, self.internal);
        };
        let (response, lease) = match result {
            Err(_elapsed) => {
                core.stats.upstream_rq_timeout.inc();
                host.stats.rq_timeout.fetch_add(1, Ordering::Relaxed);
                ex.response_flags
                    .insert(ResponseFlags::UPSTREAM_REQUEST_TIMEOUT);
                ex.response_code_details = "upstream_response_timeout";
                fail(504);
                return local_reply::reply(504, local_reply::UPSTREAM_TIMEOUT, head);
            }
            Ok(Err(error)) => {
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
                };
                tracing::debug!(cluster = %core.config.name, host = %host.address, %error, "upstream request failed");
                ex.response_flags.insert(flag);
                ex.response_code_details = details;
                fail(503);
                return local_reply::reply(
                    503,
                    local_reply::upstream_reset_body(error.reset_reason()),
                    head,
                );
            }
            Ok(Ok(answer)) => answer,
        };

        let service_time = started.elapsed();
        ex.response_duration = Some(ex.start.elapsed());
        let code = response.status().as_u16();
        core.stats.record_response(code, self.internal);
        if code >= 500 {
            host.stats.rq_error.fetch_add(1, Ordering::Relaxed);
        } else {
            host.stats.rq_success.fetch_add(1, Ordering::Relaxed);
        }
        let (mut rparts, rbody) = response.into_parts();
        let tunnel = match (code, downstream_upgrade) {
            (101, Some((down, _))) => rparts.extensions.remove::<OnUpgrade>().map(|up| (down, up)),
            _ => None,
        };
        strip_hop_by_hop(&mut rparts.headers, tunnel.is_some());
        if let Some((down, up)) = tunnel {
            spawn_tunnel(down, up);
        }
        if !shared.suppress_envoy_headers {
            rparts.headers.insert(
                X_ENVOY_UPSTREAM_SERVICE_TIME,
                HeaderValue::from(service_time.as_millis() as u64),
            );
        }
        // The HTTP/1.1 connection goes back to the pool when this body has been read to the end
        // (the exchange's end-of-stream hook); an upgraded one is never reused.
        ex.lease = lease.filter(|_| code != 101);
        Response::from_parts(rparts, body::boxed(rbody))
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
        let host = rewritten.or_else(|| self.authority.and_then(|a| HeaderValue::from_str(a).ok()));
        if let Some(h) = host {
            parts.headers.insert(HOST, h);
        }
        // The URI carries only the path from here on; the pool adds the host address.
        if parts.uri.authority().is_some() {
            if let Some(pq) = parts.uri.path_and_query() {
                if let Ok(uri) = pq.as_str().parse() {
                    parts.uri = uri;
                }
            }
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

/// Joins the two upgraded connections (WebSocket) and copies bytes both ways until either closes.
fn spawn_tunnel(downstream: OnUpgrade, upstream: OnUpgrade) {
    tokio::spawn(async move {
        let (down, up) = match tokio::try_join!(downstream, upstream) {
            Ok(pair) => pair,
            Err(error) => {
                tracing::debug!(%error, "upgrade failed");
                return;
            }
        };
        let mut down = hyper_util::rt::TokioIo::new(down);
        let mut up = hyper_util::rt::TokioIo::new(up);
        if let Err(error) = tokio::io::copy_bidirectional(&mut down, &mut up).await {
            tracing::debug!(%error, "upgraded connection closed with an error");
        }
    });
}

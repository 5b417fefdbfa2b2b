//! Active health checking: every `interval` (plus jitter; `no_traffic_interval` until the
//! cluster has routed a request) each host gets an HTTP GET of `path` on a fresh connection, or a
//! TCP connect with optional send/receive bytes. `unhealthy_threshold` failures in a row mark it
//! `/failed_active_hc`, `healthy_threshold` successes bring it back (a new host needs just one),
//! and an answer carrying `x-envoy-immediate-health-check-fail` fails it at once.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::config::model::{HealthCheck, HealthCheckKind};
use crate::proxy::stats::{Counter, Gauge, Store};
use crate::proxy::tls::client::UpstreamStream;

use super::host::{Health, Host};
use super::ClusterCore;

/// An upstream answering with this header asks to be marked failed now (Envoy's
/// immediate health check fail); the health check filter sends it.
pub const IMMEDIATE_FAIL: http::HeaderName =
    http::HeaderName::from_static("x-envoy-immediate-health-check-fail");

/// `cluster.<name>.health_check.*`.
pub struct CheckStats {
    pub attempt: Counter,
    pub success: Counter,
    pub failure: Counter,
    pub network_failure: Counter,
    pub passive_failure: Counter,
    pub verify_cluster: Counter,
    pub healthy: Gauge,
}

impl CheckStats {
    pub fn new(store: &Store, prefix: &str) -> CheckStats {
        let c = |n: &str| store.counter(&format!("{prefix}health_check.{n}"));
        CheckStats {
            attempt: c("attempt"),
            success: c("success"),
            failure: c("failure"),
            network_failure: c("network_failure"),
            passive_failure: c("passive_failure"),
            verify_cluster: c("verify_cluster"),
            healthy: store.gauge(&format!("{prefix}health_check.healthy")),
        }
    }
}

/// How one check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Healthy,
    /// It answered, wrongly (a status outside `expected_statuses`, bytes not received).
    Unhealthy,
    /// No answer: refused, reset, timed out.
    NetworkFailure,
    /// It asked to be failed now (`x-envoy-immediate-health-check-fail`).
    ImmediateFailure,
}

/// Runs the cluster's `index`th health check until shutdown or the cluster goes.
pub fn spawn(core: &Arc<ClusterCore>, index: usize, mut shutdown: watch::Receiver<bool>) {
    let weak: Weak<ClusterCore> = Arc::downgrade(core);
    tokio::spawn(async move {
        loop {
            let Some(core) = weak.upgrade() else { return };
            let check = core.config.health_checks[index].clone();
            let hosts = core.hosts.load().hosts.clone();
            let rounds = hosts.iter().map(|h| {
                let (core, check, host) = (core.clone(), check.clone(), h.clone());
                async move {
                    let verdict = run_once(&check, &core, &host).await;
                    apply(&core, &check, &host, verdict);
                }
            });
            futures_util::future::join_all(rounds).await;
            let wait = next_wait(&core, &check);
            drop(core);
            // Sleep in slices: a host that DNS just added is checked at once, not a whole
            // (possibly 60 s no-traffic) interval later.
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                let slice = deadline
                    .saturating_duration_since(tokio::time::Instant::now())
                    .min(Duration::from_millis(250));
                if slice.is_zero() {
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep(slice) => {}
                    _ = shutdown.changed() => return,
                }
                let Some(core) = weak.upgrade() else { return };
                let unchecked = core
                    .hosts
                    .load()
                    .hosts
                    .iter()
                    .any(|h| !h.checks.first_done.load(Ordering::Acquire));
                if unchecked {
                    break;
                }
            }
        }
    });
}

/// The pause before the next round: `no_traffic_interval` while the cluster has seen no
/// request, `unhealthy_interval` while a host is down, else `interval`; plus jitter.
fn next_wait(core: &ClusterCore, check: &HealthCheck) -> Duration {
    let base = if core.stats.upstream_rq_total.value() == 0 {
        check.no_traffic_interval
    } else if core.hosts.load().hosts.iter().any(|h| !h.is_healthy()) {
        check.unhealthy_interval.unwrap_or(check.interval)
    } else {
        check.interval
    };
    base + check.interval_jitter.mul_f64(fastrand::f64())
}

async fn run_once(check: &HealthCheck, core: &ClusterCore, host: &Host) -> Verdict {
    match tokio::time::timeout(check.timeout, probe(check, core, host)).await {
        Ok(v) => v,
        Err(_) => Verdict::NetworkFailure,
    }
}

/// One check over the cluster's transport: TLS when the cluster has an `UpstreamTlsContext`,
/// as Envoy checks through the cluster's transport socket.
async fn probe(check: &HealthCheck, core: &ClusterCore, host: &Host) -> Verdict {
    let cluster = core.config.name.as_str();
    let Ok(tcp) = TcpStream::connect(host.address).await else {
        return Verdict::NetworkFailure;
    };
    let _ = tcp.set_nodelay(true);
    let stream = match &core.tls {
        None => UpstreamStream::Plain(tcp),
        Some(tls) => match tls.handshake(tcp, host.address.ip(), false).await {
            Ok(stream) => stream,
            Err(_) => return Verdict::NetworkFailure,
        },
    };
    match &check.kind {
        HealthCheckKind::Http {
            path,
            host: authority,
            expected_statuses,
        } => {
            let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake::<
                _,
                Empty<bytes::Bytes>,
            >(TokioIo::new(stream))
            .await
            else {
                return Verdict::NetworkFailure;
            };
            let connection = tokio::spawn(conn);
            let request = Request::get(path.as_str())
                .header(http::header::HOST, authority.as_deref().unwrap_or(cluster))
                .header(http::header::USER_AGENT, "Envoy/HC")
                .header(http::header::CONNECTION, "close")
                .body(Empty::new());
            let Ok(request) = request else {
                return Verdict::Unhealthy;
            };
            let verdict = match sender.send_request(request).await {
                Err(_) => Verdict::NetworkFailure,
                Ok(response) => {
                    let status = response.status().as_u16();
                    let immediate = response.headers().contains_key(IMMEDIATE_FAIL);
                    // Read the body so the connection ends cleanly.
                    let _ = response.into_body().collect().await;
                    if immediate {
                        Verdict::ImmediateFailure
                    } else if expected_statuses
                        .iter()
                        .any(|(start, end)| (*start..*end).contains(&status))
                    {
                        Verdict::Healthy
                    } else {
                        Verdict::Unhealthy
                    }
                }
            };
            connection.abort();
            verdict
        }
        HealthCheckKind::Tcp { send, receive } => {
            let mut stream = stream;
            if !send.is_empty() && stream.write_all(send).await.is_err() {
                return Verdict::NetworkFailure;
            }
            if receive.is_empty() {
                return Verdict::Healthy;
            }
            let wanted: Vec<u8> = receive.concat();
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while got.len() < wanted.len() {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return Verdict::NetworkFailure,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            if got.windows(wanted.len()).any(|w| w == wanted.as_slice()) {
                Verdict::Healthy
            } else {
                Verdict::Unhealthy
            }
        }
    }
}

/// Counts the verdict and moves the host across the thresholds.
pub fn apply(core: &ClusterCore, check: &HealthCheck, host: &Host, verdict: Verdict) {
    let Some(stats) = &core.checks else { return };
    stats.attempt.inc();
    let state = &host.checks;
    let first = !state.first_done.swap(true, Ordering::AcqRel);
    let changed = match verdict {
        Verdict::Healthy => {
            stats.success.inc();
            state.failures.store(0, Ordering::Release);
            let successes = state.successes.fetch_add(1, Ordering::AcqRel) + 1;
            (first || successes >= check.healthy_threshold)
                && host.set_health(Health::FAILED_ACTIVE_HC, false)
        }
        Verdict::Unhealthy | Verdict::NetworkFailure | Verdict::ImmediateFailure => {
            stats.failure.inc();
            if verdict == Verdict::NetworkFailure {
                stats.network_failure.inc();
            }
            state.successes.store(0, Ordering::Release);
            let failures = state.failures.fetch_add(1, Ordering::AcqRel) + 1;
            (verdict == Verdict::ImmediateFailure || failures >= check.unhealthy_threshold)
                && host.set_health(Health::FAILED_ACTIVE_HC, true)
        }
    };
    if changed {
        tracing::info!(cluster = %core.config.name, host = %host.address, healthy = host.is_healthy(), "health check changed a host's health");
        core.health_changed();
    }
    let healthy = core
        .hosts
        .load()
        .hosts
        .iter()
        .filter(|h| h.is_healthy())
        .count();
    stats.healthy.set(healthy as u64);
}

/// An upstream answer with `x-envoy-immediate-health-check-fail` fails its host at once, when
/// the cluster health-checks (Envoy's passive failure).
pub fn passive_failure(core: &ClusterCore, host: &Host) {
    let Some(stats) = &core.checks else { return };
    stats.passive_failure.inc();
    host.checks.successes.store(0, Ordering::Release);
    if host.set_health(Health::FAILED_ACTIVE_HC, true) {
        core.health_changed();
    }
}

//! The cluster's connection `idle_timeout` (`common_http_protocol_options`, 1 h unless set;
//! 0 turns it off): an upstream connection that has carried no request for that long is
//! closed and counted in `cluster.<name>.upstream_cx_idle_timeout`, as Envoy does.
//!
//! Timers exist only while there is something to time: one task per host while it has idle
//! HTTP/1.1 connections, one per HTTP/2 connection while it is open. Both hold weak
//! references, so a cluster or host removed by a reload is not kept alive by its timer.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::pool::Http2Connection;
use crate::proxy::cluster::{ClusterCore, Host};

/// Makes sure a task closes `host`'s idle HTTP/1.1 connections as they reach `timeout`. Called
/// when a connection is given back; starts a task only if none is running for the host.
pub fn sweep_http1_when_idle(core: &Arc<ClusterCore>, host: &Arc<Host>, timeout: Duration) {
    // Outside a runtime (a body dropped after shutdown) there is nothing to time with; the
    // connections close with the host.
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if !host.connections.arm_http1_sweeper() {
        return;
    }
    let (core, host) = (Arc::downgrade(core), Arc::downgrade(host));
    runtime.spawn(sweep_http1(core, host, timeout));
}

async fn sweep_http1(core: Weak<ClusterCore>, host: Weak<Host>, timeout: Duration) {
    loop {
        let next = {
            let Some(host) = host.upgrade() else { return };
            let (timed_out, next) = host.connections.expire_http1(timeout);
            if timed_out > 0 {
                if let Some(core) = core.upgrade() {
                    core.stats.upstream_cx_idle_timeout.add(timed_out);
                }
            }
            match next {
                Some(at) => at,
                None if host.connections.disarm_http1_sweeper() => return,
                None => continue,
            }
        };
        tokio::time::sleep_until(next.into()).await;
    }
}

/// Closes `conn` once no stream has been open on it for `timeout`: it stops being the host's
/// shared connection, and hyper closes it when the last request holding its sender is done.
pub fn close_http2_when_idle(
    core: &Arc<ClusterCore>,
    host: &Arc<Host>,
    conn: &Arc<Http2Connection>,
    timeout: Duration,
) {
    let went_idle = conn.went_idle();
    let (core, host, conn) = (
        Arc::downgrade(core),
        Arc::downgrade(host),
        Arc::downgrade(conn),
    );
    tokio::spawn(async move {
        loop {
            let deadline = {
                let Some(c) = conn.upgrade() else { return };
                if c.sender.is_closed() {
                    return;
                }
                match c.idle_deadline(timeout) {
                    Some(at) if at <= Instant::now() => {
                        let retired = host
                            .upgrade()
                            .is_some_and(|h| h.connections.retire_http2(&c));
                        if retired {
                            if let Some(core) = core.upgrade() {
                                core.stats.upstream_cx_idle_timeout.inc();
                            }
                        }
                        return;
                    }
                    other => other,
                }
            };
            // Only weak references are held while waiting, so the connection can close.
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => went_idle.notified().await,
            }
        }
    });
}

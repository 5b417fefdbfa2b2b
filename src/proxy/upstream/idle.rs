//! Idle upstream connections: the cluster's connection `idle_timeout`
//! (`common_http_protocol_options`, 1 h unless set; 0 turns it off) closes one that has
//! carried no request for that long and counts it in `cluster.<name>.upstream_cx_idle_timeout`,
//! as Envoy does; and an idle HTTP/1.1 connection the upstream closes is dropped at once
//! (nothing else reads it while it is idle), so `upstream_cx_active` stays true.
//!
//! Watchers exist only while there is something to watch: one task per host while it has idle
//! HTTP/1.1 connections, one per HTTP/2 connection while it is open. Both hold weak
//! references, so a cluster or host removed by a reload is not kept alive by its watcher.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use super::pool::Http2Connection;
use crate::proxy::cluster::{ClusterCore, Host};

/// Starts the task that watches `host`'s idle HTTP/1.1 connections (the pool asks for it when
/// the first connection goes idle): woken when one becomes readable (the upstream closed it)
/// and when the oldest reaches the idle timeout; it ends when none is left idle.
pub fn watch_http1(core: &Arc<ClusterCore>, host: &Arc<Host>) {
    let timeout = core.config.idle_timeout;
    let (core, host) = (Arc::downgrade(core), Arc::downgrade(host));
    let watch = async move {
        let mut timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
        poll_fn(|cx| loop {
            let Some(host) = host.upgrade() else {
                return Poll::Ready(());
            };
            let sweep = host.connections.watch_http1(cx, timeout);
            if sweep.timed_out > 0 {
                if let Some(core) = core.upgrade() {
                    core.stats.upstream_cx_idle_timeout.add(sweep.timed_out);
                }
            }
            if !sweep.idle_left {
                return Poll::Ready(());
            }
            let Some(at) = sweep.next_timeout else {
                return Poll::Pending;
            };
            let at = tokio::time::Instant::from_std(at);
            match &mut timer {
                Some(t) if t.deadline() == at => {}
                Some(t) => t.as_mut().reset(at),
                None => timer = Some(Box::pin(tokio::time::sleep_until(at))),
            }
            if let Some(t) = timer.as_mut() {
                if t.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
            // The oldest timed out while looking: look again.
        })
        .await
    };
    // Outside a runtime (a body dropped after shutdown) there is nothing to watch with; the
    // connections close with the host.
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(watch);
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

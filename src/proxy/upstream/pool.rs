//! Connections to one upstream host, kept with the host itself.
//!
//! HTTP/1.1: a stack of idle connections. A connection is taken for one request and given back
//! only when that response's body has ended, so the next request never queues behind an
//! unfinished one. The most recently used connection is taken first, as in Envoy: after a
//! burst, the few connections steady traffic needs are reused and the rest stay idle, so the
//! upstream's keep-alive timeout can close them (taken in turn, every one would be kept busy).
//! As in Envoy, an idle connection is kept until it closes; the cluster's `max_connections`
//! circuit breaker bounds how many there are. (A fixed cap of idle connections made every burst
//! wider than the cap close and reopen connections: with h2load's 320 concurrent streams, 7 %
//! of requests opened a new upstream connection.)
//!
//! HTTP/2: one multiplexed connection, shared by cloning its sender (an `ArcSwap` load, no
//! lock); a mutex serialises only the rare reconnect.
//!
//! Either way, `max_requests_per_connection` retires a connection after that many requests:
//! an HTTP/1.1 one is closed instead of given back, an HTTP/2 one stops taking new streams.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use hyper::client::conn::{http1, http2};

use crate::proxy::body::Body;
use crate::proxy::cluster::{ClusterCore, Host};

/// A pooled HTTP/1.1 connection and how many requests it has carried.
pub struct Http1Connection {
    pub sender: http1::SendRequest<Body>,
    pub served: u32,
}

/// The shared HTTP/2 connection and how many streams it has been given.
pub struct Http2Connection {
    pub sender: http2::SendRequest<Body>,
    streams: AtomicU32,
}

impl Http2Connection {
    pub fn new(sender: http2::SendRequest<Body>) -> Self {
        Http2Connection {
            sender,
            streams: AtomicU32::new(0),
        }
    }
}

pub struct HostConnections {
    /// Most recently used last; the lock is held for one push or pop. (The lock-free queue it
    /// replaced can only give connections back in turn; a lock-free stack would need unsafe
    /// memory reclamation for what is two uncontended atomics here.)
    idle_http1: std::sync::Mutex<Vec<Http1Connection>>,
    http2: ArcSwapOption<Http2Connection>,
    http2_connecting: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for HostConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostConnections")
            .field("idle_http1", &self.idle_http1().len())
            .field("http2", &self.http2.load().is_some())
            .finish()
    }
}

impl Default for HostConnections {
    fn default() -> Self {
        HostConnections {
            idle_http1: std::sync::Mutex::new(Vec::new()),
            http2: ArcSwapOption::empty(),
            http2_connecting: tokio::sync::Mutex::new(()),
        }
    }
}

impl HostConnections {
    /// The most recently used idle HTTP/1.1 connection that is still open, if any.
    pub fn take_http1(&self) -> Option<Http1Connection> {
        loop {
            let idle = self.idle_http1().pop()?;
            if !idle.sender.is_closed() {
                return Some(idle);
            }
        }
    }

    fn idle_http1(&self) -> std::sync::MutexGuard<'_, Vec<Http1Connection>> {
        // Nothing panics while holding it; a poisoned lock still holds valid connections.
        self.idle_http1
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The shared HTTP/2 connection, if it is still open.
    pub fn http2(&self) -> Option<Arc<Http2Connection>> {
        self.http2.load_full().filter(|c| !c.sender.is_closed())
    }

    /// Counts one stream on `conn`. The stream that reaches `max_requests_per_connection`
    /// retires the connection: later requests open a new one, and this one closes when its
    /// streams end and the last sender is dropped (Envoy drains it the same way).
    pub fn start_http2_stream(&self, core: &ClusterCore, conn: &Arc<Http2Connection>) {
        let Some(max) = max_requests(core) else {
            return;
        };
        if conn.streams.fetch_add(1, Ordering::Relaxed) + 1 == max {
            // Only if it is still the shared one: a reconnect may have replaced it already.
            self.http2.compare_and_swap(&Some(conn.clone()), None);
            core.stats.upstream_cx_max_requests.inc();
        }
    }

    /// Serialises HTTP/2 connection attempts so a burst of requests opens one connection.
    pub async fn http2_connect_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.http2_connecting.lock().await
    }

    pub fn set_http2(&self, conn: Arc<Http2Connection>) {
        self.http2.store(Some(conn));
    }
}

/// The cluster's `max_requests_per_connection`; 0, as in Envoy, means no limit.
fn max_requests(core: &ClusterCore) -> Option<u32> {
    core.config
        .max_requests_per_connection
        .filter(|&max| max > 0)
}

/// An HTTP/1.1 connection lent to one request; given back when its response body completes.
pub struct Lease {
    core: Arc<ClusterCore>,
    host: Arc<Host>,
    /// The connection, with this request counted in `served`.
    conn: Http1Connection,
}

impl Lease {
    pub fn new(core: Arc<ClusterCore>, host: Arc<Host>, conn: Http1Connection) -> Self {
        Lease { core, host, conn }
    }

    /// Returns the connection to the host's idle queue. A closed one is dropped, and so is one
    /// that has carried `max_requests_per_connection` requests (dropping it closes it).
    pub fn give_back(self) {
        let retired = max_requests(&self.core).is_some_and(|max| self.conn.served >= max);
        if retired {
            // Its circuit-breaker slot is freed (and waiters told) when it has closed.
            self.core.stats.upstream_cx_max_requests.inc();
        } else if !self.conn.sender.is_closed() {
            self.host.connections.idle_http1().push(self.conn);
            // A request waiting for a connection (at `max_connections`) may take this one.
            self.core.breakers.connection_freed.notify_waiters();
        }
    }
}

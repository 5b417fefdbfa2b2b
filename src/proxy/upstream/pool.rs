//! Connections to one upstream host, kept with the host itself.
//!
//! HTTP/1.1: a lock-free queue of idle connections. A connection is taken for one request and
//! given back only when that response's body has ended, so the next request never queues
//! behind an unfinished one. As in Envoy, an idle connection is kept until it closes: the
//! cluster's `max_connections` circuit breaker bounds how many there are. (A fixed cap of idle
//! connections made every burst wider than the cap close and reopen connections: with h2load's
//! 320 concurrent streams, 7 % of requests opened a new upstream connection.) HTTP/2: one multiplexed connection, shared by cloning its sender
//! (an `ArcSwap` load, no lock); a mutex serialises only the rare reconnect.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use crossbeam_queue::SegQueue;
use hyper::client::conn::{http1, http2};

use crate::proxy::body::Body;
use crate::proxy::cluster::{ClusterCore, Host};

pub struct HostConnections {
    idle_http1: SegQueue<http1::SendRequest<Body>>,
    http2: ArcSwapOption<http2::SendRequest<Body>>,
    http2_connecting: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for HostConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostConnections")
            .field("idle_http1", &self.idle_http1.len())
            .field("http2", &self.http2().is_some())
            .finish()
    }
}

impl Default for HostConnections {
    fn default() -> Self {
        HostConnections {
            idle_http1: SegQueue::new(),
            http2: ArcSwapOption::empty(),
            http2_connecting: tokio::sync::Mutex::new(()),
        }
    }
}

impl HostConnections {
    /// An idle HTTP/1.1 connection that is still open, if any.
    pub fn take_http1(&self) -> Option<http1::SendRequest<Body>> {
        while let Some(sender) = self.idle_http1.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    /// The shared HTTP/2 connection, if it is still open.
    pub fn http2(&self) -> Option<Arc<http2::SendRequest<Body>>> {
        self.http2.load_full().filter(|s| !s.is_closed())
    }

    /// Serialises HTTP/2 connection attempts so a burst of requests opens one connection.
    pub async fn http2_connect_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.http2_connecting.lock().await
    }

    pub fn set_http2(&self, sender: Arc<http2::SendRequest<Body>>) {
        self.http2.store(Some(sender));
    }
}

/// An HTTP/1.1 connection lent to one request; given back when its response body completes.
pub struct Lease {
    core: Arc<ClusterCore>,
    host: Arc<Host>,
    sender: http1::SendRequest<Body>,
}

impl Lease {
    pub fn new(core: Arc<ClusterCore>, host: Arc<Host>, sender: http1::SendRequest<Body>) -> Self {
        Lease { core, host, sender }
    }

    /// Returns the connection to the host's idle queue (a closed one is dropped).
    pub fn give_back(self) {
        if !self.sender.is_closed() {
            self.host.connections.idle_http1.push(self.sender);
            // A request waiting for a connection (at `max_connections`) may take this one.
            self.core.breakers.connection_freed.notify_waiters();
        }
    }
}

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
//! an HTTP/1.1 one is closed instead of given back, an HTTP/2 one stops taking new streams;
//! and the cluster's `idle_timeout` closes one that has carried no request for that long
//! (see [`super::idle`]).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use hyper::client::conn::{http1, http2};

use crate::proxy::body::Body;
use crate::proxy::cluster::{ClusterCore, Host};

/// A pooled HTTP/1.1 connection and how many requests it has carried.
pub struct Http1Connection {
    pub sender: http1::SendRequest<Body>,
    pub served: u32,
}

/// An idle HTTP/1.1 connection and since when it has been idle.
struct IdleHttp1 {
    conn: Http1Connection,
    since: Instant,
}

/// The shared HTTP/2 connection, how many streams it has been given, and how many are open.
pub struct Http2Connection {
    pub sender: http2::SendRequest<Body>,
    streams: AtomicU32,
    active: AtomicU32,
    opened: Instant,
    /// When its last stream ended (0 before any), in nanoseconds after `opened`: an atomic, so
    /// a stream's end takes no lock.
    idle_since: AtomicU64,
    /// Told each time its last open stream ends.
    went_idle: Arc<tokio::sync::Notify>,
}

impl Http2Connection {
    pub fn new(sender: http2::SendRequest<Body>) -> Self {
        Http2Connection {
            sender,
            streams: AtomicU32::new(0),
            active: AtomicU32::new(0),
            opened: Instant::now(),
            idle_since: AtomicU64::new(0),
            went_idle: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Signalled each time its last open stream ends.
    pub fn went_idle(&self) -> Arc<tokio::sync::Notify> {
        self.went_idle.clone()
    }

    /// When it will have been idle for `timeout`, if no stream is open on it now.
    pub fn idle_deadline(&self, timeout: Duration) -> Option<Instant> {
        if self.active.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let idle_since = Duration::from_nanos(self.idle_since.load(Ordering::SeqCst));
        Some(self.opened + idle_since + timeout)
    }
}

/// One open stream on an HTTP/2 connection; dropping it ends the stream's claim on the
/// connection (the last one to end starts its idle time).
pub struct Http2Stream(Arc<Http2Connection>);

impl Drop for Http2Stream {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            let since_opened = self.0.opened.elapsed().as_nanos() as u64;
            self.0.idle_since.store(since_opened, Ordering::SeqCst);
            // A permit is kept if the timer task is not waiting yet, so it cannot miss this.
            self.0.went_idle.notify_one();
        }
    }
}

pub struct HostConnections {
    /// Most recently used last, so also longest idle first; the lock is held for one push or
    /// pop. (The lock-free queue it replaced can only give connections back in turn; a
    /// lock-free stack would need unsafe memory reclamation for what is two uncontended
    /// atomics here.)
    idle_http1: std::sync::Mutex<Vec<IdleHttp1>>,
    /// Whether a task is closing this host's idle HTTP/1.1 connections as they time out.
    http1_sweeper: AtomicBool,
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
            http1_sweeper: AtomicBool::new(false),
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
            if !idle.conn.sender.is_closed() {
                return Some(idle.conn);
            }
        }
    }

    /// Removes the idle HTTP/1.1 connections idle for `timeout` or more (dropping one closes
    /// it) and counts them; also drops those at the bottom the upstream has closed. Returns
    /// the count and when the next one times out.
    pub fn expire_http1(&self, timeout: Duration) -> (u64, Option<Instant>) {
        let now = Instant::now();
        let (expired, next) = {
            let mut idle = self.idle_http1();
            let stale = idle
                .iter()
                .take_while(|i| i.since + timeout <= now || i.conn.sender.is_closed())
                .count();
            let expired: Vec<IdleHttp1> = idle.drain(..stale).collect();
            (expired, idle.first().map(|i| i.since + timeout))
        };
        let timed_out = expired
            .iter()
            .filter(|i| !i.conn.sender.is_closed())
            .count();
        (timed_out as u64, next)
    }

    /// Claims the HTTP/1.1 sweeper's place; false if a sweeper is running already.
    pub fn arm_http1_sweeper(&self) -> bool {
        // Read first: on the request path the sweeper is nearly always running already, and a
        // load is cheaper than a swap.
        !self.http1_sweeper.load(Ordering::SeqCst)
            && !self.http1_sweeper.swap(true, Ordering::SeqCst)
    }

    /// The sweeper found nothing idle: true if it should stop. A connection given back since
    /// then saw the flag still set and started no sweeper, so if one is there the sweeper
    /// carries on (unless another has claimed the place meanwhile).
    pub fn disarm_http1_sweeper(&self) -> bool {
        self.http1_sweeper.store(false, Ordering::SeqCst);
        self.idle_http1().is_empty() || self.http1_sweeper.swap(true, Ordering::SeqCst)
    }

    fn idle_http1(&self) -> std::sync::MutexGuard<'_, Vec<IdleHttp1>> {
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
    pub fn start_http2_stream(
        &self,
        core: &ClusterCore,
        conn: &Arc<Http2Connection>,
    ) -> Http2Stream {
        conn.active.fetch_add(1, Ordering::SeqCst);
        let stream = Http2Stream(conn.clone());
        let Some(max) = max_requests(core) else {
            return stream;
        };
        if conn.streams.fetch_add(1, Ordering::Relaxed) + 1 == max {
            self.retire_http2(conn);
            core.stats.upstream_cx_max_requests.inc();
        }
        stream
    }

    /// Stops sharing `conn` for new requests; it closes when its streams end and the last
    /// sender is dropped. False if it was no longer the shared one (a reconnect or another
    /// retirement replaced it already).
    pub fn retire_http2(&self, conn: &Arc<Http2Connection>) -> bool {
        let previous = self.http2.compare_and_swap(&Some(conn.clone()), None);
        previous.as_ref().is_some_and(|p| Arc::ptr_eq(p, conn))
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

/// An upstream connection's use by one request, held until its response body completes: an
/// HTTP/1.1 connection lent to it alone, or its stream on the shared HTTP/2 connection.
pub enum Lease {
    Http1 {
        core: Arc<ClusterCore>,
        host: Arc<Host>,
        /// The connection, with this request counted in `served`.
        conn: Http1Connection,
    },
    Http2(Http2Stream),
}

impl Lease {
    /// Ends the request's use of the connection. An HTTP/1.1 one goes back to the host's idle
    /// stack, unless it is closed or has carried `max_requests_per_connection` requests
    /// (dropping it closes it). (Dropping a lease instead, as when the response is abandoned,
    /// closes an HTTP/1.1 connection, whose response may be unfinished.)
    pub fn give_back(self) {
        let Lease::Http1 { core, host, conn } = self else {
            return;
        };
        let retired = max_requests(&core).is_some_and(|max| conn.served >= max);
        if retired {
            // Its circuit-breaker slot is freed (and waiters told) when it has closed.
            core.stats.upstream_cx_max_requests.inc();
        } else if !conn.sender.is_closed() {
            let since = Instant::now();
            host.connections
                .idle_http1()
                .push(IdleHttp1 { conn, since });
            if let Some(timeout) = core.config.idle_timeout {
                super::idle::sweep_http1_when_idle(&core, &host, timeout);
            }
            // A request waiting for a connection (at `max_connections`) may take this one.
            core.breakers.connection_freed.notify_waiters();
        }
    }
}

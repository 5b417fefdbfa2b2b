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
//! of requests opened a new upstream connection.) Nothing reads an idle connection, so one
//! task per host watches them while there are any: woken by the runtime when one becomes
//! readable (the upstream closed it) or reaches the idle timeout (see [`super::idle`]).
//!
//! HTTP/2: one multiplexed connection, shared by cloning its sender (an `ArcSwap` load, no
//! lock); a mutex serialises only the rare reconnect.
//!
//! Either way, `max_requests_per_connection` retires a connection after that many requests:
//! an HTTP/1.1 one is closed instead of given back, an HTTP/2 one stops taking new streams;
//! and the cluster's `idle_timeout` closes one that has carried no request for that long
//! (see [`super::idle`]).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use hyper::client::conn::http2;

use super::http1::Http1Connection;
use crate::proxy::body::Body;
use crate::proxy::cluster::{ClusterCore, Host};

/// An idle HTTP/1.1 connection and since when it has been idle.
struct IdleHttp1 {
    conn: Http1Connection,
    since: Instant,
}

/// A host's idle HTTP/1.1 connections, and the task that watches them while there are any.
#[derive(Default)]
struct IdleHttp1Stack {
    /// Most recently used last, so also longest idle first.
    conns: Vec<IdleHttp1>,
    watcher: Watcher,
}

/// What one look at the idle HTTP/1.1 connections found.
pub(super) struct Sweep {
    /// Connections closed for reaching the idle timeout.
    pub timed_out: u64,
    /// Whether any connection is still idle (if not, the watcher stops).
    pub idle_left: bool,
    /// When the oldest idle connection will time out.
    pub next_timeout: Option<Instant>,
}

/// The task that notices idle connections closing or timing out (see [`super::idle`]).
#[derive(Default)]
enum Watcher {
    #[default]
    None,
    /// Spawned, not polled yet: it will look at every connection when it is.
    Starting,
    /// Woken when an idle connection becomes readable (closed, on an idle connection).
    Watching(Waker),
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
    /// The lock is held for one push or pop (a lock-free queue can only give connections back
    /// in turn; a lock-free stack would need unsafe memory reclamation for what is two
    /// uncontended atomics here).
    idle_http1: std::sync::Mutex<IdleHttp1Stack>,
    http2: ArcSwapOption<Http2Connection>,
    http2_connecting: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for HostConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostConnections")
            .field("idle_http1", &self.idle_http1().conns.len())
            .field("http2", &self.http2.load().is_some())
            .finish()
    }
}

impl Default for HostConnections {
    fn default() -> Self {
        HostConnections {
            idle_http1: std::sync::Mutex::new(IdleHttp1Stack::default()),
            http2: ArcSwapOption::empty(),
            http2_connecting: tokio::sync::Mutex::new(()),
        }
    }
}

impl HostConnections {
    /// The most recently used idle HTTP/1.1 connection that is still open, if any.
    pub fn take_http1(&self) -> Option<Http1Connection> {
        let mut idle = self.idle_http1();
        while let Some(mut i) = idle.conns.pop() {
            // Its readiness as the runtime last saw it: no system call. (The no-op waker
            // also stops the watcher hearing about this connection, now in use.)
            if !i.conn.poll_ended(&mut Context::from_waker(Waker::noop())) {
                return Some(i.conn);
            }
        }
        None
    }

    /// For the watcher: drops the idle HTTP/1.1 connections that have closed, and those idle
    /// for `timeout` or more; registers `cx` to hear of the others closing. When none is left
    /// idle the watcher is to stop (the next connection given back starts another).
    pub(super) fn watch_http1(&self, cx: &mut Context<'_>, timeout: Option<Duration>) -> Sweep {
        let now = Instant::now();
        let mut timed_out = 0;
        let mut idle = self.idle_http1();
        idle.conns.retain_mut(|i| {
            if i.conn.poll_ended(cx) {
                return false;
            }
            let expired = timeout.is_some_and(|t| i.since + t <= now);
            timed_out += u64::from(expired);
            !expired
        });
        let Some(oldest) = idle.conns.first() else {
            idle.watcher = Watcher::None;
            return Sweep {
                timed_out,
                idle_left: false,
                next_timeout: None,
            };
        };
        let next_timeout = timeout.map(|t| oldest.since + t);
        match &idle.watcher {
            Watcher::Watching(w) if w.will_wake(cx.waker()) => {}
            _ => idle.watcher = Watcher::Watching(cx.waker().clone()),
        }
        Sweep {
            timed_out,
            idle_left: true,
            next_timeout,
        }
    }

    fn idle_http1(&self) -> std::sync::MutexGuard<'_, IdleHttp1Stack> {
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

/// An HTTP/1.1 connection whose response has been read to the end goes back to its host's
/// idle stack, unless it has carried `max_requests_per_connection` requests (dropping it
/// closes it).
pub fn give_back_http1(core: &Arc<ClusterCore>, host: &Arc<Host>, mut conn: Http1Connection) {
    if max_requests(core).is_some_and(|max| conn.served >= max) {
        // Its circuit-breaker slot is freed (and waiters told) when it has closed.
        core.stats.upstream_cx_max_requests.inc();
        return;
    }
    let start_watcher = {
        let mut idle = host.connections.idle_http1();
        // Watched while it sits idle: the watcher is woken if the upstream closes it.
        let ended = match &idle.watcher {
            Watcher::Watching(w) => conn.poll_ended(&mut Context::from_waker(w)),
            _ => conn.poll_ended(&mut Context::from_waker(Waker::noop())),
        };
        if ended {
            return;
        }
        idle.conns.push(IdleHttp1 {
            conn,
            since: Instant::now(),
        });
        let start = matches!(idle.watcher, Watcher::None);
        if start {
            idle.watcher = Watcher::Starting;
        }
        start
    };
    if start_watcher {
        super::idle::watch_http1(core, host);
    }
    // A request waiting for a connection (at `max_connections`) may take this one.
    core.breakers.connection_freed.notify_waiters();
}

//! Per-connection supervision: the listener runs each connection under [`supervise`], and each
//! request under a [`StreamGuard`], so a connection can be closed for what it does across
//! requests — stalling before its first request, or resetting most of its streams early.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;
use tokio::sync::Notify;

use super::resets::PrematureResets;

/// What one connection's requests report to its supervisor.
#[derive(Debug, Default)]
pub struct ConnWatch {
    first_request: AtomicBool,
    resets: PrematureResets,
    abort: Notify,
    /// Requests in progress, and when the last one ended (ms since `opened`): the connection
    /// is idle while none runs.
    active: AtomicU32,
    idle_since_ms: AtomicU64,
    opened: OnceInstant,
}

/// The connection's opening time, set when the watch is made.
#[derive(Debug)]
struct OnceInstant(Instant);

impl Default for OnceInstant {
    fn default() -> Self {
        OnceInstant(Instant::now())
    }
}

impl ConnWatch {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }
}

/// Held by one request from the moment its head is complete; records on drop whether it was
/// answered, i.e. whether the HCM produced response headers before the client gave up.
pub struct StreamGuard {
    watch: Arc<ConnWatch>,
    started: Instant,
    answered: bool,
}

impl StreamGuard {
    pub fn new(watch: Arc<ConnWatch>) -> Self {
        watch.first_request.store(true, Ordering::Relaxed);
        watch.active.fetch_add(1, Ordering::AcqRel);
        StreamGuard {
            watch,
            started: Instant::now(),
            answered: false,
        }
    }

    pub fn answered(mut self) {
        self.answered = true;
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        // One clock read for both measures: this runs once per request.
        let now = Instant::now();
        let since = now.duration_since(self.watch.opened.0).as_millis() as u64;
        self.watch.idle_since_ms.store(since, Ordering::Release);
        self.watch.active.fetch_sub(1, Ordering::AcqRel);
        if self
            .watch
            .resets
            .record(self.answered, now.duration_since(self.started))
        {
            self.watch.abort.notify_one();
        }
    }
}

/// How a supervised connection ended.
#[derive(Debug)]
pub enum Ending<E> {
    /// The connection finished by itself (the codec's result).
    Finished(Result<(), E>),
    /// No request head completed within `request_headers_timeout` of the connection opening.
    HeadersTimeout,
    /// Too many streams were reset before being answered ([`super::resets`]).
    TooManyPrematureResets,
    /// No request for the HCM's `idle_timeout` (`common_http_protocol_options.idle_timeout`).
    IdleTimeout,
}

/// Drives `connection` until it ends, or closes it (by dropping it: the socket closes) when the
/// first request has not arrived within `headers_timeout` or the premature-reset guard trips.
///
/// The first-request deadline covers what hyper's per-head `header_read_timeout` cannot: a
/// connection that sends nothing (or a trickled HTTP/2 preface) is still in protocol detection,
/// where no hyper timer runs. Later request heads on HTTP/1 are hyper's timer's job.
pub async fn supervise<F, E>(
    connection: F,
    watch: &ConnWatch,
    headers_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
) -> Ending<E>
where
    F: Future<Output = Result<(), E>>,
{
    let first_request_deadline = async {
        match headers_timeout {
            Some(t) => {
                tokio::time::sleep(t).await;
                if watch.first_request.load(Ordering::Relaxed) {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending().await,
        }
    };
    // Idle: no request running, and none for `idle_timeout` since the last one ended (or since
    // the connection opened). Checked at the moment it could first be due, then again.
    let idle = async {
        let Some(limit) = idle_timeout else {
            return std::future::pending().await;
        };
        let mut wait = limit;
        loop {
            tokio::time::sleep(wait).await;
            let now = watch.opened.0.elapsed();
            let since = Duration::from_millis(watch.idle_since_ms.load(Ordering::Acquire));
            if watch.active.load(Ordering::Acquire) == 0 && now.saturating_sub(since) >= limit {
                return;
            }
            wait = if watch.active.load(Ordering::Acquire) > 0 {
                limit
            } else {
                limit
                    .saturating_sub(now.saturating_sub(since))
                    .max(Duration::from_millis(10))
            };
        }
    };
    let guards = async {
        tokio::select! {
            biased;
            () = watch.abort.notified() => Ending::TooManyPrematureResets,
            () = first_request_deadline => Ending::HeadersTimeout,
            () = idle => Ending::IdleTimeout,
        }
    };
    // The guards are polled only when one of them has been woken, not on every turn of the
    // connection (several per request): polled each time, with `select!`'s random start, they
    // cost 1.6k instructions per HTTP/1.1 request (callgrind: 29.3k -> 27.7k).
    let mut connection = pin!(connection);
    let mut guards = pin!(guards);
    let guards_woken = Arc::new(GuardsWoken::default());
    let guards_waker = Waker::from(guards_woken.clone());
    poll_fn(|cx| {
        if let Poll::Ready(result) = connection.as_mut().poll(cx) {
            return Poll::Ready(Ending::Finished(result));
        }
        guards_woken.task.register(cx.waker());
        if guards_woken.woken.swap(false, Ordering::AcqRel) {
            return guards
                .as_mut()
                .poll(&mut Context::from_waker(&guards_waker));
        }
        Poll::Pending
    })
    .await
}

/// The waker the connection's guards are polled with: it notes that one of them was woken,
/// and wakes the connection's task.
struct GuardsWoken {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Default for GuardsWoken {
    fn default() -> Self {
        GuardsWoken {
            // So that the first poll polls them, and arms their timers.
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        }
    }
}

impl Wake for GuardsWoken {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_without_a_request_is_closed_at_the_deadline() {
        let watch = ConnWatch::new();
        let ending = supervise(
            std::future::pending::<Result<(), ()>>(),
            &watch,
            Some(Duration::from_millis(20)),
            None,
        )
        .await;
        assert!(matches!(ending, Ending::HeadersTimeout));
    }

    #[tokio::test]
    async fn a_first_request_disarms_the_deadline() {
        let watch = ConnWatch::new();
        StreamGuard::new(watch.clone()).answered();
        let connection = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok::<(), ()>(())
        };
        let ending = supervise(connection, &watch, Some(Duration::from_millis(20)), None).await;
        assert!(matches!(ending, Ending::Finished(Ok(()))));
    }

    #[tokio::test]
    async fn a_connection_idle_after_its_requests_is_closed() {
        let watch = ConnWatch::new();
        let busy = StreamGuard::new(watch.clone());
        let connection = std::future::pending::<Result<(), ()>>();
        let idle = Duration::from_millis(60);
        let ending = tokio::select! {
            e = supervise(connection, &watch, None, Some(idle)) => Some(e),
            _ = async {
                // A request runs past the idle timeout: the connection is not idle meanwhile.
                tokio::time::sleep(Duration::from_millis(100)).await;
                busy.answered();
                std::future::pending::<()>().await
            } => None,
        };
        assert!(matches!(ending, Some(Ending::IdleTimeout)));
    }

    #[tokio::test]
    async fn early_resets_abort_the_connection() {
        let watch = ConnWatch::new();
        for _ in 0..super::super::resets::TOTAL_STREAM_COUNT / 2 {
            drop(StreamGuard::new(watch.clone()));
        }
        let ending = supervise(std::future::pending::<Result<(), ()>>(), &watch, None, None).await;
        assert!(matches!(ending, Ending::TooManyPrematureResets));
    }
}

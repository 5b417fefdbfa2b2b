//! Per-connection supervision: the listener runs each connection under [`supervise`], and each
//! request under a [`StreamGuard`], so a connection can be closed for what it does across
//! requests — stalling before its first request, or resetting most of its streams early.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::resets::PrematureResets;

/// What one connection's requests report to its supervisor.
#[derive(Debug, Default)]
pub struct ConnWatch {
    first_request: AtomicBool,
    resets: PrematureResets,
    abort: Notify,
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
        if self
            .watch
            .resets
            .record(self.answered, self.started.elapsed())
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
    tokio::select! {
        result = connection => Ending::Finished(result),
        () = first_request_deadline => Ending::HeadersTimeout,
        () = watch.abort.notified() => Ending::TooManyPrematureResets,
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
        let ending = supervise(connection, &watch, Some(Duration::from_millis(20))).await;
        assert!(matches!(ending, Ending::Finished(Ok(()))));
    }

    #[tokio::test]
    async fn early_resets_abort_the_connection() {
        let watch = ConnWatch::new();
        for _ in 0..super::super::resets::TOTAL_STREAM_COUNT / 2 {
            drop(StreamGuard::new(watch.clone()));
        }
        let ending = supervise(std::future::pending::<Result<(), ()>>(), &watch, None).await;
        assert!(matches!(ending, Ending::TooManyPrematureResets));
    }
}

//! The stream timeouts of the connection manager: `stream_idle_timeout` (or the route's
//! `idle_timeout`), no bytes either way for that long, and `request_timeout`, the whole request
//! not received in time. Both are watched on the request body as it streams; whichever fires
//! is recorded so the upstream failure it causes is answered as Envoy does — 408
//! `stream timeout` (flag SI) or 408 `request timeout` — instead of as an upstream reset.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::proxy::body::BoxError;

/// Which timeout ended a stream.
#[derive(Debug, Default, Clone)]
pub struct Fired(Arc<AtomicU8>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    StreamIdle,
    Request,
}

impl Fired {
    fn set(&self, cause: Cause) {
        let v = match cause {
            Cause::StreamIdle => 1,
            Cause::Request => 2,
        };
        let _ = self
            .0
            .compare_exchange(0, v, Ordering::AcqRel, Ordering::Acquire);
    }

    pub fn get(&self) -> Option<Cause> {
        match self.0.load(Ordering::Acquire) {
            1 => Some(Cause::StreamIdle),
            2 => Some(Cause::Request),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TimedOut(&'static str);

pin_project_lite::pin_project! {
    /// A body that fails when it goes `idle` without a frame, or is not finished by `deadline`.
    /// Timers are made only when the body first has to wait: a body whose frames are ready
    /// when asked for (most small ones) costs no timer at all.
    pub struct Watched<B> {
        #[pin]
        inner: B,
        idle: Option<Duration>,
        deadline: Option<Instant>,
        idle_timer: Option<Pin<Box<Sleep>>>,
        deadline_timer: Option<Pin<Box<Sleep>>>,
        // Where the timeout that fired is recorded, when someone will ask.
        fired: Option<Fired>,
    }
}

impl<B> Watched<B> {
    pub fn new(
        inner: B,
        idle: Option<Duration>,
        deadline: Option<Instant>,
        fired: Option<Fired>,
    ) -> Self {
        Watched {
            inner,
            idle,
            deadline,
            idle_timer: None,
            deadline_timer: None,
            fired,
        }
    }
}

impl<B> HttpBody for Watched<B>
where
    B: HttpBody<Data = Bytes, Error = BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(timer), Some(idle)) = (this.idle_timer.as_mut(), *this.idle) {
                    timer.as_mut().reset(Instant::now() + idle);
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(other) => return Poll::Ready(other),
            Poll::Pending => {}
        }
        if this.deadline_timer.is_none() {
            if let Some(d) = *this.deadline {
                *this.deadline_timer = Some(Box::pin(tokio::time::sleep_until(d)));
            }
        }
        // The idle clock starts when the body first has to wait (frames are taken as soon as
        // they are ready, so that is when the last one went by); no clock is read before.
        if this.idle_timer.is_none() {
            if let Some(idle) = *this.idle {
                *this.idle_timer = Some(Box::pin(tokio::time::sleep(idle)));
            }
        }
        if let Some(timer) = this.deadline_timer.as_mut() {
            if timer.as_mut().poll(cx).is_ready() {
                if let Some(fired) = this.fired {
                    fired.set(Cause::Request);
                }
                return Poll::Ready(Some(Err(Box::new(TimedOut("request timeout")))));
            }
        }
        if let Some(timer) = this.idle_timer.as_mut() {
            if timer.as_mut().poll(cx).is_ready() {
                if let Some(fired) = this.fired {
                    fired.set(Cause::StreamIdle);
                }
                return Poll::Ready(Some(Err(Box::new(TimedOut("stream timeout")))));
            }
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_stalled_body_fails_on_idle_and_says_why() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        let inner = http_body_util::StreamBody::new(tokio_stream_like(rx));
        let fired = Fired::default();
        let mut body = Watched::new(
            inner,
            Some(Duration::from_millis(50)),
            None,
            Some(fired.clone()),
        );
        tx.send(Ok(Frame::data(Bytes::from_static(b"a"))))
            .await
            .unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        // Nothing more is sent (tx stays open): the idle timer ends it.
        let err = body.frame().await.unwrap().unwrap_err();
        assert_eq!(err.to_string(), "stream timeout");
        assert_eq!(fired.get(), Some(Cause::StreamIdle));
        drop(tx);
    }

    fn tokio_stream_like(
        mut rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, BoxError>>,
    ) -> impl futures_core::Stream<Item = Result<Frame<Bytes>, BoxError>> {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}

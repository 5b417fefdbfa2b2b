//! Body types shared by the downstream server and the upstream client.
//!
//! Bodies are streamed both ways, never buffered: the downstream request body goes upstream as
//! it arrives, the upstream response body goes downstream as it arrives. [`Observed`] wraps a
//! body to count its bytes and to learn when (and how) the stream ended, which is when Envoy
//! counts a request as completed and writes its access log line.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The one body type that flows through the proxy.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

pub fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn boxed<B>(body: B) -> Body
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// How a body stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndOfStream {
    /// The last frame was delivered.
    Complete,
    /// The body produced an error (a reset or a broken connection on the far side).
    Error,
    /// The reader dropped the body before its end (the near side went away).
    Abandoned,
}

/// What an [`Observed`] body calls when its stream ends. A type parameter rather than a boxed
/// closure: every response carries one, and the body holding it is boxed already.
pub trait OnEnd: FnOnce(EndOfStream) + Send {}

impl<F: FnOnce(EndOfStream) + Send> OnEnd for F {}

/// The `on_end` type of an [`Observed`] body that only counts bytes.
pub type NoHook = fn(EndOfStream);

pin_project_lite::pin_project! {
    /// A body that adds the bytes it passes to a shared counter and calls `on_end` exactly once.
    pub struct Observed<B: HttpBody, F: OnEnd> {
        #[pin]
        inner: B,
        bytes: Option<Arc<AtomicU64>>,
        on_end: Option<F>,
    }

    impl<B: HttpBody, F: OnEnd> PinnedDrop for Observed<B, F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // hyper stops polling a body that reports `is_end_stream()` after its last frame
            // and drops it: that is a completed stream, not an abandoned one.
            let end = if this.inner.is_end_stream() {
                EndOfStream::Complete
            } else {
                EndOfStream::Abandoned
            };
            if let Some(on_end) = this.on_end.take() {
                on_end(end);
            }
        }
    }
}

impl<B: HttpBody, F: OnEnd> Observed<B, F> {
    /// `bytes` counts the data passed through, when someone (an access log) wants it.
    pub fn new(inner: B, bytes: Option<Arc<AtomicU64>>, on_end: Option<F>) -> Self {
        Observed {
            inner,
            bytes,
            on_end,
        }
    }
}

impl<B, F> HttpBody for Observed<B, F>
where
    B: HttpBody<Data = Bytes>,
    F: OnEnd,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(bytes)) = (frame.data_ref(), this.bytes.as_ref()) {
                    bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(on_end) = this.on_end.take() {
                    on_end(EndOfStream::Error);
                }
            }
            Poll::Ready(None) => {
                if let Some(on_end) = this.on_end.take() {
                    on_end(EndOfStream::Complete);
                }
            }
            Poll::Pending => {}
        }
        polled
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
    use std::sync::Mutex;

    #[tokio::test]
    async fn counts_bytes_and_reports_completion_once() {
        let bytes = Arc::new(AtomicU64::new(0));
        let ends = Arc::new(Mutex::new(Vec::new()));
        let seen = ends.clone();
        let body = Observed::new(
            full("hello world"),
            Some(bytes.clone()),
            Some(move |end| seen.lock().unwrap().push(end)),
        );
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(collected, "hello world");
        assert_eq!(bytes.load(Ordering::Relaxed), 11);
        assert_eq!(*ends.lock().unwrap(), vec![EndOfStream::Complete]);
    }

    #[tokio::test]
    async fn dropping_after_the_last_frame_reports_complete() {
        let ends = Arc::new(Mutex::new(Vec::new()));
        let seen = ends.clone();
        let mut body = Box::pin(Observed::new(
            Full::new(Bytes::from_static(b"x")),
            None,
            Some(move |end| seen.lock().unwrap().push(end)),
        ));
        let frame = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await;
        assert!(frame.is_some());
        assert!(body.is_end_stream());
        drop(body);
        assert_eq!(*ends.lock().unwrap(), vec![EndOfStream::Complete]);
    }

    #[test]
    fn dropping_early_reports_abandoned() {
        let ends = Arc::new(Mutex::new(Vec::new()));
        let seen = ends.clone();
        let body = Observed::new(
            full("x"),
            None,
            Some(move |end| seen.lock().unwrap().push(end)),
        );
        drop(body);
        assert_eq!(*ends.lock().unwrap(), vec![EndOfStream::Abandoned]);
    }
}

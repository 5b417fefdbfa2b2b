//! The memory each stream's HCM future runs in, reused from stream to stream.
//!
//! The HCM's future for one request is several kilobytes: past glibc's per-thread cache, so a
//! fresh box for every stream took the allocator's slow path (and, on free, its consolidation
//! of small chunks), and the block it got back was cold. A connection keeps the blocks of
//! answered streams and starts its next streams in them: the finished future is dropped in
//! place and the next one written over it, which `Pin::set` allows without `unsafe`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};

use crate::proxy::body::Body;

/// A block that runs one stream's HCM future at a time.
pub(super) type HandlerSlot<'c> = Pin<Box<dyn Handler + Send + 'c>>;

pub(super) trait Handler {
    /// Starts handling `request` here. Whatever ran here before must have finished.
    fn start(self: Pin<&mut Self>, request: Request<Body>);
    /// Polls the request started here; once it answers, the block is empty again.
    fn poll_answer(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response<Body>>;
}

/// An empty block whose requests are handled by `handle` (the HCM, with the connection's
/// details bound in).
pub(super) fn new<'c, H, F>(handle: H) -> HandlerSlot<'c>
where
    H: Fn(Request<Body>) -> F + Send + 'c,
    F: Future<Output = Response<Body>> + Send + 'c,
{
    Box::pin(Slot {
        handle,
        running: None,
    })
}

pin_project_lite::pin_project! {
    struct Slot<H, F> {
        handle: H,
        #[pin]
        running: Option<F>,
    }
}

impl<H, F> Handler for Slot<H, F>
where
    H: Fn(Request<Body>) -> F,
    F: Future<Output = Response<Body>>,
{
    fn start(self: Pin<&mut Self>, request: Request<Body>) {
        let mut this = self.project();
        debug_assert!(this.running.is_none(), "a block runs one request at a time");
        let future = (this.handle)(request);
        this.running.set(Some(future));
    }

    fn poll_answer(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response<Body>> {
        let mut this = self.project();
        let Some(future) = this.running.as_mut().as_pin_mut() else {
            panic!("a handler block polled with no request in it");
        };
        let response = std::task::ready!(future.poll(cx));
        // Dropped now, not when the next request comes: what it still holds (its upstream
        // connection's place in the pool, its route's snapshot) goes back at once.
        this.running.set(None);
        Poll::Ready(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A future that answers at once and counts its drops.
    struct Answers(Arc<AtomicUsize>, u16);

    impl Future for Answers {
        type Output = Response<Body>;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Response<Body>> {
            let mut response = Response::new(crate::proxy::body::empty());
            *response.status_mut() = http::StatusCode::from_u16(self.1).unwrap();
            Poll::Ready(response)
        }
    }

    impl Drop for Answers {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_block_runs_one_request_after_another_and_drops_each_once_answered() {
        let drops = Arc::new(AtomicUsize::new(0));
        let counter = drops.clone();
        let mut slot = new(move |request: Request<Body>| {
            let status = request.uri().path()[1..].parse().unwrap();
            Answers(counter.clone(), status)
        });
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for (path, status) in [("/200", 200), ("/404", 404), ("/503", 503)] {
            let request = Request::builder()
                .uri(path)
                .body(crate::proxy::body::empty());
            slot.as_mut().start(request.unwrap());
            let Poll::Ready(response) = slot.as_mut().poll_answer(&mut cx) else {
                panic!("the request was not answered");
            };
            assert_eq!(response.status(), status);
        }
        // Each request's future was dropped when it answered, not kept until the next.
        assert_eq!(drops.load(Ordering::SeqCst), 3);
    }
}

//! A request's body on our HTTP/2 server: the connection task files the stream's DATA frames
//! and trailers here as it reads them; the body is read wherever the HCM sends it (an upstream
//! HTTP/2 connection reads it in that connection's task, hence the lock). What the reader has
//! consumed goes back to the client as flow-control window, by the connection task, which the
//! reader wakes once enough has been consumed to be worth a WINDOW_UPDATE.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use h2::Reason;
use http::HeaderMap;
use http_body::{Frame, SizeHint};

/// Consumed bytes worth a WINDOW_UPDATE: a quarter of the stream window we advertise, so a
/// fast reader keeps the client sending without a frame per chunk.
pub(super) const CREDIT_THRESHOLD: u32 = super::STREAM_WINDOW / 4;

/// How request bodies reach their connection's task.
#[derive(Debug, Default)]
pub(super) struct ConnSignal {
    waker: AtomicWaker,
    /// Some body consumed data or was dropped: the connection looks at its streams' bodies.
    pending: AtomicBool,
}

impl ConnSignal {
    pub(super) fn register(&self, waker: &Waker) {
        self.waker.register(waker);
    }

    /// True once per signal: the connection then looks at every stream's body.
    pub(super) fn take(&self) -> bool {
        self.pending.swap(false, Ordering::AcqRel)
    }

    fn raise(&self) {
        self.pending.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// One stream's request body, shared by the connection task (writer) and the body (reader).
#[derive(Debug)]
pub(super) struct RecvShared {
    state: Mutex<RecvState>,
    conn: Arc<ConnSignal>,
}

#[derive(Debug, Default)]
struct RecvState {
    chunks: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
    /// The client ended the stream.
    end: bool,
    /// The stream was reset (by the client, or by the connection closing).
    reset: Option<Reason>,
    reader: Option<Waker>,
    /// Read by the body, not yet given back to the client as window.
    consumed: u32,
    /// The body was dropped: what arrives for it is discarded.
    dropped: bool,
    /// The connection closed the stream and took back its whole window ([`RecvShared::detach`]).
    detached: bool,
}

impl RecvShared {
    pub(super) fn new(conn: Arc<ConnSignal>) -> Arc<Self> {
        Arc::new(RecvShared {
            state: Mutex::default(),
            conn,
        })
    }

    fn lock(&self) -> MutexGuard<'_, RecvState> {
        // A panic while holding this lock cannot leave the state inconsistent (every update is
        // a single assignment or push), so a poisoned lock is used as is.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Files a DATA payload; false when the body was dropped (the caller credits it back).
    pub(super) fn push_data(&self, data: Bytes, end: bool) -> bool {
        let mut state = self.lock();
        if state.dropped {
            return false;
        }
        if !data.is_empty() {
            state.chunks.push_back(data);
        }
        state.end |= end;
        wake(&mut state);
        true
    }

    pub(super) fn push_trailers(&self, trailers: HeaderMap) {
        let mut state = self.lock();
        state.trailers = Some(trailers);
        state.end = true;
        wake(&mut state);
    }

    pub(super) fn reset(&self, reason: Reason) {
        let mut state = self.lock();
        if !state.end {
            state.reset = Some(reason);
        }
        wake(&mut state);
    }

    /// The connection is done with this body (the stream closed): returns every byte filed
    /// and not yet given back as window, read or not. What the reader takes afterwards is not
    /// counted again.
    pub(super) fn detach(&self) -> u32 {
        let mut state = self.lock();
        if state.detached {
            return 0;
        }
        state.detached = true;
        let unread: usize = state.chunks.iter().map(|c| c.len()).sum();
        let consumed = std::mem::take(&mut state.consumed);
        consumed.saturating_add(u32::try_from(unread).unwrap_or(u32::MAX))
    }

    /// What the reader consumed since the last call, to give back as window; `None` once the
    /// body was dropped (then [`RecvShared::detach`] gives back all it still holds).
    pub(super) fn take_consumed(&self) -> Option<u32> {
        let mut state = self.lock();
        (!state.dropped).then(|| std::mem::take(&mut state.consumed))
    }
}

fn wake(state: &mut RecvState) {
    if let Some(waker) = state.reader.take() {
        waker.wake();
    }
}

/// The request body the HCM gets.
pub(super) struct RecvBody {
    shared: Arc<RecvShared>,
    /// What `content-length` says is still to come.
    remaining: Option<u64>,
    done: bool,
}

impl RecvBody {
    pub(super) fn new(shared: Arc<RecvShared>, content_length: Option<u64>) -> Self {
        RecvBody {
            shared,
            remaining: content_length,
            done: false,
        }
    }
}

/// The client reset the stream before the body ended.
#[derive(Debug, thiserror::Error)]
#[error("request body: stream reset by the client ({0:?})")]
pub struct BodyReset(pub Reason);

impl http_body::Body for RecvBody {
    type Data = Bytes;
    type Error = BodyReset;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyReset>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let shared = self.shared.clone();
        let mut state = shared.lock();
        if let Some(chunk) = state.chunks.pop_front() {
            let len = chunk.len() as u32;
            if !state.detached {
                state.consumed = state.consumed.saturating_add(len);
            }
            let credit = state.consumed >= CREDIT_THRESHOLD;
            drop(state);
            if credit {
                shared.conn.raise();
            }
            if let Some(n) = self.remaining.as_mut() {
                *n = n.saturating_sub(u64::from(len));
            }
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if let Some(trailers) = state.trailers.take() {
            self.done = true;
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        if state.end {
            self.done = true;
            return Poll::Ready(None);
        }
        match state.reset {
            // RST_STREAM(NO_ERROR) is an early end (RFC 9113 §8.1).
            Some(Reason::NO_ERROR) => {
                self.done = true;
                Poll::Ready(None)
            }
            Some(reason) => {
                self.done = true;
                Poll::Ready(Some(Err(BodyReset(reason))))
            }
            None => {
                state.reader = Some(cx.waker().clone());
                // Caught up: what was read goes back now, whatever the amount. Waiting for the
                // threshold could wait forever when several streams share the connection's
                // window and none reaches it alone.
                let credit = state.consumed > 0;
                drop(state);
                if credit {
                    shared.conn.raise();
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        if self.done {
            return true;
        }
        let state = self.shared.lock();
        state.end && state.chunks.is_empty() && state.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        self.remaining
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

impl Drop for RecvBody {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.dropped = true;
        drop(state);
        self.shared.conn.raise();
    }
}

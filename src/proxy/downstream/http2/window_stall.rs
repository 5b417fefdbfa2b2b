//! Streams whose answers wait on the client's flow-control window. A client that never gives
//! window back holds each such stream (its upstream request, the body it has buffered) for
//! as long as it likes while reading everything else; Envoy's `stream_idle_timeout` bounds
//! that wait ("the amount of time that Envoy will wait for the peer to open enough window"),
//! and so does this: a stream that has waited the HCM's `stream_idle_timeout` is reset.
//! (A client that stops reading altogether fills the socket instead, which
//! `hardening::write_stall` bounds.)

use std::future::Future;
use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// The streams waiting for window, and one timer per connection, set for the stream that has
/// waited longest. Kept apart from the streams: a stream's own field for it made every stream
/// move with a `memcpy` call (past LLVM's inline-copy size), 160 instructions per h2c request.
pub(super) struct WindowStalls {
    /// `None`: no bound (`stream_idle_timeout: 0s`).
    limit: Option<Duration>,
    /// Stream ids, and since when each has waited.
    waiting: Vec<(u32, Instant)>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl WindowStalls {
    pub fn new(limit: Option<Duration>) -> Self {
        WindowStalls {
            limit,
            waiting: Vec::new(),
            timer: None,
        }
    }

    /// Stream `id` has an answer waiting for window (again: its wait started the first time).
    pub fn note(&mut self, id: u32) {
        if self.limit.is_some() && !self.waiting.iter().any(|&(s, _)| s == id) {
            self.waiting.push((id, Instant::now()));
        }
    }

    /// Stream `id` sent some of its answer: its wait is over.
    pub fn clear(&mut self, id: u32) {
        if !self.waiting.is_empty() {
            self.waiting.retain(|&(s, _)| s != id);
        }
    }

    /// Forgets the streams for which `still_waiting` is false (closed or reset meanwhile), sets
    /// the timer for the longest wait left and polls it: the streams that have waited the limit
    /// once it fires (removed here), to be reset.
    pub fn poll_due(
        &mut self,
        cx: &mut Context<'_>,
        still_waiting: impl Fn(u32) -> bool,
    ) -> Vec<u32> {
        if self.waiting.is_empty() {
            self.timer = None;
            return Vec::new();
        }
        self.waiting.retain(|&(id, _)| still_waiting(id));
        let (Some(limit), Some(earliest)) = (
            self.limit,
            self.waiting.iter().map(|&(_, since)| since).min(),
        ) else {
            self.timer = None;
            return Vec::new();
        };
        let deadline = earliest + limit;
        match self.timer.as_mut() {
            Some(timer) if timer.deadline() == deadline => {}
            Some(timer) => timer.as_mut().reset(deadline),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
        let timer = self.timer.as_mut().expect("set above");
        if timer.as_mut().poll(cx).is_pending() {
            return Vec::new();
        }
        self.timer = None;
        let now = Instant::now();
        let mut due = Vec::new();
        self.waiting.retain(|&(id, since)| {
            let over = since + limit <= now;
            if over {
                due.push(id);
            }
            !over
        });
        // The timer for the next wait, if one is left.
        cx.waker().wake_by_ref();
        due
    }
}

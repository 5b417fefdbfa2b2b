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

/// One timer per connection, set for the stream that has waited longest.
pub(super) struct WindowStalls {
    /// `None`: no bound (`stream_idle_timeout: 0s`).
    limit: Option<Duration>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl WindowStalls {
    pub fn new(limit: Option<Duration>) -> Self {
        WindowStalls { limit, timer: None }
    }

    /// Whether stall times need noting at all.
    pub fn bounded(&self) -> bool {
        self.limit.is_some()
    }

    /// Sets the timer for the stream that began waiting `earliest` (none: no stream waits)
    /// and polls it. `Some(now)` when it has fired: the streams that began waiting by
    /// [`Self::due_since`] are to be reset.
    pub fn poll_due(&mut self, cx: &mut Context<'_>, earliest: Option<Instant>) -> Option<Instant> {
        let (Some(limit), Some(earliest)) = (self.limit, earliest) else {
            self.timer = None;
            return None;
        };
        let deadline = earliest + limit;
        match self.timer.as_mut() {
            Some(timer) if timer.deadline() == deadline => {}
            Some(timer) => timer.as_mut().reset(deadline),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
        let timer = self.timer.as_mut().expect("set above");
        if timer.as_mut().poll(cx).is_pending() {
            return None;
        }
        self.timer = None;
        Some(Instant::now())
    }

    /// At `now`, the latest start of a wait that has lasted the limit.
    pub fn due_since(&self, now: Instant) -> Option<Instant> {
        self.limit.and_then(|limit| now.checked_sub(limit))
    }
}

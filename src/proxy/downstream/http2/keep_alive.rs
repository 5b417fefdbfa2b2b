//! HTTP/2 keep-alive PINGs.

use std::future::Future;
use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

use bytes::BytesMut;
use tokio::time::{Instant, Sleep};

use super::PING_PAYLOAD;
use crate::proxy::hardening;
use crate::proxy::http2_wire::frame;

/// Keep-alive, as hyper's server does it: after [`hardening::H2_KEEP_ALIVE_INTERVAL`] with
/// nothing read, a PING; a connection that does not answer it within
/// [`hardening::H2_KEEP_ALIVE_TIMEOUT`] is dead. A busy connection is never pinged, so a
/// client whose PONG would queue behind its own upload is not cut off.
pub(super) struct KeepAlive {
    timer: Pin<Box<Sleep>>,
    awaiting_pong: bool,
    /// Something was read since the timer was last armed.
    pub(super) activity: bool,
}

impl KeepAlive {
    pub(super) fn new() -> Self {
        KeepAlive {
            timer: Box::pin(tokio::time::sleep(hardening::H2_KEEP_ALIVE_INTERVAL)),
            awaiting_pong: false,
            activity: false,
        }
    }

    /// Nothing was read for a whole interval: a PING is out, waiting for its answer.
    pub(super) fn idle(&self) -> bool {
        self.awaiting_pong
    }

    pub(super) fn pong(&mut self) {
        if self.awaiting_pong {
            self.awaiting_pong = false;
            self.rearm(hardening::H2_KEEP_ALIVE_INTERVAL);
        }
    }

    /// True when a PING went unanswered; queues a PING when the connection went idle.
    pub(super) fn poll_timed_out(&mut self, cx: &mut Context<'_>, out: &mut BytesMut) -> bool {
        while self.timer.as_mut().poll(cx).is_ready() {
            if self.awaiting_pong {
                tracing::debug!("HTTP/2 keep-alive PING unanswered; closing the connection");
                return true;
            }
            if std::mem::take(&mut self.activity) {
                self.rearm(hardening::H2_KEEP_ALIVE_INTERVAL);
                continue;
            }
            frame::put_ping(out, false, PING_PAYLOAD);
            self.awaiting_pong = true;
            self.rearm(hardening::H2_KEEP_ALIVE_TIMEOUT);
        }
        false
    }

    fn rearm(&mut self, after: Duration) {
        self.timer.as_mut().reset(Instant::now() + after);
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::task::Poll;

    use super::*;
    use crate::proxy::http2_wire::frame::{Head, Kind, HEAD_LEN};

    /// Drives `alive` for up to `within` of (paused, auto-advancing) time, as the connection
    /// would: `answer` says whether the client answers each PING, `busy` whether frames keep
    /// arriving. Returns when it timed out, if it did, and the PINGs sent.
    async fn run(answer: bool, busy: bool, within: Duration) -> (Option<Duration>, usize) {
        let mut alive = KeepAlive::new();
        let started = Instant::now();
        let mut pings = 0;
        let timed_out = poll_fn(|cx| {
            let mut out = BytesMut::new();
            if busy {
                alive.activity = true;
            }
            let timed_out = alive.poll_timed_out(cx, &mut out);
            if !out.is_empty() {
                let head = Head::parse(&out);
                assert_eq!((head.kind, head.flags), (Kind::Ping, 0));
                assert_eq!(&out[HEAD_LEN..], &PING_PAYLOAD);
                pings += 1;
                if answer {
                    alive.pong();
                }
            }
            if timed_out {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        let took = tokio::time::timeout(within, timed_out)
            .await
            .ok()
            .map(|()| started.elapsed());
        (took, pings)
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_is_pinged_and_closed_when_the_ping_goes_unanswered() {
        let (took, pings) = run(false, false, Duration::from_secs(600)).await;
        assert_eq!(
            took,
            Some(hardening::H2_KEEP_ALIVE_INTERVAL + hardening::H2_KEEP_ALIVE_TIMEOUT)
        );
        assert_eq!(pings, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_that_answers_its_pings_stays_open() {
        let (took, pings) = run(true, false, Duration::from_secs(600)).await;
        assert_eq!(took, None);
        assert!(pings >= 10, "{pings} PINGs in 10 minutes");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_only_while_the_ping_an_idle_interval_sent_is_unanswered() {
        let mut alive = KeepAlive::new();
        let mut out = BytesMut::new();
        let poll = |alive: &mut KeepAlive, out: &mut BytesMut| {
            alive.poll_timed_out(&mut Context::from_waker(std::task::Waker::noop()), out)
        };
        assert!(!poll(&mut alive, &mut out));
        assert!(!alive.idle(), "a new connection");
        tokio::time::sleep(hardening::H2_KEEP_ALIVE_INTERVAL).await;
        assert!(!poll(&mut alive, &mut out));
        assert!(!out.is_empty(), "no PING after an idle interval");
        assert!(alive.idle(), "a PING is out");
        alive.pong();
        assert!(!alive.idle(), "the PING was answered");
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_reading_frames_is_not_pinged() {
        let (took, pings) = run(false, true, Duration::from_secs(600)).await;
        assert_eq!(took, None);
        assert_eq!(pings, 0);
    }
}

//! A client that stops reading. The proxy's writes to it then wait on a full socket buffer, and
//! whatever the connection holds (its streams' upstream requests, their buffered bodies, the
//! upstream connections under them) would wait as long: a slow-read attack needs only a
//! window or a receive buffer left full. Envoy's `stream_idle_timeout` bounds that too (no
//! bytes moved for that long, in either direction, resets the stream); here a connection whose
//! writes have made no progress for the HCM's `stream_idle_timeout` fails with `TimedOut` and
//! is closed, counted in `downstream_rq_idle_timeout`.
//!
//! Only a write that waits arms the timer, and any write that goes through disarms it, so a
//! connection whose writes never wait (nearly all) costs nothing but a check of the write's
//! result. A client that reads slowly still gets cut off if the kernel's send buffer (a few
//! megabytes at most) does not drain enough to take another write within the limit: with the
//! 5-minute default, a client reading less than a few kilobytes a second. Envoy's bound is of
//! the same kind (its 1 MiB connection buffer stays above the high watermark).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use crate::proxy::stats::Counter;

/// The error a stalled write ends with.
#[derive(Debug, thiserror::Error)]
#[error("the client read nothing for {0:?} (stream_idle_timeout)")]
pub struct WriteStalled(Duration);

pub struct WriteStall<IO> {
    io: IO,
    /// `None`: no bound (the config's `stream_idle_timeout: 0s`).
    limit: Option<Duration>,
    /// Armed when a write first waits, dropped when one goes through.
    since_stalled: Option<Pin<Box<Sleep>>>,
    timeouts: Counter,
}

impl<IO> WriteStall<IO> {
    pub fn new(io: IO, limit: Option<Duration>, timeouts: Counter) -> Self {
        WriteStall {
            io,
            limit,
            since_stalled: None,
            timeouts,
        }
    }

    /// Passes a write's result on, timing the wait when it waits.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        let Poll::Pending = result else {
            self.since_stalled = None;
            return result;
        };
        let Some(limit) = self.limit else {
            return Poll::Pending;
        };
        let timer = self
            .since_stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.since_stalled = None;
        self.timeouts.inc();
        tracing::debug!(?limit, "closing a connection whose client stopped reading");
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            WriteStalled(limit),
        )))
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for WriteStall<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for WriteStall<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.io).poll_shutdown(cx);
        self.watch(cx, result)
    }
}

//! HTTP/2 downstream (h2c prior knowledge, or h2 over TLS), served on the h2 crate directly:
//! one task per connection drives the connection and all of its streams, as Envoy keeps a
//! connection on one worker.
//!
//! Why not hyper's HTTP/2 server: it spawns a task per stream behind its service and executor
//! layers and wraps the connection in its protocol-detecting ones; callgrind counted 50.2k
//! instructions per h2c request through it and 49.0k here (requests/s moved within the
//! machine's noise). What a client sees is hyper's behaviour, kept here: the same settings and
//! limits ([`hardening`]), connection headers stripped from responses, a `date` header,
//! `content-length` from a body of known size, a reset stream cancelling its request (and a
//! closed connection all of them), keep-alive PINGs on idle connections, GOAWAY on drain.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use h2::server::SendResponse;
use h2::{Ping, PingPong, Reason, RecvStream, SendStream};
use http::header::{CONTENT_LENGTH, DATE};
use http::{HeaderValue, Request, Response};
use http_body::{Body as _, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};

use super::{causes, wake_at_turn_end, ConnError, Connection};
use crate::proxy::body::{self, Body};
use crate::proxy::hardening;
use crate::proxy::hardening::watchdog::StreamGuard;
use crate::proxy::headers::strip_hop_by_hop;
use crate::proxy::http1_wire;

// hyper's server defaults, which our HTTP/2 listeners have always had: windows larger than the
// spec's 64 KiB so one stream can fill a fast link, and a bounded send buffer per stream.
const CONNECTION_WINDOW: u32 = 1024 * 1024;
const STREAM_WINDOW: u32 = 1024 * 1024;
const MAX_FRAME_SIZE: u32 = 16 * 1024;
const MAX_SEND_BUFFER: usize = 400 * 1024;

/// Serves HTTP/2 on `io` (whose first bytes are the client's preface) until the connection
/// closes, or, once the listener drains, until its streams are answered.
pub async fn serve<IO>(conn: &Connection, io: IO) -> Result<(), ConnError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut h2 = builder(conn.max_header_list_size)
        .handshake::<_, Bytes>(io)
        .await?;
    let mut keep_alive = h2.ping_pong().map(KeepAlive::new);
    let mut timed_out = false;
    let mut streams = FuturesUnordered::new();
    let mut drained = pin!(conn.drained());
    let mut draining = false;
    let mut at_turn_end = false;
    poll_fn(|cx| {
        // Streams first: what they send, the connection writes below.
        while let Poll::Ready(Some(())) = streams.poll_next_unpin(cx) {}
        // The connection itself (reading frames, writing what the streams queued) waits for
        // the end of the worker's turn, so that the answers of all connections go out
        // together (see `wake_at_turn_end`).
        if !at_turn_end {
            at_turn_end = true;
            wake_at_turn_end(cx);
            return Poll::Pending;
        }
        at_turn_end = false;
        if !draining && drained.as_mut().poll(cx).is_ready() {
            draining = true;
            h2.graceful_shutdown();
        }
        if let Some(alive) = keep_alive.as_mut() {
            if alive.poll_timed_out(cx).is_ready() {
                h2.abrupt_shutdown(Reason::NO_ERROR);
                keep_alive = None;
                timed_out = true;
            }
        }
        let mut accepted = false;
        loop {
            match h2.poll_accept(cx) {
                Poll::Ready(Some(Ok((request, respond)))) => {
                    // A request body's frames count as activity too (see `KeepAlive`).
                    let activity = keep_alive.as_ref().and_then(|alive| {
                        alive.note_activity();
                        (!request.body().is_end_stream()).then(|| alive.activity.clone())
                    });
                    streams.push(serve_stream(conn, request, respond, activity));
                    accepted = true;
                }
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Err(error.into())),
                Poll::Ready(None) if timed_out => {
                    return Poll::Ready(Err(KeepAliveTimedOut.into()))
                }
                // Closed: streams still in flight lost their client with it.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => break,
            }
        }
        // New streams start on this task's next turn, once the other connections ready now
        // have read theirs (as hyper's spawned stream tasks did): upstream requests then go
        // out together, and an upstream woken by the first finds the rest waiting.
        if accepted {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    })
    .await
}

fn builder(max_header_list_size: u32) -> h2::server::Builder {
    let mut builder = h2::server::Builder::new();
    builder
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME_SIZE)
        .max_send_buffer_size(MAX_SEND_BUFFER)
        // The listener's header budget (h2 answers 431 past it; its own default is 16 MiB,
        // which would make its CONTINUATION cap meaningless), and the flood limits: see
        // `hardening` for why each value.
        .max_header_list_size(max_header_list_size)
        .max_concurrent_streams(hardening::H2_MAX_CONCURRENT_STREAMS)
        .max_pending_accept_reset_streams(hardening::H2_MAX_PENDING_ACCEPT_RESET_STREAMS)
        .max_local_error_reset_streams(Some(hardening::H2_MAX_LOCAL_ERROR_RESET_STREAMS));
    builder
}

/// One stream: the HCM's answer, unless the client resets the stream first (which drops the
/// HCM's future, and with it the upstream request), then the response's body.
async fn serve_stream(
    conn: &Connection,
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    activity: Option<Arc<AtomicU64>>,
) {
    crate::proxy::listener::note_protocol(&conn.protocol, request.version(), conn.hcm.stats());
    let stream = StreamGuard::new(conn.watch.clone());
    // A request whose HEADERS ended the stream has no body: nothing to keep the stream's
    // receiving half for, or to box (and every later end-of-stream check is free).
    let (parts, recv) = request.into_parts();
    let body = if recv.is_end_stream() {
        body::empty()
    } else {
        let content_length = http1_wire::content_length(&parts.headers);
        body::boxed(RecvBody::new(recv, content_length, activity))
    };
    let request = Request::from_parts(parts, body);
    // Boxed, so a stream's own future stays small: the HCM's is several kilobytes, and the
    // stream set moves each stream's future whole into its slot (inline, memcpy went from
    // 6.6 to 9.7 % of the h2c profile).
    let mut handling = Box::pin(conn.hcm.handle(request, conn.info));
    let answered = poll_fn(|cx| {
        if let Poll::Ready(response) = handling.as_mut().poll(cx) {
            return Poll::Ready(Some(response));
        }
        match respond.poll_reset(cx) {
            Poll::Ready(_) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await;
    let Some(response) = answered else {
        tracing::debug!("stream reset by the client before its response");
        return;
    };
    stream.answered();
    let (mut parts, body) = response.into_parts();
    // Connection-specific headers are illegal in HTTP/2 (RFC 9113 §8.2.2), and h2 refuses a
    // response carrying one: the hop-by-hop rule every hop applies, once more after the
    // route's response mutations.
    strip_hop_by_hop(&mut parts.headers, false);
    if !parts.headers.contains_key(DATE) {
        parts.headers.insert(DATE, super::response::date_value());
    }
    let end_stream = body.is_end_stream();
    if !end_stream && !parts.headers.contains_key(CONTENT_LENGTH) {
        if let Some(length) = body.size_hint().exact() {
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(length));
        }
    }
    match respond.send_response(Response::from_parts(parts, ()), end_stream) {
        Ok(sending) if !end_stream => send_body(sending, body).await,
        Ok(_) => {}
        Err(error) => {
            tracing::debug!(%error, "sending a response head failed");
            respond.send_reset(Reason::INTERNAL_ERROR);
        }
    }
}

/// Streams `body` out as DATA frames (as flow control allows) and trailers. The client
/// resetting the stream, or the body failing (the stream is reset then), ends it.
async fn send_body(mut sending: SendStream<Bytes>, mut body: Body) {
    // A chunk taken from the body and waiting for stream capacity, with whether it is the last.
    let mut waiting: Option<(Bytes, bool)> = None;
    let outcome: Result<(), h2::Error> = poll_fn(|cx| loop {
        if let Poll::Ready(reason) = sending.poll_reset(cx) {
            return Poll::Ready(Err(reason.map_or_else(|e| e, h2::Error::from)));
        }
        if let Some((chunk, last)) = waiting.take() {
            while sending.capacity() == 0 {
                match sending.poll_capacity(cx) {
                    Poll::Ready(Some(Ok(_))) => {}
                    Poll::Ready(Some(Err(error))) => return Poll::Ready(Err(error)),
                    Poll::Ready(None) => return Poll::Ready(Ok(())),
                    Poll::Pending => {
                        waiting = Some((chunk, last));
                        return Poll::Pending;
                    }
                }
            }
            sending.send_data(chunk, last)?;
            if last {
                return Poll::Ready(Ok(()));
            }
            continue;
        }
        // The next frame before any capacity is reserved: reserving ahead of a body that has
        // nothing yet would pin connection window another stream may need (hyper #4003).
        match ready!(Pin::new(&mut body).poll_frame(cx)) {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(chunk) => {
                    let last = body.is_end_stream();
                    if chunk.is_empty() {
                        sending.send_data(chunk, last)?;
                        if last {
                            return Poll::Ready(Ok(()));
                        }
                    } else {
                        // A claim of one byte: h2 raises it to what `send_data` buffers.
                        sending.reserve_capacity(1);
                        waiting = Some((chunk, last));
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        sending.reserve_capacity(0);
                        return Poll::Ready(sending.send_trailers(trailers));
                    }
                }
            },
            Some(Err(error)) => {
                tracing::debug!(%error, "response body failed; resetting the stream");
                sending.send_reset(reset_reason(error.as_ref()));
                return Poll::Ready(Ok(()));
            }
            None => return Poll::Ready(sending.send_data(Bytes::new(), true)),
        }
    })
    .await;
    if let Err(error) = outcome {
        tracing::debug!(%error, "response body not delivered");
    }
}

/// The reason a stream is reset with when its body fails: an HTTP/2 reason found in the
/// error's chain (an upstream's reset, say), else `INTERNAL_ERROR`.
fn reset_reason(error: &(dyn std::error::Error + 'static)) -> Reason {
    causes::<h2::Error>(error)
        .find_map(h2::Error::reason)
        .unwrap_or(Reason::INTERNAL_ERROR)
}

/// A request body: DATA frames, whose flow-control window is given back as they are read,
/// then trailers.
struct RecvBody {
    recv: RecvStream,
    data_done: bool,
    /// What `content-length` says is still to come.
    remaining: Option<u64>,
    /// The connection's keep-alive activity count, bumped per frame read.
    activity: Option<Arc<AtomicU64>>,
}

impl RecvBody {
    fn new(
        recv: RecvStream,
        content_length: Option<u64>,
        activity: Option<Arc<AtomicU64>>,
    ) -> Self {
        RecvBody {
            recv,
            data_done: false,
            remaining: content_length,
            activity,
        }
    }

    fn note_activity(&self) {
        if let Some(activity) = &self.activity {
            activity.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl http_body::Body for RecvBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let this = &mut *self;
        if !this.data_done {
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    this.note_activity();
                    let _ = this.recv.flow_control().release_capacity(data.len());
                    if let Some(n) = this.remaining.as_mut() {
                        *n = n.saturating_sub(data.len() as u64);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                // RST_STREAM(NO_ERROR) is an early response (RFC 9113 §8.1): the body ends.
                Some(Err(error)) if error.reason() == Some(Reason::NO_ERROR) => {
                    return Poll::Ready(None)
                }
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => this.data_done = true,
            }
        }
        match ready!(this.recv.poll_trailers(cx)) {
            Ok(trailers) => {
                this.note_activity();
                Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))))
            }
            Err(error) if error.reason() == Some(Reason::NO_ERROR) => Poll::Ready(None),
            Err(error) => Poll::Ready(Some(Err(error))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.remaining
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

/// The peer did not answer a keep-alive PING in time: the connection is presumed dead.
#[derive(Debug, thiserror::Error)]
#[error(
    "HTTP/2 keep-alive PING unanswered within {:?}",
    hardening::H2_KEEP_ALIVE_TIMEOUT
)]
struct KeepAliveTimedOut;

/// Keep-alive, as hyper's server does it: after [`hardening::H2_KEEP_ALIVE_INTERVAL`] with
/// nothing read (no request head, DATA or trailers), a PING; a connection that does not answer
/// it within [`hardening::H2_KEEP_ALIVE_TIMEOUT`] is dead and gets closed. A busy connection is
/// never pinged, so a client whose PONG would queue behind its own upload is not cut off.
struct KeepAlive {
    ping: PingPong,
    timer: Pin<Box<Sleep>>,
    awaiting_pong: bool,
    /// Frames read, counted by the connection and by request bodies (which may be read in
    /// another task: a counter, not a clock read per frame).
    activity: Arc<AtomicU64>,
    /// `activity` when the timer last fired.
    seen: u64,
}

impl KeepAlive {
    fn new(ping: PingPong) -> Self {
        KeepAlive {
            ping,
            timer: Box::pin(tokio::time::sleep(hardening::H2_KEEP_ALIVE_INTERVAL)),
            awaiting_pong: false,
            activity: Arc::new(AtomicU64::new(0)),
            seen: 0,
        }
    }

    fn note_activity(&self) {
        self.activity.fetch_add(1, Ordering::Relaxed);
    }

    /// Ready when a PING went unanswered.
    fn poll_timed_out(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.awaiting_pong {
            if let Poll::Ready(Ok(_)) = self.ping.poll_pong(cx) {
                self.awaiting_pong = false;
                self.rearm(hardening::H2_KEEP_ALIVE_INTERVAL);
            }
        }
        while self.timer.as_mut().poll(cx).is_ready() {
            if self.awaiting_pong {
                tracing::debug!("HTTP/2 keep-alive PING unanswered; closing the connection");
                return Poll::Ready(());
            }
            let activity = self.activity.load(Ordering::Relaxed);
            if activity != self.seen {
                // Something was read during the interval: not idle, no PING yet.
                self.seen = activity;
                self.rearm(hardening::H2_KEEP_ALIVE_INTERVAL);
                continue;
            }
            if self.ping.send_ping(Ping::opaque()).is_err() {
                // The connection is closing anyway.
                return Poll::Pending;
            }
            self.awaiting_pong = true;
            self.rearm(hardening::H2_KEEP_ALIVE_TIMEOUT);
            // Registers interest in the PONG.
            if let Poll::Ready(Ok(_)) = self.ping.poll_pong(cx) {
                self.awaiting_pong = false;
                self.rearm(hardening::H2_KEEP_ALIVE_INTERVAL);
            }
        }
        Poll::Pending
    }

    fn rearm(&mut self, after: Duration) {
        self.timer.as_mut().reset(Instant::now() + after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_left_with_no_header_h2_refuses() {
        let mut headers = http::HeaderMap::new();
        for (name, value) in [
            ("connection", "close, x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("te", "gzip"),
            ("proxy-connection", "keep-alive"),
            ("x-kept", "1"),
        ] {
            headers.insert(
                http::HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        strip_hop_by_hop(&mut headers, false);
        let left: Vec<_> = headers.keys().map(http::HeaderName::as_str).collect();
        assert_eq!(left, ["x-kept"]);
    }

    #[test]
    fn a_failed_body_resets_with_the_reason_found_in_its_error_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("upstream body")]
        struct Wrapped(#[source] h2::Error);
        let upstream_reset = Wrapped(h2::Error::from(Reason::REFUSED_STREAM));
        assert_eq!(reset_reason(&upstream_reset), Reason::REFUSED_STREAM);
        let io = std::io::Error::other("broken pipe");
        assert_eq!(reset_reason(&io), Reason::INTERNAL_ERROR);
    }

    /// A server connection and `KeepAlive` over an in-memory pipe, with a raw h2 client whose
    /// connection answers PINGs only when `answer_pings` (it is polled then).
    async fn keep_alive_pair(
        answer_pings: bool,
    ) -> (
        h2::server::Connection<tokio::io::DuplexStream, Bytes>,
        KeepAlive,
    ) {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let client = tokio::spawn(async move {
            let (_send, connection) = h2::client::handshake(client_io).await.unwrap();
            if answer_pings {
                let _ = connection.await;
            } else {
                std::future::pending::<()>().await;
            }
        });
        let mut server = h2::server::handshake(server_io).await.unwrap();
        let alive = KeepAlive::new(server.ping_pong().unwrap());
        drop(client);
        (server, alive)
    }

    /// Drives the server connection and `alive` until a PING goes unanswered, for at most
    /// `within` of (paused, auto-advancing) time. Returns how long that took.
    async fn time_to_time_out(
        server: &mut h2::server::Connection<tokio::io::DuplexStream, Bytes>,
        alive: &mut KeepAlive,
        within: Duration,
    ) -> Option<Duration> {
        let started = Instant::now();
        let timed_out = poll_fn(|cx| {
            let _ = server.poll_accept(cx);
            alive.poll_timed_out(cx)
        });
        tokio::time::timeout(within, timed_out)
            .await
            .ok()
            .map(|()| started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_is_pinged_and_closed_when_the_ping_goes_unanswered() {
        let (mut server, mut alive) = keep_alive_pair(false).await;
        let took = time_to_time_out(&mut server, &mut alive, Duration::from_secs(600)).await;
        assert_eq!(
            took,
            Some(hardening::H2_KEEP_ALIVE_INTERVAL + hardening::H2_KEEP_ALIVE_TIMEOUT)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_that_answers_its_pings_stays_open() {
        let (mut server, mut alive) = keep_alive_pair(true).await;
        let took = time_to_time_out(&mut server, &mut alive, Duration::from_secs(600)).await;
        assert_eq!(took, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_reading_frames_is_not_pinged() {
        let (mut server, mut alive) = keep_alive_pair(false).await;
        let activity = alive.activity.clone();
        let reading = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(20)).await;
                activity.fetch_add(1, Ordering::Relaxed);
            }
        });
        // Nothing answers PINGs, yet no PING is sent while frames keep arriving.
        let took = time_to_time_out(&mut server, &mut alive, Duration::from_secs(600)).await;
        assert_eq!(took, None);
        reading.abort();
        // Once they stop, the connection is idle: pinged, and closed unanswered.
        let took = time_to_time_out(&mut server, &mut alive, Duration::from_secs(600)).await;
        assert!(took.is_some_and(
            |t| t <= 2 * hardening::H2_KEEP_ALIVE_INTERVAL + hardening::H2_KEEP_ALIVE_TIMEOUT
        ));
    }
}
